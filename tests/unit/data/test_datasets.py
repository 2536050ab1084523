from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.images import write_image
from torch.utils.data import DataLoader

from vpr.data.datasets import RetrievalSet, TrainPlaces, collate_places, positives_within
from vpr.data.geotag import GeoTagError
from vpr.inputs.transforms import eval_transform, train_transform


def test_places_are_grouped_by_note_and_small_places_dropped(tiny_train):
    dataset = TrainPlaces(tiny_train, train_transform((32, 32)), img_per_place=4,
                          min_img_per_place=4)
    assert dataset.place_ids == [f"{p:04d}_{'Rome' if p < 3 else 'Oslo'}" for p in range(5)]
    assert all(len(paths) == 4 for paths in dataset.images_per_place)
    with_small = TrainPlaces(tiny_train, train_transform((32, 32)), img_per_place=2,
                             min_img_per_place=2)
    assert len(with_small) == 6


def test_p_by_k_batches(tiny_train):
    dataset = TrainPlaces(tiny_train, train_transform((24, 20)), img_per_place=3,
                          min_img_per_place=4)
    loader = DataLoader(dataset, batch_size=2, shuffle=False, collate_fn=collate_places)
    images, labels, skipped = next(iter(loader))
    assert images.shape == (6, 3, 24, 20)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert skipped == 0
    # The K images of a place are distinct files.
    item = dataset[0][0]
    assert not torch.equal(item[0], item[1])


def test_img_per_place_above_min_is_refused(tiny_train):
    with pytest.raises(ValueError, match="^img_per_place"):
        TrainPlaces(tiny_train, train_transform(), img_per_place=5, min_img_per_place=4)


def test_corrupt_training_image_is_skipped_and_counted(tiny_train):
    dataset = TrainPlaces(tiny_train, train_transform((16, 16)), img_per_place=2,
                          min_img_per_place=4)
    bad = dataset.images_per_place[0][0]
    bad.write_bytes(b"not a jpeg")
    skipped_total = 0
    for _ in range(20):
        images, labels, skipped = dataset[0]
        assert images.shape == (2, 3, 16, 16)
        skipped_total += skipped
    assert skipped_total > 0


def test_name_without_utm_fields_is_named(tiny_train):
    (tiny_train / "Rome" / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(GeoTagError, match="holiday.jpg"):
        TrainPlaces(tiny_train, train_transform())


def test_empty_or_missing_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        TrainPlaces(tmp_path / "nowhere", train_transform())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        TrainPlaces(tmp_path / "empty", train_transform())


def test_positives_by_radius_on_hand_placed_points(tiny_retrieval):
    dataset = RetrievalSet(tiny_retrieval, eval_transform(), positive_dist_threshold=25)
    assert dataset.database_num == 10 and dataset.queries_num == 3
    # Query 0 at east+3: db0 (3 m), db1 (7 m), db2 (17 m) within 25 m; db3 at 27 m is not.
    assert dataset.positives_per_query[0].tolist() == [0, 1, 2]
    # Query 1 at (45, 20): db4 and db5 at sqrt(5^2+20^2)=20.6 m; db3/db6 at 25 m exactly.
    assert dataset.positives_per_query[1].tolist() == [3, 4, 5, 6]
    assert dataset.positives_per_query[2].tolist() == []
    tight = RetrievalSet(tiny_retrieval, eval_transform(), positive_dist_threshold=21)
    assert tight.positives_per_query[1].tolist() == [4, 5]
    image, index = dataset[dataset.database_num]
    assert index == 10 and image.shape == (3, 32, 32)


def test_database_paths_come_first(tiny_retrieval):
    dataset = RetrievalSet(tiny_retrieval, eval_transform())
    assert all("database" in str(p) for p in dataset.images_paths[:10])
    assert all("queries" in str(p) for p in dataset.images_paths[10:])


def test_positives_within_matches_brute_force():
    rng = np.random.default_rng(0)
    database = rng.uniform(0, 100, (50, 2))
    queries = rng.uniform(0, 100, (7, 2))
    result = positives_within(queries, database, 15.0, chunk=3)
    for query, positives in zip(queries, result):
        expected = [i for i, point in enumerate(database) if np.hypot(*(query - point)) <= 15.0]
        assert positives.tolist() == expected


def test_test_set_without_queries_folder(tmp_path: Path):
    write_image(tmp_path / "set" / "database", 1, 2, "a", 0)
    with pytest.raises(FileNotFoundError, match="queries/"):
        RetrievalSet(tmp_path / "set", eval_transform())
