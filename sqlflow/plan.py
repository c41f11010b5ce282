"""The execution plan: the DAG a run executes, among the selected nodes only.

Built from the project's graph with dependencies through ephemeral or unselected nodes collapsed.
Plain adjacency, like graph.py: importing networkx cost a run 0.1-0.18 s of start-up, as much as
compiling 500 models.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .graph import Graph, kahn_order, reach


class Plan:
    """A DAG over unique ids; an edge from a node to each node that waits for it."""

    def __init__(self, nodes: Iterable[str] = ()) -> None:
        # Dicts as ordered sets: an edge added twice is one edge.
        self._parents: dict[str, dict[str, None]] = {}
        self._children: dict[str, dict[str, None]] = {}
        for uid in nodes:
            self.add_node(uid)

    def add_node(self, uid: str) -> None:
        if uid not in self._parents:
            self._parents[uid], self._children[uid] = {}, {}

    def add_edge(self, parent: str, child: str) -> None:
        self.add_node(parent)
        self.add_node(child)
        self._children[parent][child] = None
        self._parents[child][parent] = None

    def __iter__(self) -> Iterator[str]:
        return iter(self._parents)

    def __len__(self) -> int:
        return len(self._parents)

    def __contains__(self, uid: object) -> bool:
        return uid in self._parents

    def has_edge(self, parent: str, child: str) -> bool:
        return child in self._children.get(parent, ())

    def parents(self, uid: str) -> list[str]:
        return list(self._parents[uid])

    def children(self, uid: str) -> list[str]:
        return list(self._children[uid])

    def ancestors(self, uid: str) -> set[str]:
        return reach([uid], None, self._parents.__getitem__) - {uid}

    def descendants(self, uid: str) -> set[str]:
        return reach([uid], None, self._children.__getitem__) - {uid}

    def topological(self) -> list[str]:
        """Every node in dependency order, ties broken by id (networkx's lexicographical order)."""
        order = kahn_order(self._parents, self._children)
        if len(order) < len(self._parents):
            raise ValueError("the plan has a cycle")
        return order


def execution_plan(graph: Graph, uids: Sequence[str], *, tests_block_children: bool = False) -> Plan:
    """The DAG among `uids`, with dependencies through ephemeral or unselected nodes collapsed.

    With `tests_block_children` (build), a node also waits for the tests of its parents: dbt's
    rule is that a test blocks a node when every node the test reads is upstream of that node.
    """
    chosen = set(uids)
    plan = Plan(uids)
    for uid in uids:
        if graph.resource(uid).resource_type == "unit_test":
            # A unit test reads nothing built: it runs before its model, and a failure stops it.
            if graph.resource(uid).attached_node in chosen:
                plan.add_edge(uid, graph.resource(uid).attached_node)
            continue
        stack = list(graph.parents(uid))
        seen: set[str] = set()
        while stack:
            parent = stack.pop()
            if parent in seen:
                continue
            seen.add(parent)
            if parent in chosen:
                plan.add_edge(parent, uid)
            elif getattr(graph.resource(parent), "is_ephemeral", False):
                stack.extend(graph.parents(parent))
    if tests_block_children:
        _add_test_edges(graph, plan)
    return plan


def _add_test_edges(graph: Graph, plan: Plan) -> None:
    ancestors: dict[str, set[str]] = {}
    for test in [u for u in plan if graph.resource(u).resource_type == "test"]:
        tested = set(plan.parents(test))
        for parent in tested:
            for child in plan.children(parent):
                if child == test or graph.resource(child).resource_type == "test":
                    continue
                if len(tested) > 1:
                    if child not in ancestors:
                        ancestors[child] = plan.ancestors(child)
                    if not tested <= ancestors[child]:
                        continue
                plan.add_edge(test, child)
