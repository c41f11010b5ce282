"""The dependency graph's own algorithms, checked against networkx on random DAGs, and the
selector helpers that replaced slower library calls, checked against those calls."""

from __future__ import annotations

import subprocess
import sys
from pathlib import PurePosixPath
from types import SimpleNamespace

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlflow import selection
from sqlflow.graph import Graph
from sqlflow.plan import Plan


@st.composite
def dags(draw) -> nx.DiGraph:
    size = draw(st.integers(min_value=1, max_value=25))
    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    edges = draw(st.lists(st.sampled_from(pairs), max_size=3 * size, unique=True)) if pairs else []
    # Names in shuffled order, so that id order and edge direction disagree.
    names = draw(st.permutations([f"model.p.m{i:02d}" for i in range(size)]))
    dag = nx.DiGraph()
    dag.add_nodes_from(names)
    dag.add_edges_from((names[i], names[j]) for i, j in edges)
    return dag


def graph_of(dag: nx.DiGraph) -> Graph:
    nodes = {uid: SimpleNamespace(depends_on=list(dag.predecessors(uid))) for uid in dag}
    return Graph(SimpleNamespace(nodes=nodes, sources={}, exposures={}))


def within(dag: nx.DiGraph, start: str, depth: int | None) -> set[str]:
    return set(nx.single_source_shortest_path_length(dag, start, cutoff=depth))


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data())
def test_reach_and_order_match_networkx(data):
    dag = data.draw(dags(), label="dag")
    graph = graph_of(dag)
    starts = data.draw(st.sets(st.sampled_from(sorted(dag)), max_size=6), label="starts")
    depth = data.draw(st.one_of(st.none(), st.integers(min_value=0, max_value=4)), label="depth")

    # One search from many nodes is the union of one search from each.
    assert graph.downstream(starts, depth) == set(starts).union(*(within(dag, s, depth) for s in starts))
    reverse = dag.reverse(copy=False)
    assert graph.upstream(starts, depth) == set(starts).union(*(within(reverse, s, depth) for s in starts))
    for uid in starts:
        assert graph.ancestors(uid) == nx.ancestors(dag, uid)
        assert graph.descendants(uid, depth) == within(dag, uid, depth) - {uid}

    assert graph.topological() == list(nx.lexicographical_topological_sort(dag))
    order = graph.topological()
    assert graph.topological(starts) == [uid for uid in order if uid in starts]
    assert {uid: graph.parents(uid) for uid in dag} == {uid: list(dag.predecessors(uid)) for uid in dag}
    assert set(graph.dag.edges) == set(dag.edges)


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data())
def test_the_execution_plan_matches_networkx(data):
    dag = data.draw(dags(), label="dag")
    plan = Plan(dag.nodes)
    for parent, child in dag.edges:
        plan.add_edge(parent, child)
        plan.add_edge(parent, child)  # twice: still one edge, as in networkx
    assert list(plan) == list(dag.nodes) and len(plan) == len(dag)
    assert plan.topological() == list(nx.lexicographical_topological_sort(dag))
    for uid in dag:
        assert set(plan.parents(uid)) == set(dag.predecessors(uid))
        assert set(plan.children(uid)) == set(dag.successors(uid))
        assert plan.ancestors(uid) == nx.ancestors(dag, uid)
        assert plan.descendants(uid) == nx.descendants(dag, uid)
    assert all(plan.has_edge(a, b) for a, b in dag.edges)
    assert sum(len(plan.children(uid)) for uid in plan) == dag.number_of_edges()


def test_a_plan_with_a_cycle_has_no_order():
    plan = Plan()
    plan.add_edge("a", "b")
    plan.add_edge("b", "a")
    with pytest.raises(ValueError, match="cycle"):
        plan.topological()


PATH_PARTS = st.sampled_from(["models", "staging", "marts", "a.sql", "b_1.sql", "x", "stg_orders.sql"])
PATTERN_PARTS = st.sampled_from(["models", "staging", "*", "*.sql", "stg_*", "?.sql", "[ab]*", "b_?.sql"])


@settings(max_examples=300, deadline=None, database=None)
@given(
    path=st.lists(PATH_PARTS, min_size=1, max_size=4).map("/".join),
    pattern=st.lists(PATTERN_PARTS, min_size=1, max_size=4).map("/".join),
    absolute=st.booleans(),
)
def test_path_match_is_pure_posix_path_match(path, pattern, absolute):
    pattern = "/" + pattern if absolute else pattern
    assert selection._path_match(path, pattern) == PurePosixPath(path).match(pattern)


def test_loading_the_cli_does_not_import_networkx():
    # 80 ms that `compile`, `ls` and a `run` with nothing to do do not need (docs/benchmarks.md).
    code = "import sys, sqlflow.cli; print('networkx' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"


def test_a_run_does_not_import_networkx(make_project):
    project = make_project({"models/a.sql": "select 1 as x", "models/b.sql": "select x from {{ ref('a') }}"})
    code = (
        "import sys; from sqlflow import commands\n"
        f"with commands.open_session({str(project.root)!r}) as session:\n"
        "    outcome = commands.run(session)\n"
        "print(len(outcome.results), 'networkx' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.split() == ["2", "False"]
