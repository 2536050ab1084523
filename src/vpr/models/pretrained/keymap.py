"""Strict renaming of upstream state-dict keys by prefix, shared by the layout modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

StateDict = Mapping[str, torch.Tensor]


def unwrap_state_dict(container: Mapping) -> StateDict:
    """Returns the state dict inside a Lightning checkpoint ("state_dict") or a plain one."""
    inner = container.get("state_dict") if isinstance(container, Mapping) else None
    return inner if isinstance(inner, Mapping) else container


def rename_by_prefix(
    state_dict: StateDict,
    prefixes: Sequence[tuple[str, str]],
    *,
    layout: str,
    sections: Mapping[str, Callable[[StateDict], dict[str, torch.Tensor]]] | None = None,
) -> dict[str, torch.Tensor]:
    """Renames every key by the first matching (upstream prefix, our prefix) rule.

    Args:
        state_dict: the upstream weights.
        prefixes: ordered (upstream, ours) prefix pairs; a key matching none is an error.
        layout: the layout's name, for the error message.
        sections: upstream prefix -> converter for whole sub-state-dicts (e.g. a DINOv2
            backbone under "backbone.model."); their output is put back under `prefixes`'
            our-prefix for the same upstream prefix.

    Raises:
        ValueError: naming the keys that no rule covers.
    """
    sections = dict(sections or {})
    converted: dict[str, torch.Tensor] = {}
    grouped: dict[str, dict[str, torch.Tensor]] = {prefix: {} for prefix in sections}
    unknown = []
    for key, value in state_dict.items():
        rule = next(((old, new) for old, new in prefixes if key.startswith(old)), None)
        if rule is None:
            unknown.append(key)
        elif rule[0] in sections:
            grouped[rule[0]][key[len(rule[0]):]] = value
        else:
            converted[rule[1] + key[len(rule[0]):]] = value
    if unknown:
        raise ValueError(
            f"not a {layout} state dict: {len(unknown)} unknown keys {sorted(unknown)[:5]}"
        )
    our_prefix = dict(prefixes)
    for prefix, section in grouped.items():
        if not section:
            raise ValueError(f"not a {layout} state dict: no keys under {prefix!r}")
        try:
            section_converted = sections[prefix](section)
        except ValueError as error:
            raise ValueError(f"{layout}, keys under {prefix!r}: {error}") from None
        converted.update({our_prefix[prefix] + key: value
                          for key, value in section_converted.items()})
    return converted

