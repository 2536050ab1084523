"""Shared fixtures: tiny hand-made datasets in the real on-disk format."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from helpers.images import write_image
from helpers.places import FAR_CITY_LATLON, save_tiny_checkpoint, write_place
from PIL import Image

from vpr.data.geotag import GeoTag, format_filename


@pytest.fixture
def tiny_train(tmp_path: Path) -> Path:
    """6 places in 2 cities: places 0-4 have 4 images, place 5 has 2 (dropped by default)."""
    root = tmp_path / "train"
    seed = 0
    for place in range(6):
        city = "Rome" if place < 3 else "Oslo"
        count = 4 if place < 5 else 2
        for image in range(count):
            seed += 1
            write_image(root / city, 1000.0 * place + image, 5000.0, f"{place:04d}_{city}", seed)
    return root


@pytest.fixture
def tiny_retrieval(tmp_path: Path) -> Path:
    """A test set: database on a line every 10 m; 3 queries placed by hand."""
    root = tmp_path / "test"
    for index in range(10):
        write_image(root / "database", 500000.0 + 10 * index, 4000000.0, f"db{index}", index)
    # Query 0 at 3 m from db0 and 13 m from db1: with 25 m, db0..db2 are positives.
    write_image(root / "queries", 500003.0, 4000000.0, "q0", 100)
    # Query 1 exactly between db4 and db5 and 20 m north.
    write_image(root / "queries", 500045.0, 4000020.0, "q1", 101)
    # Query 2 far away: no positive.
    write_image(root / "queries", 600000.0, 4000000.0, "q2", 102)
    return root


@pytest.fixture(scope="session")
def served_world(tmp_path_factory) -> dict[str, Path]:
    """A tiny location index for the serving tests: places 0-3 of `test_locate`, 3 images each.

    Keys: ``database`` (the images), ``ckpt`` (an untrained 32 x 32 model), ``index``.
    """
    from vpr.locate import LocationIndex

    root = tmp_path_factory.mktemp("served")
    for place in range(4):
        write_place(root / "database", place)
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    LocationIndex.build(root / "index", ckpt, root / "database", device="cpu")
    return {"database": root / "database", "ckpt": ckpt, "index": root / "index"}


@pytest.fixture(scope="session")
def two_city_world(tmp_path_factory) -> dict[str, Path]:
    """An index of two cities in different UTM zones: places 0-3 of `test_locate` (Turin,
    32T, 3 images each) and one image in Lisbon (29S) that looks like place 0.

    A place-0 photo thus finds its 3 images in Turin (the winning cluster) and, next, the
    Lisbon image: a match in another zone and hemisphere of longitude. Keys: ``database``,
    ``ckpt``, ``index``, ``far`` (the Lisbon image).
    """
    import utm

    from vpr.locate import LocationIndex

    root = tmp_path_factory.mktemp("two_cities")
    for place in range(4):
        write_place(root / "database", place)
    latitude, longitude = FAR_CITY_LATLON
    east, north, zone_number, zone_letter = utm.from_latlon(latitude, longitude)
    tag = GeoTag(utm_east=float(east), utm_north=float(north), utm_zone_number=zone_number,
                 utm_zone_letter=zone_letter, latitude=latitude, longitude=longitude,
                 note="lisbon")
    # Place 0's pattern (as write_geo_image draws it) under other faint noise.
    base = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3))
    noise = np.random.default_rng(999).integers(-6, 7, size=base.shape)
    far = root / "database" / format_filename(tag, ".png")
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(far)
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    LocationIndex.build(root / "index", ckpt, root / "database", device="cpu")
    return {"database": root / "database", "ckpt": ckpt, "index": root / "index", "far": far}


@pytest.fixture(autouse=True)
def fresh_vpr_logger():
    """Each test starts with the `vpr` logger of a new process: no console handler left
    by an earlier test's `setup_logging` (whose lines would land in this test's stdout)."""
    logger = logging.getLogger("vpr")
    saved = (list(logger.handlers), logger.propagate, logger.level)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    logger.propagate, logger.level = True, logging.NOTSET
    yield
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        logger.addHandler(handler)
    logger.propagate, logger.level = saved[1], saved[2]
