"""The single web page of `vpr serve`: pick or drop a photo, see where it was taken.

Self-contained: inline CSS and JavaScript, no external resource, so it works offline. The
map is an SVG drawn by the page from the matches' coordinates (same projection and marker
classes as `vpr.locate.render`); thumbnails come from ``/thumbnail/{id}``.
"""

from __future__ import annotations

import html

# The page's Content-Security-Policy: nothing is loaded from anywhere but this service.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data:; "
                           "style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                           "connect-src 'self'; base-uri 'none'; form-action 'self'")

_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vpr serve: where was this photo taken?</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #222; background: #fafafa; }
  header { background: #2b6cb0; color: white; padding: 10px 20px; }
  header h1 { font-size: 20px; margin: 0; }
  header p { margin: 2px 0 0; font-size: 13px; opacity: 0.9; }
  main { padding: 16px 20px; max-width: 1320px; }
  #drop { display: block; border: 2px dashed #888; border-radius: 8px; padding: 18px;
          text-align: center; background: white; cursor: pointer; }
  #drop.over { border-color: #2b6cb0; background: #ebf4ff; }
  #controls { margin: 8px 0; font-size: 14px; }
  #controls input[type=number] { width: 4em; }
  #status { min-height: 1.4em; font-size: 14px; margin: 6px 0; white-space: nowrap;
            overflow: hidden; text-overflow: ellipsis; }
  #status.error { color: #b00020; font-weight: 600; }
  #result { display: none; }
  #result.shown { display: block; }
  .row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
  #photo-column { width: 320px; }
  #preview { max-width: 320px; max-height: 240px; border: 1px solid #ccc; }
  #prediction { font-size: 15px; line-height: 1.6; margin-top: 6px; }
  #prediction .confidence { font-weight: 700; }
  svg.map { background: #f4f1ea; border: 1px solid #999; max-width: 100%; height: auto; }
  svg .marker.match.highlight circle { stroke: black; stroke-width: 3; }
  #matches { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
             gap: 10px; margin-top: 12px; }
  figure.match { margin: 0; background: white; border: 3px solid #d73027; border-radius: 6px;
                 padding: 4px; font-size: 12px; }
  figure.match.in-cluster { border-color: #1a9850; }
  figure.match img { width: 100%; height: 150px; object-fit: cover; background: #ddd; }
  figure.match figcaption { overflow-wrap: anywhere; line-height: 1.4; }
</style>
</head>
<body>
<header>
  <h1>Where was this photo taken?</h1>
  <p id="about">Index of __IMAGES__ geotagged images. Photos are sent to this service only.</p>
</header>
<main>
  <label id="drop" for="photo">
    <strong>Pick a photo</strong> or drop one here
    (at most __MAX_UPLOAD_MB__ MB)<br>
    <input id="photo" name="file" type="file" accept="image/*">
  </label>
  <div id="controls">
    <label>matches: <input id="top_k" type="number" min="1" max="__MAX_TOP_K__"
           value="__TOP_K__"></label>
    &nbsp; <a href="/docs">API</a>
  </div>
  <div id="status" role="status"></div>
  <section id="result">
    <div class="row">
      <div id="photo-column">
        <img id="preview" alt="the photo">
        <div id="prediction"></div>
      </div>
      <svg id="map" class="map" xmlns="http://www.w3.org/2000/svg" width="640" height="420"
           viewBox="0 0 640 420"></svg>
    </div>
    <div id="matches"></div>
  </section>
</main>
<script>
"use strict";
const MAX_UPLOAD_BYTES = __MAX_UPLOAD_BYTES__;
const SVG_NS = "http://www.w3.org/2000/svg";
const WIDTH = 640, HEIGHT = 420, PADDING = 40;
// Metres per degree of latitude, and of longitude at the equator (as vpr.locate.render).
const M_PER_DEG_LAT = 110540, M_PER_DEG_LON = 111320;
const FILL = {true: "#1a9850", false: "#d73027"}, PREDICTION_FILL = "#2b6cb0";

const input = document.getElementById("photo");
const drop = document.getElementById("drop");
const statusLine = document.getElementById("status");

function setStatus(text, isError) {
  statusLine.textContent = text;
  statusLine.className = isError ? "error" : "";
}

function svg(name, attributes, parent, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

function fmt(value, digits) {
  return value === null || value === undefined ? "?" : Number(value).toFixed(digits);
}

function distanceText(metres) {
  if (metres === null || metres === undefined) return "? m";
  return metres >= 1000 ? (metres / 1000).toFixed(2) + " km" : metres.toFixed(0) + " m";
}

// Matches and prediction on a local plane in metres (x east, y north): from lat/lon when
// every point has them, else from UTM (one zone assumed).
function planePoints(result) {
  const matches = result.matches;
  const useLatLon = result.latitude !== null &&
    matches.every(m => m.latitude !== null && m.longitude !== null);
  if (useLatLon) {
    const scale = Math.cos(result.latitude * Math.PI / 180) * M_PER_DEG_LON;
    return {
      matches: matches.map(m => [(m.longitude - result.longitude) * scale,
                                 (m.latitude - result.latitude) * M_PER_DEG_LAT]),
      prediction: [0, 0], projection: "latitude/longitude"};
  }
  if (result.utm_east === null) {
    return {matches: matches.map(m => [m.utm_east, m.utm_north]), prediction: null,
            projection: "UTM"};
  }
  return {matches: matches.map(m => [m.utm_east - result.utm_east,
                                     m.utm_north - result.utm_north]),
          prediction: [0, 0], projection: "UTM"};
}

function scaleBar(metresPerPixel) {
  const target = 100 * metresPerPixel;
  const power = Math.pow(10, Math.floor(Math.log10(target)));
  let best = power;
  for (const step of [1, 2, 5, 10]) {
    if (Math.abs(step * power - target) < Math.abs(best - target)) best = step * power;
  }
  return [best / metresPerPixel, best >= 1000 ? (best / 1000) + " km" : best + " m"];
}

function drawMap(result) {
  const map = document.getElementById("map");
  map.replaceChildren();
  svg("rect", {width: WIDTH, height: HEIGHT, fill: "#f4f1ea", stroke: "#999"}, map);
  const plane = planePoints(result);
  const all = plane.prediction ? plane.matches.concat([plane.prediction]) : plane.matches;
  if (all.length === 0) {
    svg("text", {x: WIDTH / 2, y: HEIGHT / 2, "text-anchor": "middle"}, map, "no match");
    return;
  }
  const low = [Math.min(...all.map(p => p[0])), Math.min(...all.map(p => p[1]))];
  const high = [Math.max(...all.map(p => p[0])), Math.max(...all.map(p => p[1]))];
  if (plane.prediction) {  // the whole cluster circle stays on the map
    for (const axis of [0, 1]) {
      low[axis] = Math.min(low[axis], plane.prediction[axis] - result.radius_m);
      high[axis] = Math.max(high[axis], plane.prediction[axis] + result.radius_m);
    }
  }
  // At least the cluster radius around everything, so that one point is not a zoom to 0.
  const span = [Math.max(high[0] - low[0], 2 * result.radius_m),
                Math.max(high[1] - low[1], 2 * result.radius_m)];
  const centre = [(low[0] + high[0]) / 2, (low[1] + high[1]) / 2];
  const metresPerPixel = Math.max(span[0] / (WIDTH - 2 * PADDING),
                                  span[1] / (HEIGHT - 2 * PADDING));
  const pixel = p => [WIDTH / 2 + (p[0] - centre[0]) / metresPerPixel,
                      HEIGHT / 2 - (p[1] - centre[1]) / metresPerPixel];  // y grows down
  if (plane.prediction) {
    const [x, y] = pixel(plane.prediction);
    const circle = svg("circle", {"class": "cluster-radius", cx: x, cy: y,
      r: result.radius_m / metresPerPixel, fill: "none", stroke: PREDICTION_FILL,
      "stroke-dasharray": "4 3"}, map);
    svg("title", {}, circle, result.radius_m + " m around the prediction");
  }
  // Matches at the same spot (e.g. two headings from one point) are fanned out around it,
  // so that every marker stays visible.
  const spots = plane.matches.map(pixel);
  for (let i = 0; i < spots.length; i++) {
    const twins = spots.slice(0, i).filter(
      p => Math.hypot(p[0] - spots[i][0], p[1] - spots[i][1]) < 1).length;
    if (twins > 0) {
      const angle = twins * Math.PI / 3;
      spots[i] = [spots[i][0] + 14 * Math.cos(angle), spots[i][1] - 14 * Math.sin(angle)];
    }
  }
  // Worst match first, so that the best one is drawn on top.
  for (let i = result.matches.length - 1; i >= 0; i--) {
    const match = result.matches[i];
    const [x, y] = spots[i];
    const group = svg("g", {"class": "marker match", "data-rank": match.rank}, map);
    const dot = svg("circle", {cx: x, cy: y, r: 9, fill: FILL[match.in_cluster],
                               stroke: "white", "stroke-width": 1.5}, group);
    svg("title", {}, dot, "#" + match.rank + " similarity " + fmt(match.similarity, 3) +
        ", " + distanceText(match.distance_to_prediction_m) + " from the prediction");
    svg("text", {x: x, y: y + 4, "text-anchor": "middle", "font-size": 11, fill: "white"},
        group, String(match.rank));
  }
  if (plane.prediction) {
    const [x, y] = pixel(plane.prediction);
    const points = [];
    for (let i = 0; i < 10; i++) {
      const radius = i % 2 === 0 ? 13 : 5.5;
      points.push((x + radius * Math.sin(i * Math.PI / 5)).toFixed(1) + "," +
                  (y - radius * Math.cos(i * Math.PI / 5)).toFixed(1));
    }
    const star = svg("polygon", {"class": "marker prediction", points: points.join(" "),
      fill: PREDICTION_FILL, "fill-opacity": 0.8, stroke: "white", "stroke-width": 1.5}, map);
    svg("title", {}, star, "prediction, confidence " + fmt(result.confidence, 2));
  }
  const [bar, label] = scaleBar(metresPerPixel);
  const scale = svg("g", {"class": "scale"}, map);
  svg("line", {x1: 12, y1: HEIGHT - 14, x2: 12 + bar, y2: HEIGHT - 14, stroke: "black",
               "stroke-width": 3}, scale);
  svg("text", {x: 12, y: HEIGHT - 20, "font-size": 11}, scale, label);
  svg("text", {x: WIDTH - 8, y: 16, "font-size": 11, "text-anchor": "end", fill: "#555"},
      map, "north up; " + plane.projection);
  const legend = svg("g", {"class": "legend", "font-size": 11}, map);
  [[FILL[true], "match in the winning cluster"], [FILL[false], "match elsewhere"],
   [PREDICTION_FILL, "prediction (star)"]].forEach(([colour, text], row) => {
    svg("circle", {cx: 14, cy: 14 + 15 * row, r: 5, fill: colour}, legend);
    svg("text", {x: 24, y: 18 + 15 * row}, legend, text);
  });
}

function showPrediction(result) {
  const box = document.getElementById("prediction");
  box.replaceChildren();
  const line = text => { const div = document.createElement("div"); div.textContent = text;
                         box.appendChild(div); return div; };
  if (result.utm_east === null) { line("No match found."); return; }
  line("Location: " + fmt(result.latitude, 6) + ", " + fmt(result.longitude, 6));
  line("UTM " + (result.utm_zone_number || "") + result.utm_zone_letter + " " +
       fmt(result.utm_east, 1) + " E " + fmt(result.utm_north, 1) + " N");
  line("Confidence: " + fmt(result.confidence, 2)).className = "confidence";
  line(result.cluster_size + " of " + result.matches.length + " matches within " +
       result.radius_m + " m");
  if (result.latitude !== null) {
    // A link only: nothing is fetched from outside unless the user follows it.
    const link = document.createElement("a");
    link.href = "https://www.openstreetmap.org/?mlat=" + result.latitude + "&mlon=" +
      result.longitude + "#map=18/" + result.latitude + "/" + result.longitude;
    link.textContent = "open in OpenStreetMap";
    link.target = "_blank";
    link.rel = "noopener noreferrer";
    box.appendChild(link);
  }
}

function showMatches(result) {
  const grid = document.getElementById("matches");
  grid.replaceChildren();
  for (const match of result.matches) {
    const figure = document.createElement("figure");
    figure.className = "match" + (match.in_cluster ? " in-cluster" : "");
    figure.dataset.rank = match.rank;
    const image = document.createElement("img");
    image.alt = "match " + match.rank;
    image.loading = "lazy";
    if (match.id !== null && match.id !== undefined) image.src = "/thumbnail/" + match.id;
    const caption = document.createElement("figcaption");
    for (const text of ["#" + match.rank + ", similarity " + fmt(match.similarity, 3),
                        distanceText(match.distance_to_prediction_m) + " from the prediction",
                        fmt(match.latitude, 5) + ", " + fmt(match.longitude, 5)]) {
      const line = document.createElement("div");
      line.textContent = text;
      caption.appendChild(line);
    }
    figure.append(image, caption);
    // Hovering a thumbnail outlines its marker on the map.
    figure.addEventListener("mouseenter", () => highlight(match.rank, true));
    figure.addEventListener("mouseleave", () => highlight(match.rank, false));
    grid.appendChild(figure);
  }
}

function highlight(rank, on) {
  const marker = document.querySelector('#map .marker.match[data-rank="' + rank + '"]');
  if (marker) marker.classList.toggle("highlight", on);
}

async function send(file) {
  if (!file) return;
  document.body.dataset.state = "busy";
  if (file.size > MAX_UPLOAD_BYTES) {
    setStatus(file.name + " is larger than the limit of __MAX_UPLOAD_MB__ MB", true);
    document.body.dataset.state = "error";
    return;
  }
  setStatus("Locating " + file.name + "...", false);
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("top_k", document.getElementById("top_k").value);
  let response, payload;
  try {
    response = await fetch("/locate", {method: "POST", body: form});
    payload = await response.json();
  } catch (error) {
    setStatus("The service did not answer: " + error, true);
    document.body.dataset.state = "error";
    return;
  }
  if (!response.ok) {
    const detail = typeof payload.detail === "string" ? payload.detail
      : JSON.stringify(payload.detail);
    setStatus("Refused (" + response.status + "): " + detail, true);
    document.body.dataset.state = "error";
    return;
  }
  const result = payload[0];
  const preview = document.getElementById("preview");
  if (preview.src.startsWith("blob:")) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  showPrediction(result);
  drawMap(result);
  showMatches(result);
  document.getElementById("result").className = "shown";
  setStatus(file.name + ": located with " + result.matches.length + " matches.", false);
  document.body.dataset.state = "done";
}

input.addEventListener("change", () => send(input.files[0]));
drop.addEventListener("dragover", event => { event.preventDefault();
                                             drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", event => {
  event.preventDefault();
  drop.classList.remove("over");
  send(event.dataTransfer.files[0]);
});
document.body.dataset.state = "ready";
</script>
</body>
</html>
"""


def render_page(images: int, top_k: int, max_top_k: int, max_upload_bytes: int) -> str:
    """The page, with the service's settings filled in.

    Args:
        images: how many images the index holds (shown in the header).
        top_k: the default number of matches.
        max_top_k: the largest number of matches the service accepts.
        max_upload_bytes: the upload size limit (also checked by the page before sending).
    """
    values = {
        "__IMAGES__": f"{images:,}",
        "__TOP_K__": str(int(top_k)),
        "__MAX_TOP_K__": str(int(max_top_k)),
        "__MAX_UPLOAD_BYTES__": str(int(max_upload_bytes)),
        "__MAX_UPLOAD_MB__": f"{max_upload_bytes / 2**20:g}",
    }
    page = _PAGE
    for placeholder, value in values.items():
        page = page.replace(placeholder, html.escape(value))
    return page
