"""The synthetic city: layout, @-names, geography, positives, determinism, manifest, preview."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import utm
from PIL import Image

from vpr.cli import synth as synth_cli
from vpr.data.geotag import parse_filename
from vpr.synthetic import (
    SyntheticCityError,
    generate_city,
    parse_image_size,
    read_manifest,
    write_preview,
)
from vpr.synthetic.plan import plan_all
from vpr.synthetic.presets import PRESETS
from vpr.synthetic.writer import render_spec

RETRIEVAL_SETS = ("sf_xs/val", "sf_xs/test", "tokyo_xs/test")
TEST_NOTE = re.compile(r"^[dq]\d+_(day|sunset|night)$")


@pytest.fixture(scope="session")
def tiny_city(tmp_path_factory) -> Path:
    """The `tiny` preset, generated once for the whole session."""
    out = tmp_path_factory.mktemp("synthetic") / "city"
    generate_city(out, preset="tiny", seed=0, progress=False)
    return out


def _images(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.jpg"))


def _digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in _images(root)}


def test_layout_mirrors_the_real_datasets(tiny_city):
    assert {path.name for path in tiny_city.iterdir()} == {
        "manifest.json", "gsv_xs", "sf_xs", "tokyo_xs"}
    cities = [path for path in (tiny_city / "gsv_xs" / "train").iterdir()]
    assert len(cities) == 2 and all(path.is_dir() and _images(path) for path in cities)
    for name in RETRIEVAL_SETS:
        parts = {path.name for path in (tiny_city / name).iterdir()}
        assert parts == {"database", "queries"}
        assert _images(tiny_city / name / "database") and _images(tiny_city / name / "queries")
    manifest = read_manifest(tiny_city)
    assert manifest["complete"] and manifest["preset"] == "tiny" and manifest["seed"] == 0
    assert manifest["counts"]["total_images"] == len(_images(tiny_city))
    with Image.open(_images(tiny_city)[0]) as image:
        assert image.size == tuple(manifest["image_size"]) == (64, 48)


def test_names_parse_with_consistent_geography(tiny_city):
    for path in _images(tiny_city):
        tag = parse_filename(path)
        assert len(path.name.split("@")) == 16  # all 14 fields
        east, north, zone, letter = utm.from_latlon(tag.latitude, tag.longitude)
        assert (zone, letter) == (tag.utm_zone_number, tag.utm_zone_letter)
        assert abs(east - tag.utm_east) < 1.0 and abs(north - tag.utm_north) < 1.0
        assert 0.0 <= tag.heading < 360.0
        assert tag.pano_id and tag.tile_num and tag.timestamp and tag.height == 2.5
        assert tag.pitch is not None and tag.roll is not None
        if path.parts[-3] == "train":
            place, city = tag.note.split("_")
            assert city == path.parent.name and len(place) == 4 and place.isdigit()
        else:
            assert TEST_NOTE.match(tag.note), tag.note


def test_test_cities_are_not_training_cities(tiny_city):
    def latitudes(folder: Path) -> set[int]:
        return {round(parse_filename(path).latitude) for path in _images(folder)}

    assert latitudes(tiny_city / "sf_xs") == {38}  # San Francisco, 37.77 N
    assert latitudes(tiny_city / "tokyo_xs") == {36}  # Tokyo, 35.68 N
    train_cities = {path.name for path in (tiny_city / "gsv_xs" / "train").iterdir()}
    assert not train_cities & {"SanFrancisco", "Tokyo"}


def test_training_places_have_four_images_and_stand_apart(tiny_city):
    for city in (tiny_city / "gsv_xs" / "train").iterdir():
        places = defaultdict(list)
        for path in _images(city):
            tag = parse_filename(path)
            places[tag.note].append((tag.utm_east, tag.utm_north))
        assert len(places) == 12
        assert all(len(points) >= 4 for points in places.values())
        centres = np.array([np.mean(points, axis=0) for points in places.values()])
        distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
        np.fill_diagonal(distances, np.inf)
        assert distances.min() >= 30.0
        # The images of a place are a few metres apart.
        for points in places.values():
            spread = np.linalg.norm(np.array(points) - np.mean(points, axis=0), axis=1)
            assert spread.max() < 6.0


@pytest.mark.parametrize("name", RETRIEVAL_SETS)
def test_every_query_has_a_positive_from_another_traversal(tiny_city, name):
    def utm_of(folder: Path) -> np.ndarray:
        tags = [parse_filename(path) for path in _images(folder)]
        return np.array([(tag.utm_east, tag.utm_north) for tag in tags])

    database = utm_of(tiny_city / name / "database")
    queries = utm_of(tiny_city / name / "queries")
    distances = np.linalg.norm(queries[:, None] - database[None], axis=-1)
    assert distances.min(axis=1).max() <= 25.0
    assert distances.min() > 0.1  # queries are not taken where database images are


def test_tokyo_queries_split_into_equal_thirds(tiny_city):
    def times(folder: Path) -> Counter:
        return Counter(parse_filename(path).note.rsplit("_", 1)[1] for path in _images(folder))

    assert times(tiny_city / "tokyo_xs/test/queries") == {"day": 4, "sunset": 4, "night": 4}
    assert set(times(tiny_city / "tokyo_xs/test/database")) == {"day"}
    manifest = read_manifest(tiny_city)
    assert manifest["counts"]["tokyo_xs/test"]["queries_by_time"] == {
        "day": 4, "night": 4, "sunset": 4}


def test_same_seed_same_bytes_for_any_worker_count(tiny_city, tmp_path):
    generate_city(tmp_path / "again", preset="tiny", seed=0, progress=False, workers=2)
    assert _digest(tmp_path / "again") == _digest(tiny_city)


def test_another_seed_gives_another_city(tiny_city):
    # Planning a whole city is cheap; rendering a few of its images is enough to compare.
    first, second = plan_all(PRESETS["tiny"], 0), plan_all(PRESETS["tiny"], 1)
    assert {spec.relative_path for spec in first} == {
        str(path.relative_to(tiny_city)) for path in _images(tiny_city)}
    assert not {spec.relative_path for spec in first} & {spec.relative_path for spec in second}
    for spec0, spec1 in zip(first[:3], second[:3]):
        image0 = render_spec(spec0, (64, 48), seed=0)
        assert image0 == (tiny_city / spec0.relative_path).read_bytes()
        assert render_spec(spec1, (64, 48), seed=1) != image0


def test_existing_city_is_not_regenerated(tiny_city):
    before = {path: path.stat().st_mtime_ns for path in _images(tiny_city)}
    manifest = generate_city(tiny_city, preset="tiny", seed=0, progress=False)
    assert manifest == json.loads((tiny_city / "manifest.json").read_text())
    assert {path: path.stat().st_mtime_ns for path in _images(tiny_city)} == before


def test_refuses_a_folder_with_other_content(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SyntheticCityError, match="refusing"):
        generate_city(tmp_path, preset="tiny", progress=False)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_refuses_a_city_made_with_other_settings(tiny_city):
    with pytest.raises(SyntheticCityError, match="other settings"):
        generate_city(tiny_city, preset="tiny", seed=5, progress=False)
    assert read_manifest(tiny_city)["seed"] == 0


def test_preview_contact_sheet(tmp_path):
    path = write_preview(tmp_path / "sheet" / "preview.png", image_size=(64, 48))
    with Image.open(path) as sheet:
        assert sheet.format == "PNG"
        assert sheet.width == 4 * 64 and sheet.height > 3 * 48


def test_image_size_parsing():
    assert parse_image_size("96x72") == (96, 72)
    assert parse_image_size("128") == (128, 128)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_image_size("big")


def test_cli_skips_an_existing_city(tiny_city, capsys):
    parser = argparse.ArgumentParser()
    synth_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["synth", "--out", str(tiny_city), "--preset", "tiny",
                              "--no_progress_bar"])
    assert synth_cli.run(args) == 0
    assert "tokyo_xs/test" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--out", "x", "--image_size", "0x0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["synth", "--out", "x", "--image_size", "8"])
    # H [W], as every command; the old WIDTHxHEIGHT still reads, with a warning.
    assert parser.parse_args(["synth", "--image_size", "48", "64"]).image_size == (64, 48)
    assert parser.parse_args(["synth", "--image_size", "32"]).image_size == (32, 32)
    with pytest.warns(FutureWarning, match="WIDTHxHEIGHT"):
        assert parser.parse_args(["synth", "--image_size", "64x48"]).image_size == (64, 48)
