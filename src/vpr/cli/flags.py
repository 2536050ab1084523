"""Command-line flags generated from the settings schema (`vpr.config.schema`).

Every flag is ``--<setting name>`` (or the field's ``flag``), so the seed's names hold:
``--agg_arch``, ``--loss_name``, ``--batch_size``. Flags default to ``argparse.SUPPRESS``: the
parsed namespace holds only what was typed, so an explicit flag can be told from a default
(a flag that contradicts a checkpoint is an error; an omitted one takes the checkpoint's
value). `explicit_settings` reads them back; the defaults live in the schema alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import warnings
from collections.abc import Callable, Iterable
from typing import Any

from vpr.config.fields import DeprecatedSpelling, LazyNames, default_of, option_of, parse_overrides
from vpr.config.schema import FIELDS, SECTIONS, iter_fields

SECTION_TITLES = {
    "data": "training data", "test_data": "evaluation data", "input": "input pipeline",
    "model": "model", "loss": "loss", "optim": "optimisation", "eval": "evaluation",
    "hardware": "hardware", "run": "run",
}


def _registry(name: str) -> Callable[[], Iterable[str]]:
    """Lists a registry's names (imported only when help is shown)."""
    def names() -> Iterable[str]:
        if name == "aggregators":
            from vpr.models.aggregators import list_aggregators as lister
        elif name == "backbones":
            from vpr.models.backbones import list_backbones as lister
        elif name == "published":
            from vpr.cli.published import _published_names as lister
        elif name == "losses":
            from vpr.training.losses import list_losses as lister
        else:
            from vpr.training.losses import list_miners as lister
        return lister()
    return names


def deprecated(message: str) -> None:
    """Warns that a spelling the user typed is going away (shown as ``vpr: warning: ...``
    by `vpr.cli`; recorded, not printed, where warnings are captured)."""
    warnings.warn(message, DeprecatedSpelling, stacklevel=3)


class DeprecatedFlag(argparse.Action):
    """An old spelling: warns, then sets the setting (``--no_progress_bar`` -> progress_bar)."""

    def __init__(self, option_strings, dest, new: str = "", value: Any = None,
                 convert: Callable[[str], Any] | None = None, **kwargs) -> None:
        self.new, self.value, self.convert = new, value, convert
        nargs = 0 if convert is None else None
        super().__init__(option_strings, dest, nargs=nargs, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        deprecated(f"{option_string} is deprecated and will be removed in the next release; "
                   f"use {self.new}")
        value = self.value if self.convert is None else self.convert(values)
        if isinstance(value, dict):  # several settings at once (e.g. --device cuda:1)
            for key, item in value.items():
                setattr(namespace, key, item)
        else:
            setattr(namespace, self.dest, value)


def _argparse_type(convert: Callable[[Any], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DeprecatedSpelling)
                value = convert(text)
        except (TypeError, ValueError) as error:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: {error}") from None
        for warning in caught:  # an old spelling of a value: tell the user, as for flags
            deprecated(str(warning.message))
        return value
    parse.__name__ = getattr(convert, "__name__", "value")
    return parse


def _key_value(text: str) -> dict[str, Any]:
    try:
        return parse_overrides([text])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _default_text(field: dataclasses.Field, default: Any = None) -> str:
    if "(default:" in option_of(field).help:
        return ""
    value = default_of(field) if default is None else default
    if value is None or value == {} or value == ():
        return ""
    if isinstance(value, tuple):
        value = " ".join(map(str, value))
    if isinstance(value, bool):
        value = "on" if value else "off"
    return f" (default: {value})"


def add_setting(parser: argparse._ActionsContainer, name: str, help_suffix: str = "",
                default: Any = None) -> None:
    """Adds the flag of one setting to ``parser`` (or an argument group).

    ``default``: the command's own default, shown in the help (None: the schema's); the
    command reads it when the flag is absent (flags default to ``argparse.SUPPRESS``).
    """
    _, field = FIELDS[name]
    meta = option_of(field)
    flag = f"--{meta.flag or field.name}"
    help_text = meta.help + _default_text(field, default) + help_suffix
    kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS,
                              "help": help_text}
    if meta.kind == "switch":
        kwargs["action"] = argparse.BooleanOptionalAction
    elif meta.kind == "pairs":
        kwargs.update(action="append", type=_key_value, metavar=meta.metavar)
    else:
        kwargs.update(type=_argparse_type(meta.type), metavar=meta.metavar)
        if meta.kind == "list":
            kwargs["nargs"] = "+"
        if meta.choices is not None:
            kwargs["choices"] = meta.choices
            kwargs.pop("metavar")
    action = parser.add_argument(flag, **kwargs)
    if meta.registry:
        action.registry = LazyNames(_registry(meta.registry))  # read by %(registry)s
    for alias in meta.aliases:
        inverted = meta.kind == "switch" and alias == f"no_{field.name}"
        parser.add_argument(f"--{alias}", dest=field.name, action=DeprecatedFlag,
                            new=f"--no-{field.name}" if inverted else flag,
                            value=False if inverted else True, help=argparse.SUPPRESS,
                            default=argparse.SUPPRESS)


def add_settings(parser: argparse.ArgumentParser, sections: Iterable[str] | None = None,
                 names: Iterable[str] = (), title: str | None = None) -> None:
    """Adds the flags of whole schema sections, and of single settings (``names``).

    Args:
        parser: the command's parser.
        sections: section names of `vpr.config.schema.SECTIONS` (all when None).
        names: single settings to add (in one group, ``title``).
        title: the group title of ``names``.
    """
    for section in (tuple(SECTIONS) if sections is None else tuple(sections)):
        group = parser.add_argument_group(SECTION_TITLES.get(section, section))
        for _, field in iter_fields((section,)):
            add_setting(group, field.name)
    names = tuple(names)
    if names:
        group = parser.add_argument_group(title or "settings")
        for name in names:
            add_setting(group, name)


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings typed on the command line (flags left out are absent), by name."""
    return {name: value for name, value in vars(args).items() if name in FIELDS}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--print_config``."""
    group = parser.add_argument_group("configuration")
    group.add_argument("--config", default=None, metavar="YAML",
                       help="read settings from a YAML file (by section or flat, or a run's "
                            "config.yaml); flags given too take precedence")
    group.add_argument("--print_config", action="store_true",
                       help="print the resolved settings as YAML and exit")


def add_device_options(parser: argparse.ArgumentParser, precision_default: str = "auto"
                       ) -> None:
    """``--accelerator``, ``--devices`` (the first device is used) and ``--precision`` of a
    single-process command; the old ``--device cpu|cuda|cuda:N`` still works, with a warning.

    ``--precision`` is the one setting of the schema (Lightning's names, old spellings with a
    warning) in every command; ``precision_default`` is what this command uses when it is
    not given (read it with `precision_of`).
    """
    group = parser.add_argument_group("hardware")
    add_setting(group, "accelerator")
    add_setting(group, "devices")
    add_setting(group, "precision", default=precision_default)

    def device_settings(text: str) -> dict[str, str]:
        from vpr.hardware import device_settings as settings_of  # torch: only when used

        return settings_of(text)

    parser.add_argument("--device", action=DeprecatedFlag, dest="accelerator",
                        new="--accelerator (and --devices)", convert=device_settings,
                        help=argparse.SUPPRESS, default=argparse.SUPPRESS)


def device_of(args: argparse.Namespace) -> str:
    """The torch device that ``--accelerator`` / ``--devices`` name (see `add_device_options`)."""
    from vpr.hardware import single_device

    settings = explicit_settings(args)
    return str(single_device(settings.get("accelerator", "auto"),
                             settings.get("devices", "auto")))


def precision_of(args: argparse.Namespace, default: str = "auto") -> str:
    """``--precision`` of a single-process command (``default`` when not given)."""
    return explicit_settings(args).get("precision", default)


def add_switch(parser: argparse._ActionsContainer, name: str, help: str,  # noqa: A002
               default: bool = True) -> None:
    """``--<name>`` / ``--no-<name>`` (the one style of negative flags), and the old
    ``--no_<name>`` spelling with a deprecation warning."""
    parser.add_argument(f"--{name}", action=argparse.BooleanOptionalAction, default=default,
                        help=f"{help} (default: {'on' if default else 'off'})")
    parser.add_argument(f"--no_{name}", dest=name, action=DeprecatedFlag, new=f"--no-{name}",
                        value=False, help=argparse.SUPPRESS)
