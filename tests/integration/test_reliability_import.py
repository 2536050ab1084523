"""`vpr data import` reads only inside its source folder and writes only inside --out."""

from __future__ import annotations

import csv
from pathlib import Path

from helpers.cli import vpr_data
from helpers.images import gps_exif, write_photo
from PIL import Image

from vpr.data.geotag import parse_filename
from vpr.datatools.importer import import_photos


def write_csv(path: Path, rows: list[tuple[str, ...]], place_id: bool = False) -> Path:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "lat", "lon"] + (["place_id"] if place_id else []))
        writer.writerows(rows)
    return path


def every_file(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


def test_csv_paths_outside_the_source_folder_are_refused(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "out"
    write_photo(src / "inside.jpg", 1)
    secret = write_photo(tmp_path / "private" / "secret.jpg", 2)
    table = write_csv(tmp_path / "rows.csv", [
        ("../private/secret.jpg", "45.0", "7.0"),
        (str(secret), "45.0", "7.1"),                       # absolute, outside
        (str((src / "inside.jpg").resolve()), "45.0", "7.2"),  # absolute, inside: fine
        ("sub/../../private/secret.jpg", "45.0", "7.3"),
    ])
    assert vpr_data("import", str(src), "--out", str(dst), "--csv", str(table),
                    "--no_progress_bar") == 1
    out = capsys.readouterr().out
    assert "Copied 1 photo(s)" in out and "Skipped 3 photo(s)" in out
    assert out.count("outside the source folder") == 3 and "secret.jpg" in out
    (copied,) = every_file(dst)
    assert parse_filename(copied).pano_id == "inside"
    assert copied.read_bytes() == (src / "inside.jpg").read_bytes()


def test_a_symlink_out_of_the_source_folder_is_refused(tmp_path):
    src, dst = tmp_path / "photos", tmp_path / "out"
    outside = write_photo(tmp_path / "elsewhere" / "home.jpg", 3, gps_exif(
        (45, 0, 0), "N", (7, 0, 0), "E"))
    write_photo(src / "kept.jpg", 4, gps_exif((45, 0, 0), "N", (7, 1, 0), "E"))
    (src / "link.jpg").symlink_to(outside)
    report = import_photos(src, dst, progress=False)
    assert [source.name for source, _ in report.copied] == ["kept.jpg"]
    (skipped,) = report.skipped
    assert skipped.source.endswith("link.jpg") and "outside the source folder" in skipped.reason
    assert len(every_file(dst)) == 1


def test_hostile_place_ids_never_reach_a_file_name(tmp_path):
    src, dst = tmp_path / "photos", tmp_path / "out"
    for name in ("a", "b", "c", "d", "e"):
        write_photo(src / f"{name}.jpg")
    table = write_csv(tmp_path / "rows.csv", [
        ("a.jpg", "45.0", "7.0", "zero\x00byte"),
        ("b.jpg", "45.0", "7.0", ".."),
        ("c.jpg", "45.0", "7.0", "../../escape"),
        ("d.jpg", "45.0", "7.0", "new\nline"),
        ("e.jpg", "45.0", "7.0", "plaza"),
    ], place_id=True)
    report = import_photos(src, dst, csv_path=table, place_from="csv", progress=False)
    assert [source.name for source, _ in report.copied] == ["e.jpg"]
    reasons = {Path(skipped.source).name: skipped.reason for skipped in report.skipped}
    assert "control character" in reasons["a.jpg"] and "control character" in reasons["d.jpg"]
    assert "not a name" in reasons["b.jpg"] and "contains one of" in reasons["c.jpg"]
    assert {path.parent for path in every_file(tmp_path)} == {src, dst, tmp_path}
    (copied,) = every_file(dst)
    assert parse_filename(copied).note == "plaza"


def test_control_characters_in_a_source_name_become_underscores(tmp_path):
    src, dst = tmp_path / "photos", tmp_path / "out"
    write_photo(src / "line\nbreak.jpg", 5, gps_exif((45, 0, 0), "N", (7, 0, 0), "E"))
    report = import_photos(src, dst, progress=False)
    ((_, destination),) = report.copied
    assert destination.parent == dst and parse_filename(destination).pano_id == "line_break"
    assert destination.is_file()


def test_a_nul_in_a_csv_path_is_listed_not_a_crash(tmp_path):
    src, dst = tmp_path / "photos", tmp_path / "out"
    write_photo(src / "a.jpg")
    table = write_csv(tmp_path / "rows.csv", [("a.jpg\x00.png", "45.0", "7.0")])
    report = import_photos(src, dst, csv_path=table, progress=False)
    assert report.copied == [] and "NUL" in report.skipped[0].reason


def test_files_that_are_not_images_are_reported_not_copied(tmp_path, capsys):
    src, dst = tmp_path / "photos", tmp_path / "out"
    write_photo(src / "real.jpg")
    (src / "notes.jpg").write_text("shopping list, not a photo")
    (src / "empty.png").write_bytes(b"")
    Image.new("RGB", (4, 4)).save(src / "animation.png", "GIF")
    table = write_csv(tmp_path / "rows.csv", [
        (name, "45.0", f"7.{number}") for number, name in
        enumerate(["real.jpg", "notes.jpg", "empty.png", "animation.png"])])
    assert vpr_data("import", str(src), "--out", str(dst), "--csv", str(table),
                    "--no_progress_bar") == 1
    out = capsys.readouterr().out
    assert "Copied 1 photo(s)" in out and "Skipped 3 photo(s)" in out
    assert out.count("not an image") == 2 and "a GIF image, not JPEG or PNG" in out
    assert [parse_filename(path).pano_id for path in every_file(dst)] == ["real"]
    # Read from EXIF instead, the same files are listed too.
    report = import_photos(src, tmp_path / "out2", progress=False)
    assert {Path(skipped.source).name for skipped in report.skipped} >= {
        "notes.jpg", "empty.png", "animation.png"}
