"""`vpr benchmark --list` and docs/DATA.md's protocol table say what the manifests say."""

from __future__ import annotations

from helpers.paths import REPO

from vpr.benchmarks.listing import TABLE_END, TABLE_START, describe_counts, markdown_table
from vpr.benchmarks.manifest import list_manifests, load_manifest
from vpr.cli import main

DATA_MD = REPO / "docs" / "DATA.md"


def test_docs_table_is_the_one_generated_from_the_manifests():
    text = DATA_MD.read_text()
    assert text.count(TABLE_START) == 1 and text.count(TABLE_END) == 1
    documented = text[text.index(TABLE_START):text.index(TABLE_END) + len(TABLE_END)] + "\n"
    assert documented == markdown_table(), (
        "docs/DATA.md's benchmark table differs from the manifests; regenerate it with "
        "python -m vpr.benchmarks.listing")


def test_table_rows_carry_counts_rules_and_sources():
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[2:-1]]
            for line in markdown_table().splitlines() if line.startswith("| `")}
    assert set(rows) == {f"`{name}`" for name in list_manifests()}
    title, counts, positives, access, sources = rows["`pitts30k_test`"]
    assert counts == "10,000 database / 6,816 queries (pinned: database and queries)"
    assert (positives, access) == ("25 m", "request form")
    assert rows["`nordland_2frames`"][2] == "+-2 frames"
    assert rows["`nordland_2frames`"][3] == "free, `vpr download`"
    assert rows["`st_lucia`"][3] == "free, by hand"
    assert rows["`msls_val_740`"][1].startswith("? database / 740 queries (pinned: queries)")
    assert "gmberton/VPR-datasets-downloader download_eynsham.py" in rows["`eynsham`"][4]


def test_counts_say_what_is_pinned():
    assert describe_counts(load_manifest("tokyo247")) == (
        "75,984 database / 315 queries (pinned: database and queries)")
    assert describe_counts(load_manifest("svox_sun")).startswith("not pinned; reported: ")
    assert describe_counts(load_manifest("pitts250k_val")) == "not pinned"


def test_list_shows_each_protocol_with_rule_counts_and_source(capsys):
    assert main(["benchmark", "--list"]) == 0
    printed = capsys.readouterr().out
    for name in list_manifests():
        manifest = load_manifest(name)
        block = printed[printed.index(f"{name}: {manifest.title}\n"):]
        block = block[: block.index("\n    access:")]
        assert f"positives: {manifest.describe_positives()} (source: " in block
        assert f"counts: {describe_counts(manifest)}" in block
        assert manifest.sources[0] in block
    assert "nordland_swapped: Nordland (winter database, summer queries; +-10 frames)" in printed
