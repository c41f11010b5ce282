"""The dependency graph: nodes and sources as vertices, an edge from each parent to its child."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import networkx as nx

from .errors import UserError
from .manifest import Manifest


class Graph:
    """A DAG over unique ids. Sources are vertices too, so selection and lineage can reach them."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.dag = nx.DiGraph()
        for uid, source in manifest.sources.items():
            self.dag.add_node(uid, resource=source)
        for uid, node in manifest.nodes.items():
            self.dag.add_node(uid, resource=node)
        for uid, node in manifest.nodes.items():
            self.dag.add_edges_from((parent, uid) for parent in node.depends_on)
        self._check_acyclic()

    def _check_acyclic(self) -> None:
        if nx.is_directed_acyclic_graph(self.dag):
            return
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
        return self.dag.nodes[uid]["resource"]

    def __contains__(self, uid: str) -> bool:
        return uid in self.dag

    def __iter__(self):
        return iter(self.dag.nodes)

    def __len__(self) -> int:
        return len(self.dag)

    def parents(self, uid: str) -> list[str]:
        return list(self.dag.predecessors(uid))

    def children(self, uid: str) -> list[str]:
        return list(self.dag.successors(uid))

    def ancestors(self, uid: str, depth: int | None = None) -> set[str]:
        return self._reach(uid, depth, self.dag.predecessors)

    def descendants(self, uid: str, depth: int | None = None) -> set[str]:
        return self._reach(uid, depth, self.dag.successors)

    @staticmethod
    def _reach(uid: str, depth: int | None, step) -> set[str]:
        seen: set[str] = set()
        frontier = [uid]
        level = 0
        while frontier and (depth is None or level < depth):
            level += 1
            nxt = []
            for current in frontier:
                for other in step(current):
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        seen.discard(uid)
        return seen

    def topological(self, subset: Iterable[str] | None = None) -> list[str]:
        """Unique ids in dependency order (ties broken by id, so the order is stable)."""
        wanted = set(subset) if subset is not None else None
        order = nx.lexicographical_topological_sort(self.dag)
        return [uid for uid in order if wanted is None or uid in wanted]

    def subgraph(self, subset: Iterable[str]) -> nx.DiGraph:
        return self.dag.subgraph(subset)
