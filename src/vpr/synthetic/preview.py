"""A labelled contact sheet: one place of the synthetic city under many conditions."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vpr.synthetic.appearance import Appearance
from vpr.synthetic.camera import Camera
from vpr.synthetic.city import build_city, street_segments
from vpr.synthetic.plan import _point_on
from vpr.synthetic.postprocess import develop, encode_jpeg
from vpr.synthetic.render import render
from vpr.synthetic.writer import supersample_for

COLUMNS = 4
LABEL_HEIGHT = 16


def _conditions(camera: Camera, other: Camera) -> list[tuple[str, Camera, Appearance]]:
    """(label, camera, appearance) of each tile."""
    day = Appearance(sun_azimuth=200.0, cloudiness=0.3, salt=1, occluders=0.6)
    step = 3.0 * camera.right  # 3 m to the right, turned left, zoomed in a little
    shifted = replace(camera, x=camera.x + step[0], y=camera.y + step[1],
                      heading=camera.heading - 15.0, fov=65.0)
    return [
        ("day (database)", camera, day),
        ("moved 3 m, turned 15 deg, zoomed", shifted, replace(day, salt=2)),
        ("sunset", camera, replace(day, time_of_day="sunset", sun_azimuth=camera.heading + 20,
                                   salt=3)),
        ("night", camera, replace(day, time_of_day="night", noise_sigma=5.0, salt=4)),
        ("fog", camera, replace(day, fog_distance=35.0, salt=5)),
        ("haze, overcast", camera, replace(day, haze=0.8, cloudiness=0.95, salt=6)),
        ("vehicles, pedestrians", camera, replace(day, occluders=3.0, salt=7)),
        ("autumn", camera, replace(day, season="autumn", salt=8)),
        ("winter", camera, replace(day, season="winter", cloudiness=0.8, salt=9)),
        ("years later: repaint, signs", camera, replace(day, epoch=1, salt=10)),
        ("dark, cast, noise, JPEG 25", camera,
         replace(day, exposure=0.55, colour_cast=(1.1, 0.95, 0.8), noise_sigma=6.0,
                 jpeg_quality=25, salt=11)),
        ("another place (look-alike)", other, replace(day, salt=12)),
    ]


def write_preview(
    out_png: Path, seed: int = 0, image_size: tuple[int, int] = (256, 192)
) -> Path:
    """Writes a contact sheet of one place across conditions; returns its path."""
    out_png = Path(out_png)
    width, height = image_size
    city = build_city("Barcelona", seed, (3, 3))
    segments = street_segments(city.streets)
    segment, other_segment = segments[len(segments) // 3], segments[2 * len(segments) // 3]
    camera = Camera(*_point_on(segment, segment.length * 0.45, 1.5),
                    heading=(segment.direction_deg + 35.0) % 360.0, fov=75.0)
    other = Camera(*_point_on(other_segment, other_segment.length * 0.5, 1.5),
                   heading=(other_segment.direction_deg + 35.0) % 360.0, fov=75.0)
    tiles = []
    for label, view, appearance in _conditions(camera, other):
        linear = render(city, view, appearance, width, height, supersample_for(image_size))
        picture = develop(linear, appearance)
        # Show what the dataset stores: the JPEG at the image's quality.
        picture = Image.open(io.BytesIO(encode_jpeg(picture, appearance.jpeg_quality)))
        tiles.append((label, picture.convert("RGB")))
    rows = int(np.ceil(len(tiles) / COLUMNS))
    title_height = 20
    sheet = Image.new("RGB", (COLUMNS * width, title_height + rows * (height + LABEL_HEIGHT)),
                      (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    draw.text((4, 4), f"vpr synthetic city (seed {seed}): one place, many conditions",
              fill=(0, 0, 0), font=font)
    for index, (label, picture) in enumerate(tiles):
        left = (index % COLUMNS) * width
        top = title_height + (index // COLUMNS) * (height + LABEL_HEIGHT)
        sheet.paste(picture, (left, top))
        draw.text((left + 4, top + height + 2), label, fill=(0, 0, 0), font=font)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_png)
    return out_png
