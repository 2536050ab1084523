"""GSV-Cities read natively for training: names from the dataframes, P x K batches."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from vpr.data.datasets import TrainPlaces, collate_places
from vpr.data.gsv_cities import GSVCitiesPlaces, image_name, train_places_type
from vpr.inputs.transforms import eval_transform

COLUMNS = ["place_id", "year", "month", "northdeg", "city_id", "lat", "lon", "panoid"]


def test_image_name_follows_the_gsv_cities_pattern():
    row = {"place_id": "13", "year": "2017", "month": "3", "northdeg": "45",
           "city_id": "London", "lat": "51.507400", "lon": "-0.1278", "panoid": "abc-_XYZ"}
    # city_placeid(7)_year(4)_month(2)_northdeg(3)_lat_lon_panoid, floats printed as pandas.
    assert image_name(row) == "London_0000013_2017_03_045_51.5074_-0.1278_abc-_XYZ.jpg"
    assert image_name({**row, "place_id": "100013"}).startswith("London_0000013_")


def _write_city(root: Path, city: str, images_per_place: list[int], seed: int) -> None:
    (root / "Dataframes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with open(root / "Dataframes" / f"{city}.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for place, count in enumerate(images_per_place):
            for image in range(count):
                row = [place, 2010 + image, 1 + image, 10 * image, city,
                       40.0 + place / 1000, -3.0 - image / 1000, f"pano{place}x{image}"]
                writer.writerow(row)
                name = image_name(dict(zip(COLUMNS, map(str, row))))
                path = root / "Images" / city / name
                path.parent.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(path)


@pytest.fixture
def gsv_cities(tmp_path: Path) -> Path:
    root = tmp_path / "gsv-cities"
    _write_city(root, "Madrid", [4, 5, 2], 0)  # place 2 has too few images
    _write_city(root, "Osaka", [4, 4], 1)
    return root


def test_places_are_grouped_per_city_and_small_ones_dropped(gsv_cities: Path):
    dataset = GSVCitiesPlaces(gsv_cities, None, img_per_place=4, min_img_per_place=4)
    assert dataset.place_ids == ["Madrid_0", "Madrid_1", "Osaka_0", "Osaka_1"]
    assert [len(paths) for paths in dataset.images_per_place] == [4, 5, 4, 4]
    only = GSVCitiesPlaces(gsv_cities, None, min_img_per_place=2, img_per_place=2,
                           cities=["Madrid"])
    assert only.place_ids == ["Madrid_0", "Madrid_1", "Madrid_2"]


def test_batches_are_p_by_k(gsv_cities: Path):
    dataset = GSVCitiesPlaces(gsv_cities, eval_transform((16, 16)), img_per_place=3,
                              min_img_per_place=4)
    loader = DataLoader(dataset, batch_size=2, shuffle=False, collate_fn=collate_places)
    images, labels, skipped = next(iter(loader))
    assert images.shape == (6, 3, 16, 16)
    assert torch.equal(labels, torch.tensor([0, 0, 0, 1, 1, 1]))
    assert skipped == 0


def test_detection_and_errors(gsv_cities: Path, tmp_path: Path):
    assert train_places_type(gsv_cities) is GSVCitiesPlaces
    assert train_places_type(tmp_path / "elsewhere") is TrainPlaces
    assert train_places_type(tmp_path, "gsv_cities") is GSVCitiesPlaces
    with pytest.raises(ValueError, match="^train_format"):
        train_places_type(gsv_cities, "gsv")
    next((gsv_cities / "Images" / "Osaka").iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match=r"not found \(1 missing\)"):
        GSVCitiesPlaces(gsv_cities, None)
    with pytest.raises(FileNotFoundError, match="Paris"):
        GSVCitiesPlaces(gsv_cities, None, cities=["Paris"])


def test_train_pipeline_reads_gsv_cities(gsv_cities: Path):
    from vpr.cli import build_parser
    from vpr.cli.flags import explicit_settings
    from vpr.training.run import _pipeline, resolve_config

    args = build_parser().parse_args(["train", "--train_path", str(gsv_cities),
                                      "--train_format", "gsv_cities", "--image_size", "16"])
    config = resolve_config(explicit_settings(args))
    dataset = _pipeline(config).train_set(
        config.train_path, img_per_place=4, min_img_per_place=4,
        train_format=config.train_format)
    assert isinstance(dataset, GSVCitiesPlaces) and len(dataset) == 4
    images, labels, _ = dataset[0]
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
