"""Datasets in the real on-disk formats: training places and retrieval (test/val) sets."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from vpr.data.geotag import parse_filename
from vpr.data.ground_truth import positives_from_ground_truth, read_ground_truth
from vpr.data.images import BadImageError, find_bad_images, list_images, open_rgb

logger = logging.getLogger(__name__)

Transform = Callable[[object], torch.Tensor]
Reader = Callable[[Path], object]


def _identity(image):
    return image


def check_images_per_place(img_per_place: int, min_img_per_place: int) -> None:
    """Refuses a K (images per place in a batch) that some kept place could not provide."""
    if img_per_place > min_img_per_place:
        raise ValueError(
            f"img_per_place ({img_per_place}) must not exceed min_img_per_place "
            f"({min_img_per_place}): a place could not provide that many distinct images"
        )


class TrainPlaces(Dataset):
    """Training set: one item is one place with ``img_per_place`` images sampled from it.

    Images are grouped into places by the ``note`` field of their @-name (GSV-XS keeps the
    place id there, e.g. ``3272_Bangkok``); places with fewer than ``min_img_per_place``
    images are dropped. A DataLoader with ``batch_size=P`` then yields P x K batches.

    Items are ``(images (K,3,H,W), labels (K,), skipped)`` where ``skipped`` counts the
    unreadable images that were replaced by another image of the same place.

    Each image is ``transform(reader(path))``: by default Pillow's RGB image through the
    seed's float transform; the fast pipeline reads uint8 tensors (`vpr.inputs.decode`), or
    JPEG bytes to decode on the device (`vpr.inputs.device_decode`), with ``transform=None``.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Transform | None,
        img_per_place: int = 4,
        min_img_per_place: int = 4,
        reader: Reader = open_rgb,
    ) -> None:
        check_images_per_place(img_per_place, min_img_per_place)
        self.root = Path(root)
        self.transform = transform or _identity
        self.reader = reader
        self.img_per_place = img_per_place
        images_per_place: dict[str, list[Path]] = defaultdict(list)
        for path in list_images(self.root):
            tag = parse_filename(path)
            if not tag.note:
                raise ValueError(
                    f"{path}: the note field (place id) is empty; training images need a place "
                    "id at index -2 of the @-name, e.g. '@...@3272_Bangkok@.jpg'"
                )
            images_per_place[tag.note].append(path)
        self.place_ids = sorted(
            place for place, paths in images_per_place.items() if len(paths) >= min_img_per_place
        )
        if not self.place_ids:
            raise ValueError(
                f"{self.root}: no place has at least {min_img_per_place} images "
                f"({len(images_per_place)} places found); lower min_img_per_place"
            )
        self.images_per_place = [images_per_place[place] for place in self.place_ids]
        dropped = len(images_per_place) - len(self.place_ids)
        logger.info(
            "Training set %s: %d places, %d images (%d places under %d images dropped)",
            self.root, len(self.place_ids), sum(map(len, self.images_per_place)), dropped,
            min_img_per_place,
        )

    def __len__(self) -> int:
        return len(self.place_ids)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, int]:
        """One place: ``key`` is its index, or (index, seed) from `EpochShuffleSampler`.

        With a seed, the choice of images and their augmentation depend on it alone, so an
        item is the same whichever worker or process loads it, before or after a resume.
        """
        if isinstance(key, tuple):
            index, seed = key
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self._load_place(index, random.Random(seed))
        return self._load_place(key, random)

    def _load_place(self, index: int, rng) -> tuple[torch.Tensor, torch.Tensor, int]:
        candidates = list(self.images_per_place[index])
        rng.shuffle(candidates)
        images: list[torch.Tensor] = []
        skipped = 0
        for path in candidates:
            try:
                images.append(self.transform(self.reader(path)))
            except BadImageError as error:
                # A corrupt image must not kill a long run: use another image of the place.
                skipped += 1
                logger.warning("Skipping unreadable training image: %s", error)
                continue
            if len(images) == self.img_per_place:
                break
        if len(images) < self.img_per_place:
            raise BadImageError(
                f"place {self.place_ids[index]}: only {len(images)} readable images, "
                f"{self.img_per_place} needed"
            )
        labels = torch.full((self.img_per_place,), index, dtype=torch.long)
        return _join(images, torch.stack), labels, skipped


def _join(images: list, join) -> object:
    """``join`` (torch.stack / torch.cat) of tensors; encoded images (`EncodedBatch` of
    `vpr.inputs.device_decode`) join themselves with their ``concat``, and stay encoded."""
    concat = getattr(type(images[0]), "concat", None) if images else None
    return concat(images) if concat is not None else join(list(images))


def collate_places(
    batch: list[tuple[torch.Tensor, torch.Tensor, int]],
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Flattens P places x K images into one batch of P*K images and labels."""
    images = _join([item[0] for item in batch], torch.cat)
    labels = torch.cat([item[1] for item in batch])
    return images, labels, sum(item[2] for item in batch)


def positives_within(
    query_utm: np.ndarray, database_utm: np.ndarray, radius: float, chunk: int = 1024
) -> list[np.ndarray]:
    """For each query, the sorted indices of database points within ``radius`` metres."""
    positives: list[np.ndarray] = []
    radius_sq = radius * radius
    for start in range(0, len(query_utm), chunk):
        block = query_utm[start : start + chunk]
        dist_sq = ((block[:, None, :] - database_utm[None, :, :]) ** 2).sum(-1)
        positives.extend(np.flatnonzero(row <= radius_sq) for row in dist_sq)
    return positives


class RetrievalSet(Dataset):
    """A test or validation set: ``database/`` then ``queries/`` images, with positives.

    Item ``i`` is ``(image, i)``: indices below ``database_num`` are database images, the
    rest are queries. ``positives_per_query[q]`` lists the database images within
    ``positive_dist_threshold`` metres of query ``q`` (UTM east/north from the @-names).
    Images are ``transform(reader(path))``, as in `TrainPlaces`.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Transform | None,
        positive_dist_threshold: float = 25.0,
        skip_bad_images: bool = False,
        reader: Reader = open_rgb,
    ) -> None:
        self.root = Path(root)
        self.transform = transform or _identity
        self.reader = reader
        for part in ("database", "queries"):
            if not (self.root / part).is_dir():
                raise FileNotFoundError(
                    f"{self.root}: expected a test set folder with 'database/' and 'queries/' "
                    f"sub-folders; '{part}/' is missing"
                )
        self.database_paths = list_images(self.root / "database")
        self.query_paths = list_images(self.root / "queries")
        # Names first (cheap, and a bad name is the likelier mistake), then the files.
        utm_of_path = _utm_by_path(self.database_paths + self.query_paths)
        # Check every file before any work: a bad image found mid-way would waste the run.
        self.bad_images = find_bad_images(self.database_paths + self.query_paths)
        if self.bad_images and not skip_bad_images:
            path, problem = next(iter(self.bad_images.items()))
            raise BadImageError(
                f"{path}: cannot read image ({problem}); {len(self.bad_images)} bad image(s) in "
                f"{self.root}. Fix or remove them, or leave them out with skip_bad_images"
            )
        if self.bad_images:
            logger.warning("%s: leaving out %d unreadable images: %s", self.root,
                           len(self.bad_images), ", ".join(map(str, self.bad_images)))
            self.database_paths = [p for p in self.database_paths if p not in self.bad_images]
            self.query_paths = [p for p in self.query_paths if p not in self.bad_images]
        self.database_utm = _stack(utm_of_path, self.database_paths)
        self.query_utm = _stack(utm_of_path, self.query_paths)
        self.positive_dist_threshold = positive_dist_threshold
        self.positives_per_query = positives_within(
            self.query_utm, self.database_utm, positive_dist_threshold
        )
        # A benchmark whose positives are not a distance (Nordland's frame window) ships them.
        self.ground_truth = read_ground_truth(self.root)
        if self.ground_truth is not None:
            self.positives_per_query = positives_from_ground_truth(
                self.ground_truth, self.query_paths, self.database_paths, str(self.root))
        self.images_paths = self.database_paths + self.query_paths
        no_positive = sum(len(p) == 0 for p in self.positives_per_query)
        if no_positive:
            logger.warning(
                "%s: %d of %d queries have no database image within %.0f m; they count as misses",
                self.root, no_positive, len(self.query_paths), positive_dist_threshold,
            )

    @property
    def database_num(self) -> int:
        return len(self.database_paths)

    @property
    def queries_num(self) -> int:
        return len(self.query_paths)

    def __len__(self) -> int:
        return len(self.images_paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.reader(self.images_paths[index])), index

    def __repr__(self) -> str:
        return (
            f"RetrievalSet({self.root}: {self.database_num} database, "
            f"{self.queries_num} queries)"
        )


def _utm_by_path(paths: list[Path]) -> dict[Path, tuple[float, float]]:
    """Parses every @-name once: {path: (UTM east, UTM north)}."""
    return {path: (tag.utm_east, tag.utm_north) for path, tag in
            ((path, parse_filename(path)) for path in paths)}


def _stack(utm_of_path: dict[Path, tuple[float, float]], paths: list[Path]) -> np.ndarray:
    return np.array([utm_of_path[path] for path in paths], dtype=np.float64).reshape(-1, 2)
