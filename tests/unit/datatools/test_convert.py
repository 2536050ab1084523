"""Converters of the standard benchmarks: tiny raw trees in the upstream layouts."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers.images import write_image
from PIL import Image
from scipy.io import savemat

from vpr.cli import main
from vpr.data.datasets import RetrievalSet
from vpr.data.geotag import GeoTagError, parse_filename
from vpr.data.images import list_images
from vpr.datatools.convert import CONVERTERS, ConvertError, convert_dataset, get_converter


def _jpg(path: Path, seed: int, suffix_ok: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _cell(names: list[str]) -> np.ndarray:
    # A MATLAB cell array of strings, as savemat writes an object array.
    cell = np.empty((len(names), 1), dtype=object)
    for index, name in enumerate(names):
        cell[index, 0] = name
    return cell


def _db_struct(path: Path, database: list[str], database_utm: list[tuple[float, float]],
               queries: list[str], query_utm: list[tuple[float, float]],
               suffix: str = "Fns") -> None:
    """A NetVLAD dbStruct; ``suffix`` "Fns" spells the path fields as NetVLAD's MATLAB code
    (dbImageFns, qImageFns), "" as the Python loaders (dbImage, qImage)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"dbStruct": {
        "whichSet": "test",
        f"dbImage{suffix}": _cell(database),
        "utmDb": np.array(database_utm, dtype=np.float64).T,  # 2 x N, as NetVLAD stores it
        f"qImage{suffix}": _cell(queries),
        "utmQ": np.array(query_utm, dtype=np.float64).T,
        "numImages": float(len(database)),
        "numQueries": float(len(queries)),
        "posDistThr": 25.0,
        "posDistSqThr": 625.0,
        "nonTrivPosDistSqThr": 100.0,
    }})


def _by_name(folder: Path) -> dict[str, Path]:
    return {parse_filename(path).pano_id + "|" + parse_filename(path).tile_num: path
            for path in list_images(folder)}


@pytest.fixture
def pitts_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "pitts_raw"
    database = ["000/000000_pitch1_yaw1.jpg", "000/000000_pitch2_yaw3.jpg",
                "001/001000_pitch1_yaw1.jpg"]
    database_utm = [(585000.0, 4477000.0), (585000.0, 4477000.0), (585100.0, 4477000.0)]
    queries = ["000/000100_pitch1_yaw5.jpg", "000/000101_pitch1_yaw1.jpg"]
    # Query 0 is 10 m from the first panorama; query 1 is 500 m from everything.
    query_utm = [(585010.0, 4477000.0), (585600.0, 4477000.0)]
    for seed, name in enumerate(database):
        _jpg(raw / name, seed)
    for seed, name in enumerate(queries):
        _jpg(raw / "queries_real" / name, 10 + seed)
    # The field names NetVLAD's MATLAB code saves (dbImageFns, qImageFns).
    _db_struct(raw / "datasets" / "pitts30k_test.mat", database, database_utm, queries,
               query_utm)
    return raw


def test_pittsburgh_converts_images_coordinates_and_positives(pitts_raw: Path, tmp_path: Path):
    out = tmp_path / "p30k"
    report = convert_dataset("pitts30k_test", pitts_raw, out, progress=False)
    assert (report.database_num, report.queries_num, report.created) == (3, 2, 5)
    database = _by_name(out / "database")
    assert set(database) == {"000000|0", "000000|26", "001000|0"}  # (pitch-1)*24 + yaw-1
    tag = parse_filename(database["001000|0"])
    assert (tag.utm_east, tag.utm_north, tag.utm_zone_number, tag.utm_zone_letter) == (
        585100.0, 4477000.0, 17, "T")
    assert 40.0 < tag.latitude < 41.0 and -81.0 < tag.longitude < -79.0  # Pittsburgh
    # Hard links: the very same files, no copy.
    assert os.path.samefile(database["001000|0"], pitts_raw / "001/001000_pitch1_yaw1.jpg")
    # Positives within 25 m: query 0 has the two cut-outs of panorama 000000, query 1 none.
    test_set = RetrievalSet(out, None)
    positives = {parse_filename(q).pano_id: {parse_filename(test_set.database_paths[i]).pano_id
                                             for i in found}
                 for q, found in zip(test_set.query_paths, test_set.positives_per_query)}
    assert positives == {"000100": {"000000"}, "000101": set()}
    assert len(test_set.positives_per_query[0]) == 2
    assert report.queries_without_positives == [test_set.query_paths[1].name]
    info = json.loads((out / "vpr_dataset.json").read_text())
    assert info["protocol"] == "pitts30k_test" and info["queries_num"] == 2
    assert not (out / "ground_truth.json").exists()


def test_conversion_resumes_checks_and_copies(pitts_raw: Path, tmp_path: Path):
    out = tmp_path / "p30k"
    convert_dataset("pitts30k_test", pitts_raw, out, progress=False)
    again = convert_dataset("pitts30k_test", pitts_raw, out, progress=False)
    assert (again.created, again.already_there) == (0, 5)
    # A different file where an image should be is never silently accepted.
    victim = list_images(out / "queries")[0]
    victim.unlink()
    victim.write_bytes(b"something else entirely")
    with pytest.raises(ConvertError, match="exists but is not"):
        convert_dataset("pitts30k_test", pitts_raw, out, progress=False)
    copied = convert_dataset("pitts30k_test", pitts_raw, tmp_path / "copy", copy=True,
                             progress=False)
    assert copied.linked_by == {"copies": 5}
    first = list_images(tmp_path / "copy" / "database")[0]
    assert first.stat().st_nlink == 1


@pytest.mark.parametrize("suffix", ["Fns", ""])
def test_dbstruct_reads_both_spellings_of_the_path_fields(tmp_path: Path, suffix: str):
    from vpr.datatools.convert.dbstruct import read_db_struct

    path = tmp_path / "s.mat"
    _db_struct(path, ["000/a.jpg", "001/b.jpg"], [(1.0, 2.0), (3.0, 4.0)], ["000/q.jpg"],
               [(5.0, 6.0)], suffix=suffix)
    struct = read_db_struct(path)
    assert struct.database_images == ["000/a.jpg", "001/b.jpg"]
    assert struct.query_images == ["000/q.jpg"]
    np.testing.assert_array_equal(struct.database_utm, [[1.0, 2.0], [3.0, 4.0]])
    assert (struct.which_set, struct.pos_dist_thr) == ("test", 25.0)


def test_a_dbstruct_without_path_fields_is_named(tmp_path: Path):
    from vpr.datatools.convert.dbstruct import read_db_struct

    path = tmp_path / "bad.mat"
    savemat(path, {"dbStruct": {"whichSet": "test", "utmDb": np.zeros((2, 1))}})
    with pytest.raises(ConvertError, match="lacks dbImageFns or dbImage"):
        read_db_struct(path)
    savemat(path, {"other": np.zeros(2)})
    with pytest.raises(ConvertError, match="no 'dbStruct'"):
        read_db_struct(path)


def test_missing_raw_files_name_what_was_expected(pitts_raw: Path, tmp_path: Path):
    with pytest.raises(ConvertError, match="pitts250k_test.mat"):
        convert_dataset("pitts250k_test", pitts_raw, tmp_path / "out", progress=False)
    (pitts_raw / "001/001000_pitch1_yaw1.jpg").unlink()
    with pytest.raises(ConvertError, match=r"raw image not found \(1 of 5 missing\)"):
        convert_dataset("pitts30k_test", pitts_raw, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="unknown dataset 'pitts'"):
        get_converter("pitts")


def test_cli_convert_and_one_line_error(pitts_raw: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli"
    assert main(["data", "convert", "pitts30k_test", str(pitts_raw), "--out", str(out),
                 "--no_progress_bar"]) == 0
    assert "2 queries" in capsys.readouterr().out
    assert main(["data", "convert", "tokyo247", str(pitts_raw), "--out", str(out),
                 "--no-progress_bar"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("vpr: error:") and "tokyo247.mat" in error and "\n" not in error


def _tokyo_struct(path: Path, database: list[str], database_utm, queries: list[str],
                  query_utm) -> None:
    """tokyo247.mat as NetVLAD saves it: time stamps after utmDb and utmQ, so that the
    positional readers of Python code shift (1, 2, 4, 5) while names stay put."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {"whichSet": "test", "dbImageFns": _cell(database),
              "utmDb": np.array(database_utm, dtype=np.float64).T,
              "dbTimeStamp": np.zeros((1, len(database)))}
    if queries:
        fields |= {"qImageFns": _cell(queries), "utmQ": np.array(query_utm, dtype=np.float64).T,
                   "qTimeStamp": np.zeros((1, len(queries)))}
    fields |= {"numImages": float(len(database)), "numQueries": float(len(queries)),
               "posDistThr": 25.0, "posDistSqThr": 625.0, "nonTrivPosDistSqThr": 100.0}
    savemat(path, {"dbStruct": fields})


@pytest.fixture
def tokyo_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "tokyo_raw"
    # The .mat lists .jpg; the tars hold .png. Cut-outs end in _012_<yaw>, 12 per panorama.
    _jpg(raw / "03814" / "03814_01234567890123_012_030.png", 1)
    _jpg(raw / "03814" / "03814_01234567890123_012_330.png", 2)
    _jpg(raw / "03815" / "03815_99999999999999_012_000.png", 3)
    # The query subset is flat: <id>.jpg with <id>.csv beside it.
    for seed, (name, lat, lon) in enumerate((("00001", 35.68960, 139.70050),
                                             ("00002", 35.70000, 139.80000))):
        _jpg(raw / "247query_subset_v2" / f"{name}.jpg", 10 + seed)
        (raw / "247query_subset_v2" / f"{name}.csv").write_text(
            f"{name}.jpg,{lat},{lon},0,0\n")
    return raw


def test_tokyo247_mat_positions_png_database_and_tiles(tokyo_raw: Path, tmp_path: Path):
    import utm as utm_lib

    east, north, _, _ = utm_lib.from_latlon(35.6896, 139.7005)
    _tokyo_struct(tokyo_raw / "datasets" / "tokyo247.mat",
                  ["03814/03814_01234567890123_012_030.jpg",
                   "03814/03814_01234567890123_012_330.jpg",
                   "03815/03815_99999999999999_012_000.jpg"],
                  [(east, north), (east, north), (east + 300, north)],
                  ["00001.jpg", "00002.jpg"], [(east + 5, north), (east + 9000, north)])
    out = tmp_path / "tokyo"
    report = convert_dataset("tokyo247", tokyo_raw, out, progress=False)
    assert (report.database_num, report.queries_num) == (3, 2)
    database = sorted((parse_filename(p).pano_id, parse_filename(p).tile_num, p.suffix)
                      for p in list_images(out / "database"))
    assert database == [("03814_01234567890123", "1", ".png"),
                        ("03814_01234567890123", "11", ".png"),
                        ("03815_99999999999999", "0", ".png")]
    queries = {parse_filename(path).pano_id: parse_filename(path)
               for path in list_images(out / "queries")}
    assert queries["00001"].utm_zone_number == 54 and queries["00001"].note == ""
    test_set = RetrievalSet(out, None)
    found = {parse_filename(q).pano_id: len(p)
             for q, p in zip(test_set.query_paths, test_set.positives_per_query)}
    assert found == {"00001": 2, "00002": 0}


def test_tokyo247_without_queries_in_the_mat_reads_the_csv_files(tokyo_raw: Path,
                                                                  tmp_path: Path):
    import utm as utm_lib

    east, north, _, _ = utm_lib.from_latlon(35.6896, 139.7005)
    _tokyo_struct(tokyo_raw / "datasets" / "tokyo247.mat",
                  ["03814/03814_01234567890123_012_030.jpg"], [(east + 10, north)], [], [])
    out = tmp_path / "tokyo_csv"
    convert_dataset("tokyo247", tokyo_raw, out, progress=False)
    queries = {parse_filename(p).pano_id: parse_filename(p) for p in list_images(out / "queries")}
    assert set(queries) == {"00001", "00002"}
    assert queries["00001"].latitude == pytest.approx(35.6896)
    found = [len(p) for p in RetrievalSet(out, None).positives_per_query]
    assert sorted(found) == [0, 1]  # 00001 is 10 m from the cut-out, 00002 kilometres away


def _msls_city(raw: Path, city: str, part: str, rows: list[tuple[str, float, float, bool, bool]],
               seed: int) -> None:
    """rows: (key, lat, lon, is_panorama, is_night)."""
    folder = raw / "train_val" / city / part
    folder.mkdir(parents=True)
    with open(folder / "raw.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["", "key", "lon", "lat", "ca", "captured_at", "pano"])
        for index, (key, lat, lon, pano, _) in enumerate(rows):
            writer.writerow([index, key, lon, lat, 90.0, "2017-06-01 10:00:00", pano])
    with open(folder / "postprocessed.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["", "key", "easting", "northing", "night", "control_panel",
                         "view_direction", "unique_cluster"])
        for index, (key, _, _, _, night) in enumerate(rows):
            writer.writerow([index, key, 0.0, 0.0, night, False, "Forward", index])
    with open(folder / "seq_info.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["", "key", "sequence_key", "frame_number"])
        for index, (key, *_rest) in enumerate(rows):
            writer.writerow([index, key, f"seq_{city}", index])
    with open(folder / "subtask_index.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["", "all", "s2w", "w2s", "o2n", "n2o", "d2n", "n2d"])
        for index in range(len(rows)):
            writer.writerow([index, True, False, False, False, False, False, False])
    for index, (key, *_rest) in enumerate(rows):
        _jpg(folder / "images" / f"{key}.jpg", seed + index)


@pytest.fixture
def msls_raw(tmp_path: Path) -> Path:
    raw = tmp_path / "msls"
    # About 1.1e-4 degrees of latitude is 12 m.
    _msls_city(raw, "cph", "database", [("c_db0", 55.6761, 12.5683, False, False),
                                        ("c_db1", 55.6861, 12.5683, False, False),
                                        ("c_pano", 55.6761, 12.5683, True, False)], 0)
    _msls_city(raw, "cph", "query", [("c_q0", 55.67621, 12.5683, False, True),
                                     ("c_q1", 55.6961, 12.5683, False, False)], 10)
    _msls_city(raw, "sf", "database", [("s_db0", 37.7749, -122.4194, False, False)], 20)
    _msls_city(raw, "sf", "query", [("s_q0", 37.77501, -122.4194, False, False)], 30)
    return raw


def test_msls_val_full_drops_panoramas_and_uses_25_m(msls_raw: Path, tmp_path: Path):
    out = tmp_path / "full"
    report = convert_dataset("msls_val_full", msls_raw, out, progress=False)
    assert (report.database_num, report.queries_num) == (3, 3)
    assert "1 panoramas left out" in report.notes[0]
    queries = {parse_filename(path).pano_id: parse_filename(path)
               for path in list_images(out / "queries")}
    assert queries["c_q0"].note == "night_forward_cph"
    assert queries["s_q0"].utm_zone_number == 10  # San Francisco
    test_set = RetrievalSet(out, None)
    found = {parse_filename(q).pano_id: len(p)
             for q, p in zip(test_set.query_paths, test_set.positives_per_query)}
    assert found == {"c_q0": 1, "c_q1": 0, "s_q0": 1}


def test_msls_val_740_uses_the_published_lists(msls_raw: Path, tmp_path: Path):
    lists = msls_raw / "msls_val"
    lists.mkdir()
    database = ["train_val/cph/database/images/c_db0.jpg",
                "train_val/cph/database/images/c_db1.jpg",
                "train_val/sf/database/images/s_db0.jpg"]
    queries = ["train_val/cph/query/images/c_q0.jpg", "train_val/cph/query/images/c_q1.jpg",
               "train_val/sf/query/images/s_q0.jpg"]
    np.save(lists / "msls_val_dbImages.npy", np.array(database))
    np.save(lists / "msls_val_qImages.npy", np.array(queries))
    np.save(lists / "msls_val_qIdx.npy", np.array([0, 2]))  # c_q1 is not in the protocol
    positives = np.empty(2, dtype=object)
    # Deliberately not the 25 m answer for c_q0: the list is the ground truth.
    positives[0], positives[1] = np.array([0, 1]), np.array([2])
    np.save(lists / "msls_val_pIdx.npy", positives, allow_pickle=True)
    out = tmp_path / "740"
    report = convert_dataset("msls_val_740", msls_raw, out, progress=False)
    assert (report.database_num, report.queries_num) == (3, 2)
    ground_truth = json.loads((out / "ground_truth.json").read_text())
    assert ground_truth["protocol"] == "msls_val_740" and len(ground_truth["positives"]) == 2
    test_set = RetrievalSet(out, None)
    found = {parse_filename(q).pano_id: sorted(parse_filename(test_set.database_paths[i]).pano_id
                                               for i in p)
             for q, p in zip(test_set.query_paths, test_set.positives_per_query)}
    assert found == {"c_q0": ["c_db0", "c_db1"], "s_q0": ["s_db0"]}
    (lists / "msls_val_qIdx.npy").unlink()
    with pytest.raises(ConvertError, match="msls_val_qIdx.npy"):
        convert_dataset("msls_val_740", msls_raw, tmp_path / "again", progress=False)


@pytest.fixture
def nordland_raw(tmp_path: Path) -> Path:
    """26 frames per season; frame 00007 is not kept (a tunnel, say). As the downloader
    unpacks them: summer.tar.gz into RAW (RAW/summer/), winter.tar.gz into RAW/winter
    (here holding a winter/ folder itself: RAW/winter/winter/)."""
    raw = tmp_path / "nordland"
    names = [f"{index:05d}.png" for index in range(26)]
    for index, name in enumerate(names):
        _jpg(raw / "summer" / name, index)
        _jpg(raw / "winter" / "winter" / name, 100 + index)
    (raw / "cleanImageNames.txt").write_text("\n".join(n for n in names if n != "00007.png"))
    return raw


# protocol: (frames either side, database season, query season)
NORDLAND_EXPECTED = {"nordland": (10, "summer", "winter"),
                     "nordland_2frames": (2, "summer", "winter"),
                     "nordland_1frame": (1, "summer", "winter"),
                     "nordland_swapped": (10, "winter", "summer")}


@pytest.mark.parametrize("protocol", sorted(NORDLAND_EXPECTED))
def test_nordland_protocols_positives(nordland_raw: Path, tmp_path: Path, protocol: str):
    window, database_season, query_season = NORDLAND_EXPECTED[protocol]
    out = tmp_path / protocol
    report = convert_dataset(protocol, nordland_raw, out, progress=False)
    assert (report.database_num, report.queries_num) == (25, 25)
    test_set = RetrievalSet(out, None)
    assert {parse_filename(p).note for p in test_set.database_paths} == {database_season}
    assert {parse_filename(p).note for p in test_set.query_paths} == {query_season}
    # The kept frames are renumbered 0..24 in name order (00007 is skipped): frame 7 is
    # the file 00008.png in both seasons.
    frame_of_stem = {f"{index:05d}": kept for kept, index in
                     enumerate(i for i in range(26) if i != 7)}
    for path in test_set.database_paths + test_set.query_paths:
        assert int(parse_filename(path).tile_num) == frame_of_stem[parse_filename(path).pano_id]
    frame = {path: int(parse_filename(path).tile_num)
             for path in test_set.database_paths + test_set.query_paths}
    for query, found in zip(test_set.query_paths, test_set.positives_per_query):
        q = frame[query]
        expected = {d for d in range(25) if abs(d - q) <= window}
        assert {frame[test_set.database_paths[i]] for i in found} == expected
    ground_truth = json.loads((out / "ground_truth.json").read_text())
    assert ground_truth["protocol"] == protocol
    assert ground_truth["rule"].startswith(f"frames within +-{window} ")
    # Without the file, 25 m over the @-positions gives the very same window.
    window_lists = [sorted(frame[test_set.database_paths[i]] for i in p)
                    for p in test_set.positives_per_query]
    (out / "ground_truth.json").unlink()
    by_metres = RetrievalSet(out, None)
    assert [sorted(frame[by_metres.database_paths[i]] for i in p)
            for p in by_metres.positives_per_query] == window_lists


@pytest.mark.parametrize("protocol", ["nordland_1frame", "nordland_swapped"])
def test_nordland_from_the_downloaders_at_format(tmp_path: Path, protocol: str):
    window, database_season, query_season = NORDLAND_EXPECTED[protocol]
    test = tmp_path / "nordland" / "images" / "test"
    spacing = 25 / 10.5  # download_nordland.py: +-10 frames within 25 m
    for frame in range(6):
        # @0@<north>@@@@@<frame>@...: east 0, the frame number in the pano_id field.
        for folder, seed in (("database", 0), ("queries", 100)):  # summer, winter
            name = f"@0@{frame * spacing:07.1f}@@@@@{frame}@@@@@@@@.jpg"
            _jpg(test / folder / name, seed + frame)
    out = tmp_path / protocol
    report = convert_dataset(protocol, tmp_path / "nordland", out, progress=False)
    assert (report.database_num, report.queries_num) == (6, 6)
    test_set = RetrievalSet(out, None)
    assert {parse_filename(p).note for p in test_set.database_paths} == {database_season}
    for query, found in zip(test_set.query_paths, test_set.positives_per_query):
        q = int(parse_filename(query).pano_id)
        assert sorted(int(parse_filename(test_set.database_paths[i]).pano_id) for i in found) == [
            d for d in range(6) if abs(d - q) <= window]


def test_nordland_protocols_are_told_apart(nordland_raw: Path, tmp_path: Path):
    from vpr.benchmarks.check import check_against_manifest
    from vpr.benchmarks.manifest import load_manifest

    out = tmp_path / "n2"
    convert_dataset("nordland_2frames", nordland_raw, out, progress=False)
    problems = " ".join(check_against_manifest(load_manifest("nordland"), out).problems)
    assert "converted for 'nordland_2frames', not 'nordland'" in problems
    (out / "vpr_dataset.json").unlink()
    problems = " ".join(check_against_manifest(load_manifest("nordland"), out).problems)
    assert "holds the positives of 'nordland_2frames', not 'nordland'" in problems
    assert not any("ground_truth" in problem for problem in
                   check_against_manifest(load_manifest("nordland_2frames"), out).problems)
    assert load_manifest("nordland_swapped").describe_positives() == "+-10 frames"
    assert load_manifest("nordland_1frame").describe_positives() == "+-1 frames"


def _pairs_raw(root: Path, database_folder: str, query_folder: str, stems: list[str],
               database_suffix: str, query_suffix: str) -> None:
    for seed, stem in enumerate(stems):
        _jpg(root / database_folder / f"{stem}{database_suffix}", seed)
        _jpg(root / query_folder / f"{stem}{query_suffix}", 50 + seed)


@pytest.mark.parametrize("protocol, layout", [
    ("sped", ("SPEDTEST", "ref", "query", ".jpg", ".jpg")),
    ("amstertime", (".", "new", "old", ".png", ".jpg")),
])
def test_paired_sets_match_each_query_to_its_own_pair(tmp_path: Path, protocol, layout):
    top, database_folder, query_folder, database_suffix, query_suffix = layout
    raw = tmp_path / f"{protocol}_raw"
    stems = ["00000", "00001", "00002"]
    _pairs_raw(raw / top, database_folder, query_folder, stems, database_suffix, query_suffix)
    out = tmp_path / protocol
    report = convert_dataset(protocol, raw, out, progress=False)
    assert (report.database_num, report.queries_num) == (3, 3)
    test_set = RetrievalSet(out, None)
    for query, found in zip(test_set.query_paths, test_set.positives_per_query):
        assert [parse_filename(test_set.database_paths[i]).pano_id for i in found] == [
            parse_filename(query).pano_id]
    assert {p.suffix for p in test_set.database_paths} == {database_suffix}
    (raw / top / query_folder / f"00001{query_suffix}").unlink()
    with pytest.raises(ConvertError, match="without their pair"):
        convert_dataset(protocol, raw, tmp_path / "again", progress=False)


@pytest.mark.parametrize("protocol, stem", [("nordland_vprbench", "Nordland"),
                                             ("sped_vprbench", "SPED")])
def test_vpr_bench_sets_use_the_published_lists(tmp_path: Path, protocol: str, stem: str):
    raw = tmp_path / stem
    database = [f"ref/{index:05d}.png" for index in range(5)]
    queries = [f"query/{index:05d}.png" for index in range(3)]
    for seed, name in enumerate(database + queries):
        _jpg(raw / name, seed)
    lists = raw / stem  # the lists may sit in RAW/<Name>/ as in GSV-Cities' datasets/
    lists.mkdir()
    np.save(lists / f"{stem}_dbImages.npy", np.array(database))
    np.save(lists / f"{stem}_qImages.npy", np.array(queries))
    ground_truth = np.empty(3, dtype=object)
    # Not a window, not the same index: whatever the list says is the truth.
    ground_truth[0], ground_truth[1], ground_truth[2] = (np.array([3, 1]), np.array([4]),
                                                         np.array([], dtype=int))
    np.save(lists / f"{stem}_gt.npy", ground_truth, allow_pickle=True)
    out = tmp_path / protocol
    report = convert_dataset(protocol, raw, out, progress=False)
    assert (report.database_num, report.queries_num) == (5, 3)
    assert len(report.queries_without_positives) == 1
    test_set = RetrievalSet(out, None)
    found = {parse_filename(q).pano_id: sorted(parse_filename(test_set.database_paths[i]).pano_id
                                               for i in p)
             for q, p in zip(test_set.query_paths, test_set.positives_per_query)}
    assert found == {"00000": ["00001", "00003"], "00001": ["00004"], "00002": []}
    ground_truth[1] = np.array([9])
    np.save(lists / f"{stem}_gt.npy", ground_truth, allow_pickle=True)
    with pytest.raises(ConvertError, match="beyond"):
        convert_dataset(protocol, raw, tmp_path / "again", progress=False)


def test_eynsham_raw_release_route_tiles_and_loops(tmp_path: Path, monkeypatch):
    import vpr.datatools.convert.eynsham as eynsham

    # Three panoramas: two in the first loop (database), one in the second (queries).
    monkeypatch.setattr(eynsham, "DATABASE_PANORAMAS", 2)
    root = tmp_path / "eynsham_raw" / "Eynsham"
    images = root / "Images"
    images.mkdir(parents=True)
    for index in range(5 + 3 * 5):  # the first five grabs are not part of the route
        pixels = np.full((8, 8), index * 10, dtype=np.uint8)
        Image.fromarray(pixels).save(images / f"grab_{1_200_000_000 + index}.ppm", "PPM")
    # About 9e-5 degrees of latitude is 10 m: the query panorama is 10 m from panorama 0.
    points = ["-1.40000,51.78000,0", "-1.40000,51.79000,0", "-1.40000,51.78009,0",
              "-1.50000,51.90000,0"]
    (root / "Route_map").mkdir()
    (root / "Route_map" / "Eynsham.kml").write_text(
        "<kml>\n<Placemark>\n<LineString><coordinates>" + " ".join(points) +
        " </coordinates></LineString>\n</Placemark>\n</kml>\n")
    out = tmp_path / "eynsham"
    # The split keeps all but the last two space-separated entries: 3 panoramas, not 4.
    report = convert_dataset("eynsham", tmp_path / "eynsham_raw", out, progress=False)
    assert (report.database_num, report.queries_num) == (10, 5)
    assert report.linked_by == {"re-encoded": 15}
    database = {(parse_filename(p).pano_id, parse_filename(p).tile_num): p
                for p in list_images(out / "database")}
    assert set(database) == {(f"{pano:04d}", str(tile)) for pano in (0, 1) for tile in range(5)}
    # Tile t of panorama p is grab 5 + 5p + t (grey level 10 x that index).
    with Image.open(database[("0001", "3")]) as image:
        assert image.format == "PNG" and image.getpixel((0, 0)) == (5 + 5 + 3) * 10
    tag = parse_filename(database[("0000", "0")])
    assert tag.timestamp == "20080110_212005" and tag.utm_zone_number == 30
    test_set = RetrievalSet(out, None)
    for found in test_set.positives_per_query:
        assert {parse_filename(test_set.database_paths[i]).pano_id for i in found} == {"0000"}
        assert len(found) == 5
    again = convert_dataset("eynsham", tmp_path / "eynsham_raw", out, progress=False)
    assert (again.created, again.already_there) == (0, 15)


def test_sf_xl_versions_read_their_own_query_folder(tmp_path: Path):
    test = tmp_path / "sf_xl" / "processed" / "test"
    write_image(test / "database", 550000.0, 4180000.0, "d0", 1)
    write_image(test / "queries_v1", 550010.0, 4180000.0, "v1", 2)
    write_image(test / "queries_v2", 550020.0, 4180000.0, "v2a", 3)
    write_image(test / "queries_v2", 550030.0, 4180000.0, "v2b", 4)
    one = convert_dataset("sf_xl_test_v1", tmp_path / "sf_xl", tmp_path / "v1", progress=False)
    two = convert_dataset("sf_xl_test_v2", tmp_path / "sf_xl", tmp_path / "v2", progress=False)
    assert (one.queries_num, two.queries_num) == (1, 2)
    with pytest.raises(ConvertError, match="queries_night"):
        convert_dataset("sf_xl_test_night", tmp_path / "sf_xl", tmp_path / "n", progress=False)


def test_prepared_sets_validate_and_link(tmp_path: Path):
    raw = tmp_path / "svox" / "images" / "test"
    # SVOX names its database folder gallery/ (svox/images/test/gallery).
    write_image(raw / "gallery", 500000.0, 4000000.0, "d0", 1)
    write_image(raw / "gallery", 500500.0, 4000000.0, "d1", 2)
    write_image(raw / "queries_night", 500010.0, 4000000.0, "q0", 3)
    write_image(raw / "queries_sun", 500510.0, 4000000.0, "q1", 4)
    out = tmp_path / "svox_night"
    report = convert_dataset("svox_night", tmp_path / "svox", out, progress=False)
    assert (report.database_num, report.queries_num) == (2, 1)
    (query,) = list_images(out / "queries")
    assert parse_filename(query).note == "q0"
    assert not report.queries_without_positives
    (raw / "queries_night" / "not-an-at-name.jpg").write_bytes(
        (raw / "gallery").iterdir().__next__().read_bytes())
    with pytest.raises(GeoTagError):
        convert_dataset("svox_night", tmp_path / "svox", tmp_path / "x", progress=False)
    with pytest.raises(ConvertError, match="queries_rain"):
        convert_dataset("svox_rain", tmp_path / "svox", tmp_path / "y", progress=False)


def test_every_converter_has_a_manifest():
    from vpr.benchmarks.manifest import list_manifests, load_manifest

    assert set(CONVERTERS) <= set(list_manifests())
    for name in CONVERTERS:
        assert load_manifest(name).converter == name


def test_symlinks_where_hard_links_cannot_be_made(pitts_raw: Path, tmp_path: Path,
                                                  monkeypatch):
    import errno

    def cross_device(source, destination):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", cross_device)
    out = tmp_path / "linked"
    report = convert_dataset("pitts30k_test", pitts_raw, out, progress=False)
    assert report.linked_by == {"symlinks": 5}
    first = list_images(out / "database")[0]
    assert first.is_symlink() and first.resolve().is_relative_to(pitts_raw.resolve())
    again = convert_dataset("pitts30k_test", pitts_raw, out, progress=False)
    assert again.already_there == 5
