"""pytorch-metric-learning losses and miners by exact name, with the seed's hyper-parameters.

The defaults live in two plain-data tables, ``LOSS_DEFAULTS`` and ``MINER_DEFAULTS``, so a
config can show them and override any of them. A ``distance`` is written there as the name of
a pytorch-metric-learning distance ("DotProductSimilarity") and built when the loss is.

``CentroidTripletLoss`` is not in pytorch-metric-learning since 2.0 (its issue #451); ours
lives in ``centroid_triplet.py``. It builds its own triplets (sample -> centroid of its place ->
centroid of every other place), so it takes no miner output: ``compute_loss`` does not run the
miner for it (see ``loss_accepts_miner_output``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from pytorch_metric_learning import distances, losses, miners

from vpr.config.fields import parse_overrides
from vpr.training.centroid_triplet import CentroidTripletLoss
from vpr.utils.option_check import check_options

# The seed's miner margin, used by ``build_miner`` when none is given.
DEFAULT_MINER_MARGIN = 0.1

LOSS_DEFAULTS: dict[str, dict[str, Any]] = {
    "SupConLoss": {"temperature": 0.07},
    "CircleLoss": {"m": 0.4, "gamma": 80},
    "MultiSimilarityLoss": {
        "alpha": 1.0,
        "beta": 50,
        "base": 0.0,
        "distance": "DotProductSimilarity",
    },
    "ContrastiveLoss": {"pos_margin": 0, "neg_margin": 1},
    "Lifted": {"neg_margin": 0, "pos_margin": 1, "distance": "DotProductSimilarity"},
    "FastAPLoss": {"num_bins": 30},
    "NTXentLoss": {"temperature": 0.07},
    "TripletMarginLoss": {
        "margin": 0.1,
        "swap": False,
        "smooth_loss": False,
        "triplets_per_anchor": "all",
    },
    "CentroidTripletLoss": {
        "margin": 0.05,
        "swap": False,
        "smooth_loss": False,
        "triplets_per_anchor": "all",
    },
}

# The margin-like key of each miner is set from ``build_miner``'s ``margin`` argument; the value
# shown here is the seed's default for that argument.
MINER_DEFAULTS: dict[str, dict[str, Any]] = {
    "TripletMarginMiner": {"margin": DEFAULT_MINER_MARGIN, "type_of_triplets": "semihard"},
    "MultiSimilarityMiner": {"epsilon": DEFAULT_MINER_MARGIN, "distance": "CosineSimilarity"},
    "PairMarginMiner": {"pos_margin": 0.7, "neg_margin": 0.3, "distance": "DotProductSimilarity"},
    "NoMiner": {},
}

# Which option of each miner the ``margin`` argument of ``build_miner`` sets.
MINER_MARGIN_KEYS: dict[str, str] = {
    "TripletMarginMiner": "margin",
    "MultiSimilarityMiner": "epsilon",
}

DISTANCES: dict[str, type[distances.BaseDistance]] = {
    "CosineSimilarity": distances.CosineSimilarity,
    "DotProductSimilarity": distances.DotProductSimilarity,
    "LpDistance": distances.LpDistance,
}


_LOSS_CLASSES: dict[str, Callable[..., torch.nn.Module]] = {
    "SupConLoss": losses.SupConLoss,
    "CircleLoss": losses.CircleLoss,
    "MultiSimilarityLoss": losses.MultiSimilarityLoss,
    "ContrastiveLoss": losses.ContrastiveLoss,
    "Lifted": losses.GeneralizedLiftedStructureLoss,
    "FastAPLoss": losses.FastAPLoss,
    "NTXentLoss": losses.NTXentLoss,
    "TripletMarginLoss": losses.TripletMarginLoss,
    "CentroidTripletLoss": CentroidTripletLoss,
}

_MINER_CLASSES: dict[str, Callable[..., miners.BaseMiner]] = {
    "TripletMarginMiner": miners.TripletMarginMiner,
    "MultiSimilarityMiner": miners.MultiSimilarityMiner,
    "PairMarginMiner": miners.PairMarginMiner,
}

# Losses that cannot take a miner's indices tuple.
_LOSSES_WITHOUT_MINER = (CentroidTripletLoss,)


def list_losses() -> list[str]:
    """Returns the names ``build_loss`` accepts."""
    return list(LOSS_DEFAULTS)


def list_miners() -> list[str]:
    """Returns the names ``build_miner`` accepts ("NoMiner" builds no miner)."""
    return list(MINER_DEFAULTS)


def _resolve_name(name: str, valid: list[str], kind: str) -> str:
    """Returns the registered name equal to ``name``, exactly or ignoring case."""
    if name in valid:
        return name
    # Whole-name comparison only: a substring test would send "TripletMarginLoss" to
    # "CentroidTripletLoss" (or the reverse) depending on the order of the checks.
    matches = [candidate for candidate in valid if candidate.casefold() == name.casefold()]
    if len(matches) == 1:
        return matches[0]
    raise ValueError(f"unknown {kind} {name!r}; valid names: {', '.join(valid)}")


def _build_distance(value: Any) -> Any:
    """Turns a distance name into a pml distance; returns anything else unchanged."""
    if not isinstance(value, str):
        return value
    return DISTANCES[_resolve_name(value, list(DISTANCES), "distance")]()


def _construct(kind: str, name: str, factory: Callable[..., Any], options: dict[str, Any]):
    """Calls ``factory(**options)``; a misspelt option becomes a ValueError naming it."""
    options = dict(options)
    if "distance" in options:
        options["distance"] = _build_distance(options["distance"])
    # A misspelt key or a value of the wrong type is refused here, listing the valid ones.
    check_options(f"{kind} {name}", factory, options)
    try:
        return factory(**options)
    except TypeError as error:
        raise ValueError(
            f"bad option for {kind} {name}: {error}; its defaults are "
            f"{(LOSS_DEFAULTS if kind == 'loss' else MINER_DEFAULTS)[name]}"
        ) from error


def build_loss(name: str, **overrides: Any) -> torch.nn.Module:
    """Builds the pytorch-metric-learning loss ``name`` with the seed's defaults.

    Args:
        name: one of ``list_losses()``, matched exactly (case-insensitively).
        **overrides: options replacing the defaults; ``distance`` may be a distance name.

    Returns:
        The loss module.
    """
    name = _resolve_name(name, list_losses(), "loss")
    options = {**LOSS_DEFAULTS[name], **overrides}
    return _construct("loss", name, _LOSS_CLASSES[name], options)


def build_miner(
    name: str, margin: float = DEFAULT_MINER_MARGIN, **overrides: Any
) -> miners.BaseMiner | None:
    """Builds the pytorch-metric-learning miner ``name``; "NoMiner" gives ``None``.

    Args:
        name: one of ``list_miners()``, matched exactly (case-insensitively).
        margin: the miner's margin (TripletMarginMiner's ``margin``, MultiSimilarityMiner's
            ``epsilon``); ignored by miners without one. An explicit override wins over it.
        **overrides: options replacing the defaults; ``distance`` may be a distance name.

    Returns:
        The miner, or ``None`` for "NoMiner".
    """
    name = _resolve_name(name, list_miners(), "miner")
    if name == "NoMiner":
        if overrides:
            raise ValueError(f"NoMiner takes no options, got {sorted(overrides)}")
        return None
    options = dict(MINER_DEFAULTS[name])
    if name in MINER_MARGIN_KEYS:
        options[MINER_MARGIN_KEYS[name]] = margin
    options.update(overrides)
    return _construct("miner", name, _MINER_CLASSES[name], options)


def loss_accepts_miner_output(loss_fn: torch.nn.Module) -> bool:
    """Tells whether ``loss_fn`` can be given a miner's indices tuple."""
    return not isinstance(loss_fn, _LOSSES_WITHOUT_MINER)


MinerFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]


def compute_loss(
    loss_fn: torch.nn.Module,
    miner: MinerFn | None,
    descriptors: torch.Tensor,
    labels: torch.Tensor,
) -> tuple[torch.Tensor, float]:
    """Computes the loss of a batch, mining first when a miner is given.

    Args:
        loss_fn: a loss from ``build_loss``.
        miner: a miner from ``build_miner`` (or any callable with the same output), or None.
        descriptors: (B, D) descriptors.
        labels: (B,) place labels.

    Returns:
        ``(loss, b_acc)``: b_acc is the seed's share of samples the miner left out,
        ``1 - distinct anchors of the miner output / B``; 0.0 without a miner, and for losses
        that take no miner output (CentroidTripletLoss), where the miner is not run at all.
    """
    if miner is None or not loss_accepts_miner_output(loss_fn):
        return loss_fn(descriptors, labels), 0.0
    miner_output = miner(descriptors, labels)
    loss = loss_fn(descriptors, labels, miner_output)
    # Samples that are no anchor of any mined pair/triplet are already "easy" for the model:
    # the seed reports their share as a batch accuracy.
    mined_anchors = torch.unique(miner_output[0]).numel()
    b_acc = 1.0 - mined_anchors / descriptors.shape[0]
    return loss, b_acc


__all__ = [
    "DEFAULT_MINER_MARGIN",
    "DISTANCES",
    "LOSS_DEFAULTS",
    "MINER_DEFAULTS",
    "MINER_MARGIN_KEYS",
    "CentroidTripletLoss",
    "build_loss",
    "build_miner",
    "compute_loss",
    "list_losses",
    "list_miners",
    "loss_accepts_miner_output",
    "parse_overrides",
]
