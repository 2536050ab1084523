"""The single web page of `vpr serve`: drop photos, see where they were taken, take it away.

The page is HTML and CSS here; its script is ``static/page.js``, its map
``vpr/assets/map/locationmap.js`` (shared with `vpr locate --map`) over Leaflet, all served
by the service itself (`vpr.serve.static`), so nothing comes from a CDN. Map tiles
come from OpenStreetMap when the browser is online; offline, the map still draws the
points, the uncertainty radius and a scale on a plain background, and says why.
Thumbnails come from ``/thumbnail/{id}``, larger views from ``/image/{id}``.
"""

from __future__ import annotations

import html
import json

from vpr.assets import OSM_TILE_URL as TILE_URL  # the only thing loaded from elsewhere

# The page's Content-Security-Policy: scripts, styles and data only from this service.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data: "
                           "https://tile.openstreetmap.org; "
                           "style-src 'self' 'unsafe-inline'; script-src 'self'; "
                           "connect-src 'self' blob:; base-uri 'none'; form-action 'self'")

_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vpr serve: where was this photo taken?</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/leaflet/leaflet.css">
<link rel="stylesheet" href="/static/map/locationmap.css">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { background: #2b6cb0; color: white; padding: 10px 20px; }
  header h1 { font-size: 20px; margin: 0; }
  header p { margin: 2px 0 0; font-size: 13px; opacity: 0.9; }
  main { padding: 16px 20px; max-width: 1320px; }
  #drop { display: block; border: 2px dashed #888; border-radius: 8px; padding: 14px;
          text-align: center; background: white; }
  #drop.over { border-color: #2b6cb0; background: #ebf4ff; }
  #drop label.picker { cursor: pointer; margin: 0 6px; display: inline-block;
                       padding: 3px 10px; border: 1px solid #2b6cb0; border-radius: 4px;
                       background: #ebf4ff; color: #2b6cb0; position: relative; }
  /* The native inputs stay in the page (keyboard, scripts), their buttons do not show. */
  #drop label.picker input { position: absolute; left: 0; top: 0; width: 1px; height: 1px;
                             opacity: 0; }
  #controls { margin: 8px 0; font-size: 14px; }
  #controls input[type=number] { width: 4em; }
  #progress { width: 320px; height: 14px; vertical-align: middle; }
  #status { min-height: 1.4em; font-size: 14px; margin: 6px 0; white-space: nowrap;
            overflow: hidden; text-overflow: ellipsis; }
  #status.error { color: #b00020; font-weight: 600; }
  [hidden] { display: none !important; }
  #batch table { border-collapse: collapse; font-size: 13px; background: white; }
  #batch td, #batch th { border: 1px solid #ccc; padding: 3px 8px; text-align: left; }
  #batch td.name { max-width: 300px; overflow: hidden; text-overflow: ellipsis;
                    white-space: nowrap; }
  #batch tbody tr { cursor: pointer; }
  #batch tbody tr:hover { background: #ebf4ff; }
  #batch tbody tr.selected { background: #d6e6fa; }
  #batch tr.failed td { color: #b00020; }
  #downloads { margin: 6px 0 12px; font-size: 14px; }
  .row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
  #photo-column { width: 320px; }
  #preview { max-width: 320px; max-height: 240px; border: 1px solid #ccc; }
  #prediction { font-size: 15px; line-height: 1.6; margin-top: 6px; }
  #prediction .confidence { font-weight: 700; }
  #prediction .name { overflow-wrap: anywhere; font-weight: 600; font-size: 13px; }
  #map-column { flex: 1; min-width: 360px; max-width: 760px; }
  #map { height: 420px; border: 1px solid #999; }
  #matches { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
             gap: 10px; margin-top: 12px; }
  figure.match { margin: 0; background: white; border: 3px solid #d73027; border-radius: 6px;
                 padding: 4px; font-size: 12px; cursor: zoom-in; }
  figure.match.in-cluster { border-color: #1a9850; }
  .pair { position: relative; display: flex; gap: 4px; }
  .pair img { width: calc(50% - 2px); height: 140px; object-fit: cover; background: #ddd; }
  .pair canvas { position: absolute; left: 0; top: 0; width: 100%; height: 100%;
                 pointer-events: none; }
  figure.match figcaption { overflow-wrap: anywhere; line-height: 1.4; }
  dialog#evidence { max-width: 96vw; padding: 10px; }
  dialog#evidence .pair img { width: calc(50% - 2px); height: auto; max-height: 80vh;
                              object-fit: contain; }
  dialog#evidence p { margin: 4px 0; font-size: 14px; }
</style>
</head>
<body>
<header>
  <h1>Where was this photo taken?</h1>
  <p id="about">Index of __IMAGES__ geotagged images. Photos are sent to this service only.</p>
</header>
<main>
  <div id="drop">
    <strong>Drop photos or a folder here</strong>, or
    <label class="picker"><input id="photo" name="file" type="file" accept="image/*"
      multiple>pick photos</label>
    <label class="picker"><input id="folder" type="file" webkitdirectory multiple>pick a
      folder</label>
    <br><small>at most __MAX_UPLOAD_MB__ MB a photo</small>
  </div>
  <div id="controls">
    <label>matches: <input id="top_k" type="number" min="1" max="__MAX_TOP_K__"
           value="__TOP_K__"></label>
    &nbsp; <progress id="progress" value="0" max="1" hidden></progress>
    &nbsp; <a href="/docs">API</a>
  </div>
  <div id="status" role="status"></div>
  <section id="batch" hidden>
    <table id="results">
      <thead><tr><th>#</th><th>photo</th><th>latitude</th><th>longitude</th>
        <th>confidence</th><th>top match</th><th>distance to it</th></tr></thead>
      <tbody></tbody>
    </table>
    <div id="downloads">Download:
      <a id="download-csv" download="vpr-locations.csv" href="#">CSV</a> &middot;
      <a id="download-geojson" download="vpr-locations.geojson" href="#">GeoJSON</a>
    </div>
  </section>
  <section id="result" hidden>
    <div class="row">
      <div id="photo-column">
        <img id="preview" alt="the photo">
        <div id="prediction"></div>
      </div>
      <div id="map-column">
        <div id="map"></div>
        <div id="map-note"></div>
        <div id="elsewhere"></div>
      </div>
    </div>
    <div id="matches"></div>
  </section>
  <dialog id="evidence">
    <p id="evidence-caption"></p>
    <div class="pair"><img id="evidence-photo" alt="the photo">
      <img id="evidence-match" alt="the match"><canvas id="evidence-lines"></canvas></div>
    <p><button id="evidence-close">close</button></p>
  </dialog>
</main>
<script type="application/json" id="settings">__SETTINGS__</script>
<script src="/static/leaflet/leaflet.js"></script>
<script src="/static/map/locationmap.js"></script>
<script src="/static/page.js"></script>
</body>
</html>
"""


def render_page(images: int, top_k: int, max_top_k: int, max_upload_bytes: int,
                max_batch_files: int = 50, max_batch_bytes: int = 100 * 2**20) -> str:
    """The page, with the service's settings filled in.

    Args:
        images: how many images the index holds (shown in the header).
        top_k: the default number of matches.
        max_top_k: the largest number of matches the service accepts.
        max_upload_bytes: the upload size limit (also checked by the page before sending).
        max_batch_files: the most photos the page sends in one request.
        max_batch_bytes: the largest request the page sends (photos are split to fit).
    """
    settings = {"maxUploadBytes": int(max_upload_bytes), "maxBatchFiles": int(max_batch_files),
                "maxBatchBytes": int(max_batch_bytes), "tileUrl": TILE_URL}
    values = {
        "__IMAGES__": f"{images:,}",
        "__TOP_K__": str(int(top_k)),
        "__MAX_TOP_K__": str(int(max_top_k)),
        "__MAX_UPLOAD_MB__": f"{max_upload_bytes / 2**20:g}",
    }
    page = _PAGE
    for placeholder, value in values.items():
        page = page.replace(placeholder, html.escape(value))
    # Inside <script>: "</" would end it early; numbers and a URL only, but escape anyway.
    return page.replace("__SETTINGS__", json.dumps(settings).replace("</", "<\\/"))
