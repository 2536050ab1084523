"""Losses and miners: registry lookup, seed defaults, overrides, b_acc, CentroidTripletLoss."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from pytorch_metric_learning import distances, losses, miners

from vpr.training.losses import (
    LOSS_DEFAULTS,
    MINER_DEFAULTS,
    CentroidTripletLoss,
    build_loss,
    build_miner,
    compute_loss,
    list_losses,
    list_miners,
    loss_accepts_miner_output,
    parse_overrides,
)

PLACES, IMAGES_PER_PLACE, DIM = 4, 4, 16


def make_batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A P x K batch of random L2-normalised descriptors that require a gradient."""
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn(PLACES * IMAGES_PER_PLACE, DIM, generator=generator)
    descriptors = torch.nn.functional.normalize(raw, dim=1).requires_grad_()
    labels = torch.arange(PLACES).repeat_interleave(IMAGES_PER_PLACE)
    return descriptors, labels


@pytest.mark.parametrize(
    ("loss_name", "miner_name"), itertools.product(list_losses(), list_miners())
)
def test_every_loss_with_every_miner_gives_a_finite_loss_with_gradient(loss_name, miner_name):
    descriptors, labels = make_batch()
    loss, b_acc = compute_loss(build_loss(loss_name), build_miner(miner_name), descriptors, labels)
    assert loss.ndim == 0 and torch.isfinite(loss)
    (gradient,) = torch.autograd.grad(loss, descriptors)
    assert torch.isfinite(gradient).all()
    assert 0.0 <= b_acc <= 1.0


def test_tables_are_plain_data_and_match_the_lists():
    # A config shows and stores these tables: they must survive a JSON round trip.
    assert json.loads(json.dumps(LOSS_DEFAULTS)) == LOSS_DEFAULTS
    assert json.loads(json.dumps(MINER_DEFAULTS)) == MINER_DEFAULTS
    assert list_losses() == list(LOSS_DEFAULTS)
    assert list_miners() == list(MINER_DEFAULTS)


@pytest.mark.parametrize("loss_name", list_losses())
def test_loss_attributes_are_the_seed_defaults(loss_name):
    loss = build_loss(loss_name)
    for key, value in LOSS_DEFAULTS[loss_name].items():
        if key == "distance":
            assert type(loss.distance).__name__ == value
        elif hasattr(loss, key):  # pml keeps most, not all, options as attributes
            assert getattr(loss, key) == value, key


def test_seed_defaults_by_hand():
    multi_similarity = build_loss("MultiSimilarityLoss")
    assert (multi_similarity.alpha, multi_similarity.beta, multi_similarity.base) == (1.0, 50, 0.0)
    assert isinstance(multi_similarity.distance, distances.DotProductSimilarity)
    circle = build_loss("CircleLoss")
    assert (circle.m, circle.gamma) == (0.4, 80)
    assert build_loss("SupConLoss").temperature == 0.07
    assert build_loss("FastAPLoss").num_bins == 30
    lifted = build_loss("Lifted")
    assert isinstance(lifted, losses.GeneralizedLiftedStructureLoss)
    assert (lifted.neg_margin, lifted.pos_margin) == (0, 1)
    assert build_loss("TripletMarginLoss").margin == 0.1
    assert build_loss("CentroidTripletLoss").margin == 0.05

    triplet_miner = build_miner("TripletMarginMiner")
    assert (triplet_miner.margin, triplet_miner.type_of_triplets) == (0.1, "semihard")
    multi_similarity_miner = build_miner("MultiSimilarityMiner")
    assert multi_similarity_miner.epsilon == 0.1
    assert isinstance(multi_similarity_miner.distance, distances.CosineSimilarity)
    pair_miner = build_miner("PairMarginMiner")
    assert (pair_miner.pos_margin, pair_miner.neg_margin) == (0.7, 0.3)
    assert isinstance(pair_miner.distance, distances.DotProductSimilarity)
    assert build_miner("NoMiner") is None


def test_overrides_reach_the_object():
    assert build_loss("MultiSimilarityLoss", alpha=2.0).alpha == 2.0
    assert build_loss("MultiSimilarityLoss", alpha=2.0).beta == 50  # the others stay
    cosine = build_loss("MultiSimilarityLoss", distance="CosineSimilarity")
    assert isinstance(cosine.distance, distances.CosineSimilarity)
    ready = distances.LpDistance(p=1)
    assert build_loss("ContrastiveLoss", distance=ready).distance is ready
    assert build_loss("TripletMarginLoss", swap=True).swap is True
    assert build_loss("CentroidTripletLoss", margin=0.2).triplet_loss.margin == 0.2


def test_miner_margin_and_overrides():
    assert build_miner("TripletMarginMiner", 0.3).margin == 0.3
    assert build_miner("MultiSimilarityMiner", margin=0.2).epsilon == 0.2
    # An explicit option wins over the margin argument.
    assert build_miner("MultiSimilarityMiner", 0.2, epsilon=0.05).epsilon == 0.05
    assert build_miner("TripletMarginMiner", type_of_triplets="hard").type_of_triplets == "hard"
    pair_miner = build_miner("PairMarginMiner", 0.9, pos_margin=0.8, distance="LpDistance")
    assert pair_miner.pos_margin == 0.8 and pair_miner.neg_margin == 0.3
    assert isinstance(pair_miner.distance, distances.LpDistance)
    with pytest.raises(ValueError, match="NoMiner takes no options"):
        build_miner("NoMiner", epsilon=0.1)


@pytest.mark.parametrize("name", ["Triplet", "TripletLoss", "MultiSimilarity", "lift", "", "Loss"])
def test_unknown_loss_raises_listing_the_names(name):
    with pytest.raises(ValueError) as error:
        build_loss(name)
    for valid in list_losses():
        assert valid in str(error.value)


@pytest.mark.parametrize("name", ["TripletMiner", "Miner", "noMinerX"])
def test_unknown_miner_raises_listing_the_names(name):
    with pytest.raises(ValueError) as error:
        build_miner(name)
    for valid in list_miners():
        assert valid in str(error.value)


def test_unknown_distance_and_misspelt_option_raise_value_error():
    with pytest.raises(ValueError, match="DotProductSimilarity"):
        build_loss("MultiSimilarityLoss", distance="Cosine")
    with pytest.raises(ValueError, match="temprature"):
        build_loss("SupConLoss", temprature=0.1)


def test_names_match_exactly_ignoring_case_only():
    assert type(build_loss("TripletMarginLoss")) is losses.TripletMarginLoss
    assert type(build_loss("tripletmarginloss")) is losses.TripletMarginLoss
    assert type(build_loss("CentroidTripletLoss")) is CentroidTripletLoss
    assert type(build_loss("CENTROIDTRIPLETLOSS")) is CentroidTripletLoss
    assert type(build_loss("multisimilarityloss")) is losses.MultiSimilarityLoss
    assert type(build_miner("multisimilarityminer")) is miners.MultiSimilarityMiner
    assert build_miner("nominer") is None


def test_b_acc_is_the_share_of_samples_that_are_no_anchor():
    descriptors, _ = make_batch()
    descriptors = descriptors[:8]
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    # Triplets whose anchors are samples 0, 1 and 2 (0 twice): 3 of 8 samples are anchors.
    anchors = torch.tensor([0, 0, 1, 2])
    positives = torch.tensor([1, 1, 0, 3])
    negatives = torch.tensor([2, 4, 5, 0])

    def fake_miner(embeddings, batch_labels):
        return anchors, positives, negatives

    loss, b_acc = compute_loss(build_loss("TripletMarginLoss"), fake_miner, descriptors, labels)
    assert b_acc == pytest.approx(1 - 3 / 8) == 0.625
    assert torch.isfinite(loss)
    _, b_acc = compute_loss(build_loss("TripletMarginLoss"), None, descriptors, labels)
    assert b_acc == 0.0


def test_centroid_triplet_loss_never_runs_the_miner():
    descriptors, labels = make_batch()

    def failing_miner(embeddings, batch_labels):
        raise AssertionError("the miner must not run for CentroidTripletLoss")

    loss_fn = build_loss("CentroidTripletLoss")
    assert not loss_accepts_miner_output(loss_fn)
    assert loss_accepts_miner_output(build_loss("TripletMarginLoss"))
    loss, b_acc = compute_loss(loss_fn, failing_miner, descriptors, labels)
    assert b_acc == 0.0 and torch.isfinite(loss)
    with pytest.raises(ValueError, match="own triplets"):
        loss_fn(descriptors, labels, (labels, labels, labels))


def test_centroid_triplet_loss_matches_a_plain_loop():
    descriptors, labels = make_batch(seed=3)
    margin = 0.3  # large enough that most triplets are active
    loss = build_loss("CentroidTripletLoss", margin=margin)(descriptors, labels)

    def normalise(vector: torch.Tensor) -> torch.Tensor:
        return vector / vector.norm()

    # The paper's loss, with pml's default LpDistance (L2 on normalised vectors) and the
    # average over the triplets with a non-zero loss.
    triplet_losses = []
    for anchor in range(len(labels)):
        same = [i for i in range(len(labels)) if labels[i] == labels[anchor] and i != anchor]
        positive = descriptors[same].mean(0)
        for place in labels.unique():
            if place == labels[anchor]:
                continue
            negative = descriptors[labels == place].mean(0)
            a, p, n = normalise(descriptors[anchor]), normalise(positive), normalise(negative)
            value = torch.relu((a - p).norm() - (a - n).norm() + margin)
            triplet_losses.append(value)
    triplet_losses = torch.stack(triplet_losses)
    expected = triplet_losses[triplet_losses > 0].mean()
    assert len(triplet_losses) == PLACES * IMAGES_PER_PLACE * (PLACES - 1)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_centroid_triplet_loss_needs_two_samples_per_label():
    descriptors, _ = make_batch()
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3] + [3] * 8 + [7])
    with pytest.raises(ValueError, match=r"\[7\]"):
        build_loss("CentroidTripletLoss")(descriptors, labels)


def test_parse_overrides_types_values():
    parsed = parse_overrides(
        [
            "alpha=2",
            "beta=40.5",
            "distance=CosineSimilarity",
            "swap=true",
            "smooth_loss=False",
            "eps=1e-3",
            "triplets_per_anchor=all",
            "reducer=none",
        ]
    )
    assert parsed == {
        "alpha": 2,
        "beta": 40.5,
        "distance": "CosineSimilarity",
        "swap": True,
        "smooth_loss": False,
        "eps": 1e-3,
        "triplets_per_anchor": "all",
        "reducer": None,
    }
    assert type(parsed["alpha"]) is int and type(parsed["beta"]) is float
    assert parse_overrides([]) == {} and parse_overrides(None) == {}
    # Parsed options go straight into build_loss.
    options = parse_overrides(["beta=40.5", "distance=LpDistance"])
    built = build_loss("MultiSimilarityLoss", **options)
    assert built.beta == 40.5 and isinstance(built.distance, distances.LpDistance)


@pytest.mark.parametrize("item", ["alpha", "=2", "alpha=", "al pha=2", "2alpha=1"])
def test_parse_overrides_rejects_malformed_items(item):
    with pytest.raises(ValueError, match="malformed") as error:
        parse_overrides(["beta=1", item])
    assert repr(item) in str(error.value)


def test_parse_overrides_rejects_a_repeated_key():
    with pytest.raises(ValueError, match="twice"):
        parse_overrides(["alpha=1", "alpha=2"])
