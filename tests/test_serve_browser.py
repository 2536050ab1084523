"""`vpr serve`'s page in a real headless Chromium: upload a photo, see prediction and map.

Needs Debian's ``chromium`` and ``chromium-driver`` packages and pip's ``selenium``; skipped
when any is missing. Nothing is downloaded: the system chromedriver and browser are named
explicitly, so Selenium Manager is never asked to fetch one.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from vpr.serve import create_app, serve_in_background

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=1280,1100")


def _chromium_or_driver_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        return (f"{CHROMIUM} or {CHROMEDRIVER} not found: "
                "apt-get install -y chromium chromium-driver")
    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed: pip install selenium"
    return None


# Checked before any fixture is built, so that a machine without a browser skips at once.
pytestmark = pytest.mark.skipif(_chromium_or_driver_missing() is not None,
                                reason=_chromium_or_driver_missing() or "")


def start_chromium(profile: Path):
    """A headless Chromium driven by Selenium through the system chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for(driver, condition, timeout: float = 20.0):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def page_state(driver) -> str | None:
    return driver.execute_script("return document.body.dataset.state")


def test_page_locates_a_photo_and_draws_the_map(served_world, tmp_path):
    from selenium.webdriver.common.by import By

    driver = start_chromium(tmp_path / "profile")
    app = create_app(served_world["index"], top_k=3, device="cpu")
    try:
        with serve_in_background(app) as url:
            driver.get(url)
            wait_for(driver, lambda d: page_state(d) == "ready")
            photo = sorted(served_world["database"].iterdir())[7]
            driver.find_element(By.ID, "photo").send_keys(str(photo))
            wait_for(driver, lambda d: page_state(d) in ("done", "error"))
            status = driver.find_element(By.ID, "status").text
            assert page_state(driver) == "done", status
            # One marker per match, plus the prediction.
            assert len(driver.find_elements(By.CSS_SELECTOR, "#map .marker.match")) == 3
            assert len(driver.find_elements(By.CSS_SELECTOR, "#map .marker.prediction")) == 1
            prediction = driver.find_element(By.ID, "prediction").text
            assert "Confidence: 1.00" in prediction and "UTM 32T" in prediction
            # Every thumbnail arrives from /thumbnail/{id}.
            wait_for(driver, lambda d: d.execute_script(
                "const images = [...document.querySelectorAll('#matches img')];"
                "return images.length === 3 && images.every(i => i.complete && i.naturalWidth);"))
            # A file that is not an image: the page says why instead of failing silently.
            text_file = tmp_path / "notes.txt"
            text_file.write_text("not a photo")
            driver.find_element(By.ID, "photo").send_keys(str(text_file))
            wait_for(driver, lambda d: page_state(d) == "error")
            assert "415" in driver.find_element(By.ID, "status").text
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
            assert len(driver.find_elements(By.CSS_SELECTOR, "#map .marker.match")) == 3
            # No script error nor blocked resource (the page loads nothing from elsewhere).
            severe = [entry["message"] for entry in driver.get_log("browser")
                      if entry["level"] == "SEVERE" and "/locate" not in entry["message"]]
            assert severe == []
    finally:
        driver.quit()
