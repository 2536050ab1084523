"""Location indexes as vpr wrote them before the SQLite store (format 1), from made-up rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from vpr.eval.search import build_index, save_index
from vpr.locate import LocationIndex, storage

DIM = 8
MODEL = {"checkpoint": "/nowhere/model.ckpt", "sha256": "0" * 64, "hparams": {},
         "image_size": [32, 32], "descriptors_dim": DIM}


def records_at(points: list[tuple[float, float]], prefix: str) -> dict[str, list]:
    """Store columns for made-up images at (lat, lon) points."""
    return {"paths": [f"/made-up/{prefix}{i}.jpg" for i in range(len(points))],
            "utm_east": [float(i) for i in range(len(points))],
            "utm_north": [0.0] * len(points), "utm_zone_number": [None] * len(points),
            "utm_zone_letter": [""] * len(points),
            "latitude": [lat for lat, _ in points], "longitude": [lon for _, lon in points]}


def write_format_1(folder: Path, records: dict[str, list], descriptors: np.ndarray,
                   versioned: bool = True, index_type: str = "flat") -> Path:
    """An index as vpr wrote it before the store (format 1): meta.json read whole."""
    data = folder / "v-1" if versioned else folder
    data.mkdir(parents=True, exist_ok=True)
    np.save(data / "descriptors.npy", descriptors)
    save_index(build_index(descriptors, kind=index_type), data / "index.faiss")
    meta = {"format": "vpr-location-index", "format_version": 1, "vpr_version": "0.1.0",
            "created": "2026-01-01T00:00:00+00:00", "updated": "2026-01-02T00:00:00+00:00",
            "model": MODEL, "index": {"type": index_type, "options": {}, "metric": "l2"},
            "sources": ["/made-up"], "images": records}
    (data / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    if versioned:
        (folder / "CURRENT").write_text("v-1\n")
    return folder


def as_format_1(index_folder: Path) -> Path:
    """Rewrites a current index folder in the legacy layout of format 1 (files in the folder)."""
    index = LocationIndex.load(index_folder)
    records = {"paths": list(index.paths)}
    for name in ("utm_east", "utm_north", "utm_zone_number", "utm_zone_letter", "latitude",
                 "longitude"):
        records[name] = list(index.store.column_values(name))
    descriptors = np.array(index.descriptors)
    model = index.meta["model"]
    index.close()
    for entry in index_folder.iterdir():
        if entry.name != storage.LOCK_FILE:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    write_format_1(index_folder, records, descriptors, versioned=False)
    meta = json.loads((index_folder / "meta.json").read_text())
    meta["model"] = model
    (index_folder / "meta.json").write_text(json.dumps(meta))
    return index_folder
