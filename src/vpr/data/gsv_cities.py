"""GSV-Cities read natively for training: ``Dataframes/<City>.csv`` and ``Images/<City>/``.

The GSV-Cities release (Ali-bey et al., Neurocomputing 2022) describes each image by one CSV
row with the columns ``place_id, year, month, northdeg, city_id, lat, lon, panoid``; the
file is ``Images/<city_id>/<name>`` where the name is built from that row::

    <city_id>_<place_id % 10^5, 7 digits>_<year, 4 digits>_<month, 2 digits>_
    <northdeg, 3 digits>_<lat>_<lon>_<panoid>.jpg

(lat/lon as Python/pandas print the floats). A place is (city, place_id); places with fewer
than ``min_img_per_place`` images are dropped, and a DataLoader with ``batch_size=P`` yields
P x K batches exactly like `TrainPlaces`, whose sampling this class reuses.
"""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from pathlib import Path

from vpr.data.datasets import (
    Reader,
    TrainPlaces,
    Transform,
    _identity,
    check_images_per_place,
)
from vpr.data.images import open_rgb

logger = logging.getLogger(__name__)

DATAFRAMES = "Dataframes"
IMAGES = "Images"
COLUMNS = ("place_id", "year", "month", "northdeg", "city_id", "lat", "lon", "panoid")
TRAIN_FORMATS = ("auto", "gsv_xs", "gsv_cities")


def is_gsv_cities_root(root: str | Path) -> bool:
    """Whether ``root`` has the GSV-Cities layout (``Dataframes/`` and ``Images/``)."""
    root = Path(root)
    return (root / DATAFRAMES).is_dir() and (root / IMAGES).is_dir()


def _integer(text: str, column: str, where: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        raise ValueError(f"{where}: column {column} is {text!r}; expected a number") from None


def _float_text(text: str, column: str, where: str) -> str:
    try:
        # pandas reads the CSV as float64 and str() prints the shortest repr, as Python does.
        return str(float(text))
    except ValueError:
        raise ValueError(f"{where}: column {column} is {text!r}; expected a number") from None


def image_name(row: dict[str, str], where: str = "") -> str:
    """The GSV-Cities file name of one CSV row."""
    place_id = _integer(row["place_id"], "place_id", where) % 10**5
    return (f"{row['city_id']}_{place_id:07d}_{_integer(row['year'], 'year', where):04d}_"
            f"{_integer(row['month'], 'month', where):02d}_"
            f"{_integer(row['northdeg'], 'northdeg', where):03d}_"
            f"{_float_text(row['lat'], 'lat', where)}_{_float_text(row['lon'], 'lon', where)}_"
            f"{row['panoid']}.jpg")


def read_city(root: Path, city: str) -> dict[str, list[Path]]:
    """{place key ``<city>_<place_id>``: image paths} of one city's dataframe.

    Raises:
        FileNotFoundError: the city's CSV is missing.
        ValueError: a column is missing or a value is not a number.
    """
    path = root / DATAFRAMES / f"{city}.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found; expected the GSV-Cities dataframe of {city}")
    places: dict[str, list[Path]] = defaultdict(list)
    with open(path, newline="") as file:
        reader = csv.DictReader(file)
        missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: no column {', '.join(missing)}; expected the GSV-Cities "
                             f"columns {', '.join(COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            name = image_name(row, where)
            place = f"{city}_{_integer(row['place_id'], 'place_id', where)}"
            places[place].append(root / IMAGES / row["city_id"] / name)
    return places


class GSVCitiesPlaces(TrainPlaces):
    """GSV-Cities as a training set: one item is one place with ``img_per_place`` images.

    Args:
        root: the GSV-Cities folder (``Dataframes/``, ``Images/``).
        transform, img_per_place, min_img_per_place, reader: as `TrainPlaces`.
        cities: the cities to use (CSV stems); None = every ``Dataframes/*.csv``.
        check_files: check that every image file exists before training (one stat each).
    """

    def __init__(
        self,
        root: str | Path,
        transform: Transform | None,
        img_per_place: int = 4,
        min_img_per_place: int = 4,
        reader: Reader = open_rgb,
        cities: list[str] | None = None,
        check_files: bool = True,
    ) -> None:
        check_images_per_place(img_per_place, min_img_per_place)
        self.root = Path(root)
        if not is_gsv_cities_root(self.root):
            raise FileNotFoundError(f"{self.root}: expected a GSV-Cities folder with "
                                    f"{DATAFRAMES}/ and {IMAGES}/")
        self.transform = transform or _identity
        self.reader = reader
        self.img_per_place = img_per_place
        if cities is None:
            cities = sorted(path.stem for path in (self.root / DATAFRAMES).glob("*.csv"))
        if not cities:
            raise ValueError(f"{self.root / DATAFRAMES}: no <City>.csv dataframe found")
        images_per_place: dict[str, list[Path]] = {}
        for city in cities:
            images_per_place.update(read_city(self.root, city))
        self.place_ids = sorted(place for place, paths in images_per_place.items()
                                if len(paths) >= min_img_per_place)
        if not self.place_ids:
            raise ValueError(f"{self.root}: no place has at least {min_img_per_place} images "
                             f"({len(images_per_place)} places found); lower min_img_per_place")
        self.images_per_place = [images_per_place[place] for place in self.place_ids]
        if check_files:
            missing = [path for paths in self.images_per_place for path in paths
                       if not path.is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{missing[0]}: image listed in {DATAFRAMES}/ not found ({len(missing)} "
                    "missing); expected Images/<city_id>/<city>_<place>_<year>_<month>_"
                    "<northdeg>_<lat>_<lon>_<panoid>.jpg"
                )
        logger.info("GSV-Cities %s: %d cities, %d places, %d images (%d places under %d images "
                    "dropped)", self.root, len(cities), len(self.place_ids),
                    sum(map(len, self.images_per_place)),
                    len(images_per_place) - len(self.place_ids), min_img_per_place)


def train_places_type(root: str | Path, train_format: str = "auto") -> type[TrainPlaces]:
    """The training set class for ``root``: GSV-Cities when asked or detected, else GSV-XS."""
    if train_format not in TRAIN_FORMATS:
        raise ValueError(f"train_format {train_format!r}: unknown; valid: "
                         f"{', '.join(TRAIN_FORMATS)}")
    if train_format == "gsv_cities" or (train_format == "auto" and is_gsv_cities_root(root)):
        return GSVCitiesPlaces
    return TrainPlaces
