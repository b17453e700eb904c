"""The package's import graph and the rules its layers keep (see ``tests/test_layers.py``).

Every import counts: at the top of a module or inside a function, absolute or relative.
Ranks, lowest first: the base; transfer; the catalog build and the NWB views (siblings:
neither imports the other); the drivers; the facade (the package itself, the project
cache, the CLI). A module may import its own layer or a lower one, never a higher one,
and no set of modules may import each other in a circle. ``sample/`` stands beside:
it may use the product, and only the CLI (its ``demo`` command) may use it.
"""

from __future__ import annotations

import ast
from pathlib import Path

RANKS = {"base": 0, "transfer": 1, "catalog": 2, "nwb": 2, "drivers": 3, "facade": 4}
SAMPLE = "sample"
DOOR_TO_SAMPLE = ("intake_vbo.cli", "intake_vbo.sample.demo")


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package tree at ``package``: dotted name -> file."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (anywhere in it)."""
    known = modules(package)
    graph = {}
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        here = name if is_package else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                targets |= {_nearest(a.name, known) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(here, node.level, node.module)
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in known else _nearest(base, known))
        graph[name] = {t for t in targets if t and t != name}
    return graph


def _absolute(here: str, level: int, module: str | None) -> str:
    if not level:
        return module or ""
    parts = here.split(".")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def _nearest(dotted: str, known: dict) -> str | None:
    """The package module named, or the nearest package of it; None if not ours."""
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def layer(module: str) -> str:
    """The layer a module of ``intake_vbo`` belongs to."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in RANKS:
        return parts[1]
    if len(parts) > 1 and parts[1] == SAMPLE:
        return SAMPLE
    return "facade"


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Every import that climbs a layer, crosses to a sibling, or reaches into the sample."""
    found = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            a, b = layer(source), layer(target)
            if a in (SAMPLE, b):
                continue
            if b == SAMPLE:
                if (source, target) != DOOR_TO_SAMPLE:
                    found.append(f"{source} -> {target}: only the CLI's demo uses the sample")
            elif RANKS[b] > RANKS[a]:
                found.append(f"{source} -> {target}: {a} imports the higher layer {b}")
            elif RANKS[b] == RANKS[a]:
                found.append(f"{source} -> {target}: {a} and {b} are siblings")
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that import each other in a circle (Tarjan's SCCs)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                group.append(item)
                if item == node:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out
