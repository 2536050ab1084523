"""Evaluation: exact search, Recall@N on hand-computed cases, saved prediction images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpr.eval.metrics import format_recalls, recall_at_n
from vpr.eval.predictions import save_predictions
from vpr.eval.search import search


def positives(*lists: list[int]) -> list[np.ndarray]:
    """Positives per query as the int arrays a RetrievalSet gives."""
    return [np.array(items, dtype=np.int64) for items in lists]


# ---- recall_at_n


def test_recall_on_hand_computed_case():
    # 4 queries, 5 database items, all 5 predicted per query.
    predictions = np.array(
        [
            [0, 1, 2, 3, 4],  # positive 0 at rank 1
            [1, 0, 2, 3, 4],  # positive 3 at rank 4 exactly
            [4, 3, 2, 1, 0],  # no positive at all: a miss everywhere
            [2, 3, 4, 0, 1],  # positive 4 at rank 3
        ]
    )
    positives_per_query = positives([0], [3], [], [4, 9])
    recalls = recall_at_n(predictions, positives_per_query, n_values=(1, 2, 3, 4, 5, 20))
    assert recalls == {1: 25.0, 2: 25.0, 3: 50.0, 4: 75.0, 5: 75.0, 20: 75.0}
    assert list(recalls) == [1, 2, 3, 4, 5, 20]


def test_recall_counts_a_positive_at_rank_n_for_n_but_not_n_minus_1():
    predictions = np.array([[7, 8, 9, 3, 5]])
    for rank in range(1, 6):
        recalls = recall_at_n(predictions, positives([predictions[0, rank - 1]]), range(1, 6))
        assert recalls == {n: (100.0 if n >= rank else 0.0) for n in range(1, 6)}


def test_recall_with_n_above_k_uses_all_predictions_and_misses_stay_misses():
    predictions = np.array([[0, 1], [2, 3]])
    # Query 1's positive (4) is not among its 2 predictions: R@20 must not count it.
    recalls = recall_at_n(predictions, positives([1], [4]), n_values=(1, 2, 20))
    assert recalls == {1: 0.0, 2: 50.0, 20: 50.0}


def test_recall_against_a_plain_loop():
    rng = np.random.default_rng(0)
    predictions = np.stack([rng.permutation(30)[:10] for _ in range(50)])
    positives_per_query = [
        rng.choice(30, size=rng.integers(0, 4), replace=False) for _ in range(50)
    ]
    recalls = recall_at_n(predictions, positives_per_query, (1, 5, 10))
    for n in (1, 5, 10):
        hits = sum(
            any(p in set(pos.tolist()) for p in preds[:n])
            for preds, pos in zip(predictions, positives_per_query, strict=True)
        )
        assert recalls[n] == pytest.approx(100 * hits / 50)


def test_recall_input_checks():
    with pytest.raises(ValueError, match="lists of positives"):
        recall_at_n(np.zeros((2, 3), np.int64), positives([0]))
    assert recall_at_n(np.zeros((0, 3), np.int64), [], (1, 5)) == {1: 0.0, 5: 0.0}


def test_format_recalls():
    assert format_recalls({1: 45.0, 5: 70.0}) == "R@1: 45.0, R@5: 70.0"
    assert format_recalls({1: 100 / 3}) == "R@1: 33.3"


# ---- search


def test_search_hand_made_2d():
    database = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=np.float32)
    queries = np.array([[1, 2], [9, 8]], dtype=np.float32)
    distances, indices = search(database, queries, k=4)
    # Squared L2 distances, worked out by hand.
    np.testing.assert_array_equal(indices, [[0, 2, 1, 3], [3, 1, 2, 0]])
    np.testing.assert_allclose(distances, [[5, 65, 85, 145], [5, 65, 85, 145]])
    assert distances.dtype == np.float32 and indices.dtype == np.int64
    assert distances.shape == indices.shape == (2, 4)


def test_search_matches_brute_force_numpy():
    rng = np.random.default_rng(1)
    database = rng.standard_normal((200, 8))  # float64, converted by search
    queries = rng.standard_normal((20, 8))
    distances, indices = search(database, queries, k=7)
    all_distances = ((queries[:, None, :] - database[None, :, :]) ** 2).sum(-1)
    expected_indices = np.argsort(all_distances, axis=1)[:, :7]
    np.testing.assert_array_equal(indices, expected_indices)
    expected = np.take_along_axis(all_distances, expected_indices, axis=1)
    np.testing.assert_allclose(distances, expected, rtol=1e-4, atol=1e-4)


def test_search_accepts_non_contiguous_input_and_clips_k():
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((5, 8)).astype(np.float32)
    database = wide[:, ::2]  # a strided view, not C-contiguous
    distances, indices = search(database, database[:2], k=100)
    assert indices.shape == distances.shape == (2, 5)
    np.testing.assert_array_equal(indices[:, 0], [0, 1])  # each query finds itself first
    np.testing.assert_allclose(distances[:, 0], 0, atol=1e-6)


def test_search_dimension_mismatch_names_both_dims():
    with pytest.raises(ValueError, match=r"database has 3.*queries have 2"):
        search(np.zeros((4, 3)), np.zeros((1, 2)), k=1)


def test_tied_database_items_are_both_returned_and_counted():
    # Items 1 and 2 are identical: both are equally near the query.
    database = np.array([[0, 0], [1, 0], [1, 0], [5, 5]], dtype=np.float32)
    query = np.array([[1, 0.1]], dtype=np.float32)
    distances, indices = search(database, query, k=3)
    assert set(indices[0, :2].tolist()) == {1, 2}
    assert distances[0, 0] == pytest.approx(distances[0, 1])
    assert indices[0, 2] == 0
    # Whichever of the twins comes first, the positive one is within the top 2.
    for positive in (1, 2):
        recalls = recall_at_n(indices, positives([positive]), (1, 2, 3))
        assert recalls[2] == recalls[3] == 100.0
    # Both twins positive: top-1 is right whatever the tie order.
    assert recall_at_n(indices, positives([1, 2]), (1,)) == {1: 100.0}


# ---- save_predictions

IMAGE_HEIGHT = 64
FRAME = 4  # save_predictions's frame for a 64-pixel height: max(4, 64 // 32)


def write_square(path: Path, colour: tuple[int, int, int]) -> Path:
    """Writes a 32 x 32 plain image (resized to 64 x 64 by save_predictions)."""
    Image.new("RGB", (32, 32), colour).save(path)
    return path


@pytest.fixture
def retrieval_images(tmp_path: Path) -> tuple[list[Path], list[Path]]:
    """3 query images and 5 database images, all blue, so the frames stand out."""
    queries = [write_square(tmp_path / f"query{i}.png", (0, 0, 255)) for i in range(3)]
    database = [write_square(tmp_path / f"db{i}.png", (0, 0, 255)) for i in range(5)]
    return queries, database


# Query 0: top-1 right; query 1: top-1 wrong, second right; query 2: nothing right.
PREDICTIONS = np.array([[0, 1, 2], [2, 3, 4], [4, 0, 1]])
POSITIVES = positives([0], [3], [])


def frame_pixel(image: np.ndarray, tile: int) -> np.ndarray:
    """The colour in the middle of the left frame edge of tile ``tile`` (0 is the query)."""
    tile_width = IMAGE_HEIGHT + 2 * FRAME
    x = tile * (tile_width + FRAME) + FRAME // 2
    return image[image.shape[0] // 2, x].astype(int)


def is_green(pixel: np.ndarray) -> bool:
    return pixel[1] > 200 and pixel[0] < 60 and pixel[2] < 60


def is_red(pixel: np.ndarray) -> bool:
    return pixel[0] > 200 and pixel[1] < 60 and pixel[2] < 60


def test_save_predictions_writes_images_and_text(tmp_path, retrieval_images):
    query_paths, database_paths = retrieval_images
    out_dir = tmp_path / "preds"
    saved = save_predictions(
        out_dir,
        query_paths,
        database_paths,
        PREDICTIONS,
        POSITIVES,
        num_preds=2,
        only_wrong=False,
        image_height=IMAGE_HEIGHT,
    )
    assert saved == 3
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "00000.jpg",
        "00000.txt",
        "00001.jpg",
        "00001.txt",
        "00002.jpg",
        "00002.txt",
    ]

    image = np.asarray(Image.open(out_dir / "00001.jpg").convert("RGB"))
    # Query tile + 2 prediction tiles, each framed, with frame-wide gaps between them.
    assert image.shape[0] == IMAGE_HEIGHT + 2 * FRAME
    assert image.shape[1] == 3 * (IMAGE_HEIGHT + 2 * FRAME) + 2 * FRAME
    assert is_red(frame_pixel(image, 1))  # prediction 2 is not a positive of query 1
    assert is_green(frame_pixel(image, 2))  # prediction 3 is
    query_frame = frame_pixel(image, 0)
    assert not is_green(query_frame) and not is_red(query_frame)

    image = np.asarray(Image.open(out_dir / "00000.jpg").convert("RGB"))
    assert is_green(frame_pixel(image, 1)) and is_red(frame_pixel(image, 2))

    text = (out_dir / "00001.txt").read_text().splitlines()
    assert text[0] == f"query: {query_paths[1]}"
    assert f"1 wrong {database_paths[2]}" in text
    assert f"2 correct {database_paths[3]}" in text
    assert text[-2:] == ["positives (1):", str(database_paths[3])]


def test_save_predictions_only_wrong(tmp_path, retrieval_images):
    query_paths, database_paths = retrieval_images
    out_dir = tmp_path / "wrong"
    saved = save_predictions(
        out_dir,
        query_paths,
        database_paths,
        PREDICTIONS,
        POSITIVES,
        num_preds=3,
        only_wrong=True,
        image_height=IMAGE_HEIGHT,
    )
    # Query 0's top-1 is right: only queries 1 and 2 are saved.
    assert saved == 2
    assert sorted(p.name for p in out_dir.glob("*.jpg")) == ["00001.jpg", "00002.jpg"]
    assert sorted(p.name for p in out_dir.glob("*.txt")) == ["00001.txt", "00002.txt"]


def test_save_predictions_caps_num_preds_and_survives_a_missing_image(tmp_path, retrieval_images):
    query_paths, database_paths = retrieval_images
    database_paths = [*database_paths[:4], tmp_path / "missing.jpg"]
    out_dir = tmp_path / "capped"
    saved = save_predictions(
        out_dir,
        query_paths,
        database_paths,
        PREDICTIONS,
        POSITIVES,
        num_preds=10,
        only_wrong=False,
        image_height=IMAGE_HEIGHT,
    )
    assert saved == 3
    image = np.asarray(Image.open(out_dir / "00002.jpg").convert("RGB"))
    assert image.shape[1] == 4 * (IMAGE_HEIGHT + 2 * FRAME) + 3 * FRAME  # query + k=3
    assert is_red(frame_pixel(image, 1))  # the unreadable prediction is still framed
