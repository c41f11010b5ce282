"""The lineage graph's layout, computed once at generate time: a layer and a rank per node.

Layers run left to right (a node sits one layer right of its furthest parent); ranks order the
nodes of a layer top to bottom, arranged to reduce edge crossings by the barycenter heuristic
(a few sweeps down and up). The page places a node at (layer, rank), and when it shows only
part of the graph it keeps this order and closes the gaps, so it never lays out anything itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

SWEEPS = 4


@dataclass(frozen=True)
class Position:
    layer: int
    rank: int


def layered(
    nodes: Sequence[str], edges: Iterable[tuple[str, str]], order: Callable[[str], object] = str
) -> dict[str, Position]:
    """Layer and rank of each node; `edges` are (parent, child) and must form a DAG.

    `order` gives the starting order inside a layer (e.g. by folder, so a folder's nodes start
    together); the sweeps then move nodes next to the nodes they connect to.
    """
    wanted = set(nodes)
    parents: dict[str, list[str]] = {n: [] for n in nodes}
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for parent, child in edges:
        if parent in wanted and child in wanted and parent != child:
            parents[child].append(parent)
            children[parent].append(child)
    layer_of = _layers(nodes, parents, children)
    layers: list[list[str]] = [[] for _ in range(max(layer_of.values(), default=-1) + 1)]
    for node in sorted(nodes, key=order):
        layers[layer_of[node]].append(node)
    # Positions within a layer as fractions of its height: layers differ in size, and a node is
    # placed by where its neighbours are, whichever layers they sit in.
    place = {node: _fraction(index, len(layer)) for layer in layers for index, node in enumerate(layer)}
    for _ in range(SWEEPS):
        for layer in layers[1:]:
            _reorder(layer, parents, place)
        for layer in reversed(layers[:-1]):
            _reorder(layer, children, place)
    return {
        node: Position(index, rank) for index, layer in enumerate(layers) for rank, node in enumerate(layer)
    }


def _layers(
    nodes: Sequence[str], parents: dict[str, list[str]], children: dict[str, list[str]]
) -> dict[str, int]:
    """Longest path from a root (Kahn's order), so every edge points right."""
    waiting = {n: len(parents[n]) for n in nodes}
    ready = [n for n in nodes if waiting[n] == 0]
    layer = dict.fromkeys(nodes, 0)
    while ready:
        node = ready.pop()
        for child in children[node]:
            layer[child] = max(layer[child], layer[node] + 1)
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    return layer


def _fraction(index: int, size: int) -> float:
    return index / (size - 1) if size > 1 else 0.5


def _reorder(layer: list[str], neighbours: dict[str, list[str]], place: dict[str, float]) -> None:
    """Sort a layer by the mean place of each node's neighbours; a node without any keeps its own."""
    keys = {}
    for index, node in enumerate(layer):
        linked = neighbours[node]
        keys[node] = (sum(place[n] for n in linked) / len(linked) if linked else place[node], index)
    layer.sort(key=keys.__getitem__)
    for index, node in enumerate(layer):
        place[node] = _fraction(index, len(layer))
