"""`vpr locate --map`: one self-contained HTML file, a real map that works offline.

The browser part opens the file from disk in a headless Chromium with no network: tiles never
arrive, which is the offline case (points, radius and scale on a plain background). Skipped,
as `test_serve_browser.py`, where Chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import argparse
import os
import re

import pytest
import utm
from helpers.browser import chromium_or_driver_missing, start_chromium, wait_for

from vpr.assets import OSM_TILE_ORIGIN, OSM_TILE_URL
from vpr.cli import run_guarded
from vpr.cli.locate import add_parser
from vpr.locate.geodesy import geodesic_m
from vpr.locate.predict import LocateResult, Match
from vpr.locate.render import render_map

TURIN = (45.0703, 7.6869)
LISBON = (38.7223, -9.1393)
# The only web addresses the file may hold: the tile template (the one thing fetched) and its
# origin (the Content-Security-Policy's one exception), the attribution links
# (OpenStreetMap's, and Leaflet's own prefix) and SVG's XML namespace (a name in Leaflet's
# code, never fetched).
ALLOWED_ADDRESSES = {OSM_TILE_URL, OSM_TILE_ORIGIN, "https://www.openstreetmap.org/copyright",
                     "https://leafletjs.com", "http://www.w3.org/2000/svg"}


def _match(rank: int, point: tuple[float, float], centre: tuple[float, float],
           in_cluster: bool, similarity: float) -> Match:
    east, north, number, letter = utm.from_latlon(*point)
    return Match(rank=rank, path=f"/db/m{rank}.jpg", similarity=similarity,
                 utm_east=float(east), utm_north=float(north), utm_zone_number=number,
                 utm_zone_letter=letter, latitude=point[0], longitude=point[1],
                 distance_to_prediction_m=round(geodesic_m(*centre, *point), 2),
                 in_cluster=in_cluster)


def _result(photo: str, centre: tuple[float, float],
            far: tuple[float, float]) -> LocateResult:
    """Three matches within 10 m of ``centre`` (the winning cluster) and one at ``far``."""
    east, north, number, letter = utm.from_latlon(*centre)
    near = [(centre[0] + 4e-5, centre[1]), (centre[0], centre[1] + 5e-5),
            (centre[0] - 3e-5, centre[1] - 3e-5)]
    matches = [_match(rank + 1, point, centre, True, 0.9 - rank * 0.01)
               for rank, point in enumerate(near)]
    matches.append(_match(4, far, centre, False, 0.8))
    return LocateResult(photo=photo, latitude=centre[0], longitude=centre[1],
                        utm_east=float(east), utm_north=float(north), utm_zone_number=number,
                        utm_zone_letter=letter, confidence=0.71, cluster_size=3, radius_m=25.0,
                        matches=matches)


@pytest.fixture
def two_photos() -> list[LocateResult]:
    # A photo taken in Turin (a far match in Lisbon), and one in Lisbon (far match in Turin).
    return [_result("/photos/turin <1>.jpg", TURIN, LISBON),
            _result("/photos/lisbon.jpg", LISBON, TURIN)]


def test_the_file_names_no_address_but_the_tiles_and_attributions(two_photos, tmp_path):
    page = render_map(two_photos, tmp_path / "map.html").read_text()
    addresses = set(re.findall(r"https?://[^\s\"'<>();\\]+", page))
    assert addresses <= ALLOWED_ADDRESSES, addresses - ALLOWED_ADDRESSES
    assert OSM_TILE_URL in addresses
    # Everything is inline: no script, style sheet or image is loaded from a file either.
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", page)
    assert "<link" not in page and "url(images/" not in page
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    # Leaflet's licence travels with its code.
    assert "Leaflet 1.9.4" in page and "BSD 2-Clause License" in page
    # A "<" of a file name cannot end the inline data early.
    assert "turin \\u003c1>.jpg" in page and "turin &lt;1&gt;.jpg" in page


def test_the_file_is_written_atomically(two_photos, tmp_path, monkeypatch):
    target = tmp_path / "map.html"
    target.write_text("the old map")
    import vpr.utils.atomic

    def crash(*args, **kwargs):
        raise OSError("the machine died while renaming")

    monkeypatch.setattr(vpr.utils.atomic.os, "replace", crash)
    with pytest.raises(OSError, match="died"):
        render_map(two_photos, target)
    # The old file whole, no half-written one beside it.
    assert target.read_text() == "the old map"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]
    monkeypatch.undo()
    render_map(two_photos, target)
    assert target.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.html"]


@pytest.mark.parametrize("case", ["folder", "under a file"])
def test_an_unwritable_map_target_is_one_line_before_the_search(case, tmp_path, capsys):
    if case == "folder":
        target = tmp_path / "maps"
        target.mkdir()
    else:
        (tmp_path / "notes.txt").write_text("x")
        target = tmp_path / "notes.txt" / "map.html"
    # No index: the target is checked before the index is even read.
    parser = argparse.ArgumentParser(prog="vpr")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["locate", str(tmp_path / "photo.jpg"), "--index",
                              str(tmp_path / "none"), "--map", str(target)])
    code = run_guarded(args.func, args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vpr: error: "), err
    assert str(target if case == "folder" else target.parent) in lines[0]
    assert ("is a folder" if case == "folder" else "cannot be written") in lines[0]


@pytest.mark.skipif(chromium_or_driver_missing() is not None,
                    reason=chromium_or_driver_missing() or "")
def test_the_map_opens_offline_zoomed_on_the_cluster(two_photos, tmp_path):
    from selenium.webdriver.common.by import By

    path = render_map(two_photos, tmp_path / "map.html")
    os.environ.setdefault("SE_OFFLINE", "true")
    driver = start_chromium(tmp_path / "profile")
    try:
        driver.set_page_load_timeout(20)
        driver.get(path.as_uri())
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.state")
                 == "ready", timeout=10)
        # No network here: no tile arrives, the map says so and keeps its drawing.
        wait_for(driver, lambda d: d.execute_script("return document.body.dataset.map")
                 == "offline", timeout=12)
        assert "No map background" in driver.find_element(By.ID, "map-note").text
        view = driver.execute_script("""
            const map = vpr.map, bounds = map.getBounds(), result = vpr.results[vpr.selected];
            const inside = m => bounds.contains([m.latitude, m.longitude]);
            return {zoom: map.getZoom(), selected: vpr.selected,
                    prediction: bounds.contains([result.latitude, result.longitude]),
                    cluster: result.matches.filter(m => m.in_cluster).every(inside),
                    far: result.matches.filter(m => !m.in_cluster).map(inside),
                    widthMetres: map.distance(bounds.getSouthWest(), bounds.getSouthEast()),
                    scale: document.querySelector('.leaflet-control-scale-line').textContent,
                    radius: document.querySelectorAll('#map path.cluster-radius').length,
                    markers: document.querySelectorAll('#map .match-marker').length,
                    pin: [...document.querySelectorAll('#map img.leaflet-marker-icon')]
                           .filter(i => i.alt === 'prediction' && i.naturalWidth > 0).length,
                    shown: [...document.querySelectorAll('section.photo')]
                             .map(s => s.offsetParent !== null)};""")
        # The cluster is 10 m across in a 25 m radius: a street, not a continent.
        assert view["selected"] == 0 and view["shown"] == [True, False], view
        assert view["zoom"] >= 17 and view["widthMetres"] < 500, view
        assert view["prediction"] and view["cluster"] and view["far"] == [False], view
        assert view["radius"] == 1 and view["markers"] == 4 and view["pin"] == 1, view
        assert view["scale"].strip().endswith(" m"), view
        # The Lisbon match: its geodesic distance in km, and one click away.
        metres = geodesic_m(*TURIN, *LISBON)
        assert 1_400_000 < metres < 1_600_000
        far = driver.find_element(By.CSS_SELECTOR, '#elsewhere button[data-rank="4"]')
        assert far.text == f"#4: {metres / 1000:,.2f} km"
        far.click()
        centre = driver.execute_script("const c = vpr.map.getCenter(); return [c.lat, c.lng]")
        assert centre == pytest.approx(LISBON, abs=1e-4)
        driver.find_element(By.ID, "back-to-prediction").click()
        assert driver.execute_script("return vpr.map.getBounds().contains(arguments[0])",
                                     list(TURIN))
        # The second photo, one click in the table: its own cluster, in Lisbon.
        driver.find_element(By.CSS_SELECTOR, '#photos tr[data-photo="1"]').click()
        second = driver.execute_script("""
            const bounds = vpr.map.getBounds();
            return {zoom: vpr.map.getZoom(), lisbon: bounds.contains(arguments[0]),
                    turin: bounds.contains(arguments[1]),
                    shown: [...document.querySelectorAll('section.photo')]
                             .map(s => s.offsetParent !== null)};""", list(LISBON), list(TURIN))
        assert second == {"zoom": second["zoom"], "lisbon": True, "turin": False,
                          "shown": [False, True]} and second["zoom"] >= 17, second
        # Nothing was fetched but (failed) tiles, and no script failed.
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(name.startswith("https://tile.openstreetmap.org/") for name in fetched), \
            fetched
        severe = [entry["message"] for entry in driver.get_log("browser")
                  if entry["level"] == "SEVERE"
                  and "tile.openstreetmap.org" not in entry["message"]]
        assert severe == [], severe
    finally:
        driver.quit()
