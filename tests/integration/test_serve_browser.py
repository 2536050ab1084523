"""`vpr serve`'s page in a real headless Chromium: photos in, map, table and downloads out.

The test browser has no network: map tiles never arrive, which is the offline case the page
must handle (points, radius and scale on a plain background).

Needs Debian's ``chromium`` and ``chromium-driver`` packages and pip's ``selenium``; skipped
when any is missing. Nothing is downloaded: the system chromedriver and browser are named
explicitly, so Selenium Manager is never asked to fetch one.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from helpers.browser import chromium_or_driver_missing, start_chromium, wait_for

from vpr.serve import create_app, serve_in_background

# Checked before any fixture is built, so that a machine without a browser skips at once.
pytestmark = pytest.mark.skipif(chromium_or_driver_missing() is not None,
                                reason=chromium_or_driver_missing() or "")


def page_state(driver) -> str | None:
    return driver.execute_script("return document.body.dataset.state")


@pytest.fixture(scope="module")
def browser(two_city_world, tmp_path_factory):
    """One Chromium and one service over the two-city index, for the module's tests."""
    driver = start_chromium(tmp_path_factory.mktemp("profile"))
    # At most 2 photos a request: the page must split a batch of 5 in 3 requests.
    app = create_app(two_city_world["index"], top_k=4, device="cpu", max_batch_files=2)
    try:
        with serve_in_background(app) as url:
            driver.get(url)
            wait_for(driver, lambda d: page_state(d) == "ready")
            yield {"driver": driver, "url": url}
    finally:
        driver.quit()


def place_photos(world, place: int) -> list[Path]:
    return sorted(p for p in world["database"].iterdir() if f"place{place}_" in p.name)


def upload(driver, paths: list[Path]) -> str:
    from selenium.webdriver.common.by import By

    driver.execute_script("document.body.dataset.state = 'sending'")
    driver.find_element(By.ID, "photo").send_keys("\n".join(str(p) for p in paths))
    wait_for(driver, lambda d: page_state(d) in ("done", "error"), timeout=60)
    return driver.find_element(By.ID, "status").text


def severe_logs(driver) -> list[str]:
    """Script errors and blocked resources, but not the tiles the offline browser misses."""
    return [entry["message"] for entry in driver.get_log("browser")
            if entry["level"] == "SEVERE" and "tile.openstreetmap.org" not in entry["message"]
            and "/locate" not in entry["message"]]


def test_map_zooms_on_the_cluster_offline_with_far_matches_in_km(browser, two_city_world,
                                                                  tmp_path):
    from selenium.webdriver.common.by import By

    driver = browser["driver"]
    photo = place_photos(two_city_world, 0)[0]
    status = upload(driver, [photo])
    assert page_state(driver) == "done" and status.endswith("located with 4 matches."), status
    # No network here: the map falls back to a plain background and says so.
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.map")
             == "offline", timeout=15)
    assert "No map background" in driver.find_element(By.ID, "map-note").text
    # Points, radius and scale are drawn all the same.
    view = driver.execute_script("""
        const map = vpr.state.map, bounds = map.getBounds();
        const rows = vpr.state.rows[0].answer, matches = rows.matches;
        const inside = m => bounds.contains([m.latitude, m.longitude]);
        return {zoom: map.getZoom(), prediction: bounds.contains([rows.latitude, rows.longitude]),
                cluster: matches.filter(m => m.in_cluster).every(inside),
                far: matches.filter(m => !m.in_cluster).map(inside),
                widthMetres: map.distance(bounds.getSouthWest(), bounds.getSouthEast()),
                scale: document.querySelector('.leaflet-control-scale-line').textContent,
                radius: document.querySelectorAll('#map path.cluster-radius').length,
                markers: document.querySelectorAll('#map .match-marker').length,
                pin: [...document.querySelectorAll('#map img.leaflet-marker-icon')]
                       .filter(i => i.alt === 'prediction' && i.naturalWidth > 0).length};""")
    # The cluster is 10 m across in a 25 m radius: a street-level view, not a continent.
    assert view["zoom"] >= 17 and view["widthMetres"] < 500, view
    assert view["prediction"] and view["cluster"] and view["far"] == [False], view
    assert view["radius"] == 1 and view["markers"] == 4 and view["pin"] == 1, view
    assert view["scale"].strip().endswith(" m"), view
    # The Lisbon match: its geodesic distance in km, one click away.
    far = driver.find_element(By.CSS_SELECTOR, '#elsewhere button[data-rank="4"]')
    answer = driver.execute_script("return vpr.state.rows[0].answer")
    metres = answer["matches"][3]["distance_to_prediction_m"]
    assert 1_400_000 < metres < 1_600_000
    assert far.text == f"#4: {metres / 1000:,.2f} km"
    card = driver.find_element(By.CSS_SELECTOR, '#matches figure[data-rank="4"]').text
    assert f"{metres / 1000:,.2f} km from the prediction" in card
    far.click()
    centre = driver.execute_script("const c = vpr.state.map.getCenter(); return [c.lat, c.lng]")
    assert centre == pytest.approx([answer["matches"][3]["latitude"],
                                    answer["matches"][3]["longitude"]], abs=1e-4)
    driver.find_element(By.ID, "back-to-prediction").click()
    assert driver.execute_script("return vpr.state.map.getZoom()") == view["zoom"]
    # Evidence: the photo beside each match; re-ranking's keypoint pairs drawn when present.
    wait_for(driver, lambda d: d.execute_script(
        "const images = [...document.querySelectorAll('#matches img')];"
        "return images.length === 8 && images.every(i => i.complete && i.naturalWidth);"))
    driver.execute_script(
        "vpr.state.rows[0].answer.matches[0].keypoint_pairs = [[0.1, 0.2, 0.8, 0.9],"
        " [0.5, 0.5, 0.5, 0.5], [0.9, 0.1, 0.1, 0.9]]; vpr.showDetail(0);")
    wait_for(driver, lambda d: d.execute_script(
        "return document.querySelector('#matches figure[data-rank=\"1\"] canvas')"
        ".dataset.lines") == "3")
    driver.find_element(By.CSS_SELECTOR, '#matches figure[data-rank="1"]').click()
    wait_for(driver, lambda d: d.execute_script(
        "const i = document.getElementById('evidence-match');"
        "return document.getElementById('evidence').open && i.complete && i.naturalWidth > 0"
        " && document.getElementById('evidence-lines').dataset.lines === '3'"))
    assert "match #1" in driver.find_element(By.ID, "evidence-caption").text
    driver.find_element(By.ID, "evidence-close").click()
    # A file that is not an image: the page says why instead of failing silently.
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a photo")
    assert "Refused (415)" in upload(driver, [text_file])
    assert page_state(driver) == "error"
    # Dropping a photo on the page works too (a drop event carrying a JPEG file).
    driver.execute_script(
        "document.body.dataset.state = 'dropping';"
        "fetch('/thumbnail/5').then(r => r.blob()).then(blob => {"
        "  const transfer = new DataTransfer();"
        "  transfer.items.add(new File([blob], 'dropped.jpg', {type: 'image/jpeg'}));"
        "  document.getElementById('drop').dispatchEvent("
        "    new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));"
        "});")
    wait_for(driver, lambda d: page_state(d) in ("done", "error"))
    assert "dropped.jpg: located" in driver.find_element(By.ID, "status").text
    assert severe_logs(driver) == []


def test_five_photos_give_five_rows_and_a_csv_equal_to_the_api(browser, two_city_world):
    from selenium.webdriver.common.by import By

    driver = browser["driver"]
    paths = [place_photos(two_city_world, place)[shot]
             for place, shot in ((0, 1), (1, 0), (2, 2), (3, 1), (1, 2))]
    status = upload(driver, paths)
    assert page_state(driver) == "done" and "5 photos: 5 located" in status, status
    rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(rows) == 5
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in rows] == [
        p.name for p in paths]
    # The CSV the page offers, read through its download link.
    text = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('download-csv').href).then(r => r.text()).then(done)"
        ".catch(e => done('failed: ' + e));")
    table = list(csv.DictReader(io.StringIO(text)))
    geojson = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(document.getElementById('download-geojson').href).then(r => r.json())"
        ".then(done).catch(e => done('failed: ' + e));")
    with httpx.Client(base_url=browser["url"], timeout=60) as client:
        answers = [client.post("/locate", data={"top_k": "4"}, files=[
            ("file", (p.name, p.read_bytes(), "image/png"))]).json()[0] for p in paths]
    assert len(table) == 5 and len(geojson["features"]) == 5
    for line, feature, answer in zip(table, geojson["features"], answers):
        top = answer["matches"][0]
        expected = {"photo": answer["photo"], "latitude": answer["latitude"],
                    "longitude": answer["longitude"], "confidence": answer["confidence"],
                    "cluster_size": answer["cluster_size"], "top_match": top["path"],
                    "top_match_similarity": top["similarity"],
                    "top_match_latitude": top["latitude"],
                    "top_match_longitude": top["longitude"],
                    "distance_to_top_match_m": top["distance_to_prediction_m"],
                    "error_status": None, "error": None}
        assert list(line) == list(expected)
        for column, value in expected.items():
            if value is None:
                assert line[column] == "", column
            elif isinstance(value, str):
                assert line[column] == value, column
            else:
                assert float(line[column]) == pytest.approx(value, abs=1e-12), column
        assert feature["properties"] == expected
        assert feature["geometry"]["coordinates"] == [answer["longitude"], answer["latitude"]]
    # A photo name a spreadsheet would run as a formula stays text in the CSV (only then).
    formula = driver.execute_script(
        "vpr.state.rows[0].answer.photo = '=HYPERLINK(\"x\")'; return vpr.csvText();")
    assert formula.split("\r\n")[1].startswith('"\'=HYPERLINK(""x"")",')
    # A row opens that photo's detail.
    rows[2].click()
    assert paths[2].name in driver.find_element(By.ID, "prediction").text
    # Several files dropped at once (and a non-image among them, skipped): one row each.
    driver.execute_script(
        "document.body.dataset.state = 'dropping';"
        "Promise.all([fetch('/thumbnail/1'), fetch('/thumbnail/7')].map(r => r.then("
        "  response => response.blob()))).then(blobs => {"
        "  const transfer = new DataTransfer();"
        "  blobs.forEach((blob, n) => transfer.items.add("
        "    new File([blob], 'drop' + n + '.jpg', {type: 'image/jpeg'})));"
        "  transfer.items.add(new File(['notes'], 'notes.txt', {type: 'text/plain'}));"
        "  document.getElementById('drop').dispatchEvent("
        "    new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));"
        "});")
    wait_for(driver, lambda d: page_state(d) in ("done", "error"))
    status = driver.find_element(By.ID, "status").text
    assert status.startswith("2 photos: 2 located, 0 refused, 1 other file skipped"), status
    assert len(driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 2
