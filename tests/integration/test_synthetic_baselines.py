"""bench/synthetic_baselines.py on a hand-made set of 8 database images and 4 queries."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from helpers.images import write_image
from helpers.paths import REPO

from vpr.data.geotag import GeoTag, format_filename

BENCH = REPO / "bench" / "synthetic_baselines.py"


@pytest.fixture(scope="module")
def baselines():
    spec = importlib.util.spec_from_file_location("synthetic_baselines", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def city(tmp_path: Path) -> Path:
    """data/toy/test: places 100 m apart; each query is a copy of one database image."""
    root = tmp_path / "toy" / "test"
    database = [write_image(root / "database", 500000.0 + 100 * i, 4000000.0, f"d{i:05d}_day",
                            seed=i) for i in range(8)]
    (root / "queries").mkdir()
    for number, (place, condition) in enumerate([(1, "day"), (3, "day"), (5, "sunset"),
                                                 (6, "night")]):
        name = format_filename(GeoTag(utm_east=500000.0 + 100 * place + 3, utm_north=4000000.0,
                                      utm_zone_number=33, utm_zone_letter="T",
                                      note=f"q{number:04d}_{condition}"), ".jpg")
        shutil.copy(database[place], root / "queries" / name)
    return tmp_path


def test_pixels_and_untrained(baselines, city: Path) -> None:
    rows = baselines.run(city, ["toy/test"], ["pixels", "untrained"], None, (8, 6), seed=0,
                         batch_size=4, device="cpu", log=lambda text: None)
    assert [row["method"] for row in rows] == ["pixels", "untrained"]
    for row in rows:
        # Queries are exact copies of their database image: every method finds them.
        assert row["recalls"]["R@1"] == 100.0
        assert set(row["recalls_per_group"]) == {"day", "sunset", "night"}
        assert row["recalls_per_group"]["day"]["queries_num"] == 2
    table = baselines.format_tables(rows)
    assert "| method | all (4) R@1 | all (4) R@5 | day (2) R@1 |" in table
    assert "| raw pixels 8x6 RGB | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in table
    assert "night (1) R@5" in table.splitlines()[2]


def test_thumbnail_size_parsing(baselines) -> None:
    assert baselines.parse_size("16x12") == (16, 12)
    assert baselines.parse_size("8") == (8, 8)
    with pytest.raises(Exception, match="WIDTHxHEIGHT"):
        baselines.parse_size("big")
