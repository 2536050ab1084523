"""Screenshot of `vpr serve`'s page after a batch, for the README (docs/images/serve.png).

Serves the synthetic index of `serve_load.py` (made in --workdir if absent) on loopback,
opens the page in headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium; nothing downloaded), uploads query photos through the file input, waits for the
predictions and saves a PNG: the results table, then the first photo's map and matches.
Without --photo, the --photos queries located with the highest confidence are sent, the
most confident first. Headless here means offline: the map shows its plain background.

    python bench/screenshot_serve.py --out docs/images/serve.png
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_load import parse_size, prepare_index  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--hide-scrollbars")


def most_confident(index: Path, photos: list[Path], top_k: int, count: int) -> list[Path]:
    """The ``count`` photos that `locate` places with the highest confidence, best first."""
    from vpr.locate import locate

    results = locate(photos, index, top_k=top_k, device="cpu")
    ranked = sorted(zip(photos, results), key=lambda pair: -pair[1].confidence)
    return [photo for photo, _ in ranked[:count]]


def screenshot(url: str, photos: list[Path], out: Path, size: tuple[int, int]) -> None:
    """Uploads ``photos`` on the page at ``url`` and saves the page as a PNG in ``out``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ.setdefault("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={size[0]},{size[1]}")
    with tempfile.TemporaryDirectory(prefix="vpr-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            driver.get(url)
            state = "return document.body.dataset.state"
            WebDriverWait(driver, 20).until(lambda d: d.execute_script(state) == "ready")
            driver.find_element(By.ID, "photo").send_keys(
                "\n".join(str(photo.resolve()) for photo in photos))
            WebDriverWait(driver, 60).until(
                lambda d: d.execute_script(state) in ("done", "error"))
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return [...document.querySelectorAll('#matches img')]"
                ".every(i => i.complete && i.naturalWidth)"))
            # The map: tiles (online) or its plain background and note (offline).
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return document.body.dataset.map") in ("tiles", "offline"))
            # The whole page, however tall: a viewport of exactly its size.
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
                "width": size[0], "height": max(size[1], int(height)), "deviceScaleFactor": 1,
                "mobile": False})
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
            print(driver.find_element(By.ID, "status").text)
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/serve.png"))
    parser.add_argument("--index", type=Path, default=None,
                        help="an existing index (default: the synthetic one in --workdir)")
    parser.add_argument("--photo", type=Path, default=None, help="the photo to upload")
    parser.add_argument("--photos", type=int, default=6,
                        help="without --photo: how many queries to upload (default: 6)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "vpr-serve-bench")
    parser.add_argument("--image_size", type=parse_size, default=(256, 192), metavar="WxH")
    parser.add_argument("--ckpt", type=Path, default=None,
                        help="checkpoint for the synthetic index (default: untrained)")
    parser.add_argument("--top_k", type=int, default=5)
    parser.add_argument("--window", type=parse_size, default=(1280, 720), metavar="WxH")
    args = parser.parse_args()

    from vpr.serve import create_app, serve_in_background

    if args.index is None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        index, queries = prepare_index(args.workdir, args.image_size, args.ckpt)
    else:
        index, queries = args.index, []
    photos = [args.photo] if args.photo else most_confident(index, queries, args.top_k,
                                                            args.photos)
    print(f"Uploading {', '.join(photo.name for photo in photos)}")
    with serve_in_background(create_app(index, top_k=args.top_k, device="cpu")) as url:
        screenshot(url, photos, args.out, args.window)
    print(f"Saved {args.out}")


if __name__ == "__main__":
    main()
