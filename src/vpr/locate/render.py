"""Showing `locate` results: a self-contained HTML map, and a JPEG grid of the matches.

The map file is one HTML page that fetches nothing but OpenStreetMap's tiles: Leaflet
(vendored in `vpr.assets`), its marker images (as data: URLs) and our map
(``vpr/assets/map/locationmap.js``, the same as `vpr serve`'s page draws with) are inlined,
and a Content-Security-Policy forbids any other load. Each photo's view fits its winning
cluster; matches elsewhere are listed below the map with their geodesic distance, one click
each. Offline (no tile arrives), the points, the radius and the scale stay on a plain
background with a note.

Several photos share one map: a table lists them (click a row), and the selected photo's
prediction, matches and table are shown; the others are one click away.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from vpr.assets import OSM_TILE_ORIGIN, OSM_TILE_URL, read_asset
from vpr.eval.predictions import (
    BACKGROUND_COLOUR,
    CORRECT_COLOUR,
    QUERY_COLOUR,
    WRONG_COLOUR,
    _load_tile,
    _row_image,
)
from vpr.locate.geodesy import format_distance, latlon_of
from vpr.locate.predict import LocateResult, Match
from vpr.utils.atomic import write_bytes_atomic

# Nothing but inline code and styles, data: images and OpenStreetMap's tiles: a map file
# opened later cannot be made to load anything else (nor to send anything anywhere).
CONTENT_SECURITY_POLICY = (f"default-src 'none'; img-src data: {OSM_TILE_ORIGIN}; "
                           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                           "base-uri 'none'; form-action 'none'")
# The prediction's pin: Leaflet's own marker images, as data: URLs.
PIN_IMAGES = {"iconUrl": "marker-icon.png", "iconRetinaUrl": "marker-icon-2x.png",
              "shadowUrl": "marker-shadow.png"}


def check_map_target(path: str | Path) -> None:
    """Checks that ``path`` can be the map file: not a folder, its folder writable.

    Called before long work, so that a bad ``--map`` is one line, not a lost search.

    Raises:
        ValueError: ``path`` is an existing folder.
        DiskError: its folder is read-only, full or forbidden.
    """
    from vpr.utils.disk import check_writable

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"map file {path} is a folder; expected the name of an HTML file")
    check_writable(path.parent, "folder of the map file")


def _data_url(name: str) -> str:
    encoded = base64.b64encode(read_asset(f"leaflet/images/{name}")).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def _leaflet_css() -> str:
    """Leaflet's CSS with its images as data: URLs and without its comments (which cite
    bug trackers' web addresses: the file names no address it does not use)."""
    css = read_asset("leaflet/leaflet.css").decode()
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    return re.sub(r"url\(images/([\w-]+\.png)\)",
                  lambda found: f"url({_data_url(found.group(1))})", css)


def _script_text(text: str) -> str:
    # "</script" inside an inline script would end it early.
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.I)


def _json_text(value: Any) -> str:
    # JSON inside <script>: no "<" at all, so that no "</script" or "<!--" can end it.
    return json.dumps(value).replace("<", "\\u003c")


def _latlon(match: Match) -> tuple[float, float] | None:
    return latlon_of(match.latitude, match.longitude, match.utm_east, match.utm_north,
                     match.utm_zone_number, match.utm_zone_letter)


def _map_data(result: LocateResult) -> dict[str, Any]:
    """What locationmap.js draws of one result: coordinates from UTM where lat/lon lack."""
    centre = latlon_of(result.latitude, result.longitude, result.utm_east, result.utm_north,
                       result.utm_zone_number, result.utm_zone_letter)
    matches = []
    for match in result.matches:
        point = _latlon(match)
        matches.append({"rank": match.rank, "similarity": match.similarity,
                        "latitude": None if point is None else point[0],
                        "longitude": None if point is None else point[1],
                        "in_cluster": match.in_cluster,
                        "distance_to_prediction_m": match.distance_to_prediction_m})
    return {"photo": result.photo, "latitude": None if centre is None else centre[0],
            "longitude": None if centre is None else centre[1], "radius_m": result.radius_m,
            "confidence": result.confidence, "matches": matches}


def _coordinates_text(point: tuple[float, float] | None) -> str:
    return "?" if point is None else f"{point[0]:.6f}, {point[1]:.6f}"


def _photo_row(number: int, result: LocateResult) -> str:
    top = result.matches[0] if result.matches else None
    centre = (None if result.latitude is None else (result.latitude, result.longitude))
    return (f'<tr data-photo="{number}" tabindex="0"><td>{number + 1}</td>'
            f'<td class="name">{html.escape(Path(result.photo).name)}</td>'
            f"<td>{_coordinates_text(centre)}</td><td>{result.confidence:.2f}</td>"
            f"<td>{result.cluster_size} of {len(result.matches)}</td>"
            f"<td>{format_distance(top.distance_to_prediction_m if top else None)}</td></tr>")


def _section(number: int, result: LocateResult) -> str:
    rows = "".join(
        f'<tr data-rank="{m.rank}" class="{"in-cluster" if m.in_cluster else "elsewhere"}">'
        f"<td>{m.rank}</td><td>{m.similarity:.3f}</td>"
        f"<td>{format_distance(m.distance_to_prediction_m)}</td>"
        f"<td>{_coordinates_text(_latlon(m))}</td>"
        f"<td>{m.utm_east:.1f} E, {m.utm_north:.1f} N</td>"
        f"<td>{'yes' if m.in_cluster else 'no'}</td><td>{html.escape(m.path)}</td></tr>"
        for m in result.matches)
    utm_text = ("?" if result.utm_east is None else
                f"{result.utm_zone_number or ''}{result.utm_zone_letter} "
                f"{result.utm_east:.1f} E, {result.utm_north:.1f} N")
    centre = None if result.latitude is None else (result.latitude, result.longitude)
    return (
        f'<section class="photo" id="photo-{number}" data-photo="{number}">'
        f"<h2>{html.escape(Path(result.photo).name)}</h2>"
        f"<p>Predicted location: <b>{_coordinates_text(centre)}</b> (UTM {utm_text}); "
        f"confidence <b>{result.confidence:.2f}</b>; {result.cluster_size} of "
        f"{len(result.matches)} matches within {result.radius_m:g} m of each other "
        "(green on the map; red: elsewhere). Click a match to show it on the map.</p>"
        '<table class="matches"><tr><th>#</th><th>similarity</th><th>to prediction</th>'
        "<th>lat, lon</th><th>UTM</th><th>in cluster</th><th>image</th></tr>"
        f"{rows}</table></section>"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 1em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
#photos tbody tr, table.matches tr[data-rank] { cursor: pointer; }
#photos tbody tr:hover, table.matches tr[data-rank]:hover { background: #ebf4ff; }
#photos tbody tr.selected { background: #d6e6fa; }
#photos td.name { max-width: 360px; overflow: hidden; text-overflow: ellipsis;
                  white-space: nowrap; }
#map { height: 460px; max-width: 900px; border: 1px solid #999; }
.js section.photo { display: none; }
.js section.photo.selected { display: block; }
"""

# The file's own part: which photo is shown; the map itself is locationmap.js.
_PAGE_SCRIPT = """
(function () {
  const results = JSON.parse(document.getElementById("results").textContent);
  const settings = JSON.parse(document.getElementById("settings").textContent);
  const view = VprMap.create(document.getElementById("map"), {
    tileUrl: settings.tileUrl, icon: settings.icon, note: document.getElementById("map-note"),
    elsewhere: document.getElementById("elsewhere")});
  function select(number) {
    for (const node of document.querySelectorAll("[data-photo]")) {
      node.classList.toggle("selected", Number(node.dataset.photo) === number);
    }
    view.show(results[number]);
    window.vpr.selected = number;
  }
  for (const row of document.querySelectorAll("#photos tbody tr")) {
    const open = () => select(Number(row.dataset.photo));
    row.addEventListener("click", open);
    row.addEventListener("keydown", event => { if (event.key === "Enter") open(); });
  }
  for (const row of document.querySelectorAll("table.matches tr[data-rank]")) {
    row.addEventListener("click", () => {
      view.focus(Number(row.dataset.rank));
      document.getElementById("map").scrollIntoView({block: "nearest"});
    });
  }
  window.vpr = {view: view, map: view.map, results: results, select: select, selected: -1};
  if (results.length) select(0);
  document.body.dataset.state = "ready";
})();
"""


def render_map(results: LocateResult | Sequence[LocateResult], out_path: str | Path,
               title: str = "vpr locate") -> Path:
    """Writes one self-contained HTML map of the photos' predictions and matches, atomically.

    The page shows one map: a table lists the photos when there are several, and the
    selected photo's prediction (a pin), uncertainty radius (dashed circle) and matches
    (numbered dots: green in the winning cluster, red elsewhere) are drawn, the view fitting
    the cluster; each photo's matches are also a table (geodesic distances). Without
    JavaScript the tables stay readable.

    Returns:
        ``out_path``.

    Raises:
        ValueError: ``out_path`` is a folder.
    """
    if isinstance(results, LocateResult):
        results = [results]
    out_path = Path(out_path)
    if out_path.is_dir():
        raise ValueError(f"map file {out_path} is a folder; expected the name of an HTML file")
    settings = {"tileUrl": OSM_TILE_URL,
                "icon": {key: _data_url(name) for key, name in PIN_IMAGES.items()}}
    data = _json_text([_map_data(result) for result in results])
    photos = ""
    if len(results) > 1:
        photos = ('<table id="photos"><thead><tr><th>#</th><th>photo</th><th>lat, lon</th>'
                  "<th>confidence</th><th>cluster</th><th>top match to prediction</th></tr>"
                  "</thead><tbody>"
                  + "".join(_photo_row(number, result) for number, result in enumerate(results))
                  + "</tbody></table>")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f"<style>{_leaflet_css()}</style>"
        f"<style>{read_asset('map/locationmap.css').decode()}</style>"
        f"<style>{_STYLE}</style></head><body>"
        # Scripts hide the photos not selected; without scripts every table shows.
        "<script>document.body.classList.add('js')</script>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>{len(results)} photo{'s' if len(results) != 1 else ''}"
        f"{': click a row to show it' if len(results) > 1 else ''}.</p>"
        f"{photos}"
        '<div id="map"></div><div id="map-note"></div><div id="elsewhere"></div>'
        + "".join(_section(number, result) for number, result in enumerate(results))
        + f'<script type="application/json" id="results">{data}</script>'
        f'<script type="application/json" id="settings">{_json_text(settings)}'
        "</script>"
        # Leaflet's licence travels with its code (BSD-2-Clause asks for it).
        f"<!-- Leaflet 1.9.4:\n{html.escape(read_asset('leaflet/LICENSE').decode())}-->"
        f"<script>{_script_text(read_asset('leaflet/leaflet.js').decode())}</script>"
        f"<script>{_script_text(read_asset('map/locationmap.js').decode())}</script>"
        f"<script>{_PAGE_SCRIPT}</script>"
        "</body></html>\n"
    )
    write_bytes_atomic(out_path, page.encode())
    return out_path


def _label(tile: Image.Image, text: str) -> Image.Image:
    draw = ImageDraw.Draw(tile)
    box = draw.textbbox((6, 6), text)
    draw.rectangle((box[0] - 3, box[1] - 2, box[2] + 3, box[3] + 2), fill=(0, 0, 0))
    draw.text((6, 6), text, fill=(255, 255, 255))
    return tile


def render_grid(results: LocateResult | Sequence[LocateResult], out_path: str | Path,
                image_height: int = 192) -> Path:
    """Writes a JPEG with one row per photo: the photo (white frame), then its matches.

    Matches in the winning cluster are framed green, others red; each is labelled with its
    rank, similarity and distance to the prediction.

    Returns:
        ``out_path``.
    """
    if isinstance(results, LocateResult):
        results = [results]
    if not results:
        raise ValueError("no result to draw")
    frame = max(4, image_height // 32)
    rows = []
    for result in results:
        tiles = [_label(_load_tile(result.photo, image_height, frame, QUERY_COLOUR),
                        f"photo, conf {result.confidence:.2f}")]
        for match in result.matches:
            colour = CORRECT_COLOUR if match.in_cluster else WRONG_COLOUR
            tile = _load_tile(match.path, image_height, frame, colour)
            tiles.append(_label(tile, f"#{match.rank} {match.similarity:.2f} "
                                      f"{format_distance(match.distance_to_prediction_m)}"))
        rows.append(_row_image(tiles, gap=frame))
    width = max(row.width for row in rows)
    grid = Image.new("RGB", (width, sum(row.height for row in rows) + frame * (len(rows) - 1)),
                     BACKGROUND_COLOUR)
    y = 0
    for row in rows:
        grid.paste(row, (0, y))
        y += row.height + frame
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out_path, format="JPEG", quality=90)
    return out_path
