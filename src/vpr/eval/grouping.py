"""Grouping queries for per-group recalls: by an @-field, a file-name pattern, or a sub-folder.

A rule is written as text so that it can come from a command line or a config file:

- ``field:NAME``: the value of the @-field ``NAME`` (e.g. ``field:note``);
- ``regex:PATTERN``: ``re.search(PATTERN, file name)``; the first capture group (the whole
  match when the pattern has none) is the group name; names that do not match fall in
  ``UNMATCHED``;
- ``folder``: the first sub-folder under ``queries/`` (queries directly in it fall in
  ``ROOT_GROUP``);
- ``auto`` (the default): ``regex:(day|sunset|night)`` when it matches every query, as in
  Tokyo-like sets whose file names carry the time of day, else no grouping;
- ``none``: no grouping.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vpr.data.geotag import FIELD_NAMES, parse_filename

# The time-of-day conditions of Tokyo 24/7-like query sets.
TOKYO_PATTERN = r"(day|sunset|night)"
UNMATCHED = "unmatched"
ROOT_GROUP = "."
RULE_KINDS = ("auto", "none", "field", "regex", "folder")


@dataclass(frozen=True)
class GroupRule:
    """How to split queries into groups; see the module docstring for the kinds."""

    kind: str = "auto"
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind not in RULE_KINDS:
            raise ValueError(f"unknown group rule {self.kind!r}; valid: {', '.join(RULE_KINDS)}")
        if self.kind == "field" and self.value not in FIELD_NAMES:
            raise ValueError(
                f"group rule field:{self.value}: unknown @-field; valid: {', '.join(FIELD_NAMES)}"
            )
        if self.kind == "regex":
            try:
                re.compile(self.value)
            except re.error as error:
                raise ValueError(f"group rule regex:{self.value}: bad pattern ({error})") from None

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind


def parse_group_rule(text: str | GroupRule | None) -> GroupRule:
    """Parses ``"field:note"``, ``"regex:_(day|night)"``, ``"folder"``, ``"auto"``, ``"none"``.

    ``None`` means ``auto``; a `GroupRule` is returned as is.
    """
    if isinstance(text, GroupRule):
        return text
    if text is None or text == "":
        return GroupRule("auto")
    kind, _, value = text.partition(":")
    return GroupRule(kind.strip().lower(), value)


def _folder_group(path: Path) -> str:
    # The queries root is the last "queries" folder of the path; what follows it up to the
    # file name is the sub-folder.
    parts = path.parts
    for position in range(len(parts) - 2, -1, -1):
        if parts[position] == "queries":
            return parts[position + 1] if position + 2 < len(parts) else ROOT_GROUP
    return path.parent.name or ROOT_GROUP


def _regex_group(pattern: re.Pattern[str], name: str) -> str | None:
    match = pattern.search(name)
    if match is None:
        return None
    return match.group(1) if pattern.groups else match.group(0)


def query_groups(
    query_paths: Sequence[str | Path], rule: str | GroupRule | None = "auto"
) -> list[str] | None:
    """The group name of each query under ``rule``, or None when the rule groups nothing.

    Args:
        query_paths: the query image paths (only file names and folders are read).
        rule: a rule as text (see the module docstring) or a `GroupRule`.

    Returns:
        One group name per query, in order; None for ``none``, and for ``auto`` when the
        default pattern does not match every query.
    """
    rule = parse_group_rule(rule)
    paths = [Path(path) for path in query_paths]
    if rule.kind == "none":
        return None
    if rule.kind == "auto":
        pattern = re.compile(TOKYO_PATTERN)
        groups = [_regex_group(pattern, path.name) for path in paths]
        # A partial match would put most queries in one arbitrary group: report none instead.
        if not paths or any(group is None for group in groups):
            return None
        return [str(group) for group in groups]
    if rule.kind == "regex":
        pattern = re.compile(rule.value)
        groups = [_regex_group(pattern, path.name) for path in paths]
        return [UNMATCHED if group is None else group for group in groups]
    if rule.kind == "field":
        return [str(getattr(parse_filename(path), rule.value) or "") for path in paths]
    return [_folder_group(path) for path in paths]


def describe_rule(rule: str | GroupRule | None) -> str:
    """The rule as text, ``auto`` spelled out as the pattern it tries."""
    rule = parse_group_rule(rule)
    return f"regex:{TOKYO_PATTERN}" if rule.kind == "auto" else str(rule)
