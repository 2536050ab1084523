"""Saving retrieval predictions for inspection: one image row and one text file per query."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vpr.data.images import apply_orientation, image_orientation

# Frame colours of a prediction: pure colours survive JPEG compression best.
CORRECT_COLOUR = (0, 255, 0)
WRONG_COLOUR = (255, 0, 0)
QUERY_COLOUR = (255, 255, 255)
# Colour of a tile whose image cannot be read, and of the gaps between tiles.
MISSING_COLOUR = (128, 128, 128)
BACKGROUND_COLOUR = (0, 0, 0)


def _load_tile(path: str | Path, height: int, frame: int, colour: tuple[int, int, int]):
    """Opens ``path`` resized to ``height`` and framed in ``colour``; grey if unreadable."""
    try:
        with Image.open(path) as image:
            orientation = image_orientation(image)
            image = apply_orientation(image.convert("RGB"), orientation)
        width = max(1, round(image.width * height / image.height))
        image = image.resize((width, height))
    except OSError:
        # One unreadable file should not stop the others from being saved.
        image = Image.new("RGB", (height, height), MISSING_COLOUR)
    return ImageOps.expand(image, border=frame, fill=colour)


def _row_image(tiles: list[Image.Image], gap: int) -> Image.Image:
    """Places ``tiles`` (all the same height) side by side, ``gap`` pixels apart."""
    width = sum(tile.width for tile in tiles) + gap * (len(tiles) - 1)
    row = Image.new("RGB", (width, tiles[0].height), BACKGROUND_COLOUR)
    x = 0
    for tile in tiles:
        row.paste(tile, (x, 0))
        x += tile.width + gap
    return row


def save_predictions(
    out_dir: Path,
    query_paths: Sequence[str | Path],
    database_paths: Sequence[str | Path],
    predictions: np.ndarray,
    positives_per_query: Sequence[np.ndarray],
    num_preds: int,
    only_wrong: bool,
    image_height: int = 256,
) -> int:
    """Writes ``{query_index:05d}.jpg`` and ``.txt`` with each query's top predictions.

    The image shows the query (white frame) then ``num_preds`` predictions, framed green when
    the prediction is a positive and red when not. The text file lists the query path, the
    prediction paths marked correct/wrong, and the positive paths.

    Args:
        out_dir: folder to write into (created if needed).
        query_paths: image path of each query.
        database_paths: image path of each database item.
        predictions: (Q, k) database indices, best first.
        positives_per_query: database indices of each query's positives.
        num_preds: predictions to show per query (at most k).
        only_wrong: save only the queries whose top-1 prediction is wrong.
        image_height: height every image is resized to, in pixels.

    Returns:
        The number of queries saved.
    """
    predictions = np.asarray(predictions)
    if len(query_paths) != predictions.shape[0] or len(positives_per_query) != len(query_paths):
        raise ValueError(
            f"{len(query_paths)} query paths, {predictions.shape[0]} rows of predictions and "
            f"{len(positives_per_query)} lists of positives: they must be equal"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    num_preds = min(num_preds, predictions.shape[1])
    # A frame thick enough to see, and to keep its colour through JPEG compression.
    frame = max(4, image_height // 32)
    saved = 0
    for query_index, (query_path, positives) in enumerate(
        zip(query_paths, positives_per_query, strict=True)
    ):
        shown = predictions[query_index, :num_preds]
        correct = np.isin(shown, np.asarray(positives))
        top1_correct = predictions.shape[1] > 0 and bool(
            np.isin(predictions[query_index, 0], np.asarray(positives))
        )
        if only_wrong and top1_correct:
            continue
        tiles = [_load_tile(query_path, image_height, frame, QUERY_COLOUR)]
        lines = [f"query: {query_path}", "predictions:"]
        for rank, (database_index, is_correct) in enumerate(zip(shown, correct, strict=True), 1):
            colour = CORRECT_COLOUR if is_correct else WRONG_COLOUR
            tiles.append(_load_tile(database_paths[database_index], image_height, frame, colour))
            verdict = "correct" if is_correct else "wrong"
            lines.append(f"{rank} {verdict} {database_paths[database_index]}")
        stem = out_dir / f"{query_index:05d}"
        _row_image(tiles, gap=frame).save(stem.with_suffix(".jpg"), quality=95)
        lines.append(f"positives ({len(positives)}):")
        lines += [str(database_paths[index]) for index in positives]
        stem.with_suffix(".txt").write_text("\n".join(lines) + "\n")
        saved += 1
    return saved
