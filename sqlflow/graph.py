"""The dependency graph: nodes, sources and exposures as vertices, an edge from each parent to
its child.

Plain adjacency lists rather than networkx: building a networkx graph of 10,000 vertices and
sorting it took longer than evaluating any selector on it (docs/benchmarks.md), and importing
networkx costs a tenth of a second that commands such as `ls` and `compile` do not need.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, ItemsView, Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any

from .errors import UserError
from .manifest import Manifest


class Graph:
    """A DAG over unique ids. Sources and exposures are vertices too, so selection and lineage can
    reach them."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self._resources: dict[str, Any] = {**manifest.sources, **manifest.nodes, **manifest.exposures}
        # Adjacency and order come with a project restored from the load cache: they depend only
        # on its nodes (a tenth of an unchanged compile at 5,000 models).
        known = getattr(manifest, "graph_lists", None)
        if known is not None and len(known[2]) >= len(self._resources):
            self._parents, self._children, self._order = known
        else:
            self._parents, self._children = self._adjacency(manifest)
            self._order = self._topological_order()
            if hasattr(manifest, "graph_lists"):
                manifest.graph_lists = (self._parents, self._children, self._order)
        self._position = {uid: i for i, uid in enumerate(self._order)}

    def _adjacency(self, manifest: Manifest) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        parents: dict[str, list[str]] = {uid: [] for uid in self._resources}
        children: dict[str, list[str]] = {uid: [] for uid in self._resources}
        for uid, node in [*manifest.nodes.items(), *manifest.exposures.items()]:
            for parent in node.depends_on:
                if parent not in children:  # as networkx would, keep an edge to an unknown id
                    parents[parent], children[parent] = [], []
                parents[uid].append(parent)
                children[parent].append(uid)
        return parents, children

    def _topological_order(self) -> list[str]:
        order = kahn_order(self._parents, self._children)
        if len(order) < len(self._parents):
            self._raise_cycle()
        return order

    def _raise_cycle(self) -> None:
        import networkx as nx  # only to name the cycle

        cycle = nx.find_cycle(self.dag)
        ids = [edge[0] for edge in cycle] + [cycle[0][0]]
        names = [self.resource(uid).name for uid in ids]
        files = "\n".join(f"  {self.resource(uid).original_file_path}" for uid in ids[:-1])
        first = self.resource(ids[0])
        line = next((r.line for r in self.resource(ids[1]).refs if r.name == first.name), None)
        raise UserError(
            "dependency cycle: " + " -> ".join(names) + "\n" + files,
            path=self.resource(ids[1]).path,
            line=line,
            hint="break the cycle: one of these models must not ref the next",
        )

    def resource(self, uid: str) -> Any:
        return self._resources[uid]

    def resources(self) -> ItemsView[str, Any]:
        """(unique id, node or source) of every vertex."""
        return self._resources.items()

    def __contains__(self, uid: str) -> bool:
        return uid in self._parents

    def __iter__(self) -> Iterator[str]:
        return iter(self._parents)

    def __len__(self) -> int:
        return len(self._parents)

    def parents(self, uid: str) -> list[str]:
        return list(self._parents[uid])

    def children(self, uid: str) -> list[str]:
        return list(self._children[uid])

    def ancestors(self, uid: str, depth: int | None = None) -> set[str]:
        return self.upstream([uid], depth) - {uid}

    def descendants(self, uid: str, depth: int | None = None) -> set[str]:
        return self.downstream([uid], depth) - {uid}

    def upstream(self, uids: Iterable[str], depth: int | None = None) -> set[str]:
        """`uids` and every ancestor of any of them at most `depth` edges away (None: any)."""
        return reach(uids, depth, self._parents.__getitem__)

    def downstream(self, uids: Iterable[str], depth: int | None = None) -> set[str]:
        """`uids` and every descendant of any of them at most `depth` edges away (None: any)."""
        return reach(uids, depth, self._children.__getitem__)

    def topological(self, subset: Iterable[str] | None = None) -> list[str]:
        """Unique ids in dependency order (ties broken by id, so the order is stable)."""
        if subset is None:
            return list(self._order)
        return sorted(set(subset), key=self._position.__getitem__)

    @cached_property
    def dag(self) -> Any:
        """The graph as a networkx DiGraph (built on first use), for callers that want its algorithms."""
        import networkx as nx

        dag = nx.DiGraph()
        for uid in self._parents:
            if uid in self._resources:
                dag.add_node(uid, resource=self._resources[uid])
            else:
                dag.add_node(uid)
        dag.add_edges_from((parent, uid) for uid, parents in self._parents.items() for parent in parents)
        return dag

    def subgraph(self, subset: Iterable[str]) -> Any:
        return self.dag.subgraph(subset)


def kahn_order(parents: Mapping[str, Collection[str]], children: Mapping[str, Iterable[str]]) -> list[str]:
    """Kahn's algorithm, always taking the smallest ready id, so the order is stable across runs;
    shorter than `parents` when there is a cycle."""
    waiting = {uid: len(ups) for uid, ups in parents.items()}
    ready = [uid for uid, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        uid = heapq.heappop(ready)
        order.append(uid)
        for child in children[uid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, child)
    return order


def reach(uids: Iterable[str], depth: int | None, step: Callable[[str], Iterable[str]]) -> set[str]:
    # One breadth-first search from all starting points at once: the union of one search per
    # starting point, in time linear in what is reached (a per-node search is quadratic on
    # `tag:x+` over thousands of nodes).
    seen = set(uids)
    frontier = list(seen)
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        following = []
        for current in frontier:
            for other in step(current):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        frontier = following
    return seen
