"""Checks KEY=VALUE options against a constructor's signature, before anything is built.

The valid keys and their types come from the signature itself (annotations where there are
some, else the type of the default), so a new option of an aggregator or of a
pytorch-metric-learning loss is accepted without a table to update.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

# Annotation words we understand; any other annotation accepts any value.
_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,), "float": (int, float), "bool": (bool,), "str": (str,),
    "None": (type(None),),
}


def _allowed(parameter: inspect.Parameter) -> tuple[type, ...] | None:
    """The value types a parameter takes, or None for "anything"."""
    annotation = parameter.annotation
    if annotation is not inspect.Parameter.empty:
        words = [word.strip() for word in str(annotation).replace("Optional[", "").rstrip("]")
                 .split("|")] if isinstance(annotation, str) else [getattr(annotation,
                                                                            "__name__", "")]
        if all(word in _TYPES for word in words):
            return tuple(kind for word in words for kind in _TYPES[word])
        return None
    default = parameter.default
    if default is inspect.Parameter.empty or default is None:
        return None
    if isinstance(default, bool):  # before int: True is an int
        return (bool,)
    if isinstance(default, (int, float)):
        return (int, float)  # a default of 2 does not forbid 2.5 (pml's alpha=2)
    if isinstance(default, str):
        return (str,)
    return None


def _describe(kinds: tuple[type, ...] | None) -> str:
    if kinds is None:
        return "any"
    names = []
    for kind in kinds:
        name = "None" if kind is type(None) else kind.__name__
        if name == "int" and float in kinds:
            continue  # a float option takes ints too; say "float"
        names.append(name)
    return " or ".join(names)


def signature_options(factory: Callable[..., Any],
                      skip: Iterable[str] = ()) -> dict[str, tuple[type, ...] | None]:
    """The keyword options ``factory`` accepts, with their types, following ``**kwargs`` up
    the class hierarchy (pytorch-metric-learning passes them to its base classes)."""
    classes = factory.__mro__ if inspect.isclass(factory) else (factory,)
    options: dict[str, tuple[type, ...] | None] = {}
    skipped = {"self", *skip}
    for owner in classes:
        init = owner.__dict__.get("__init__") if inspect.isclass(owner) else owner
        if init is None:
            continue
        if init is object.__init__:
            break
        parameters = inspect.signature(init).parameters.values()
        for parameter in parameters:
            if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
                continue
            if parameter.name not in skipped:
                options.setdefault(parameter.name, _allowed(parameter))
        if not any(parameter.kind == parameter.VAR_KEYWORD for parameter in parameters):
            break
    return options


def check_options(what: str, factory: Callable[..., Any], options: dict[str, Any],
                  skip: Iterable[str] = ()) -> None:
    """Refuses an unknown key or a value of the wrong type, listing the valid keys and types.

    Raises:
        ValueError: one line naming ``what``, the bad option and every valid one.
    """
    valid = signature_options(factory, skip)
    listed = ", ".join(f"{name} ({_describe(kinds)})" for name, kinds in valid.items())
    for key, value in options.items():
        if key not in valid:
            raise ValueError(f"unknown option {key!r} for {what}; valid options: {listed}")
        kinds = valid[key]
        if kinds is not None and not (isinstance(value, kinds) and
                                      not (isinstance(value, bool) and bool not in kinds)):
            raise ValueError(f"option {key}={value!r} for {what} must be {_describe(kinds)}; "
                             f"valid options: {listed}")
