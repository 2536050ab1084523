"""`vpr data check / stats / import` on tiny hand-made folders."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import utm
from helpers.cli import vpr_data
from helpers.images import Rational, gps_exif, write_photo
from PIL import Image

from vpr.cli import data as data_cli
from vpr.data.geotag import GeoTag, format_filename, parse_filename
from vpr.datatools.check import check_dataset, detect_kind
from vpr.datatools.importer import DataImportError
from vpr.datatools.stats import OUTPUT_FILES


def write_tagged(folder: Path, east: float, north: float, note: str, seed: int = 0) -> Path:
    """A small JPEG named in the @-format."""
    name = format_filename(GeoTag(utm_east=east, utm_north=north, utm_zone_number=33,
                                  utm_zone_letter="T", note=note))
    return write_photo(folder / name, seed)


def make_clean_train(root: Path) -> Path:
    """2 cities x 2 places x 4 images, every image readable."""
    seed = 0
    for place in range(4):
        city = "Rome" if place < 2 else "Oslo"
        for image in range(4):
            seed += 1
            write_tagged(root / city, 1000.0 * place + image, 5000.0, f"{place}_{city}", seed)
    return root


def make_clean_test(root: Path) -> Path:
    """5 database images 10 m apart and 2 queries with positives."""
    for index in range(5):
        write_tagged(root / "database", 500000.0 + 10 * index, 4e6, f"db{index}", index)
    write_tagged(root / "queries", 500003.0, 4e6, "q0", 10)
    write_tagged(root / "queries", 500041.0, 4e6 + 5, "q1", 11)
    return root


def test_registered_in_the_vpr_parser(tmp_path):
    import vpr.cli

    if "data" not in vpr.cli.SUBCOMMANDS:
        pytest.skip("`data` is not registered in vpr.cli.SUBCOMMANDS yet")
    train = make_clean_train(tmp_path / "train")
    args = vpr.cli.build_parser().parse_args(["data", "check", str(train), "--no_progress_bar"])
    assert args.func is data_cli.run and args.func(args) == 0


# ---------------------------------------------------------------------------- check


def test_check_clean_train_and_test_folders_exit_0(tmp_path, capsys):
    train = make_clean_train(tmp_path / "train")
    test = make_clean_test(tmp_path / "test")
    assert vpr_data("check", str(train), "--no_progress_bar") == 0
    assert "OK: no problem found" in capsys.readouterr().out
    assert vpr_data("check", str(test), "--no_progress_bar") == 0
    report = check_dataset(train, progress=False)
    assert report.ok and report.kind == "train"
    assert report.image_counts == {"train": 16} and report.place_count == 4
    assert report.images_per_place == {"min": 4, "median": 4, "max": 4}
    assert check_dataset(test, progress=False).image_counts == {"database": 5, "queries": 2}


def test_detect_kind(tmp_path):
    train = make_clean_train(tmp_path / "train")
    test = make_clean_test(tmp_path / "test")
    assert detect_kind(train) == "train" and detect_kind(test) == "test"
    assert detect_kind(test, "train") == "train"  # an explicit choice wins when possible
    with pytest.raises(FileNotFoundError, match="database"):
        detect_kind(train, "test")


@pytest.fixture
def broken_train(tmp_path: Path) -> dict[str, Path]:
    """A clean training folder plus one file per kind of problem; returns the bad paths."""
    root = make_clean_train(tmp_path / "train")
    rome = root / "Rome"
    bad = {"root": root, "unparseable": write_photo(rome / "holiday_photo.jpg", 50)}
    truncated = write_tagged(rome, 10.0, 10.0, "0_Rome", 51)
    truncated.write_bytes(truncated.read_bytes()[:300])
    bad["truncated"] = truncated
    bad["zero_byte"] = rome / format_filename(GeoTag(11.0, 11.0, note="1_Rome"))
    bad["zero_byte"].write_bytes(b"")
    bad["text"] = rome / format_filename(GeoTag(12.0, 12.0, note="1_Rome"))
    bad["text"].write_text("this is not a picture\n")
    bad["nan"] = write_photo(rome / "@10.00@nan@33@T@@@@@@@@@@0_Rome@.jpg", 52)
    # The same file name in two cities: one photo filed twice, or two that clash.
    duplicate = format_filename(GeoTag(77.0, 77.0, note="2_Oslo"))
    bad["duplicate_a"] = write_photo(root / "Oslo" / duplicate, 53)
    bad["duplicate_b"] = write_photo(root / "Rome" / duplicate, 54)
    bad["small_place"] = write_tagged(root / "Oslo", 9000.0, 9000.0, "9_Lonely", 55)
    bad["no_place_id"] = write_tagged(root / "Oslo", 9100.0, 9100.0, "", 56)
    return bad


def test_check_finds_each_problem(broken_train):
    report = check_dataset(broken_train["root"], progress=False)
    found = {name: {problem.item for problem in problems}
             for name, problems in report.problems.items()}
    assert found["unparseable_names"] == {str(broken_train["unparseable"])}
    assert found["bad_coordinates"] == {str(broken_train["nan"])}
    assert found["unreadable_images"] == {
        str(broken_train[key]) for key in ("truncated", "zero_byte", "text")
    }
    assert len(report.problems["duplicate_names"]) == 1
    (duplicate,) = report.problems["duplicate_names"]
    assert {duplicate.item, duplicate.detail.removeprefix("same name as ")} == {
        str(broken_train["duplicate_a"]), str(broken_train["duplicate_b"])
    }
    assert found["small_places"] == {"9_Lonely"}
    assert found["missing_place_ids"] == {str(broken_train["no_place_id"])}
    assert found["queries_without_positive"] == set()
    # The parser's own message is kept, without repeating the path.
    (unparseable,) = report.problems["unparseable_names"]
    assert "no UTM fields" in unparseable.detail
    assert not unparseable.detail.startswith(str(broken_train["unparseable"]))
    assert not report.ok


def test_check_no_open_skips_unreadable_detection(broken_train):
    report = check_dataset(broken_train["root"], open_images=False, progress=False)
    assert report.problems["unreadable_images"] == [] and not report.opened
    assert report.problems["unparseable_names"]  # names are still checked


def test_check_cli_exit_1_summary_and_json(broken_train, capsys):
    root = str(broken_train["root"])
    assert vpr_data("check", root, "--no_progress_bar", "--max_examples", "1") == 1
    out = capsys.readouterr().out
    assert "PROBLEMS in 6 categories" in out
    assert "images that cannot be opened [unreadable_images]: 3" in out
    assert "... and 2 more" in out  # only 1 example of the 3 unreadable files
    assert vpr_data("check", root, "--no_progress_bar", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problem_counts"]["unreadable_images"] == 3
    # Raising the bar makes the 4-image places small too; lowering it clears them.
    assert vpr_data("check", root, "--no_open", "--json", "--min_img_per_place", "1") == 1
    assert json.loads(capsys.readouterr().out)["problem_counts"]["small_places"] == 0


def test_check_query_without_positive(tmp_path, capsys):
    root = make_clean_test(tmp_path / "test")
    lost = write_tagged(root / "queries", 600000.0, 4e6, "far", 20)
    report = check_dataset(root, progress=False)
    (problem,) = report.problems["queries_without_positive"]
    assert problem.item == str(lost) and "nearest at 99960 m" in problem.detail
    # With a 100 km threshold it has a positive.
    assert vpr_data("check", str(root), "--no_progress_bar",
                    "--positive_dist_threshold", "100000") == 0


def test_check_duplicate_across_database_and_queries(tmp_path):
    root = make_clean_test(tmp_path / "test")
    leaked = next((root / "database").iterdir())
    (root / "queries" / leaked.name).write_bytes(leaked.read_bytes())
    report = check_dataset(root, open_images=False)
    assert len(report.problems["duplicate_names"]) == 1


# ---------------------------------------------------------------------------- import


def assert_round_trip(destination: Path, latitude: float, longitude: float) -> GeoTag:
    """The @-name reads back to the same lat/lon, and its UTM matches utm.from_latlon."""
    tag = parse_filename(destination)
    assert tag.latitude == pytest.approx(latitude, abs=1e-7)
    assert tag.longitude == pytest.approx(longitude, abs=1e-7)
    east, north, zone_number, zone_letter = utm.from_latlon(latitude, longitude)
    assert abs(tag.utm_east - east) <= 0.01 and abs(tag.utm_north - north) <= 0.01
    assert (tag.utm_zone_number, tag.utm_zone_letter) == (zone_number, zone_letter)
    return tag


def test_import_from_csv(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "imported"
    rows = [("colosseum/a.jpg", 41.89021, 12.492231, "colosseum"),
            ("colosseum/b.JPG", 41.890251, 12.492301, "colosseum"),
            ("opera.png", -33.856784, 151.215297, "sydney_opera")]
    for index, (relative, *_rest) in enumerate(rows):
        path = src / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8), (index * 50, 0, 0)).save(path, "PNG" if path.suffix ==
                                                         ".png" else "JPEG")
    table = tmp_path / "positions.csv"
    with open(table, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "lat", "lon", "place_id"])
        writer.writerows(rows)
    before = {path: path.read_bytes() for path in src.rglob("*") if path.is_file()}
    assert vpr_data("import", str(src), "--out", str(dst), "--csv", str(table),
                    "--no_progress_bar") == 0
    imported = sorted(path for path in dst.rglob("*") if path.is_file())
    assert len(imported) == 3
    by_stem = {parse_filename(path).pano_id: path for path in imported}
    for relative, latitude, longitude, place in rows:
        destination = by_stem[Path(relative).stem]
        tag = assert_round_trip(destination, latitude, longitude)
        assert tag.note == place
        # Sub-folders are kept, extensions lower-cased, bytes copied unchanged.
        assert destination.parent == dst / Path(relative).parent
        assert destination.suffix == Path(relative).suffix.lower()
        assert destination.read_bytes() == before[src / relative]
    # The sources are untouched.
    assert {path: path.read_bytes() for path in src.rglob("*") if path.is_file()} == before
    # The import is a valid training set (places by note).
    assert check_dataset(dst, min_img_per_place=1, progress=False).ok


def test_import_csv_bad_rows_are_skipped_and_exit_1(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "imported"
    write_photo(src / "good.jpg")
    write_photo(src / "pole.jpg")
    table = tmp_path / "positions.csv"
    table.write_text("path,lat,lon\ngood.jpg,45.0,7.0\nmissing.jpg,45.0,7.0\n"
                     "pole.jpg,89.9,0.0\ngood.jpg,abc,7.0\n")
    assert vpr_data("import", str(src), "--out", str(dst), "--csv", str(table),
                    "--no_progress_bar") == 1
    out = capsys.readouterr().out
    assert "Skipped 3 photo(s)" in out and "file not found" in out and "UTM range" in out
    assert len(list(dst.rglob("*.jpg"))) == 1


def test_import_csv_missing_column_is_an_error(tmp_path):
    src = tmp_path / "photos"
    write_photo(src / "a.jpg")
    table = tmp_path / "positions.csv"
    table.write_text("file,latitude,longitude\na.jpg,45,7\n")
    with pytest.raises(DataImportError, match="missing column"):
        vpr_data("import", str(src), "--out", str(tmp_path / "out"), "--csv", str(table))
    table.write_text("path,lat,lon\na.jpg,45,7\n")
    with pytest.raises(DataImportError, match="place_id"):
        vpr_data("import", str(src), "--out", str(tmp_path / "out"), "--csv", str(table),
                 "--place_from", "csv")


def test_import_from_exif(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "imported"
    # Sydney (S, E) with a timestamp; New York (N, W); one photo without GPS.
    write_photo(src / "sydney" / "IMG_1.jpg", 1, gps_exif(
        (33, 51, Rational(2425, 100)), "S", (151, 12, Rational(5508, 100)), "E",
        "2023:05:14 10:15:00"))
    write_photo(src / "nyc" / "IMG_2.jpg", 2, gps_exif(
        (40, 44, Rational(5436, 100)), "N", (73, 59, Rational(853, 100)), "W"))
    write_photo(src / "nyc" / "no_gps.jpg", 3)
    assert vpr_data("import", str(src), "--out", str(dst), "--no_progress_bar") == 1
    out = capsys.readouterr().out
    assert "Copied 2 photo(s)" in out and "no_gps.jpg" in out and "no GPS position" in out
    (sydney,) = (dst / "sydney").iterdir()
    tag = assert_round_trip(sydney, -(33 + 51 / 60 + 24.25 / 3600), 151 + 12 / 60 + 55.08 / 3600)
    assert tag.timestamp == "20230514_101500" and tag.note == "sydney" and tag.pano_id == "IMG_1"
    (new_york,) = (dst / "nyc").iterdir()
    tag = assert_round_trip(new_york, 40 + 44 / 60 + 54.36 / 3600, -(73 + 59 / 60 + 8.53 / 3600))
    assert tag.timestamp == "" and tag.note == "nyc"


def test_import_allow_missing_and_place_from_none(tmp_path):
    src, dst = tmp_path / "photos", tmp_path / "imported"
    write_photo(src / "db" / "a.jpg", 1, gps_exif((45, 0, 0), "N", (7, 30, 0), "E"))
    write_photo(src / "db" / "b.jpg", 2)
    assert vpr_data("import", str(src), "--out", str(dst), "--allow_missing",
                    "--place_from", "none", "--no_progress_bar") == 0
    (imported,) = (dst / "db").iterdir()
    assert parse_filename(imported).note == ""


def test_import_refuses_to_overwrite(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "imported"
    write_photo(src / "place" / "a.jpg", 1, gps_exif((45, 0, 0), "N", (7, 30, 0), "E"))
    write_photo(src / "place" / "b.jpg", 2, gps_exif((45, 0, 1), "N", (7, 30, 0), "E"))
    assert vpr_data("import", str(src), "--out", str(dst), "--no_progress_bar") == 0
    first = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in dst.rglob("*.jpg")}
    # Change one output so that an overwrite would show; a re-run must refuse entirely.
    victim = sorted(first)[0]
    victim.write_bytes(b"user edited this")
    with pytest.raises(DataImportError, match="already exist"):
        vpr_data("import", str(src), "--out", str(dst), "--no_progress_bar")
    assert victim.read_bytes() == b"user edited this"
    assert sorted(dst.rglob("*.jpg")) == sorted(first)
    with pytest.raises(DataImportError, match="inside the source"):
        vpr_data("import", str(src), "--out", str(src / "out"))


def test_import_dry_run_copies_nothing(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "imported"
    write_photo(src / "a.jpg", 1, gps_exif((45, 0, 0), "N", (7, 30, 0), "E"))
    assert vpr_data("import", str(src), "--out", str(dst), "--dry_run") == 0
    assert "Would copy 1 photo(s)" in capsys.readouterr().out
    assert not dst.exists()


# ---------------------------------------------------------------------------- stats


def test_stats_train_writes_expected_files(tmp_path, capsys):
    train = make_clean_train(tmp_path / "train")
    write_photo(train / "Rome" / "not_tagged.jpg")
    out = tmp_path / "report"
    assert vpr_data("stats", str(train), "--out", str(out)) == 0
    expected = set(OUTPUT_FILES.values()) - {"positives_per_query.png"}
    assert {path.name for path in out.iterdir()} == expected
    for name in expected:
        assert (out / name).stat().st_size > 0
    with open(out / "counts_per_city.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows == [{"city": "Oslo", "images": "8", "places": "2"},
                    {"city": "Rome", "images": "8", "places": "2"}]
    extents = json.loads((out / "extents.json").read_text())
    assert extents["unparseable_names"] == 1 and extents["all"]["images"] == 16
    assert extents["all"]["utm_east"] == [0.0, 3003.0] and extents["all"]["utm_zones"] == ["33T"]
    with Image.open(out / "sample_sheet.png") as sheet:
        assert sheet.width > sheet.height  # images side by side
    with pytest.raises(ValueError, match="no image has this note"):
        vpr_data("stats", str(train), "--out", str(out), "--place", "nowhere")


def test_stats_test_set_writes_expected_files(tmp_path):
    test = make_clean_test(tmp_path / "test")
    out = tmp_path / "report"
    assert vpr_data("stats", str(test), "--out", str(out)) == 0
    expected = set(OUTPUT_FILES.values()) - {"images_per_place.png"}
    assert {path.name for path in out.iterdir()} == expected
    extents = json.loads((out / "extents.json").read_text())
    assert extents["database"]["images"] == 5 and extents["queries"]["images"] == 2
    assert extents["database"]["span_m"] == [40.0, 0.0]
