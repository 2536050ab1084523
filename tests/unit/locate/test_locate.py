"""Geolocating photos: the location vote, calibration, index build/add/locate, map and CLI."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import utm
from helpers.cli import run_cli
from helpers.places import OFFSETS, PLACES, ZONE, save_tiny_checkpoint, write_place
from PIL import Image

from vpr.locate import (
    LocateResult,
    LocationIndex,
    LocationIndexError,
    calibration_table,
    format_calibration_table,
    locate,
    predict_location,
)
from vpr.locate.calibration import expected_calibration_error, prediction_errors
from vpr.locate.predict import MARGIN_SCALE, TEMPERATURE
from vpr.locate.render import render_grid, render_map


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("world")
    for place in range(3):
        write_place(root / "database", place)
    write_place(root / "more", 3)
    return {"root": root, "database": root / "database", "more": root / "more",
            "ckpt": save_tiny_checkpoint(root / "model.ckpt")}


@pytest.fixture(scope="module")
def built(world) -> LocationIndex:
    """Index of places 0-2, then place 3 added."""
    index = LocationIndex.build(world["root"] / "index", world["ckpt"], world["database"],
                                device="cpu")
    assert len(index) == 9
    assert index.add(world["more"], device="cpu") == 3
    return index


# ---- the vote


def test_agreeing_matches_outvote_a_barely_better_lone_match():
    utm_points = np.array([[0.0, 0.0], [500.0, 0.0], [510.0, 0.0], [505.0, 10.0]])
    similarities = np.array([0.92, 0.91, 0.91, 0.90])
    prediction = predict_location(utm_points, similarities, radius_m=25.0)
    assert prediction.members.tolist() == [False, True, True, True]
    weights = np.exp((similarities - 0.92) / TEMPERATURE)  # 1, e^-0.5, e^-0.5, e^-1
    centre = weights[1:] @ utm_points[1:] / weights[1:].sum()
    assert (prediction.utm_east, prediction.utm_north) == pytest.approx(tuple(centre))
    share = weights[1:].sum() / weights.sum()
    margin = max(0.0, (0.91 - 0.92) / MARGIN_SCALE)  # the lone match is more similar: 0
    assert prediction.confidence == pytest.approx(share * (1 + margin) / 2)


def test_a_clearly_better_lone_match_wins():
    utm_points = np.array([[0.0, 0.0], [500.0, 0.0], [510.0, 0.0], [505.0, 10.0]])
    prediction = predict_location(utm_points, np.array([0.95, 0.9, 0.9, 0.6]), radius_m=25.0)
    # weights 1 against 2 e^-2.5 (0.16) + e^-17.5: the lone match is its own cluster.
    assert prediction.members.tolist() == [True, False, False, False]
    assert (prediction.utm_east, prediction.utm_north) == (0.0, 0.0)


def test_confidence_is_one_when_all_agree_and_falls_with_disagreement():
    together = predict_location(np.array([[0.0, 0.0], [5.0, 5.0]]), np.array([0.9, 0.8]))
    assert together.confidence == 1.0 and together.members.all()
    apart = predict_location(np.array([[0.0, 0.0], [900.0, 0.0]]), np.array([0.9, 0.85]))
    # Top-1 wins; share 1 / (1 + e^-2.5), margin (0.9-0.85)/0.1 = 0.5.
    assert apart.members.tolist() == [True, False]
    assert apart.confidence == pytest.approx(1 / (1 + np.exp(-2.5)) * 1.5 / 2)
    assert (apart.utm_east, apart.utm_north) == (0.0, 0.0)


def test_matches_in_other_zones_never_cluster():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    similarities = np.array([0.9, 0.9, 0.88])
    assert predict_location(points, similarities, 25.0).members.all()
    prediction = predict_location(points, similarities, 25.0,
                                  zones=[(32, "T"), (33, "T"), (32, "T")])
    # Zone 32: 1 + e^-1 outweighs zone 33's 1.
    assert prediction.members.tolist() == [True, False, True]


# ---- calibration


def test_calibration_table_by_hand():
    confidences = [0.1, 0.15, 0.5, 0.9, 1.0, 0.95]
    errors = [5.0, 300.0, 10.0, 3.0, np.inf, 20.0]
    rows = calibration_table(confidences, errors, within_m=25.0, bins=(0.0, 0.5, 1.0))
    assert [row["count"] for row in rows] == [2, 4]
    assert rows[0]["accuracy"] == 50.0 and rows[0]["mean_confidence"] == pytest.approx(0.125)
    # 0.5 falls in the upper bin, 1.0 too (the last edge is included); inf is a miss.
    assert rows[1]["accuracy"] == 75.0 and rows[1]["mean_confidence"] == pytest.approx(0.8375)
    assert expected_calibration_error(rows) == pytest.approx(
        (2 * abs(50 - 12.5) + 4 * abs(75 - 83.75)) / 6)
    text = format_calibration_table(rows)
    assert "75.0%" in text and "expected calibration error" in text


def test_prediction_errors_by_hand():
    located = LocateResult("a.jpg", None, None, 3.0, 4.0, None, "", 0.9, 1, 25.0, [])
    missing = LocateResult("b.jpg", None, None, None, None, None, "", 0.0, 0, 25.0, [])
    errors = prediction_errors([located, missing], np.zeros((2, 2)))
    assert errors[0] == 5.0 and np.isinf(errors[1])


# ---- index, locate


def test_round_trip_locates_a_database_image_at_its_place(built, world):
    photo = sorted((world["more"]).iterdir())[0]
    results = locate(photo, built, top_k=3, device="cpu")
    assert len(results) == 1
    result = results[0]
    assert result.matches[0].path == str(photo.resolve())
    assert result.matches[0].similarity == pytest.approx(1.0, abs=1e-4)
    # The 3 images of place 3 are the 3 matches: the mean of their positions.
    east, north = PLACES[3]
    assert result.cluster_size == 3 and result.confidence == 1.0
    assert result.utm_east == pytest.approx(east + 2.0, abs=0.5)
    assert result.utm_north == pytest.approx(north + 8 / 3, abs=0.5)
    latitude, longitude = utm.to_latlon(result.utm_east, result.utm_north, *ZONE)
    assert (result.latitude, result.longitude) == pytest.approx((latitude, longitude))
    assert (result.utm_zone_number, result.utm_zone_letter) == ZONE
    assert all(match.distance_to_prediction_m < 10 for match in result.matches)
    assert json.loads(json.dumps(result.to_dict()))["matches"][0]["rank"] == 1


def test_index_folder_contents_and_reload(built, world):
    folder = built.path
    # One version folder named by CURRENT (build made v-1, add v-2 and removed v-1), and
    # the store that both used: the add appended to it.
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "CURRENT", "store-1", "v-2"]
    assert (folder / "CURRENT").read_text() == "v-2\n"
    assert sorted(p.name for p in (folder / "v-2").iterdir()) == ["version.json"]
    version = json.loads((folder / "v-2" / "version.json").read_text())
    assert (version["rows"], version["dim"], version["store"]) == (12, 32, "store-1")
    assert (folder / "store-1" / "descriptors.f32").stat().st_size == 12 * 32 * 4
    connection = sqlite3.connect(folder / "store-1" / "images.sqlite")
    info = {key: json.loads(value) for key, value in connection.execute(
        "SELECT key, value FROM info")}
    latitudes = connection.execute("SELECT latitude FROM images ORDER BY id").fetchall()
    connection.close()
    assert info["model"]["checkpoint"] == str(world["ckpt"].resolve())
    assert len(info["model"]["sha256"]) == 64
    assert info["model"]["hparams"]["agg_arch"] == "ConvAP"
    assert info["model"]["image_size"] == [32, 32]
    assert len(latitudes) == 12 and latitudes[0][0] is not None
    reloaded = LocationIndex.load(folder)
    assert len(reloaded) == 12 and reloaded.descriptors.shape == (12, 32)
    # The added images come last, with their coordinates.
    east, north = PLACES[3]
    assert sorted(map(tuple, reloaded.utm[-3:])) == sorted((east + dx, north + dy)
                                                           for dx, dy in OFFSETS)
    # Nothing left behind by the atomic writes.
    assert [p.name for p in folder.parent.iterdir() if p.name.startswith(".")] == []


def test_add_skips_known_images_and_refuses_another_checkpoint(built, world, tmp_path):
    assert built.add(world["more"], device="cpu") == 0
    other = save_tiny_checkpoint(tmp_path / "other.ckpt", seed=1)
    new = write_place(tmp_path / "new", 0)
    with pytest.raises(LocationIndexError, match="not the checkpoint"):
        built.add(new, ckpt_path=other, device="cpu")
    assert len(LocationIndex.load(built.path)) == 12


def test_build_never_overwrites_unless_asked(built, world):
    with pytest.raises(LocationIndexError, match="already exists"):
        LocationIndex.build(built.path, world["ckpt"], world["database"])


def test_load_rejects_a_folder_that_is_not_an_index(tmp_path):
    with pytest.raises(LocationIndexError, match="not a location index"):
        LocationIndex.load(tmp_path)


# ---- rendering


def test_map_has_one_marker_per_match_and_works_offline(built, world, tmp_path):
    photo = sorted(world["database"].iterdir())[4]
    result = locate(photo, built, top_k=5, device="cpu")[0]
    page = render_map(result, tmp_path / "map.html").read_text()
    # One table row per match (readable without scripts), and the 5 in the map's data.
    assert len(re.findall(r'<tr data-rank="\d"', page)) == 5
    data = json.loads(re.search(r'<script type="application/json" id="results">(.*?)</script>',
                                page).group(1))
    assert [m["rank"] for m in data[0]["matches"]] == [1, 2, 3, 4, 5]
    # Leaflet is inlined, not fetched (the map in a browser: tests/integration/test_locate_map.py).
    assert "unpkg" not in page and "<script src" not in page
    grid = render_grid([result, result], tmp_path / "grid.jpg")
    with Image.open(grid) as image:
        assert image.format == "JPEG" and image.height > 2 * 192


def test_map_without_coordinates_still_draws(tmp_path):
    result = LocateResult("x.jpg", None, None, 10.0, 20.0, None, "", 0.5, 1, 25.0, [])
    page = render_map([result], tmp_path / "m.html").read_text()
    assert 'id="photo-0"' in page and "Predicted location: <b>?</b>" in page


# ---- command line


def test_cli_build_and_locate_json(world, tmp_path, capsys):
    out = tmp_path / "cli_index"
    assert run_cli("index", ["index", "build", "--ckpt_path", str(world["ckpt"]),
                             "--database", str(world["database"]), "--out", str(out),
                             "--index_type", "hnsw", "--accelerator", "cpu",
                             "--no-progress_bar"]) == 0
    assert LocationIndex.load(out).meta["index"]["type"] == "hnsw"
    capsys.readouterr()
    photos = sorted(world["database"].iterdir())[:2]
    assert run_cli("locate", ["locate", *map(str, photos), "--index", str(out), "--top_k", "3",
                              "--json", "--accelerator", "cpu", "--devices", "1",
                              "--map", str(tmp_path / "m.html"),
                              "--grid", str(tmp_path / "g.jpg")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [item["photo"] for item in printed] == list(map(str, photos))
    assert len(printed[0]["matches"]) == 3 and 0 <= printed[0]["confidence"] <= 1
    assert (tmp_path / "m.html").is_file() and (tmp_path / "g.jpg").is_file()
    # The old spelling still works, with a warning.
    with pytest.warns(FutureWarning, match="--device is deprecated"):
        assert run_cli("locate", ["locate", str(photos[0]), "--index", str(out),
                                  "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "confidence" in captured.out and "UTM 32T" in captured.out
    assert run_cli("index", ["index", "info", "--index", str(out)]) == 0
    assert "sha256" in capsys.readouterr().out


def test_device_decoding_builds_the_same_index(world, tmp_path, monkeypatch):
    """Where the device decodes JPEGs (nvjpeg on CUDA), index and locate read photos so."""
    from vpr.inputs import device_decode

    jpegs = tmp_path / "jpegs"
    jpegs.mkdir()
    for png in world["database"].iterdir():
        Image.open(png).save(jpegs / png.with_suffix(".jpg").name, quality=95)
    on_workers = LocationIndex.build(tmp_path / "workers", world["ckpt"], jpegs, device="cpu")
    monkeypatch.setattr(device_decode, "device_decode_available", lambda device: True)
    assert isinstance(on_workers.reader("cpu"), device_decode.EncodedReader)
    on_device = LocationIndex.build(tmp_path / "device", world["ckpt"], jpegs, device="cpu")
    np.testing.assert_allclose(on_device.descriptors, on_workers.descriptors, atol=1e-5)
    photo = sorted(jpegs.iterdir())[0]
    assert locate(photo, on_device, top_k=1, device="cpu")[0].matches[0].path == str(
        photo.resolve())
