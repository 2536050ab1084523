"""Writing a synthetic benchmark to disk in the real datasets' layout, with a manifest.

::

    DIR/manifest.json
    DIR/gsv_xs/train/<City>/@...@.jpg
    DIR/sf_xs/{val,test}/{database,queries}/@...@.jpg
    DIR/tokyo_xs/test/{database,queries}/@...@.jpg
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vpr.synthetic.city import build_city
from vpr.synthetic.plan import POSITIVE_RADIUS, ImageSpec, plan_all, train_cities
from vpr.synthetic.postprocess import develop, encode_jpeg
from vpr.synthetic.presets import get_preset
from vpr.synthetic.render import render
from vpr.utils.atomic import write_json_atomic

GENERATOR_VERSION = 1
MANIFEST = "manifest.json"
DATASET_FOLDERS = ("gsv_xs", "sf_xs", "tokyo_xs")
RETRIEVAL_SETS = ("sf_xs/val", "sf_xs/test", "tokyo_xs/test")


class SyntheticCityError(ValueError):
    """The output folder cannot take the requested city (foreign content, other settings)."""


def supersample_for(image_size: tuple[int, int]) -> int:
    """Rays per pixel side: small images need anti-aliasing most and it costs them little."""
    return 2 if max(image_size) <= 128 else 1


def render_spec(spec: ImageSpec, image_size: tuple[int, int], seed: int) -> bytes:
    """The JPEG bytes of one planned image."""
    city = build_city(spec.city, seed, spec.blocks)
    linear = render(city, spec.camera, spec.appearance, image_size[0], image_size[1],
                    supersample_for(image_size))
    return encode_jpeg(develop(linear, spec.appearance), spec.appearance.jpeg_quality)


def _render_job(job: tuple[ImageSpec, tuple[int, int], int]) -> bytes:
    return render_spec(*job)


def _rendered(
    specs: list[ImageSpec], image_size: tuple[int, int], seed: int, workers: int
) -> Iterator[bytes]:
    jobs = ((spec, image_size, seed) for spec in specs)
    if workers <= 1:
        yield from map(_render_job, jobs)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_render_job, jobs, chunksize=16)


def _settings(preset: str, seed: int, image_size: tuple[int, int]) -> dict:
    """The fields that decide the files; ``image_size`` is [width, height]."""
    # The generator's name as cities on disk record it (the package moved, the files did not).
    return {"generator": "vpr.data.synthetic", "generator_version": GENERATOR_VERSION,
            "preset": preset, "seed": seed, "image_size": list(image_size)}


def _counts(specs: list[ImageSpec], preset_name: str, seed: int) -> dict:
    folders = Counter(spec.relative_path.rsplit("/", 1)[0] for spec in specs)
    train = [spec for spec in specs if spec.relative_path.startswith("gsv_xs/train/")]
    places = {spec.relative_path.rsplit("@", 2)[-2] for spec in train}
    counts: dict = {"gsv_xs/train": {"cities": len(train_cities(get_preset(preset_name), seed)),
                                     "places": len(places), "images": len(train)}}
    for name in RETRIEVAL_SETS:
        counts[name] = {"database": folders[f"{name}/database"],
                        "queries": folders[f"{name}/queries"]}
    tokyo = [spec for spec in specs if spec.relative_path.startswith("tokyo_xs/test/queries/")]
    counts["tokyo_xs/test"]["queries_by_time"] = dict(
        sorted(Counter(spec.appearance.time_of_day for spec in tokyo).items()))
    counts["total_images"] = len(specs)
    return counts


def _check_positives(specs: list[ImageSpec]) -> None:
    """Every query must have a database image within POSITIVE_RADIUS metres."""
    for name in RETRIEVAL_SETS:
        database = np.array([spec.utm for spec in specs
                             if spec.relative_path.startswith(f"{name}/database/")])
        for spec in specs:
            if spec.relative_path.startswith(f"{name}/queries/"):
                nearest = np.sqrt(((database - np.array(spec.utm)) ** 2).sum(axis=1).min())
                if nearest > POSITIVE_RADIUS:
                    raise RuntimeError(
                        f"{spec.relative_path}: nearest database image is {nearest:.1f} m away")


def read_manifest(out: Path) -> dict | None:
    """The manifest of a generated city in ``out``, or None when there is none."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _is_complete(out: Path, manifest: dict) -> bool:
    if not manifest.get("complete"):
        return False
    expected = manifest.get("counts", {}).get("total_images")
    found = sum(1 for folder in DATASET_FOLDERS for _ in (out / folder).rglob("*.jpg"))
    return expected == found


def _check_out(out: Path, settings: dict) -> dict | None:
    """Returns the existing manifest when ``out`` already holds this city, else None.

    Raises:
        SyntheticCityError: ``out`` holds something else, which must not be overwritten.
    """
    if out.exists() and not out.is_dir():
        raise SyntheticCityError(f"{out} is a file; the output must be a folder")
    if not out.exists() or not any(out.iterdir()):
        return None
    manifest = read_manifest(out)
    if manifest is None:
        raise SyntheticCityError(
            f"{out} is not empty and holds no synthetic city ({MANIFEST} missing); refusing to "
            "write into it. Choose an empty or new output folder."
        )
    same = {key: manifest.get(key) for key in settings} == settings
    if not same:
        found = ", ".join(f"{key}={manifest.get(key)}" for key in settings if key != "generator")
        raise SyntheticCityError(
            f"{out} holds a synthetic city made with other settings ({found}); refusing to "
            "overwrite it. Choose another output folder or delete this one."
        )
    if _is_complete(out, manifest):
        return manifest
    return None  # an interrupted run with the same settings: finish it (same file names)


def generate_city(
    out: Path, preset: str = "demo", seed: int = 0, image_size: tuple[int, int] | None = None,
    progress: bool = True, workers: int = 1,
) -> dict:
    """Generates the synthetic benchmark in ``out`` (or finds it already there).

    Args:
        out: the output folder; created if missing. It must be empty, or hold a city made
            with the same settings (then nothing is regenerated).
        preset: ``tiny``, ``demo``, ``small`` or ``medium`` (see docs/DATA.md).
        seed: the same seed (and settings) gives the same files, byte for byte.
        image_size: (width, height); the preset's default when None.
        progress: show a progress bar.
        workers: processes that render in parallel (the output does not depend on it).

    Returns:
        The manifest (also written to ``out/manifest.json``).

    Raises:
        SyntheticCityError: ``out`` holds other content or a city with other settings.
    """
    out = Path(out)
    chosen = get_preset(preset)
    size = tuple(int(side) for side in image_size) if image_size is not None else chosen.image_size
    if len(size) != 2 or min(size) < 16:
        raise ValueError(f"image_size must be (width, height), each >= 16 pixels; got {image_size}")
    settings = _settings(preset, seed, size)
    existing = _check_out(out, settings)
    if existing is not None:
        return existing
    start = time.perf_counter()
    specs = plan_all(chosen, seed)
    _check_positives(specs)
    manifest = {**settings, "image_width": size[0], "image_height": size[1],
                "complete": False, "counts": _counts(specs, preset, seed),
                "cities": {"gsv_xs/train": train_cities(chosen, seed),
                           "sf_xs": "SanFrancisco", "tokyo_xs": "Tokyo"},
                "positive_radius_m": POSITIVE_RADIUS,
                "note_format": {
                    "train": "{place:04d}_{City}",
                    "database": "d{location:05d}_{time}",
                    "queries": "q{number:04d}_{time}",
                    "time": "day|sunset|night: the text after the last '_' of the note",
                }}
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / MANIFEST, manifest)
    for folder in sorted({spec.relative_path.rsplit("/", 1)[0] for spec in specs}):
        (out / folder).mkdir(parents=True, exist_ok=True)
    rendered = _rendered(specs, size, seed, max(1, workers))
    bar = tqdm(zip(specs, rendered), total=len(specs), disable=not progress,
               desc=f"synthetic city ({preset}, {size[0]}x{size[1]})", unit="img")
    for spec, data in bar:
        (out / spec.relative_path).write_bytes(data)
    manifest["complete"] = True
    write_json_atomic(out / MANIFEST, manifest)
    if progress:
        elapsed = time.perf_counter() - start
        print(f"Wrote {len(specs)} images to {out} in {elapsed:.0f} s")
    return manifest
