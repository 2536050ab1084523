"""The location store: SQLite rows + append-only descriptors, migration, locking, geo prior."""

from __future__ import annotations

import logging
import math
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from helpers.legacy_index import DIM, MODEL, records_at, write_format_1

from vpr.locate import LocationIndex, storage
from vpr.locate.geo import EARTH_RADIUS_M, GeoPriorError, bounding_boxes, haversine_m, parse_near
from vpr.locate.store import ImageStore
from vpr.utils.locking import FileLock


def unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def rows_of(new: list[Path], seed: int):
    """``make_rows`` of `LocationIndex.add_rows`: made-up coordinates and descriptors."""
    def make_rows(paths: list[Path]):
        records = records_at([(0.0, 0.0)] * len(paths), "x")
        records["paths"] = [str(path) for path in paths]
        return records, unit_rows(len(paths), seed)
    return make_rows


@pytest.fixture
def warnings_seen(caplog):
    logger = logging.getLogger("vpr")
    propagate, logger.propagate = logger.propagate, True
    caplog.set_level(logging.WARNING, logger="vpr")
    yield caplog
    logger.propagate = propagate


# ---- the store


def test_store_round_trip_and_lazy_rows(tmp_path):
    points = [(10.0 + i, 20.0 - i) for i in range(5)]
    records = records_at(points, "a")
    descriptors = unit_rows(5, 0)
    store = ImageStore.create(tmp_path / "s", DIM, {"model": MODEL})
    assert store.append(records, descriptors) == 5
    store.close()
    # A reader that counts 3 rows sees 3, whatever the files hold.
    reader = ImageStore(tmp_path / "s", 3, DIM)
    assert reader.rows == 3 and reader.descriptors.shape == (3, DIM)
    np.testing.assert_array_equal(reader.descriptors, descriptors[:3])
    assert reader.record(2) == {"path": "/made-up/a2.jpg", "utm_east": 2.0, "utm_north": 0.0,
                                "utm_zone_number": None, "utm_zone_letter": "",
                                "latitude": 12.0, "longitude": 18.0}
    with pytest.raises(IndexError):
        reader.record(3)
    assert reader.id_of("/made-up/a4.jpg") is None and reader.id_of("/made-up/a1.jpg") == 1
    assert reader.info == {"model": MODEL}
    assert reader.has_tail()
    assert reader.recover_tail() == 2 and not reader.has_tail()
    assert (tmp_path / "s" / "descriptors.f32").stat().st_size == 3 * DIM * 4


def make_index(folder: Path, points: list[tuple[float, float]], seed: int = 0) -> Path:
    """A current-format flat index of made-up rows, written through the store API."""
    write_format_1(folder, records_at(points, "p"), unit_rows(len(points), seed))
    LocationIndex.load(folder)  # migrates
    return folder


def test_migration_of_format_1_keeps_every_row(tmp_path, warnings_seen):
    points = [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0)]
    records = records_at(points, "m")
    descriptors = unit_rows(3, 1)
    folder = write_format_1(tmp_path / "old", records, descriptors)
    index = LocationIndex.load(folder)
    assert "migrating the index of 3 images from meta.json" in warnings_seen.text
    assert sorted(entry.name for entry in folder.iterdir()) == [".lock", "CURRENT", "store-2",
                                                                "v-2"]
    assert list(index.paths) == records["paths"]
    assert [index.record(i)["latitude"] for i in range(3)] == [1.0, 3.0, 5.0]
    np.testing.assert_array_equal(index.descriptors, descriptors)
    assert index.meta["model"] == MODEL and index.meta["updated"] == "2026-01-02T00:00:00+00:00"
    _, found = index.search(descriptors, 1)
    assert found[:, 0].tolist() == [0, 1, 2]
    # Once: the second load finds the new format.
    warnings_seen.clear()
    assert len(LocationIndex.load(folder)) == 3 and "migrating" not in warnings_seen.text


def test_migration_of_the_legacy_layout_and_of_an_approximate_index(tmp_path):
    points = [(float(i % 7), float(i // 7)) for i in range(60)]
    descriptors = unit_rows(60, 2)
    folder = write_format_1(tmp_path / "old", records_at(points, "h"), descriptors,
                            versioned=False, index_type="hnsw")
    index = LocationIndex.load(folder)
    assert (folder / "v-1" / "index.faiss").is_file() and not (folder / "meta.json").exists()
    assert index.meta["index"]["type"] == "hnsw" and index.index.ntotal == 60
    _, found = index.search(descriptors[:4], 1)
    assert found[:, 0].tolist() == [0, 1, 2, 3]


def test_a_busy_format_1_index_is_read_as_it_is(tmp_path, warnings_seen):
    folder = write_format_1(tmp_path / "old", records_at([(1.0, 1.0)] * 2, "b"), unit_rows(2, 3))
    with FileLock(folder / storage.LOCK_FILE, timeout=0):
        index = LocationIndex.load(folder)
    assert len(index) == 2 and index.paths[1] == "/made-up/b1.jpg"
    assert (folder / "v-1" / "meta.json").is_file() and "opened as it is" in warnings_seen.text


def test_add_appends_without_rewriting_the_rows(tmp_path):
    folder = make_index(tmp_path / "index", [(0.0, 0.0)] * 4)
    store_file = folder / "store-2" / "descriptors.f32"
    before = store_file.read_bytes()
    inode = store_file.stat().st_ino
    index = LocationIndex.load(folder)
    new = [Path(f"/made-up/new{i}.jpg") for i in range(3)]
    assert index.add_rows(new, rows_of(new, 5)) == 3
    assert store_file.stat().st_ino == inode  # the same file, grown
    grown = store_file.read_bytes()
    assert grown[: len(before)] == before and len(grown) == 7 * DIM * 4
    assert len(index) == 7 and index.paths[6] == "/made-up/new2.jpg"
    np.testing.assert_array_equal(index.descriptors[4:], unit_rows(3, 5))
    # Adding the same images again adds nothing.
    assert index.add_rows(new, rows_of(new, 6)) == 0


def test_rows_of_an_interrupted_add_are_invisible_then_removed(tmp_path, warnings_seen):
    folder = make_index(tmp_path / "index", [(0.0, 0.0)] * 4)
    store = ImageStore(folder / "store-2", 4, DIM)
    store.append(records_at([(1.0, 1.0)] * 2, "crashed"), unit_rows(2, 7))  # never published
    store.close()
    index = LocationIndex.load(folder)
    assert len(index) == 4 and index.descriptors.shape == (4, DIM)
    new = [Path("/made-up/after.jpg")]
    assert index.add_rows(new, rows_of(new, 8)) == 1
    assert "never published" in warnings_seen.text
    assert len(index) == 5 and index.paths[4] == "/made-up/after.jpg"
    assert (folder / "store-2" / "descriptors.f32").stat().st_size == 5 * DIM * 4


def _add_one(folder: str, name: str, seed: int, started, results) -> None:
    index = LocationIndex.load(folder)
    started.wait()  # all four try to write at once
    new = [Path(f"/made-up/{name}.jpg")]
    results.put(index.add_rows(new, rows_of(new, seed), lock_timeout=60))


def test_concurrent_adds_are_serialised_by_the_lock(tmp_path):
    folder = make_index(tmp_path / "index", [(0.0, 0.0)] * 2)
    context = multiprocessing.get_context("fork")
    started, results = context.Barrier(4), context.Queue()
    writers = [context.Process(target=_add_one, args=(str(folder), f"c{i}", 10 + i, started,
                                                      results)) for i in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
    assert [writer.exitcode for writer in writers] == [0, 0, 0, 0]
    assert sorted(results.get(timeout=5) for _ in range(4)) == [1, 1, 1, 1]
    index = LocationIndex.load(folder)
    assert len(index) == 6
    assert sorted(index.paths[2:]) == [f"/made-up/c{i}.jpg" for i in range(4)]
    # Each added row holds the descriptor its writer made (none overwrote another).
    for item in range(2, 6):
        seed = 10 + int(Path(index.paths[item]).stem[1:])
        np.testing.assert_array_equal(index.descriptors[item], unit_rows(1, seed)[0])


# ---- the geographic prior


def point_at(latitude: float, longitude: float, distance_m: float, bearing_deg: float
             ) -> tuple[float, float]:
    """The point at a great-circle distance and bearing (the direct problem on a sphere)."""
    phi, lam = math.radians(latitude), math.radians(longitude)
    delta, theta = distance_m / EARTH_RADIUS_M, math.radians(bearing_deg)
    phi2 = math.asin(math.sin(phi) * math.cos(delta)
                     + math.cos(phi) * math.sin(delta) * math.cos(theta))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi),
                            math.cos(delta) - math.sin(phi) * math.sin(phi2))
    longitude2 = (math.degrees(lam2) + 540.0) % 360.0 - 180.0
    return math.degrees(phi2), longitude2


def test_haversine_against_hand_values():
    # A quarter of a meridian, and one degree of the equator.
    assert haversine_m(0, 0, [90.0], [0.0])[0] == pytest.approx(math.pi / 2 * EARTH_RADIUS_M)
    assert haversine_m(0, 179.5, [0.0], [-179.5])[0] == pytest.approx(
        math.radians(1) * EARTH_RADIUS_M)
    assert bounding_boxes(0.0, 179.9, 50_000)[0][3] == 180.0  # split at the antimeridian
    assert len(bounding_boxes(89.9, 0.0, 50_000)) == 1 and bounding_boxes(
        89.9, 0.0, 50_000)[0][2:] == (-180.0, 180.0)


@pytest.mark.parametrize("centre", [(48.8584, 2.2945), (-16.5, 179.99), (89.995, 45.0)],
                         ids=["paris", "antimeridian", "pole"])
def test_radius_filter_on_hand_placed_points(tmp_path, centre):
    radius = 500.0
    inside = [point_at(*centre, distance, bearing)
              for distance, bearing in ((0, 0), (100, 10), (300, 100), (490, 200), (499, 270))]
    outside = [point_at(*centre, distance, bearing)
               for distance, bearing in ((510, 0), (700, 90), (2000, 180), (501, 300))]
    points = outside[:2] + inside + outside[2:]
    folder = make_index(tmp_path / "index", points)
    index = LocationIndex.load(folder)
    assert index.ids_near(*centre, radius).tolist() == [2, 3, 4, 5, 6]
    assert index.ids_near(*centre, 1.0).tolist() == [2]
    assert index.ids_near(-centre[0], centre[1] - 90, radius).tolist() == []


def test_search_restricted_to_ids_is_exact_over_the_subset(tmp_path):
    descriptors = unit_rows(50, 9)
    folder = write_format_1(tmp_path / "index", records_at([(0.0, 0.0)] * 50, "s"),
                            descriptors)
    index = LocationIndex.load(folder)
    ids = np.array([3, 7, 20, 41])
    queries = unit_rows(6, 10)
    similarities, found = index.search(queries, 2, ids=ids)
    expected = queries @ descriptors[ids].T
    order = np.argsort(-expected, axis=1)[:, :2]
    assert found.tolist() == ids[order].tolist()
    np.testing.assert_allclose(similarities, np.take_along_axis(expected, order, 1), atol=1e-5)


def test_parse_near():
    assert parse_near("48.85, 2.35") == (48.85, 2.35)
    for bad in ("48.85", "north,2", "91,0", "0,181", "nan,0"):
        with pytest.raises(GeoPriorError, match="^near "):
            parse_near(bad)


def test_vpr_locate_near_says_when_no_image_is_near(tmp_path, capsys):
    from vpr.cli import main

    folder = make_index(tmp_path / "index", [(48.0, 2.0), (48.001, 2.0)])
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read: the prior is checked first")
    code = main(["locate", str(photo), "--index", str(folder), "--near", "10,10",
                 "--near_radius", "200"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("vpr: error: near: no image of index") and "200 m of 10.000000" \
        in error and "Traceback" not in error
    assert main(["locate", str(photo), "--index", str(folder), "--near", "10"]) == 2
    assert "expected LAT,LON" in capsys.readouterr().err


@pytest.mark.parametrize("queries", [1, 30])
def test_chunked_exact_search_equals_faiss_flat_search(queries):
    from vpr.eval.search import ExactIndex, search

    rng = np.random.default_rng(queries)
    database = rng.normal(size=(1000, DIM)).astype(np.float32)
    database[500] = database[20]  # a tie: the earlier row first, as faiss does
    asked = rng.normal(size=(queries, DIM)).astype(np.float32)
    asked[0] = database[20] + 0.01
    expected_d, expected_i = search(database, asked, 7)
    found_d, found_i = ExactIndex(database, chunk_rows=128).search(asked, 7)
    assert found_i.tolist() == expected_i.tolist()
    np.testing.assert_allclose(found_d, expected_d, rtol=1e-4, atol=1e-4)
    assert found_i[0, :2].tolist() == [20, 500]


def test_radius_with_near_is_the_fix_error_as_the_issue_spells_it(tmp_path, capsys):
    from vpr.cli import main

    folder = make_index(tmp_path / "index", [(48.0, 2.0), (48.001, 2.0)])
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"not read: the prior is checked first")
    code = main(["locate", str(photo), "--index", str(folder), "--near", "10,10",
                 "--radius", "300"])
    assert code == 2 and "300 m of 10.000000" in capsys.readouterr().err
    code = main(["locate", str(photo), "--index", str(folder), "--near", "10,10",
                 "--radius", "300", "--near_radius", "200"])
    assert code == 2 and "disagree" in capsys.readouterr().err


def test_radius_without_near_is_the_deprecated_cluster_radius():
    import argparse

    from vpr.cli.geo_prior import resolve_radius_options

    def resolved(**given):
        args = argparse.Namespace(**{"near": None, "radius": None, "near_radius": None,
                                     "cluster_radius": None, **given})
        return resolve_radius_options(args), args.near_radius

    assert resolved() == (25.0, 100.0)
    assert resolved(cluster_radius=40.0) == (40.0, 100.0)
    with pytest.warns(DeprecationWarning, match="--cluster_radius"):
        assert resolved(radius=30.0) == (30.0, 100.0)
    assert resolved(near="1,2", radius=70.0, cluster_radius=10.0) == (10.0, 70.0)
    assert resolved(near="1,2", near_radius=80.0) == (25.0, 80.0)
