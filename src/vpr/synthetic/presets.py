"""Named sizes of the synthetic benchmark (``tiny`` for tests ... ``medium`` for benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """How much to generate, and at which image size.

    Test areas are rectangles of city blocks; database images are taken every
    ``database_spacing`` metres along every street of an area, once per heading in
    ``database_headings`` (degrees relative to the street direction).
    """

    name: str
    image_size: tuple[int, int]  # default (width, height)
    train_cities: int
    places_per_city: int
    images_per_place: int
    sf_val_blocks: tuple[int, int]  # (east, north) blocks of the validation area
    sf_test_blocks: tuple[int, int]
    tokyo_blocks: tuple[int, int]
    database_spacing: float  # metres
    database_headings: tuple[float, ...]
    sf_val_queries: int
    sf_test_queries: int
    tokyo_queries: int  # a multiple of 3: day, sunset, night thirds


PRESETS: dict[str, Preset] = {
    "tiny": Preset(
        name="tiny", image_size=(64, 48), train_cities=2, places_per_city=12,
        images_per_place=4, sf_val_blocks=(1, 1), sf_test_blocks=(1, 1), tokyo_blocks=(1, 1),
        database_spacing=25.0, database_headings=(45.0, 225.0), sf_val_queries=12,
        sf_test_queries=12, tokyo_queries=12,
    ),
    "demo": Preset(
        name="demo", image_size=(96, 72), train_cities=8, places_per_city=50,
        images_per_place=4, sf_val_blocks=(2, 1), sf_test_blocks=(2, 2), tokyo_blocks=(2, 2),
        database_spacing=10.0, database_headings=(45.0, 135.0, 225.0, 315.0),
        sf_val_queries=100, sf_test_queries=200, tokyo_queries=150,
    ),
    "small": Preset(
        name="small", image_size=(224, 168), train_cities=20, places_per_city=60,
        images_per_place=4, sf_val_blocks=(2, 2), sf_test_blocks=(3, 3), tokyo_blocks=(2, 2),
        database_spacing=8.0, database_headings=(45.0, 135.0, 225.0, 315.0),
        sf_val_queries=200, sf_test_queries=500, tokyo_queries=300,
    ),
    "medium": Preset(
        name="medium", image_size=(320, 240), train_cities=20, places_per_city=200,
        images_per_place=5, sf_val_blocks=(3, 3), sf_test_blocks=(5, 4), tokyo_blocks=(3, 3),
        database_spacing=6.0, database_headings=(45.0, 135.0, 225.0, 315.0),
        sf_val_queries=500, sf_test_queries=1000, tokyo_queries=600,
    ),
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name is an error listing the valid ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def parse_image_size(text: str) -> tuple[int, int]:
    """Parses ``'96x72'`` (width x height) or ``'128'`` (square) into (width, height)."""
    parts = text.lower().replace(" ", "").split("x")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        numbers = numbers * 2
    if len(numbers) != 2 or min(numbers) < 16 or max(numbers) > 2048:
        raise ValueError(
            f"image size {text!r}: expected WIDTHxHEIGHT (e.g. 96x72) or one number for a "
            "square, each between 16 and 2048 pixels"
        )
    return numbers[0], numbers[1]
