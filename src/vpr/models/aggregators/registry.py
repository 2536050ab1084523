"""Aggregators by exact name: registration, lookup and construction."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from vpr.models.aggregators.base import Aggregator
from vpr.utils.option_check import check_options

AggregatorClass = TypeVar("AggregatorClass", bound=type[Aggregator])

# Lower-cased name -> class; the class's own `registry_name` keeps the spelling for display.
AGGREGATORS: dict[str, type[Aggregator]] = {}


def register_aggregator(name: str) -> Callable[[AggregatorClass], AggregatorClass]:
    """Returns a class decorator that registers an aggregator under `name`."""

    def decorator(cls: AggregatorClass) -> AggregatorClass:
        key = name.lower()
        if key in AGGREGATORS:
            warnings.warn(
                f"Aggregator {name!r} is registered twice; {cls.__qualname__} replaces "
                f"{AGGREGATORS[key].__qualname__}",
                stacklevel=2,
            )
        cls.registry_name = name
        AGGREGATORS[key] = cls
        return cls

    return decorator


def list_aggregators() -> list[str]:
    """Returns the registered aggregator names, as spelled at registration, sorted."""
    return sorted((cls.registry_name for cls in AGGREGATORS.values()), key=str.lower)


def get_aggregator_class(name: str) -> type[Aggregator]:
    """Returns the aggregator class registered as `name` (exact, case-insensitive)."""
    # Exact match only: substring tests once sent "ConvGeM" to GeM.
    try:
        return AGGREGATORS[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"Unknown aggregator {name!r}; valid names: {', '.join(list_aggregators())}"
        ) from None


def build_aggregator(
    name: str,
    in_channels: int,
    feature_size: tuple[int, int],
    descriptors_dim: int = 512,
    **options: Any,
) -> Aggregator:
    """Builds the aggregator registered as `name`.

    Args:
        name: one of `list_aggregators()`, matched exactly and case-insensitively.
        in_channels: channels C of the backbone feature map.
        feature_size: (h, w) of the backbone feature map.
        descriptors_dim: requested descriptor size (GeM ignores it: its size is C).
        **options: aggregator-specific keyword options (see each class).

    Returns:
        A module mapping (B,C,h,w) to L2-normalised (B,out_dim) descriptors.
    """
    cls = get_aggregator_class(name)
    # A misspelt key or a value of the wrong type is refused here, listing the valid ones.
    check_options(f"aggregator {cls.registry_name}", cls, options,
                  skip=("in_channels", "feature_size", "descriptors_dim"))
    return cls(in_channels, tuple(feature_size), descriptors_dim, **options)
