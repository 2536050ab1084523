"""What to render: the place, viewpoint, conditions and @-name of every image of a preset.

Planning is cheap and sequential; rendering (see :mod:`.writer`) then handles each
:class:`ImageSpec` on its own, so the output does not depend on the number of workers.

Notes written in the @-names (index -2 of ``name.split('@')``):

- training images: ``{place:04d}_{City}`` (the GSV-XS place id, e.g. ``0042_Bangkok``);
- database images: ``d{location:05d}_{time}``; the images taken at one location (one per
  database heading) share the location id;
- queries: ``q{number:04d}_{time}``;

where ``time`` is ``day``, ``sunset`` or ``night``: the text after the last ``_`` of a test
image's note is its time of day.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from vpr.data.geotag import GeoTag, format_filename
from vpr.synthetic.appearance import (
    HOURS,
    PROFILES,
    SEASON_MONTHS,
    TIMES_OF_DAY,
    Appearance,
    sample_appearance,
)
from vpr.synthetic.camera import Camera
from vpr.synthetic.city import SIDEWALK_WIDTH, StreetSegment, build_city, street_segments
from vpr.synthetic.geo import TEST_CITY_CENTRES, TRAIN_CITY_CENTRES, GeoFrame
from vpr.synthetic.presets import Preset
from vpr.synthetic.rng import rng_for

MIN_PLACE_DISTANCE = 36.0  # metres between the centres of two training places
PLACE_JITTER = 3.0  # metres along the street (a third of it across) from its place
PLACE_HEADING_JITTER = 10.0  # degrees, training images around their place's heading
DATABASE_LANE = 1.5  # metres right of the centre line: the database traversal
QUERY_ALONG = 2.5  # metres: a query stands this far at most along the street from a location
QUERY_ACROSS = 1.0  # metres: ... and this far across from the database traversal
QUERY_HEADING_JITTER = 8.0  # degrees around a database heading
POSITIVE_RADIUS = 25.0  # metres: every query has a database image this close


@dataclass(frozen=True)
class ImageSpec:
    """One image to render: where it goes, the city, the camera and the conditions."""

    relative_path: str
    city: str
    blocks: tuple[int, int]
    camera: Camera
    appearance: Appearance
    utm: tuple[float, float]


def _timestamp(rng: np.random.Generator, appearance: Appearance) -> str:
    """A capture time consistent with the conditions: season month, hour, epoch year."""
    year = int(rng.integers(2011, 2015) if appearance.epoch == 0 else rng.integers(2017, 2022))
    month = int(rng.choice(SEASON_MONTHS[appearance.season]))
    low, high = HOURS[appearance.time_of_day]
    hour = int(rng.integers(low, high + 1))
    day, minute = int(rng.integers(1, 29)), int(rng.integers(60))
    return f"{year:04d}{month:02d}{day:02d}T{hour:02d}{minute:02d}"


def _spec(
    folder: str, frame: GeoFrame, city: str, blocks: tuple[int, int], camera: Camera,
    appearance: Appearance, rng: np.random.Generator, tile: str, note: str,
) -> ImageSpec:
    east, north = frame.to_utm(camera.x, camera.y)
    latitude, longitude = frame.to_latlon(camera.x, camera.y)
    pano = f"syn{zlib.crc32(f'{folder}/{note}/{tile}'.encode()):08x}"
    tag = GeoTag(
        utm_east=east, utm_north=north, utm_zone_number=frame.zone_number,
        utm_zone_letter=frame.zone_letter, latitude=latitude, longitude=longitude,
        pano_id=pano, tile_num=tile, heading=round(camera.heading % 360.0, 2) % 360.0,
        pitch=camera.pitch,
        roll=0.0, height=camera.height, timestamp=_timestamp(rng, appearance), note=note,
    )
    return ImageSpec(f"{folder}/{format_filename(tag)}", city, blocks, camera, appearance,
                     (round(east, 2), round(north, 2)))


def _point_on(segment: StreetSegment, along: float, across: float) -> tuple[float, float]:
    """A point ``along`` metres from the segment start and ``across`` metres to its right."""
    heading = math.radians(segment.direction_deg)
    forward = (math.sin(heading), math.cos(heading))
    right = (math.cos(heading), -math.sin(heading))
    return (segment.start[0] + along * forward[0] + across * right[0],
            segment.start[1] + along * forward[1] + across * right[1])


def _lane_limit(segment: StreetSegment) -> float:
    """How far from the centre line a camera may stand (it stays on the road)."""
    return segment.width / 2 - SIDEWALK_WIDTH - 0.5


def _view_offset(rng: np.random.Generator) -> float:
    """A place's heading relative to its street: along it, or oblique towards one side.

    Views square onto a nearby wall are avoided: they show little more than one facade style.
    """
    if rng.random() < 0.15:
        return float(rng.choice([0.0, 180.0]))
    oblique = rng.uniform(20.0, 65.0)
    return float(rng.choice([-1.0, 1.0]) * (oblique if rng.random() < 0.5 else 180.0 - oblique))


def blocks_for_places(places: int) -> tuple[int, int]:
    """A square grid with enough street length for ``places`` training places."""
    # About 80 m of street per place: random packing at MIN_PLACE_DISTANCE leaves gaps,
    # and places near an intersection also keep clear of the crossing street.
    blocks = 2
    while 2 * blocks * (blocks + 1) * 95.0 < places * 80.0:
        blocks += 1
    return blocks, blocks


def train_cities(preset: Preset, seed: int) -> list[str]:
    """The training cities of a preset, drawn from the seed."""
    names = sorted(TRAIN_CITY_CENTRES)
    if preset.train_cities > len(names):
        raise ValueError(f"preset {preset.name}: at most {len(names)} training cities")
    order = rng_for(seed, "train-cities").permutation(len(names))
    return sorted(names[i] for i in order[: preset.train_cities])


def plan_train(preset: Preset, seed: int) -> list[ImageSpec]:
    """GSV-XS-like training images: ``gsv_xs/train/<City>/``, places >= 36 m apart."""
    specs = []
    blocks = blocks_for_places(preset.places_per_city)
    for city_name in train_cities(preset, seed):
        city = build_city(city_name, seed, blocks)
        segments = street_segments(city.streets)
        lengths = np.array([segment.length for segment in segments])
        x_min, x_max, y_min, y_max = city.streets.extent
        frame = GeoFrame.around(*TRAIN_CITY_CENTRES[city_name], (x_max - x_min, y_max - y_min))
        rng = rng_for(seed, "places", city_name)
        centres: list[tuple[float, float]] = []
        attempts = 0
        while len(centres) < preset.places_per_city:
            attempts += 1
            if attempts > 200 * preset.places_per_city:
                raise RuntimeError(f"{city_name}: no room for {preset.places_per_city} places")
            segment = segments[rng.choice(len(segments), p=lengths / lengths.sum())]
            along = rng.uniform(PLACE_JITTER, segment.length - PLACE_JITTER)
            limit = _lane_limit(segment) - PLACE_JITTER / 2
            across = rng.uniform(-limit, limit)
            x, y = _point_on(segment, along, across)
            if any(math.hypot(x - cx, y - cy) < MIN_PLACE_DISTANCE for cx, cy in centres):
                continue
            centres.append((x, y))
            place = len(centres) - 1
            heading = segment.direction_deg + _view_offset(rng)
            for image in range(preset.images_per_place):
                image_rng = rng_for(seed, "train", city_name, place, image)
                jitter_along = image_rng.uniform(-PLACE_JITTER, PLACE_JITTER)
                jitter_across = image_rng.uniform(-PLACE_JITTER / 3, PLACE_JITTER / 3)
                camera = Camera(
                    *_point_on(segment, along + jitter_along, across + jitter_across),
                    heading=float((heading + image_rng.uniform(-PLACE_HEADING_JITTER,
                                                               PLACE_HEADING_JITTER))
                                  % 360.0),
                    fov=float(image_rng.uniform(60.0, 80.0)),
                    pitch=float(image_rng.uniform(-3.0, 5.0)),
                )
                appearance = sample_appearance(image_rng, PROFILES["train"])
                specs.append(_spec(f"gsv_xs/train/{city_name}", frame, city_name, blocks, camera,
                                   appearance, image_rng, str(image),
                                   f"{place:04d}_{city_name}"))
    return specs


@dataclass(frozen=True)
class _Location:
    segment: StreetSegment
    along: float


def _database_locations(segments: list[StreetSegment], spacing: float) -> list[_Location]:
    locations = []
    for segment in segments:
        count = max(1, int(round(segment.length / spacing)))
        step = segment.length / count
        locations.extend(_Location(segment, (k + 0.5) * step) for k in range(count))
    return locations


def plan_retrieval(
    preset: Preset, seed: int, folder: str, city_name: str, blocks: tuple[int, int],
    window: tuple[float, float, float, float] | None, queries: int, thirds: bool,
) -> list[ImageSpec]:
    """A test or validation set: ``<folder>/database`` and ``<folder>/queries``.

    The database is one daytime traversal with images every ``preset.database_spacing``
    metres, one per database heading; queries come from another traversal (a few metres
    off, turned, another field of view), at another time and epoch. ``thirds`` splits the
    queries into equal day/sunset/night thirds.
    """
    city = build_city(city_name, seed, blocks)
    x_min, x_max, y_min, y_max = city.streets.extent
    frame = GeoFrame.around(*TEST_CITY_CENTRES[city_name], (x_max - x_min, y_max - y_min))
    locations = _database_locations(street_segments(city.streets, window),
                                    preset.database_spacing)
    specs = []
    for number, location in enumerate(locations):
        x, y = _point_on(location.segment, location.along, DATABASE_LANE)
        for tile, offset in enumerate(preset.database_headings):
            rng = rng_for(seed, folder, "database", number, tile)
            camera = Camera(x, y, (location.segment.direction_deg + offset) % 360.0, fov=75.0)
            appearance = sample_appearance(rng, PROFILES["database"])
            specs.append(_spec(f"{folder}/database", frame, city_name, blocks, camera,
                               appearance, rng, str(tile),
                               f"d{number:05d}_{appearance.time_of_day}"))
    rng = rng_for(seed, folder, "queries")
    chosen = rng.choice(len(locations), size=queries, replace=queries > len(locations))
    times: list[str | None] = [None] * queries
    if thirds:
        times = [str(t) for t in rng.permutation(np.repeat(TIMES_OF_DAY, queries // 3))]
    for number, (index, time_of_day) in enumerate(zip(chosen, times)):
        location = locations[index]
        query_rng = rng_for(seed, folder, "query", number)
        along = location.along + query_rng.uniform(-QUERY_ALONG, QUERY_ALONG)
        along = float(np.clip(along, 0.0, location.segment.length))
        across = DATABASE_LANE + query_rng.uniform(-QUERY_ACROSS, QUERY_ACROSS)
        offset = float(query_rng.choice(preset.database_headings))
        camera = Camera(
            *_point_on(location.segment, along, across),
            heading=float((location.segment.direction_deg + offset + query_rng.uniform(
                -QUERY_HEADING_JITTER, QUERY_HEADING_JITTER)) % 360.0),
            fov=float(query_rng.uniform(65.0, 80.0)),
            pitch=float(query_rng.uniform(-2.0, 3.0)),
        )
        appearance = sample_appearance(query_rng, PROFILES["query"], time_of_day)
        specs.append(_spec(f"{folder}/queries", frame, city_name, blocks, camera, appearance,
                           query_rng, "0", f"q{number:04d}_{appearance.time_of_day}"))
    return specs


def plan_all(preset: Preset, seed: int) -> list[ImageSpec]:
    """Every image of a preset: training cities, SF-like val/test, Tokyo-like test."""
    if preset.tokyo_queries % 3:
        raise ValueError(f"preset {preset.name}: tokyo_queries must be a multiple of 3")
    specs = plan_train(preset, seed)
    # One San Francisco: the validation area on the west, a block of gap, the test area east.
    val_w, val_h = preset.sf_val_blocks
    test_w, test_h = preset.sf_test_blocks
    sf_blocks = (val_w + 1 + test_w, max(val_h, test_h))
    streets = build_city("SanFrancisco", seed, sf_blocks).streets
    xs, ys = streets.xs, streets.ys  # index 0 and -1 are the outer ring's streets
    val_window = (xs[1], xs[1 + val_w], ys[1], ys[1 + val_h])
    test_window = (xs[2 + val_w], xs[2 + val_w + test_w], ys[1], ys[1 + test_h])
    specs += plan_retrieval(preset, seed, "sf_xs/val", "SanFrancisco", sf_blocks, val_window,
                            preset.sf_val_queries, thirds=False)
    specs += plan_retrieval(preset, seed, "sf_xs/test", "SanFrancisco", sf_blocks, test_window,
                            preset.sf_test_queries, thirds=False)
    specs += plan_retrieval(preset, seed, "tokyo_xs/test", "Tokyo", preset.tokyo_blocks, None,
                            preset.tokyo_queries, thirds=True)
    if len({spec.relative_path for spec in specs}) != len(specs):
        raise RuntimeError("two planned images share a file name")  # would silently overwrite
    return specs
