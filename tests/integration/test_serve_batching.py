"""`vpr serve` batching: concurrent requests share forward passes, each gets its own answer."""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import httpx
import pytest
import utm
from helpers.paths import SRC

from vpr.cli.serve import add_parser
from vpr.cli.serve_batching import read_batching_options
from vpr.locate import LocationIndex, locate
from vpr.locate.predict import GeoPrior
from vpr.serve import create_app, serve_in_background
from vpr.serve.batching import Batcher

CONCURRENCY = 8


def test_batcher_groups_jobs_and_keeps_each_answer():
    seen = []

    def process(jobs):
        seen.append(list(jobs))
        return [ValueError(f"bad {job}") if job == 3 else job * 10 for job in jobs]

    batcher = Batcher(process, max_batch=4, window_s=0.2)
    futures = [batcher.submit(job) for job in range(6)]
    assert [futures[job].result(5) for job in (0, 1, 2, 4, 5)] == [0, 10, 20, 40, 50]
    with pytest.raises(ValueError, match="bad 3"):
        futures[3].result(5)
    batcher.close()
    # Queued together: at most max_batch per call, in order.
    assert seen == [[0, 1, 2, 3], [4, 5]]


def test_a_failing_batch_fails_each_of_its_jobs():
    batcher = Batcher(lambda jobs: 1 / 0, max_batch=2, window_s=0.05)
    futures = [batcher.submit(job) for job in range(2)]
    for future in futures:
        with pytest.raises(ZeroDivisionError):
            future.result(5)
    batcher.close()


@pytest.fixture(scope="module")
def batched_service(served_world):
    app = create_app(served_world["index"], top_k=3, device="cpu", max_batch=CONCURRENCY,
                     batch_window_ms=300)
    with serve_in_background(app) as url:
        yield {"url": url, "locator": app.state.locator}


def test_concurrent_requests_each_get_their_own_answer(batched_service, served_world):
    photos = sorted(served_world["database"].iterdir())[:CONCURRENCY]
    index = LocationIndex.load(served_world["index"])
    expected = locate(photos, index, top_k=3, device="cpu", batch_size=1)
    answers: dict[int, dict] = {}
    start = threading.Barrier(CONCURRENCY)

    def ask(number: int) -> None:
        with httpx.Client(base_url=batched_service["url"], timeout=60) as client:
            start.wait()
            response = client.post("/locate", files={"file": (
                f"photo{number}.png", photos[number].read_bytes(), "image/png")})
        assert response.status_code == 200, response.text
        answers[number] = response.json()[0]

    threads = [threading.Thread(target=ask, args=(number,)) for number in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(answers) == list(range(CONCURRENCY))
    # Batched: fewer forward passes than requests.
    assert max(batched_service["locator"].batcher.batch_sizes) > 1
    for number, answer in answers.items():
        alone = expected[number].to_dict()
        assert answer["photo"] == f"photo{number}.png"
        assert [match["path"] for match in answer["matches"]] == \
            [match["path"] for match in alone["matches"]]
        assert [match["similarity"] for match in answer["matches"]] == pytest.approx(
            [match["similarity"] for match in alone["matches"]], abs=1e-4)
        assert (answer["utm_east"], answer["utm_north"], answer["confidence"]) == pytest.approx(
            (alone["utm_east"], alone["utm_north"], alone["confidence"]), abs=1e-2)
        # The first match is the photo itself.
        assert Path(answer["matches"][0]["path"]).name == photos[number].name


def test_near_restricts_the_search_and_says_when_nothing_is_near(batched_service,
                                                                 served_world):
    photos = sorted(served_world["database"].iterdir())
    index = LocationIndex.load(served_world["index"])
    far = index.record(len(index) - 1)  # the last place, 1 km or more from the first
    with httpx.Client(base_url=batched_service["url"], timeout=60) as client:
        near = f"{far['latitude']},{far['longitude']}"
        response = client.post("/locate", data={"near": near, "near_radius": "50"},
                               files={"file": ("p.png", photos[0].read_bytes(), "image/png")})
        assert response.status_code == 200, response.text
        allowed = set(index.ids_near(far["latitude"], far["longitude"], 50).tolist())
        assert {match["id"] for match in response.json()[0]["matches"]} <= allowed
        assert photos[0].name not in {Path(m["path"]).name for m in response.json()[0]["matches"]}
        # The spelling: `radius` is the same field as `near_radius`.
        response = client.post("/locate", data={"near": near, "radius": "50"},
                               files={"file": ("p.png", photos[0].read_bytes(), "image/png")})
        assert response.status_code == 200, response.text
        assert {match["id"] for match in response.json()[0]["matches"]} <= allowed
        response = client.post("/locate", data={"near": near, "radius": "50",
                                                "near_radius": "60"},
                               files={"file": ("p.png", photos[0].read_bytes(), "image/png")})
        assert response.status_code == 422 and "disagree" in response.json()["detail"]
        response = client.post("/locate", data={"near": "0,0", "near_radius": "50"},
                               files={"file": ("p.png", photos[0].read_bytes(), "image/png")})
        detail = response.json()["detail"]
        assert response.status_code == 422 and "no image of index" in detail and "--" not in detail
        response = client.post("/locate", data={"near": "north"},
                               files={"file": ("p.png", photos[0].read_bytes(), "image/png")})
        detail = response.json()["detail"]
        assert response.status_code == 422 and "LAT,LON" in detail and "--" not in detail


def test_locate_with_a_prior_matches_only_near_images(served_world):
    index = LocationIndex.load(served_world["index"])
    photo = sorted(served_world["database"].iterdir())[0]
    last = index.record(len(index) - 1)
    results = locate(photo, index, top_k=20, device="cpu",
                     prior=GeoPrior(last["latitude"], last["longitude"], 50.0))
    expected = set(index.ids_near(last["latitude"], last["longitude"], 50.0).tolist())
    assert 0 < len(results[0].matches) == len(expected) < len(index)
    assert {index.paths.index(match.path) for match in results[0].matches} == expected
    east, north = utm.from_latlon(last["latitude"], last["longitude"])[:2]
    assert all(abs(match.utm_east - east) < 60 for match in results[0].matches)


def test_batching_options_are_checked():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["serve", "--index", "x", "--max_batch", "4",
                              "--batch_window_ms", "5", "--workers", "2"])
    assert read_batching_options(args) == {"max_batch": 4, "batch_window_ms": 5.0, "workers": 2}
    for bad in (["--max_batch", "0"], ["--workers", "0"], ["--batch_window_ms", "-1"]):
        with pytest.raises(ValueError, match=bad[0]):
            read_batching_options(parser.parse_args(["serve", "--index", "x", *bad]))


def test_alone_a_request_waits_at_most_the_window(served_world):
    app = create_app(served_world["index"], top_k=3, device="cpu", max_batch=4,
                     batch_window_ms=50)
    photo = sorted(served_world["database"].iterdir())[0]
    locator = app.state.locator
    started = time.monotonic()
    result = locator.locate(photo.read_bytes(), "alone.png", 3)
    assert time.monotonic() - started < 10 and result[0]["photo"] == "alone.png"
    assert locator.batcher.batch_sizes == [1]
    locator.close()


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.slow  # three processes that import torch: ~40 s on 2 cores
def test_workers_share_the_port_and_answer(served_world):
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    src = str(SRC)
    server = subprocess.Popen(
        [sys.executable, "-m", "vpr", "serve", "--index", str(served_world["index"]),
         "--port", str(port), "--device", "cpu", "--workers", "2", "--log_level", "warning"],
        env={**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
             "OMP_NUM_THREADS": "1"})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        photos = sorted(served_world["database"].iterdir())[:4]
        with httpx.Client(base_url=url, timeout=120) as client:
            for photo in photos:
                response = client.post("/locate", files={"file": (photo.name,
                                                                  photo.read_bytes())})
                assert response.status_code == 200, response.text
                assert Path(response.json()[0]["matches"][0]["path"]).name == photo.name
        # The two workers (and, maybe, multiprocessing's resource tracker).
        assert len(_children(server.pid)) >= 2
    finally:
        server.terminate()
        server.wait(60)
    assert server.returncode == 0
