"""How one setting is declared: a dataclass field whose metadata says how to read and show it.

A setting is declared once, with `option()`, in a section of `vpr.config.schema`. From that
declaration come its command-line flag (`vpr.cli.flags`), its checks when it arrives from a
YAML file, a sweep grid or Python (`coerce`), and its default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from typing import Any


class DeprecatedSpelling(FutureWarning):
    """An old flag or value spelling that still works for one release."""


# How a value is given: one value; several (nargs "+"); repeated KEY=VALUE pairs; a switch.
KINDS = ("value", "list", "pairs", "switch")


@dataclasses.dataclass(frozen=True)
class Option:
    """What the schema knows about one setting besides its name and default.

    Attributes:
        help: one line for ``--help`` (the default is appended by the flag generator).
        type: converts one command-line word (or one YAML scalar): int, float, str...
        kind: one of KINDS.
        choices: the allowed values.
        registry: the registry the value is looked up in (``aggregators``, ``backbones``,
            ``losses``, ``miners``): names are checked where the part is built, and listed
            by the command line only when help is shown.
        flag: the command-line flag without dashes, when it differs from the field name
            (``agg_option`` for ``agg_options``).
        metavar: the placeholder shown in help.
        architecture: the value defines the network: an explicit value that contradicts a
            checkpoint is an error.
        carried: a resumed run takes it from its first run unless given again (False for
            settings of the machine or of this invocation).
        normalize: turns a checked value into its canonical form (e.g. sorted tuples).
        aliases: older flag spellings, still accepted with a deprecation warning.
    """

    help: str
    type: Callable[[Any], Any] = str
    kind: str = "value"
    choices: tuple[Any, ...] | None = None
    registry: str | None = None
    flag: str | None = None
    metavar: str | None = None
    architecture: bool = False
    carried: bool = True
    normalize: Callable[[Any], Any] | None = None
    aliases: tuple[str, ...] = ()


def option(default: Any, help: str, **details: Any) -> Any:  # noqa: A002 - as argparse names it
    """A dataclass field with its `Option` metadata (see `Option` for ``details``)."""
    meta = Option(help=help, **details)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default),
                                 metadata={"option": meta})
    return dataclasses.field(default=default, metadata={"option": meta})


def option_of(field: dataclasses.Field) -> Option:
    """The `Option` of a schema field."""
    return field.metadata["option"]


def default_of(field: dataclasses.Field) -> Any:
    """A schema field's default value."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


class LazyNames:
    """Registry names, listed only when first needed (so `vpr --help` imports no model)."""

    def __init__(self, lister: Callable[[], Iterable[str]]) -> None:
        self._lister = lister

    def names(self) -> list[str]:
        return list(self._lister())

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __str__(self) -> str:
        return ", ".join(self.names())


def parse_value(text: str) -> Any:
    """Types a KEY=VALUE value: bool ("true"/"false"), None ("none"), int, float, else text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turns ``["alpha=2", "swap=true"]`` (``--loss_option KEY=VALUE``) into typed options.

    Values become bool ("true"/"false"), None ("none"), int, float, or stay strings.
    A malformed item (no "=", empty key or value, repeated key) raises ValueError naming it.
    """
    options: dict[str, Any] = {}
    for item in items or []:
        key, separator, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not separator or not key.isidentifier() or not value:
            raise ValueError(f"malformed option {item!r}: expected KEY=VALUE, e.g. alpha=2")
        if key in options:
            raise ValueError(f"option {key!r} given twice ({item!r})")
        options[key] = parse_value(value)
    return options


def _scalar(meta: Option, value: Any, name: str) -> Any:
    if meta.type is bool or meta.kind == "switch":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r}")
        return value
    if isinstance(value, (list, tuple, dict)):
        raise ValueError(f"{name}: expected one value, got {value!r}")
    try:
        return meta.type(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: {value!r} is not valid ({error})") from None


def coerce(field: dataclasses.Field, value: Any) -> Any:
    """Checks and converts a value given for ``field`` (from a flag, a YAML file or Python).

    Raises:
        ValueError: naming the setting and what was expected.
    """
    meta = option_of(field)
    name = field.name
    if value is None:
        return None
    if meta.kind == "pairs":
        if isinstance(value, dict):
            value = dict(value)
        elif isinstance(value, str):
            value = parse_overrides([value])
        elif isinstance(value, (list, tuple)):  # repeated flags: dicts or KEY=VALUE words
            merged: dict[str, Any] = {}
            for item in value:
                merged.update(item if isinstance(item, dict) else parse_overrides([str(item)]))
            value = merged
        else:
            raise ValueError(f"{name}: expected a mapping of KEY: VALUE, got {value!r}")
    elif meta.kind == "list":
        items = value if isinstance(value, (list, tuple)) else [value]
        value = tuple(_scalar(meta, item, name) for item in items)
    else:
        value = _scalar(meta, value, name)
    if meta.choices is not None:
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if item not in meta.choices:
                raise ValueError(f"{name}: {item!r} is not one of "
                                 f"{', '.join(map(str, meta.choices))}")
    if meta.normalize is not None:
        value = meta.normalize(value)
    return value
