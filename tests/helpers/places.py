"""Geotagged places of a tiny world and an untrained model for it (index, locate, serve)."""

from __future__ import annotations

from pathlib import Path

import lightning
import numpy as np
import utm
from PIL import Image

from vpr.data.geotag import GeoTag, format_filename

# Places 1 km apart in UTM zone 32T (near Turin); images of a place lie within 10 m.
ZONE = (32, "T")
PLACES = [(395000.0 + 1000 * number, 4990000.0) for number in range(4)]
OFFSETS = [(0.0, 0.0), (6.0, 0.0), (0.0, 8.0)]


def write_geo_image(folder: Path, east: float, north: float, place: int, shot: int) -> Path:
    """An @-named image with lat/lon filled; images of one place differ only by faint noise."""
    latitude, longitude = utm.to_latlon(east, north, *ZONE)
    tag = GeoTag(utm_east=east, utm_north=north, utm_zone_number=ZONE[0],
                 utm_zone_letter=ZONE[1], latitude=float(latitude), longitude=float(longitude),
                 note=f"place{place}_{shot}")
    base = np.random.default_rng(place).integers(0, 256, size=(32, 32, 3))
    noise = np.random.default_rng(100 * place + shot).integers(-6, 7, size=base.shape)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / format_filename(tag, ".png")
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)
    return path


def write_place(folder: Path, place: int) -> list[Path]:
    east, north = PLACES[place]
    return [write_geo_image(folder, east + dx, north + dy, place, shot)
            for shot, (dx, dy) in enumerate(OFFSETS)]


def save_tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """An untrained ResNet-18 + ConvAP checkpoint for 32 x 32 images."""
    from vpr.training.module import VPRModule

    lightning.seed_everything(seed, verbose=False)
    module = VPRModule(pretrained="none", image_size=(32, 32), descriptors_dim=32)
    trainer = lightning.Trainer(max_epochs=0, logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path


# Lisbon, UTM zone 29S: about 1,500 km from the Turin places of `test_locate` (zone 32T).
FAR_CITY_LATLON = (38.7223, -9.1393)
