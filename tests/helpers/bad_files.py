"""Corrupt and hostile image files: truncated, empty, text named .jpg, decompression bombs."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def _png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose header claims width x height (a decompression bomb)."""
    Image.new("RGB", (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    header = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def make_bad(kind: str, path: Path) -> Path:
    if kind == "truncated_jpeg":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
            path, quality=95)
        path.write_bytes(path.read_bytes()[:600])
    elif kind == "zero_bytes":
        path.write_bytes(b"")
    elif kind == "text_named_jpg":
        path.write_text("hello, I am not a picture\n")
    elif kind == "png_named_jpg":
        Image.new("RGB", (8, 8), "red").save(path, format="PNG")
        return path  # a real image in another format: fine
    elif kind == "bomb":
        _png_claiming_size(path, 20000, 20000)
    return path
