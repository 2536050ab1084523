"""Geolocating photos: retrieve the most similar indexed images, then vote on a place.

The prediction clusters the top-k matches in space: each match gathers the matches within
``radius_m`` metres of it (in the same UTM zone), the group with the largest total weight
wins, and the predicted location is the weighted mean of its members. A match's weight
falls exponentially with its similarity gap to the best match, so several matches that
agree outweigh one barely better match elsewhere, but not one that is clearly better.

Confidence, in [0, 1]::

    weight_i   = exp((similarity_i - best similarity) / TEMPERATURE)
    share      = sum of the cluster's weights / sum of all k weights
    margin     = clip((best similarity in the cluster - best similarity outside it)
                      / MARGIN_SCALE, 0, 1)     (1 when every match is in the cluster)
    confidence = share * (1 + margin) / 2

so it is 1 only when all k matches agree, halves when the best match outside the cluster is
as similar as the best one inside, and is lower still when the matches scatter. With
``top_k=1`` it is always 1: one match cannot disagree with itself; use k >= 3.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vpr.locate.index import LocationIndex, resolve_device

DEFAULT_TOP_K = 5
DEFAULT_RADIUS_M = 25.0
# A similarity gap of 0.1 between the cluster's best match and the best match elsewhere
# counts as a clear winner (cosine similarities of top matches typically differ by less).
MARGIN_SCALE = 0.1
# How fast a match's vote fades with its similarity gap to the best match. Chosen on the
# synthetic test sets with the demo model (docs/BENCHMARKS.md, calibration): plain
# similarity weights (gap-blind) put 41% / 38% of SF-like / Tokyo-like queries within 25 m,
# the top-1 match 46.5% / 41.3%, these weights 48.0% / 40.7%.
TEMPERATURE = 0.02


@dataclass
class Match:
    """One retrieved image: where it is and how similar it is to the photo."""

    rank: int
    path: str
    similarity: float
    utm_east: float
    utm_north: float
    utm_zone_number: int | None
    utm_zone_letter: str
    latitude: float | None
    longitude: float | None
    distance_to_prediction_m: float | None
    in_cluster: bool


@dataclass
class LocateResult:
    """Where a photo was probably taken, how sure we are, and the matches behind it."""

    photo: str
    latitude: float | None
    longitude: float | None
    utm_east: float | None
    utm_north: float | None
    utm_zone_number: int | None
    utm_zone_letter: str
    confidence: float
    cluster_size: int
    radius_m: float
    matches: list[Match] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready)."""
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """The outcome of `predict_location`."""

    utm_east: float
    utm_north: float
    members: np.ndarray  # (k,) bool: the matches of the winning cluster
    confidence: float


def predict_location(
    utm: np.ndarray,
    similarities: np.ndarray,
    radius_m: float = DEFAULT_RADIUS_M,
    zones: Sequence[Any] | None = None,
    temperature: float = TEMPERATURE,
) -> Prediction:
    """Clusters matches in space and returns the weighted mean of the strongest cluster.

    Args:
        utm: (k, 2) UTM east/north of the matches, best match first.
        similarities: (k,) similarity of each match to the photo.
        radius_m: matches within this distance of a match join its cluster.
        zones: the UTM zone of each match (any comparable value); matches in different
            zones never share a cluster. None: all in one zone.

    Returns:
        The predicted UTM position, the cluster's members and the confidence (formula in
        the module docstring).
    """
    utm = np.asarray(utm, dtype=np.float64).reshape(-1, 2)
    similarities = np.asarray(similarities, dtype=np.float64).reshape(-1)
    count = len(utm)
    if count == 0 or len(similarities) != count:
        raise ValueError(f"need as many (>0) similarities as matches, got {len(similarities)} "
                         f"and {count}")
    weights = np.exp((similarities - similarities.max()) / temperature)
    near = np.linalg.norm(utm[:, None, :] - utm[None, :, :], axis=-1) <= radius_m
    if zones is not None:
        numbering = {zone: number for number, zone in enumerate(dict.fromkeys(zones))}
        zone_ids = np.array([numbering[zone] for zone in zones])
        near &= zone_ids[:, None] == zone_ids[None, :]
    cluster_weights = near.astype(np.float64) @ weights
    # argmax takes the first maximum: ties go to the cluster of the better-ranked match.
    centre = int(np.argmax(cluster_weights))
    members = near[centre]
    east, north = (weights[members] @ utm[members]) / weights[members].sum()
    share = float(weights[members].sum() / weights.sum())
    if members.all():
        margin = 1.0
    else:
        gap = similarities[members].max() - similarities[~members].max()
        margin = float(np.clip(gap / MARGIN_SCALE, 0.0, 1.0))
    confidence = float(np.clip(share * (1.0 + margin) / 2.0, 0.0, 1.0))
    return Prediction(float(east), float(north), members, confidence)


def _to_latlon(east: float, north: float, zone_number: int | None, zone_letter: str,
               latitudes: list[float | None], longitudes: list[float | None],
               weights: np.ndarray) -> tuple[float | None, float | None]:
    """Latitude/longitude of a UTM point; from the members' lat/lon when the zone is unknown."""
    if zone_number is not None and zone_letter:
        import utm

        try:
            latitude, longitude = utm.to_latlon(east, north, zone_number, zone_letter)
            return float(latitude), float(longitude)
        except (utm.error.OutOfRangeError, ValueError):
            pass
    if all(value is not None for value in latitudes + longitudes) and latitudes:
        # Within a cluster tens of metres wide, averaging degrees is accurate to millimetres.
        return (float(np.average(latitudes, weights=weights)),
                float(np.average(longitudes, weights=weights)))
    return None, None


def _distance_to_prediction(record: dict[str, Any], latitude: float | None,
                            longitude: float | None) -> float | None:
    """Geodesic metres from a match to the prediction, in any zone; None if either is unplaced."""
    from vpr.locate.geodesy import geodesic_m, latlon_of

    point = latlon_of(record["latitude"], record["longitude"], record["utm_east"],
                      record["utm_north"], record["utm_zone_number"], record["utm_zone_letter"])
    if point is None or latitude is None or longitude is None:
        return None
    return round(geodesic_m(latitude, longitude, *point), 2)


def _result(photo: str, index: LocationIndex, similarities: np.ndarray, items: np.ndarray,
            radius_m: float) -> LocateResult:
    keep = items >= 0  # approximate indexes may return fewer than k neighbours
    similarities, items = similarities[keep], items[keep]
    if len(items) == 0:
        return LocateResult(photo, None, None, None, None, None, "", 0.0, 0, radius_m, [])
    records = [index.record(int(item)) for item in items]
    utm = np.array([(r["utm_east"], r["utm_north"]) for r in records], np.float64)
    zones = [(r["utm_zone_number"], r["utm_zone_letter"]) for r in records]
    prediction = predict_location(utm, similarities, radius_m, zones)
    members = np.flatnonzero(prediction.members)
    zone_number, zone_letter = zones[members[0]]
    weights = np.maximum(similarities[members], 1e-9)
    latitude, longitude = _to_latlon(
        prediction.utm_east, prediction.utm_north, zone_number, zone_letter,
        [records[i]["latitude"] for i in members], [records[i]["longitude"] for i in members],
        weights,
    )
    matches = []
    for rank, (record, similarity) in enumerate(zip(records, similarities), 1):
        distance = _distance_to_prediction(record, latitude, longitude)
        matches.append(Match(
            rank=rank, path=record["path"], similarity=round(float(similarity), 6),
            utm_east=record["utm_east"], utm_north=record["utm_north"],
            utm_zone_number=record["utm_zone_number"], utm_zone_letter=record["utm_zone_letter"],
            latitude=record["latitude"], longitude=record["longitude"],
            distance_to_prediction_m=distance,
            in_cluster=bool(prediction.members[rank - 1]),
        ))
    return LocateResult(
        photo=photo, latitude=latitude, longitude=longitude,
        utm_east=round(prediction.utm_east, 2), utm_north=round(prediction.utm_north, 2),
        utm_zone_number=zone_number, utm_zone_letter=zone_letter,
        confidence=round(prediction.confidence, 4), cluster_size=len(members),
        radius_m=radius_m, matches=matches,
    )


def locate(
    photos: str | Path | Sequence[str | Path],
    index: LocationIndex | str | Path,
    top_k: int = DEFAULT_TOP_K,
    radius_m: float = DEFAULT_RADIUS_M,
    ckpt_path: str | Path | None = None,
    batch_size: int = 32,
    num_workers: int = 0,
    device: str = "auto",
    precision: str | None = "auto",
    progress: bool = False,
    model: Any = None,
) -> list[LocateResult]:
    """Geolocates photos by retrieval in a location index.

    Args:
        photos: one image path, or several (any file names; no geotag needed).
        index: a `LocationIndex` or the path of its folder.
        top_k: matches retrieved per photo (and voting on the location).
        radius_m: matches within this distance form a cluster.
        ckpt_path: where the index's checkpoint is now, if it moved (checked by sha256).
        batch_size, num_workers, device, precision, progress: descriptor extraction
            settings, see `vpr.eval.extract.extract_descriptors`.
        model: the index's model when already loaded (e.g. by ``index.load_model()``),
            to skip reloading and re-hashing the checkpoint on repeated calls.

    Returns:
        One `LocateResult` per photo, in order.
    """
    from vpr.eval.extract import ImageFolderDataset, extract_descriptors

    if isinstance(photos, (str, Path)):
        photos = [photos]
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    if radius_m <= 0:
        raise ValueError(f"radius must be positive, got {radius_m}")
    if not isinstance(index, LocationIndex):
        index = LocationIndex.load(index)
    paths = [Path(photo) for photo in photos]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: photo not found")
    if model is None:
        model = index.load_model(ckpt_path)
    device = resolve_device(device)
    descriptors = extract_descriptors(
        model, ImageFolderDataset(paths, reader=index.reader(device)), batch_size=batch_size,
        num_workers=num_workers, device=device, precision=precision,
        progress=progress,
    )
    similarities, items = index.search(descriptors, top_k)
    return [_result(str(path), index, similarities[row], items[row], radius_m)
            for row, path in enumerate(paths)]
