"""Re-ranking by geometric verification: every method, the order, the cache, the commands."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from helpers.cli import run_cli
from helpers.places import save_tiny_checkpoint, write_place
from helpers.textures import SIZE, texture

from vpr.data.datasets import RetrievalSet
from vpr.data.geotag import GeoTag, format_filename
from vpr.models.model import build_model
from vpr.rerank import GeometricVerifier, Reranker, build_method, list_methods, rerank_order
from vpr.rerank.cache import cache_file, cached_features
from vpr.rerank.evaluation import EvaluationReranker
from vpr.rerank.options import parse_method_options

# A mild perspective change: a few degrees of rotation, some scale, a little keystone.
HOMOGRAPHY = np.array([[1.05, 0.04, -4.0], [0.02, 0.97, 3.0], [2e-4, 1e-4, 1.0]])


def save(image: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def geo_name(east: float, note: str) -> str:
    return format_filename(GeoTag(utm_east=east, utm_north=4_000_000.0, utm_zone_number=33,
                                  utm_zone_letter="T", note=note), ".png")


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    """Place A, the same place seen through HOMOGRAPHY, and an unrelated place B."""
    root = tmp_path_factory.mktemp("scene")
    place_a, place_b = texture(1), texture(2)
    warped = cv2.warpPerspective(place_a, HOMOGRAPHY, SIZE, borderMode=cv2.BORDER_REFLECT)
    return {"a": save(place_a, root / "database" / geo_name(500_000.0, "a")),
            "b": save(place_b, root / "database" / geo_name(501_000.0, "b")),
            "warped": save(warped, root / "queries" / geo_name(500_005.0, "q")),
            "root": root}


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("resnet18", "GeM", pretrained="none", image_size=(SIZE[1], SIZE[0])).eval()


@pytest.mark.parametrize("name", list_methods())
def test_a_homography_pair_verifies_and_an_unrelated_pair_does_not(name, scene, model):
    method = build_method(name, model=model)
    place_a, place_b, warped = method.extract([scene["a"], scene["b"], scene["warped"]])
    assert place_a.keypoints.shape[1] == 2 and len(place_a) == len(place_a.descriptors)
    verifier = GeometricVerifier()
    same = verifier.inliers(warped, place_a, method.match(warped, place_a))
    other = verifier.inliers(warped, place_b, method.match(warped, place_b))
    assert same >= 30, (name, same)
    assert same >= 4 * max(other, 1), (name, same, other)


def test_backbone_keypoints_are_cell_centres_in_image_coordinates(scene, model):
    features = build_method("backbone", model=model, layer="layer2").extract([scene["a"]])[0]
    # layer2 has stride 8: a 20 x 15 grid of 8-pixel cells on the 160 x 120 image.
    assert len(features) == 20 * 15 and features.cell_px == 8.0
    assert features.keypoints[0].tolist() == [4.0, 4.0]
    assert features.keypoints[-1].tolist() == [156.0, 116.0]
    assert np.allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, atol=1e-5)


def test_order_rules_by_hand():
    similarities = np.array([0.9, 0.8, 0.85, 0.95])
    inliers = np.array([5, 20, 20, 0])
    # Most inliers first; the two with 20 are ordered by similarity.
    assert rerank_order(similarities, inliers, "inliers").tolist() == [2, 1, 0, 3]
    # blend: 0.99 + 0 / 50 beats 0.90 + 3 / 50 = 0.96, while "inliers" puts 3 inliers first.
    assert rerank_order([0.99, 0.9], [0, 3], "blend", 50.0).tolist() == [0, 1]
    assert rerank_order([0.99, 0.9], [0, 3], "inliers").tolist() == [1, 0]
    with pytest.raises(ValueError, match="valid: inliers, blend"):
        rerank_order([0.9], [1], "sum")


def test_reranking_fixes_a_wrong_first_candidate(scene, model):
    """The global descriptor ranks place B first for a view of A; verification reorders."""
    dataset = RetrievalSet(scene["root"], transform=None)
    assert [Path(p).name for p in dataset.database_paths] == [scene["a"].name, scene["b"].name]
    # Fabricated global retrieval: B (index 1) nearer than A (index 0) in descriptor space.
    predictions = np.array([[1, 0]])
    distances = np.array([[0.2, 0.4]], np.float32)
    assert list(dataset.positives_per_query[0]) == [0]
    hook = EvaluationReranker(Reranker(build_method("backbone", model=model), top_k=2), None)
    reordered, new_distances, info = hook(dataset, predictions, distances)
    assert reordered.tolist() == [[0, 1]]
    assert new_distances[0].tolist() == pytest.approx([0.4, 0.2])
    assert info["loop_closure_inliers"]["recall_at_100_precision"] == 1.0
    assert info["ms_per_query"] > 0


def test_candidates_beyond_k_keep_their_place(scene):
    method = build_method("orb")
    database = method.extract([scene["b"], scene["a"], scene["b"]])
    reranked = Reranker(method, top_k=2).rerank(
        [scene["warped"]], np.array([[0, 1, 2]]), np.array([[0.9, 0.8, 0.7]]), database)
    assert reranked.candidates.tolist() == [[1, 0, 2]]
    assert reranked.inliers[0, 2] == -1 and reranked.inliers[0, 0] > reranked.inliers[0, 1]
    assert reranked.similarities.tolist() == [[0.8, 0.9, 0.7]]


class CountingORB:
    """ORB features that count the images they extract."""

    def __init__(self, **options):
        self.inner = build_method("orb", **options)
        self.name = self.inner.name
        self.extracted: list[str] = []

    def identity(self):
        return self.inner.identity()

    def extract(self, paths):
        self.extracted += [str(p) for p in paths]
        return self.inner.extract(paths)


def test_cache_is_reused_grown_and_invalidated(scene, tmp_path):
    counting = CountingORB()
    first = cached_features(tmp_path, counting, [scene["a"], scene["b"]])
    assert counting.extracted == [str(scene["a"]), str(scene["b"])]
    again = CountingORB()
    second = cached_features(tmp_path, again, [scene["a"], scene["b"]])
    assert again.extracted == []  # read from the file, nothing recomputed
    assert np.array_equal(first[1].keypoints, second[1].keypoints)
    assert np.array_equal(first[1].descriptors, second[1].descriptors)
    grown = CountingORB()
    cached_features(tmp_path, grown, [scene["a"], scene["b"], scene["warped"]])
    assert grown.extracted == [str(scene["warped"])]  # only the new image
    changed = CountingORB(max_keypoints=200)  # other settings: other features
    cached_features(tmp_path, changed, [scene["a"]])
    assert changed.extracted == [str(scene["a"])]
    assert [p.name for p in tmp_path.glob("orb-*.npz")] == [cache_file(tmp_path, changed).name]


def test_new_model_weights_invalidate_backbone_features(model):
    def identity_with(layer, delta):
        weight = getattr(model.backbone, layer)[0].conv1.weight
        original = weight.detach().clone()
        with torch.no_grad():
            weight[0, 0, 0, 0] += delta
        try:
            return build_method("backbone", model=model).identity()
        finally:
            with torch.no_grad():
                weight.copy_(original)

    before = build_method("backbone", model=model).identity()
    assert identity_with("layer1", 0.0) == before
    assert identity_with("layer1", 1.0)["weights_sha256"] != before["weights_sha256"]
    # layer4 weights do not shape layer2 features: they are not part of the key.
    assert identity_with("layer4", 1.0) == before


def test_method_options_and_unknown_names():
    assert parse_method_options(["layer=layer3", "ratio=0.7"]) == {"layer": "layer3",
                                                                   "ratio": 0.7}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_method_options(["layer3"])
    with pytest.raises(ValueError, match="valid: backbone, orb, sift"):
        build_method("SuperGlue")
    assert build_method("SIFT").name == "sift"  # exact, case-insensitive


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory):
    from vpr.locate import LocationIndex

    root = tmp_path_factory.mktemp("rerank_index")
    for place in range(3):
        write_place(root / "database", place)
    ckpt = save_tiny_checkpoint(root / "model.ckpt")
    LocationIndex.build(root / "index", ckpt, root / "database", device="cpu")
    return root


def test_locate_min_confidence_gives_unknown(tiny_index, capsys):
    from vpr.locate import LocationIndex, locate

    photo = sorted((tiny_index / "database").iterdir())[0]
    index = LocationIndex.load(tiny_index / "index")
    model = index.load_model()
    # 5 matches from 3 places of 3 images: at most 3 agree, so the confidence is below 1.
    plain = locate(photo, index, top_k=5, device="cpu", model=model)[0]
    assert plain.confidence < 1.0 and plain.to_dict()["location"] is not None
    assert plain.to_dict()["reason"] is None
    kept = locate(photo, index, top_k=5, device="cpu", model=model,
                  min_confidence=plain.confidence)[0]
    assert kept.latitude == plain.latitude
    refused = locate(photo, index, top_k=5, device="cpu", model=model, min_confidence=1.0)[0]
    payload = refused.to_dict()
    assert payload["location"] is None and payload["latitude"] is None
    assert "below min_confidence 1" in payload["reason"]
    assert len(payload["matches"]) == 5  # the evidence stays
    assert run_cli("locate", ["locate", str(photo), "--index", str(tiny_index / "index"),
                              "--device", "cpu", "--min_confidence", "1"]) == 0
    assert "location: unknown (confidence" in capsys.readouterr().out
    with pytest.raises(ValueError, match="min_confidence"):
        locate(photo, index, device="cpu", model=model, min_confidence=1.5)


def test_locate_cli_reranks_and_caches_beside_the_index(tiny_index, capsys):
    photo = sorted((tiny_index / "database").iterdir())[4]
    argv = ["locate", str(photo), "--index", str(tiny_index / "index"), "--device", "cpu",
            "--top_k", "3", "--json", "--rerank", "5", "--rerank_method", "orb",
            "--rerank_rule", "inliers"]
    assert run_cli("locate", argv) == 0
    printed = json.loads(capsys.readouterr().out)[0]
    assert all(isinstance(match["inliers"], int) for match in printed["matches"])
    inliers = [match["inliers"] for match in printed["matches"]]
    assert inliers == sorted(inliers, reverse=True)
    assert printed["matches"][0]["path"] == str(photo)  # itself: the most inliers
    assert len(list((tiny_index / "index" / "rerank").glob("orb-*.npz"))) == 1


def test_vpr_test_rerank_writes_before_and_after(tiny_retrieval, tmp_path):
    from vpr.cli import main as vpr_main

    ckpt = save_tiny_checkpoint(tmp_path / "run" / "model.ckpt")
    code = vpr_main(["test", "--ckpt_path", str(ckpt), "--test_path", str(tiny_retrieval),
                     "--num_workers", "0", "--no_progress_bar", "--accelerator", "cpu",
                     "--rerank", "4", "--rerank_method", "orb"])
    assert code == 0
    result = json.loads(next((tmp_path / "run" / "results").glob("test_*/results.json"))
                        .read_text())
    rerank = result["rerank"]
    assert rerank["settings"]["top_k"] == 4 and rerank["settings"]["method"]["method"] == "orb"
    assert set(rerank["recalls"]) == set(result["recalls"])
    assert "loop_closure" in result and "loop_closure_inliers" in rerank
    assert len(list((tmp_path / "run" / "rerank_cache").rglob("orb-*.npz"))) == 1
    assert next((tmp_path / "run" / "results").glob("test_*/precision_recall.png")).is_file()


def test_inliers_feed_the_vote_and_the_confidence():
    from vpr.locate.predict import INLIER_TEMPERATURE, TEMPERATURE, predict_location

    utm = np.array([[0.0, 0.0], [1000.0, 0.0], [1005.0, 0.0]])
    similarities = np.array([0.9, 0.85, 0.84])
    # By similarity alone the lone first match wins.
    assert predict_location(utm, similarities).members.tolist() == [True, False, False]
    inliers = np.array([0, 40, 35])
    prediction = predict_location(utm, similarities, inliers=inliers)
    assert prediction.members.tolist() == [False, True, True]
    weights = (np.exp((similarities - 0.9) / TEMPERATURE)
               * np.exp((inliers - 40) / INLIER_TEMPERATURE))
    share = weights[1:].sum() / weights.sum()
    # The inlier lead (40 - 0) exceeds INLIER_MARGIN_SCALE: margin 1, confidence = share.
    assert prediction.confidence == pytest.approx(share)


def test_rerank_retrieval_in_one_call(scene, tmp_path):
    from vpr.rerank import rerank_retrieval

    result = rerank_retrieval([scene["warped"]], [scene["b"], scene["a"]], np.array([[0, 1]]),
                              np.array([[0.9, 0.8]]), {"top_k": 2, "method": "orb"},
                              cache_folder=tmp_path)
    assert result.candidates.tolist() == [[1, 0]]
    assert len(list(tmp_path.glob("orb-*.npz"))) == 1
