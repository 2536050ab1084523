"""Architecture figures for docs/ARCHITECTURE.md: largest files, package import graph, cycles,
imports that point up the layers, and how many places declare a `vpr train` option.

Run from the repository root: ``python bench/architecture_stats.py [--option NAME]``.
Imports are read with ``ast`` (nothing is imported), including imports inside functions.
"""

from __future__ import annotations

import argparse
import ast
import itertools
from collections import defaultdict
from pathlib import Path

SOURCE = Path("src/vpr")
# Top (0) to bottom: a package may import packages of its own level or below.
LEVELS = {
    "cli": 0, "serve": 0,
    "sweep": 1, "benchmarks": 1, "training": 1, "locate": 1,
    # `vpr export` loads checkpoints (training) and measures recall; the index uses its runtime.
    "export": 1,
    "models": 2, "eval": 2, "data": 2, "inputs": 2, "datatools": 2, "synthetic": 2,
    "rerank": 2,
    "config": 3, "hardware": 3, "errors": 3, "utils": 3, "assets": 3,
}


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "vpr" else None


def imports_of(path: Path) -> set[str]:
    module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                found.add(".".join([*base, node.module or ""]).rstrip("."))
            elif node.module:
                found.add(node.module)
    return found


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SOURCE.rglob("*.py"):
        source = package_of(".".join(path.relative_to(SOURCE.parent).with_suffix("").parts))
        if source in (None, "__init__", "__main__"):
            continue
        for name in imports_of(path):
            target = package_of(name)
            if target and target != source and target not in ("__init__",):
                graph[source].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of packages that reach each other (each pair once)."""
    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {node: reach(node) for node in list(graph)}
    return [(a, b) for a, b in itertools.combinations(sorted(graph), 2)
            if b in reachable[a] and a in reachable.get(b, set())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--option", default="descriptors_dim",
                        help="count the places that name this option (default: descriptors_dim)")
    args = parser.parse_args()
    sizes = sorted(((len(p.read_text().splitlines()), p) for p in SOURCE.rglob("*.py")),
                   reverse=True)
    print("largest files:")
    for lines, path in sizes[:8]:
        print(f"  {lines:5d} {path}")
    graph = package_graph()
    print("package imports:")
    for source in sorted(graph):
        print(f"  {source} -> {', '.join(sorted(graph[source]))}")
    found = cycles(graph)
    print(f"cycles ({len(found)}): {', '.join(f'{a}<->{b}' for a, b in found) or 'none'}")
    upward = [(s, t) for s in graph for t in graph[s]
              if s in LEVELS and t in LEVELS and LEVELS[t] < LEVELS[s]]
    print(f"upward imports ({len(upward)}): "
          f"{', '.join(f'{s}->{t}' for s, t in sorted(upward)) or 'none'}")
    # A declaration: the option's name as a dict key, keyword default, flag or tuple item.
    patterns = (f'"{args.option}"', f"'{args.option}'", f"--{args.option}",
                f"{args.option}: ", f"{args.option}=")
    places = []
    for path in sorted(SOURCE.rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if any(p in stripped for p in patterns) and not stripped.startswith("#"):
                places.append(f"{path}:{number}: {stripped[:90]}")
    print(f"lines naming {args.option} ({len(places)}):")
    for place in places:
        print(f"  {place}")


if __name__ == "__main__":
    main()
