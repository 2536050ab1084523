"""Showing `locate` results: a self-contained HTML map, and a JPEG grid of the matches.

The map draws its markers in inline SVG from the coordinates alone, so it works offline and
from a file:// URL. When the page can reach the Leaflet CDN, it also shows the same points
on OpenStreetMap tiles below; nothing of the SVG depends on that.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vpr.eval.predictions import (
    BACKGROUND_COLOUR,
    CORRECT_COLOUR,
    QUERY_COLOUR,
    WRONG_COLOUR,
    _load_tile,
    _row_image,
)
from vpr.locate.geodesy import format_distance
from vpr.locate.predict import LocateResult
from vpr.utils.atomic import write_bytes_atomic

SVG_SIZE = (640, 420)
SVG_PADDING = 40
# Metres per degree of latitude, and of longitude at the equator (an equirectangular
# projection is exact to a fraction of a percent over the few km a map shows).
METRES_PER_DEGREE_LAT = 110_540.0
METRES_PER_DEGREE_LON = 111_320.0
MATCH_FILL = {True: "#1a9850", False: "#d73027"}  # in the cluster, outside it
PREDICTION_FILL = "#2b6cb0"
LEAFLET = "https://unpkg.com/leaflet@1.9.4/dist/leaflet"


def _plane_points(result: LocateResult) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Matches and prediction on a local plane in metres (x east, y north).

    Lat/lon are used when every point has them, else UTM (one zone assumed).
    """
    points = [(m.latitude, m.longitude, m.utm_east, m.utm_north) for m in result.matches]
    use_latlon = result.latitude is not None and all(
        p[0] is not None and p[1] is not None for p in points)
    if use_latlon:
        lat0 = result.latitude
        scale = math.cos(math.radians(lat0)) * METRES_PER_DEGREE_LON

        def plane(latitude: float, longitude: float) -> tuple[float, float]:
            return ((longitude - result.longitude) * scale,
                    (latitude - lat0) * METRES_PER_DEGREE_LAT)

        matches = np.array([plane(p[0], p[1]) for p in points]).reshape(-1, 2)
        return matches, np.zeros(2), "latitude/longitude"
    matches = np.array([(p[2], p[3]) for p in points], np.float64).reshape(-1, 2)
    if result.utm_east is None:
        return matches, None, "UTM"
    centre = np.array([result.utm_east, result.utm_north])
    return matches - centre, np.zeros(2), "UTM"


def _scale_bar(metres_per_pixel: float) -> tuple[float, str]:
    """A round length (1, 2 or 5 x 10^n m) about 100 px long, and its label."""
    target = 100 * metres_per_pixel
    power = 10 ** math.floor(math.log10(target))
    length = min((step * power for step in (1, 2, 5, 10)), key=lambda v: abs(v - target))
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    return length / metres_per_pixel, label


def _svg(result: LocateResult) -> str:
    width, height = SVG_SIZE
    matches, prediction, projection = _plane_points(result)
    everything = matches if prediction is None else np.vstack([matches, prediction[None]])
    if len(everything) == 0:
        return f'<svg class="map" width="{width}" height="{height}"></svg>'
    low, high = everything.min(axis=0), everything.max(axis=0)
    # At least the cluster radius around everything, so that one point is not a zoom to 0.
    span = np.maximum(high - low, 2 * result.radius_m)
    centre = (low + high) / 2
    metres_per_pixel = float(max(span[0] / (width - 2 * SVG_PADDING),
                                 span[1] / (height - 2 * SVG_PADDING)))

    def pixel(point: np.ndarray) -> tuple[float, float]:
        x = width / 2 + (point[0] - centre[0]) / metres_per_pixel
        y = height / 2 - (point[1] - centre[1]) / metres_per_pixel  # SVG y grows downwards
        return round(float(x), 1), round(float(y), 1)

    parts = [f'<svg class="map" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">',
             f'<rect width="{width}" height="{height}" fill="#f4f1ea" stroke="#999"/>']
    if prediction is not None:
        x, y = pixel(prediction)
        radius = result.radius_m / metres_per_pixel
        parts.append(f'<circle class="cluster-radius" cx="{x}" cy="{y}" r="{radius:.1f}" '
                     'fill="none" stroke="#2b6cb0" stroke-dasharray="4 3">'
                     f"<title>{result.radius_m:g} m around the prediction</title></circle>")
    # Worst match first, so that the best one is drawn on top.
    for match, point in reversed(list(zip(result.matches, matches))):
        x, y = pixel(point)
        tip = (f"#{match.rank} similarity {match.similarity:.3f}, "
               f"{_distance_text(match.distance_to_prediction_m)} from the prediction\n"
               f"{match.path}")
        parts.append(
            f'<g class="marker match" data-rank="{match.rank}">'
            f'<circle cx="{x}" cy="{y}" r="9" fill="{MATCH_FILL[match.in_cluster]}" '
            f'stroke="white" stroke-width="1.5"><title>{html.escape(tip)}</title></circle>'
            f'<text x="{x}" y="{y + 4}" text-anchor="middle" font-size="11" fill="white">'
            f'{match.rank}</text></g>')
    if prediction is not None:
        x, y = pixel(prediction)
        star = " ".join(
            f"{x + (13 if i % 2 == 0 else 5.5) * math.sin(i * math.pi / 5):.1f},"
            f"{y - (13 if i % 2 == 0 else 5.5) * math.cos(i * math.pi / 5):.1f}"
            for i in range(10))
        parts.append(f'<polygon class="marker prediction" points="{star}" '
                     f'fill="{PREDICTION_FILL}" fill-opacity="0.8" stroke="white" '
                     'stroke-width="1.5">'
                     f'<title>prediction, confidence {result.confidence:.2f}</title></polygon>')
    bar, label = _scale_bar(metres_per_pixel)
    parts.append(f'<g class="scale"><line x1="12" y1="{height - 14}" x2="{12 + bar:.1f}" '
                 f'y2="{height - 14}" stroke="black" stroke-width="3"/>'
                 f'<text x="12" y="{height - 20}" font-size="11">{label}</text></g>')
    parts.append(f'<text x="{width - 8}" y="16" font-size="11" text-anchor="end" '
                 f'fill="#555">north up; {projection}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _distance_text(metres: float | None) -> str:
    return format_distance(metres)


def _coordinates_text(latitude: float | None, longitude: float | None) -> str:
    return "?" if latitude is None else f"{latitude:.6f}, {longitude:.6f}"


def _section(number: int, result: LocateResult) -> str:
    rows = "".join(
        f"<tr><td>{m.rank}</td><td>{m.similarity:.3f}</td>"
        f"<td>{_distance_text(m.distance_to_prediction_m)}</td>"
        f"<td>{_coordinates_text(m.latitude, m.longitude)}</td>"
        f"<td>{m.utm_east:.1f} E, {m.utm_north:.1f} N</td>"
        f"<td>{'yes' if m.in_cluster else 'no'}</td><td>{html.escape(m.path)}</td></tr>"
        for m in result.matches)
    utm_text = ("?" if result.utm_east is None else
                f"{result.utm_zone_number or ''}{result.utm_zone_letter} "
                f"{result.utm_east:.1f} E, {result.utm_north:.1f} N")
    return (
        f'<section><h2>{html.escape(Path(result.photo).name)}</h2>'
        f"<p>Predicted location: <b>{_coordinates_text(result.latitude, result.longitude)}"
        f"</b> (UTM {utm_text}); confidence <b>{result.confidence:.2f}</b>; "
        f"{result.cluster_size} of {len(result.matches)} matches within "
        f"{result.radius_m:g} m of each other.</p>"
        f"{_svg(result)}"
        f'<div class="tiles" id="tiles-{number}"></div>'
        "<table><tr><th>#</th><th>similarity</th><th>to prediction</th><th>lat, lon</th>"
        f"<th>UTM</th><th>in cluster</th><th>image</th></tr>{rows}</table></section>"
    )


_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 0.5em 0 2em; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
.tiles { display: none; width: 640px; height: 420px; margin-top: 0.5em; }
"""

# Runs only if Leaflet loaded (online): adds tile maps; the SVG above never waits for it.
_TILES_SCRIPT = """
function vprTiles() {
  if (!window.L) return;
  VPR_POINTS.forEach(function (item, number) {
    if (item.prediction === null) return;
    var div = document.getElementById("tiles-" + number);
    div.style.display = "block";
    var map = L.map(div).setView(item.prediction, 17);
    L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                {maxZoom: 19, attribution: "&copy; OpenStreetMap"}).addTo(map);
    var bounds = [item.prediction];
    item.matches.forEach(function (m) {
      L.circleMarker(m.at, {radius: 7, color: m.in_cluster ? "#1a9850" : "#d73027"})
        .bindTooltip("#" + m.rank).addTo(map);
      bounds.push(m.at);
    });
    L.marker(item.prediction).bindTooltip("prediction").addTo(map);
    map.fitBounds(bounds, {padding: [30, 30], maxZoom: 18});
  });
}
"""


def render_map(results: LocateResult | Sequence[LocateResult], out_path: str | Path,
               title: str = "vpr locate") -> Path:
    """Writes an HTML page with, per photo, a map of its matches and prediction.

    Each match is one ``<g class="marker match">`` (numbered by rank, green inside the
    winning cluster, red outside) and the prediction one ``class="marker prediction"`` star.

    Returns:
        ``out_path``.
    """
    if isinstance(results, LocateResult):
        results = [results]
    points = []
    for result in results:
        with_latlon = result.latitude is not None and all(
            m.latitude is not None for m in result.matches)
        points.append({
            "prediction": [result.latitude, result.longitude] if with_latlon else None,
            "matches": [{"rank": m.rank, "at": [m.latitude, m.longitude],
                         "in_cluster": m.in_cluster} for m in result.matches]
            if with_latlon else [],
        })
    # "</" inside a <script> would end it early: escape it in the JSON.
    data = json.dumps(points).replace("</", "<\\/")
    page = (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f'<link rel="stylesheet" href="{LEAFLET}.css"></head><body>'
        f"<h1>{html.escape(title)}</h1>"
        + "".join(_section(number, result) for number, result in enumerate(results))
        + f"<script>var VPR_POINTS = {data};{_TILES_SCRIPT}</script>"
        f'<script async src="{LEAFLET}.js" onload="vprTiles()"></script>'
        "</body></html>\n"
    )
    out_path = Path(out_path)
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
                                      f"{_distance_text(match.distance_to_prediction_m)}"))
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
