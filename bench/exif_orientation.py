"""What honouring EXIF orientation costs the fast reader (`vpr.inputs.decode.read_uint8`).

Writes JPEGs like a training set's (no EXIF; 640 x 480 as GSV-Cities') and phone-like copies
(Orientation 6), then times, in this one process, rounds interleaved, files in the page
cache:

- ``read_uint8`` as shipped against the same reader with the orientation step taken out
  (`vpr.data.images.image_orientation` replaced by ``1``): the cost on plain JPEGs;
- torchvision's own ``decode_image(apply_exif_orientation=True)`` against ``False``, for
  comparison (vpr reads the tag once, with Pillow, for every reader: nvjpeg cannot orient);
- ``read_uint8`` of the Orientation-6 copies against the plain files (the turn itself).

Each figure is the best of ``--rounds`` rounds: on a shared machine, the round least
disturbed by other processes.

    python bench/exif_orientation.py --files 200 --rounds 7
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision.io import ImageReadMode, decode_image, read_file

import vpr.data.images as images
from vpr.inputs.decode import read_uint8


def write_files(folder: Path, count: int, size: tuple[int, int]) -> tuple[list, list]:
    """``count`` plain JPEGs and as many Orientation-6 copies of smooth random pictures."""
    rng = np.random.default_rng(0)
    plain, sideways = [], []
    for number in range(count):
        coarse = rng.integers(0, 256, size=(size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
        picture = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
        path = folder / f"plain{number}.jpg"
        picture.save(path, quality=90)
        plain.append(path)
        exif = Image.Exif()
        exif[images.ORIENTATION_TAG] = 6
        path = folder / f"sideways{number}.jpg"
        picture.transpose(Image.Transpose.ROTATE_90).save(path, quality=90, exif=exif)
        sideways.append(path)
    return plain, sideways


def per_image_ms(read: Callable[[Path], object], paths: list[Path]) -> float:
    start = time.perf_counter()
    for path in paths:
        read(path)
    return 1000 * (time.perf_counter() - start) / len(paths)


def without_orientation(path: Path):
    """read_uint8 with the orientation step taken out (the reader before it existed)."""
    original = images.image_orientation
    images.image_orientation = lambda image: 1
    try:
        return read_uint8(path)
    finally:
        images.image_orientation = original


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        plain, sideways = write_files(Path(folder), args.files, (640, 480))
        measures: dict[str, Callable[[Path], object]] = {
            "read_uint8": read_uint8,
            "read_uint8, no orientation step": without_orientation,
            "torchvision decode, apply_exif_orientation=False": lambda path: decode_image(
                read_file(str(path)), mode=ImageReadMode.RGB),
            "torchvision decode, apply_exif_orientation=True": lambda path: decode_image(
                read_file(str(path)), mode=ImageReadMode.RGB, apply_exif_orientation=True),
        }
        times: dict[str, list[float]] = {name: [] for name in measures}
        times["read_uint8, Orientation 6"] = []
        for read in measures.values():  # warm-up: page cache, allocator, lazy imports
            per_image_ms(read, plain[:20])
        for _ in range(args.rounds):
            for name, read in measures.items():
                times[name].append(per_image_ms(read, plain))
            times["read_uint8, Orientation 6"].append(per_image_ms(read_uint8, sideways))
    best = {name: min(values) for name, values in times.items()}
    for name, value in best.items():
        print(f"{name:52s} {value:7.3f} ms/image")
    print(f"ratio, plain JPEG, with / without the orientation step: "
          f"{best['read_uint8'] / best['read_uint8, no orientation step']:.3f}")
    print("ratio, torchvision apply_exif_orientation True / False: "
          f"{best['torchvision decode, apply_exif_orientation=True'] / best['torchvision decode, apply_exif_orientation=False']:.3f}")  # noqa: E501
    print(f"ratio, Orientation 6 / plain: "
          f"{best['read_uint8, Orientation 6'] / best['read_uint8']:.3f}")


if __name__ == "__main__":
    main()
