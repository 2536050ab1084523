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

With re-ranking (``locate(..., reranker=...)``), verified inliers join the similarities:
a match's weight is also multiplied by ``exp((inliers_i - most inliers) / INLIER_TEMPERATURE)``
and the margin is the larger of the similarity margin and ``(most inliers in the cluster -
most outside) / INLIER_MARGIN_SCALE`` (clipped to [0, 1]); see `predict_location`. Each
re-ranked match also keeps its best verified correspondences (`vpr.locate.evidence`).
With ``min_confidence``, a prediction below it becomes unknown: no location, and a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vpr.locate.evidence import MAX_KEYPOINT_PAIRS, image_size, keypoint_pairs
from vpr.locate.geo import GeoPriorError
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
# How fast a match's vote fades with its inlier gap to the best-verified match, and the
# inlier lead that counts as a clear winner (with re-ranking; docs/BENCHMARKS.md).
INLIER_TEMPERATURE = 10.0
INLIER_MARGIN_SCALE = 20.0


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
    inliers: int | None = None  # verified inliers, with re-ranking
    # With re-ranking: the best inlier correspondences as fractions of each image's size,
    # [x_photo, y_photo, x_match, y_match] (`vpr.locate.evidence`); absent from to_dict()
    # otherwise.
    keypoint_pairs: list[list[float]] | None = None


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
    unknown_reason: str | None = None  # set when the prediction was turned into "unknown"

    @property
    def unknown(self) -> bool:
        """True when no location is given (no match, or confidence below the minimum)."""
        return self.utm_east is None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready), with ``location`` (None when unknown) and ``reason``."""
        data = asdict(self)
        for match in data["matches"]:
            if match["keypoint_pairs"] is None:  # no re-ranking: nothing to draw
                del match["keypoint_pairs"]
        reason = self.unknown_reason
        if self.unknown and reason is None:
            reason = "no match found"
        data["location"] = None if self.unknown else {
            "latitude": self.latitude, "longitude": self.longitude,
            "utm_east": self.utm_east, "utm_north": self.utm_north}
        data["reason"] = reason
        return data

    def mark_unknown(self, reason: str) -> None:
        """Withdraws the location (the matches stay, for inspection)."""
        self.latitude = self.longitude = self.utm_east = self.utm_north = None
        self.unknown_reason = reason


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
    inliers: np.ndarray | None = None,
) -> Prediction:
    """Clusters matches in space and returns the weighted mean of the strongest cluster.

    Args:
        utm: (k, 2) UTM east/north of the matches, best match first.
        similarities: (k,) similarity of each match to the photo.
        radius_m: matches within this distance of a match join its cluster.
        zones: the UTM zone of each match (any comparable value); matches in different
            zones never share a cluster. None: all in one zone.
        inliers: (k,) verified inliers of each match (re-ranking), or None.

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
    if inliers is not None:
        inliers = np.maximum(np.asarray(inliers, dtype=np.float64).reshape(-1), 0.0)
        if len(inliers) != count:
            raise ValueError(f"need one inlier count per match, got {len(inliers)} for {count}")
        weights = weights * np.exp((inliers - inliers.max()) / INLIER_TEMPERATURE)
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
        if inliers is not None:
            lead = inliers[members].max() - inliers[~members].max()
            margin = max(margin, float(np.clip(lead / INLIER_MARGIN_SCALE, 0.0, 1.0)))
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
            radius_m: float, inliers: np.ndarray | None = None,
            pairs: Sequence[np.ndarray | None] | None = None) -> LocateResult:
    keep = items >= 0  # approximate indexes may return fewer than k neighbours
    similarities, items = similarities[keep], items[keep]
    if inliers is not None:
        inliers = inliers[keep]
    if pairs is not None:
        pairs = [item for item, kept in zip(pairs, keep) if kept]
    if len(items) == 0:
        return LocateResult(photo, None, None, None, None, None, "", 0.0, 0, radius_m, [])
    records = [index.record(int(item)) for item in items]
    utm = np.array([(r["utm_east"], r["utm_north"]) for r in records], np.float64)
    zones = [(r["utm_zone_number"], r["utm_zone_letter"]) for r in records]
    prediction = predict_location(utm, similarities, radius_m, zones, inliers=inliers)
    members = np.flatnonzero(prediction.members)
    zone_number, zone_letter = zones[members[0]]
    weights = np.maximum(similarities[members], 1e-9)
    latitude, longitude = _to_latlon(
        prediction.utm_east, prediction.utm_north, zone_number, zone_letter,
        [records[i]["latitude"] for i in members], [records[i]["longitude"] for i in members],
        weights,
    )
    photo_size = image_size(photo) if pairs is not None else None
    matches = []
    for rank, (record, similarity) in enumerate(zip(records, similarities), 1):
        distance = _distance_to_prediction(record, latitude, longitude)
        evidence = None
        if pairs is not None and pairs[rank - 1] is not None:
            evidence = keypoint_pairs(pairs[rank - 1], photo_size, image_size(record["path"]))
        matches.append(Match(
            rank=rank, path=record["path"], similarity=round(float(similarity), 6),
            utm_east=record["utm_east"], utm_north=record["utm_north"],
            utm_zone_number=record["utm_zone_number"], utm_zone_letter=record["utm_zone_letter"],
            latitude=record["latitude"], longitude=record["longitude"],
            distance_to_prediction_m=distance,
            in_cluster=bool(prediction.members[rank - 1]),
            inliers=None if inliers is None else int(inliers[rank - 1]),
            keypoint_pairs=evidence,
        ))
    return LocateResult(
        photo=photo, latitude=latitude, longitude=longitude,
        utm_east=round(prediction.utm_east, 2), utm_north=round(prediction.utm_north, 2),
        utm_zone_number=zone_number, utm_zone_letter=zone_letter,
        confidence=round(prediction.confidence, 4), cluster_size=len(members),
        radius_m=radius_m, matches=matches,
    )


@dataclass(frozen=True)
class GeoPrior:
    """Search only the images within ``radius_m`` metres of a GPS fix (its known error)."""

    latitude: float
    longitude: float
    radius_m: float

    def __str__(self) -> str:
        return f"{self.radius_m:g} m of {self.latitude:.6f},{self.longitude:.6f}"


def prior_ids(index: LocationIndex, prior: GeoPrior | None) -> np.ndarray | None:
    """The items a prior allows (None: all).

    Raises:
        GeoPriorError: no indexed image lies within the radius.
    """
    if prior is None:
        return None
    ids = index.ids_near(prior.latitude, prior.longitude, prior.radius_m)
    if len(ids) == 0:
        without = index.store.count_without_latlon()
        note = f" ({without} of its images have no latitude/longitude)" if without else ""
        raise GeoPriorError(
            f"near: no image of index {index.path} lies within {prior}{note}; widen "
            "near_radius or drop near")
    return ids


def check_min_confidence(min_confidence: float | None) -> None:
    """Raises ValueError unless ``min_confidence`` is None or in [0, 1]."""
    if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
        raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")


def locate_descriptors(
    descriptors: np.ndarray,
    photos: Sequence[str],
    index: LocationIndex,
    top_k: int = DEFAULT_TOP_K,
    radius_m: float = DEFAULT_RADIUS_M,
    prior: GeoPrior | None = None,
    reranker: Any = None,
    min_confidence: float | None = None,
) -> list[LocateResult]:
    """The `locate` of photos already described (one descriptor row per photo).

    ``photos`` must be readable image files when a ``reranker`` is given (their local
    features are compared with the candidates'); otherwise they are only labels.
    """
    check_min_confidence(min_confidence)
    ids = prior_ids(index, prior)
    inliers = pairs = None
    if reranker is None:
        similarities, items = index.search(descriptors, top_k, ids=ids)
    else:
        similarities, items = index.search(descriptors, max(top_k, reranker.top_k), ids=ids)
        database = reranker.database_features(index.paths, index.path / "rerank")
        reranked = reranker.rerank([Path(photo) for photo in photos], items, similarities,
                                   database, pairs=MAX_KEYPOINT_PAIRS)
        similarities, items = reranked.similarities[:, :top_k], reranked.candidates[:, :top_k]
        inliers = reranked.inliers[:, :top_k]
        pairs = [row[:top_k] for row in reranked.pairs or [[None] * top_k] * len(photos)]
    results = [_result(str(photo), index, similarities[row], items[row], radius_m,
                       None if inliers is None else inliers[row],
                       None if pairs is None else pairs[row])
               for row, photo in enumerate(photos)]
    if min_confidence is not None:
        for result in results:
            if not result.unknown and result.confidence < min_confidence:
                result.mark_unknown(f"confidence {result.confidence:.2f} is below "
                                    f"min_confidence {min_confidence:g}")
    return results


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
    prior: GeoPrior | None = None,
    reranker: Any = None,
    min_confidence: float | None = None,
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
        prior: search only the images near a GPS fix (exact search among them).
        reranker: a `vpr.rerank.Reranker` (built for this index's model) to verify and
            reorder the top candidates; their inliers then feed the vote and the confidence.
            The index's local features are cached in ``<index>/rerank/``.
        min_confidence: a prediction with a lower confidence becomes unknown.

    Returns:
        One `LocateResult` per photo, in order.

    Raises:
        GeoPriorError: no indexed image lies within the prior's radius.
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
    prior_ids(index, prior)  # before describing anything
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
    return locate_descriptors(descriptors, [str(path) for path in paths], index, top_k,
                              radius_m, prior, reranker, min_confidence)
