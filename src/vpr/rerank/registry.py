"""Local-feature methods by exact name: ``backbone`` (the model's own feature map), ``sift``,
``orb``."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from vpr.rerank.features import LocalFeatureMethod

_METHODS: dict[str, Callable[..., LocalFeatureMethod]] = {}


def register_method(name: str) -> Callable[[Callable[..., LocalFeatureMethod]],
                                           Callable[..., LocalFeatureMethod]]:
    """Registers a factory ``(model=None, **options) -> LocalFeatureMethod`` under ``name``."""

    def decorator(factory: Callable[..., LocalFeatureMethod]) -> Callable[..., LocalFeatureMethod]:
        key = name.lower()
        if key in _METHODS:
            warnings.warn(f"local-feature method {name!r} registered twice; the last one wins",
                          stacklevel=2)
        _METHODS[key] = factory
        return factory

    return decorator


def list_methods() -> list[str]:
    """The registered method names, sorted."""
    _load_builtin()
    return sorted(_METHODS)


def build_method(name: str, model: Any = None, **options: Any) -> LocalFeatureMethod:
    """Builds the method ``name`` (exact, case-insensitive).

    Args:
        name: see `list_methods`.
        model: the VPR model (its backbone makes the ``backbone`` features); ignored by
            methods that need none.
        options: the method's own options.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    _load_builtin()
    key = name.lower()
    if key not in _METHODS:
        raise ValueError(f"unknown re-ranking method {name!r}; "
                         f"valid: {', '.join(sorted(_METHODS))}")
    return _METHODS[key](model=model, **options)


def _load_builtin() -> None:
    # Importing the modules runs their @register_method decorators.
    from vpr.rerank import backbone, classical  # noqa: F401
