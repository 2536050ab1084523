"""A headless Chromium driven by Selenium through the system chromedriver (never downloaded)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--window-size=1280,1100")


def chromium_or_driver_missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    if shutil.which(CHROMIUM) is None or shutil.which(CHROMEDRIVER) is None:
        return (f"{CHROMIUM} or {CHROMEDRIVER} not found: "
                "apt-get install -y chromium chromium-driver")
    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed: pip install selenium"
    return None


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
