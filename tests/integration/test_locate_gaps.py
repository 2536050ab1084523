"""Re-ranking's keypoint pairs in locate answers, `vpr serve --min_confidence`, and the
geographic prior of ``POST /locate/batch``."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import utm
from helpers.cli import run_cli
from helpers.places import ZONE, save_tiny_checkpoint
from helpers.textures import texture
from PIL import Image

from vpr.data.geotag import GeoTag, format_filename
from vpr.locate import LocationIndex, locate
from vpr.locate.evidence import MAX_KEYPOINT_PAIRS, keypoint_pairs
from vpr.locate.geodesy import geodesic_m
from vpr.rerank import GeometricVerifier, Reranker, build_method
from vpr.rerank.options import build_reranker
from vpr.serve import create_app, serve_in_background

# The database image is the top-left 160 x 120 window of a larger texture; the photo is the
# window SHIFT pixels right and down, enlarged 2x: its pixel (u, v) shows the database
# image's pixel (u / 2 + SHIFT[0], v / 2 + SHIFT[1]).
SHIFT = (24.0, 16.0)
WIDTH, HEIGHT = 160, 120
PLACES = [(395000.0 + 1000 * number, 4990000.0) for number in range(3)]


def geo_path(folder: Path, east: float, north: float, note: str) -> Path:
    latitude, longitude = utm.to_latlon(east, north, *ZONE)
    tag = GeoTag(utm_east=east, utm_north=north, utm_zone_number=ZONE[0],
                 utm_zone_letter=ZONE[1], latitude=float(latitude), longitude=float(longitude),
                 note=note)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / format_filename(tag, ".png")


def save_rgb(image: np.ndarray, path: Path) -> Path:
    Image.fromarray(np.ascontiguousarray(image)).save(path)
    return path


@pytest.fixture(scope="module")
def shifted(tmp_path_factory) -> dict[str, Path]:
    """An index of the database window (place 0) and two unrelated textures (places 1, 2),
    and the shifted, enlarged photo."""
    root = tmp_path_factory.mktemp("shifted")
    big = np.concatenate([np.concatenate([texture(11), texture(12)], 1),
                          np.concatenate([texture(13), texture(14)], 1)], 0)
    dx, dy = int(SHIFT[0]), int(SHIFT[1])
    window = big[:HEIGHT, :WIDTH]
    moved = big[dy:dy + HEIGHT, dx:dx + WIDTH]
    database = root / "database"
    same = save_rgb(window, geo_path(database, *PLACES[0], "window"))
    for number, seed in ((1, 21), (2, 22)):
        save_rgb(texture(seed), geo_path(database, *PLACES[number], f"other{number}"))
    photo = save_rgb(cv2.resize(moved, (2 * WIDTH, 2 * HEIGHT),
                                interpolation=cv2.INTER_CUBIC), root / "photo.png")
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    LocationIndex.build(root / "index", ckpt, database, device="cpu")
    return {"index": root / "index", "photo": photo, "same": same}


def assert_shift(pairs: list[list[float]], tolerance_px: float) -> None:
    """Each pair, in the database image's pixels, is the photo's point moved by SHIFT."""
    array = np.array(pairs)
    assert array.shape[1] == 4 and ((array >= 0) & (array <= 1)).all()
    # Fractions: x_match * WIDTH = x_photo * (2 WIDTH) / 2 + SHIFT, the same for y.
    shift = (array[:, 2:] - array[:, :2]) * [WIDTH, HEIGHT]
    assert np.abs(shift - SHIFT).max() <= tolerance_px, shift


# (method, its options, tolerance in database pixels): a backbone keypoint is a cell centre,
# only as precise as the cell (8 pixels at layer2 on 160 x 120).
METHODS = [("sift", {}, 2.0), ("orb", {}, 2.0),
           ("backbone", {"image_size": [HEIGHT, WIDTH]}, 8.0)]


@pytest.mark.parametrize(("method", "options", "tolerance"), METHODS)
def test_keypoint_pairs_of_a_shifted_copy_differ_by_the_shift(shifted, method, options,
                                                              tolerance):
    index = LocationIndex.load(shifted["index"])
    model = index.load_model()
    reranker = build_reranker({"top_k": 3, "method": method, "options": options}, model)
    [result] = locate(shifted["photo"], index, top_k=3, device="cpu", model=model,
                      reranker=reranker)
    payload = result.to_dict()
    [same] = [m for m in payload["matches"] if m["path"] == str(shifted["same"].resolve())]
    assert same["rank"] == 1 and same["inliers"] >= 10
    pairs = same["keypoint_pairs"]
    assert len(pairs) == min(same["inliers"], MAX_KEYPOINT_PAIRS)
    assert_shift(pairs, tolerance)
    # Every verified match carries its pairs (an unrelated one may have none).
    assert all(isinstance(m["keypoint_pairs"], list) for m in payload["matches"])


def test_no_keypoint_pairs_without_rerank(shifted):
    index = LocationIndex.load(shifted["index"])
    [result] = locate(shifted["photo"], index, top_k=3, device="cpu")
    assert all(match.keypoint_pairs is None for match in result.matches)
    assert all("keypoint_pairs" not in match for match in result.to_dict()["matches"])


def test_pairs_are_the_best_fitting_inliers_and_capped(shifted):
    method = build_method("orb")
    photo, same = method.extract([shifted["photo"], shifted["same"]])
    verification = Reranker(method).verify(photo, same)
    assert verification.inliers > MAX_KEYPOINT_PAIRS  # ORB finds hundreds here
    assert len(verification.pairs) == verification.inliers
    # Sorted by distance from the fitted homography (here: a 0.5 scale and the shift).
    transfer = np.linalg.norm(verification.pairs[:, :2] / 2 + SHIFT - verification.pairs[:, 2:],
                              axis=1)
    assert transfer[:MAX_KEYPOINT_PAIRS].mean() <= transfer.mean()
    assert GeometricVerifier().inliers(photo, same, method.match(photo, same)) \
        == verification.inliers
    capped = keypoint_pairs(verification.pairs, (2 * WIDTH, 2 * HEIGHT), (WIDTH, HEIGHT))
    assert len(capped) == MAX_KEYPOINT_PAIRS
    # Fractions of each image's own size, rounded to 4 decimals.
    first = verification.pairs[0] / [2 * WIDTH, 2 * HEIGHT, WIDTH, HEIGHT]
    assert capped[0] == pytest.approx(first.tolist(), abs=5e-5)
    assert keypoint_pairs(None, (1, 1), (1, 1)) is None
    assert keypoint_pairs(verification.pairs, None, (WIDTH, HEIGHT)) is None


def test_fundamental_geometry_gives_its_inlier_pairs_too(shifted):
    method = build_method("sift")
    photo, same = method.extract([shifted["photo"], shifted["same"]])
    verifier = GeometricVerifier(geometry="fundamental")
    verification = verifier.verify(photo, same, method.match(photo, same))
    assert verification.inliers >= 10 and len(verification.pairs) == verification.inliers
    assert verifier.verify(photo, same, method.match(photo, same), pairs=False).pairs.size == 0
    shift = verification.pairs[:, 2:] - verification.pairs[:, :2] / 2
    assert np.median(shift, axis=0) == pytest.approx(SHIFT, abs=1.0)


def post(client: httpx.Client, route: str, paths: list[Path], **fields: str) -> httpx.Response:
    files = [("file", (path.name, path.read_bytes(), "image/png")) for path in paths]
    return client.post(route, files=files, data=fields)


def test_served_answers_carry_keypoint_pairs_in_the_uploads_fractions(shifted):
    app = create_app(shifted["index"], top_k=3, device="cpu",
                     rerank={"top_k": 3, "method": "sift"})
    with serve_in_background(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        # The upload (320 x 240, over twice the model's 32 x 32) is shrunk before it is
        # located: the fractions still place each pair where the page shows the photo.
        [answer] = post(client, "/locate", [shifted["photo"]]).json()
        [row] = post(client, "/locate/batch", [shifted["photo"]]).json()
    top = answer["matches"][0]
    assert top["path"] == str(shifted["same"].resolve())
    assert 10 <= len(top["keypoint_pairs"]) <= MAX_KEYPOINT_PAIRS
    assert_shift(top["keypoint_pairs"], 2.5)
    assert row == answer


@pytest.fixture(scope="module")
def unsure_service(served_world):
    """`served_world` with --min_confidence 1: 5 matches from places of 3 images never all
    agree, so every prediction is below it."""
    app = create_app(served_world["index"], top_k=5, device="cpu", min_confidence=1.0)
    with serve_in_background(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_serve_min_confidence_turns_a_low_confidence_answer_into_unknown(unsure_service,
                                                                         served_world):
    client = unsure_service
    photo = sorted(served_world["database"].iterdir())[0]
    [unknown] = post(client, "/locate", [photo]).json()
    assert unknown["location"] is None and unknown["latitude"] is None
    assert unknown["utm_east"] is None
    assert unknown["confidence"] < 1.0
    assert unknown["reason"] == (f"confidence {unknown['confidence']:.2f} is below "
                                 "min_confidence 1")
    assert len(unknown["matches"]) == 5  # the evidence stays
    # What `vpr locate --min_confidence 1` says of the same photo.
    expected = locate(photo, served_world["index"], top_k=5, device="cpu",
                      min_confidence=1.0)[0].to_dict()
    assert unknown["reason"] == expected["reason"]
    assert unknown["confidence"] == expected["confidence"]
    # A request may ask for another minimum; the batch takes the same field.
    [located] = post(client, "/locate", [photo], min_confidence="0").json()
    assert located["location"] is not None and located["reason"] is None
    assert located["confidence"] == unknown["confidence"]
    rows = post(client, "/locate/batch", [photo, photo], min_confidence="0.0").json()
    assert [row["location"] is not None for row in rows] == [True, True]
    rows = post(client, "/locate/batch", [photo]).json()
    assert rows[0]["location"] is None
    assert post(client, "/locate", [photo], min_confidence="1.5").status_code == 422
    assert post(client, "/locate/batch", [photo], min_confidence="-1").status_code == 422
    assert client.get("/health").json()["min_confidence"] == 1.0


def test_serve_refuses_a_min_confidence_outside_0_1(served_world):
    with pytest.raises(ValueError, match="min_confidence"):
        run_cli("serve", ["serve", "--index", str(served_world["index"]),
                          "--accelerator", "cpu", "--min_confidence", "2"])
    with pytest.raises(ValueError, match="min_confidence"):
        create_app(served_world["index"], device="cpu", min_confidence=-0.1)


@pytest.fixture(scope="module")
def batch_service(served_world):
    app = create_app(served_world["index"], top_k=3, device="cpu")
    with serve_in_background(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_batch_with_near_keeps_every_match_within_the_radius(batch_service, served_world):
    client = batch_service
    images = sorted(served_world["database"].iterdir())  # 3 images of each of 4 places
    photos = [images[0], images[6]]  # places 0 and 2
    # Place 1's first image, hand-placed 1 km from places 0 and 2.
    index = LocationIndex.load(served_world["index"])
    fix = index.record(index.store.id_of(str(images[3].resolve())))
    near = f"{fix['latitude']},{fix['longitude']}"
    plain = post(client, "/locate/batch", photos).json()
    assert [row["matches"][0]["path"] for row in plain] == [str(p.resolve()) for p in photos]
    rows = post(client, "/locate/batch", photos, near=near, near_radius="50").json()
    assert len(rows) == 2
    for row, photo in zip(rows, photos):
        assert len(row["matches"]) == 3  # place 1's three images, all within 10 m
        for match in row["matches"]:
            assert geodesic_m(fix["latitude"], fix["longitude"], match["latitude"],
                              match["longitude"]) <= 50
        # The row is what /locate answers for the photo alone with the same prior.
        [alone] = post(client, "/locate", [photo], near=near, near_radius="50").json()
        assert row == alone
    # `radius` is the same field as `near_radius`; the same checks as /locate.
    assert post(client, "/locate/batch", photos, near=near, radius="50").json() == rows
    response = post(client, "/locate/batch", photos, near=near, radius="50", near_radius="60")
    assert response.status_code == 422 and "disagree" in response.json()["detail"]
    response = post(client, "/locate/batch", photos, near="north")
    assert response.status_code == 422 and "near" in response.json()["detail"]
    response = post(client, "/locate/batch", photos, near="0,0", near_radius="50")
    assert response.status_code == 422 and "near_radius" in response.json()["detail"]
    assert "--near" not in response.json()["detail"]


def test_keypoint_pairs_round_trip_through_a_shrunk_upload(shifted):
    """The serving decoder's reduction keeps the aspect ratio: fractions survive it."""
    from vpr.serve.decoding import UploadDecoder

    data, _ = UploadDecoder((32, 32)).prepare(shifted["photo"].read_bytes())
    with Image.open(io.BytesIO(data)) as shrunk:
        width, height = shrunk.size
    assert width < 2 * WIDTH and width / height == pytest.approx(4 / 3, rel=0.02)
