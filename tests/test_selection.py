"""Selector expressions: parsing, evaluation on a real project's graph, errors, and `sqlflow ls`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlflow import commands, selection
from sqlflow.errors import SelectorError, UserError
from sqlflow.selection import Criterion, Expression

SETTINGS = """\
name: proj
profile: proj
models:
  proj:
    staging:
      +tags: ["x"]
    marts:
      +materialized: table
"""

SOURCES = """\
version: 2
sources:
  - name: raw
    tables:
      - name: events
      - name: users
"""

# raw.events -> stg_events -> int_joined -> fct -> report
# raw_people (seed) -> stg_people -> int_joined
# raw.users -> stg_users (table) -> dim -> report
# other -> side <- lonely
FILES = {
    "models/sources.yml": SOURCES,
    "seeds/raw_people.csv": "id,name\n1,ada\n2,grace\n",
    "models/staging/stg_events.sql": "select 1 as id from {{ source('raw', 'events') }}",
    "models/staging/stg_people.sql": "select id from {{ ref('raw_people') }}",
    "models/staging/stg_users.sql": (
        "{{ config(materialized='table') }}\nselect 1 as id from {{ source('raw', 'users') }}"
    ),
    "models/intermediate/int_joined.sql": (
        "select e.id from {{ ref('stg_events') }} as e join {{ ref('stg_people') }} as p on e.id = p.id"
    ),
    "models/marts/fct.sql": "select id from {{ ref('int_joined') }}",
    "models/marts/dim.sql": "{{ config(tags=['y']) }}\nselect id from {{ ref('stg_users') }}",
    "models/marts/report.sql": (
        "select f.id from {{ ref('fct') }} as f join {{ ref('dim') }} as d on f.id = d.id"
    ),
    "models/other.sql": "select 1 as x",
    "models/lonely.sql": "select 2 as x",
    "models/side.sql": "select x from {{ ref('other') }} union all select x from {{ ref('lonely') }}",
}

ALL_KINDS = ("model", "seed", "source")
STAGING = {"stg_events", "stg_people", "stg_users"}
MAIN = {
    "raw.events",
    "raw.users",
    "raw_people",
    "stg_events",
    "stg_people",
    "stg_users",
    "int_joined",
    "fct",
    "dim",
    "report",
}
SIDE = {"other", "lonely", "side"}
EVERYTHING = MAIN | SIDE


@pytest.fixture
def shop(make_project):
    return make_project(FILES, settings=SETTINGS)


@pytest.fixture
def graph(shop):
    session = commands.open_session(shop.root, use_cache=False)
    yield session.graph
    session.close()


def short(graph, uid: str) -> str:
    resource = graph.resource(uid)
    source_name = getattr(resource, "source_name", None)
    return f"{source_name}.{resource.name}" if source_name else resource.name


def pick(graph, *select: str, exclude: tuple[str, ...] = (), kinds=ALL_KINDS) -> set[str]:
    return {short(graph, uid) for uid in selection.select(graph, list(select), list(exclude), kinds)}


# --------------------------------------------------------------------------- parsing


def test_parse_builds_union_of_intersections():
    expression = selection.parse("2+a+3,tag:x  @b")
    assert expression == Expression(
        (
            (
                Criterion("default", "a", parents=True, parents_depth=2, children=True, children_depth=3),
                Criterion("tag", "x"),
            ),
            (Criterion("default", "b", childrens_parents=True),),
        )
    )


@pytest.mark.parametrize(
    ("text", "criterion"),
    [
        ("m", Criterion("default", "m")),
        ("+m", Criterion("default", "m", parents=True)),
        ("m+", Criterion("default", "m", children=True)),
        ("+m+", Criterion("default", "m", parents=True, children=True)),
        ("2+m", Criterion("default", "m", parents=True, parents_depth=2)),
        ("m+1", Criterion("default", "m", children=True, children_depth=1)),
        ("@m", Criterion("default", "m", childrens_parents=True)),
        ("config.materialized:table", Criterion("config.materialized", "table")),
        ("source:raw.events+", Criterion("source", "raw.events", children=True)),
        ("path:models/staging", Criterion("path", "models/staging")),
    ],
)
def test_parse_single_criterion(text, criterion):
    assert selection.parse(text) == Expression(((criterion,),))


# --------------------------------------------------------------------------- evaluation


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        ("int_joined", {"int_joined"}),
        ("+int_joined", {"int_joined", "stg_events", "stg_people", "raw.events", "raw_people"}),
        ("int_joined+", {"int_joined", "fct", "report"}),
        (
            "+int_joined+",
            {"int_joined", "stg_events", "stg_people", "raw.events", "raw_people", "fct", "report"},
        ),
        ("1+report", {"report", "fct", "dim"}),
        ("2+report", {"report", "fct", "dim", "int_joined", "stg_users"}),
        ("stg_events+1", {"stg_events", "int_joined"}),
        ("stg_events+2", {"stg_events", "int_joined", "fct"}),
        ("1+int_joined+1", {"int_joined", "stg_events", "stg_people", "fct"}),
        # @: the model, its descendants, and every ancestor of those.
        ("@stg_events", MAIN),
        ("@fct", MAIN),
        ("@report", MAIN),
        ("@other", {"other", "side", "lonely"}),
        ("+other+", {"other", "side"}),
        ("@side", {"side", "other", "lonely"}),
        ("@lonely", {"other", "side", "lonely"}),
        ("tag:x", STAGING),
        ("tag:y", {"dim"}),
        ("path:models/staging", STAGING),
        ("path:models/staging/", STAGING),
        ("path:models/staging/stg_users.sql", {"stg_users"}),
        ("models/marts", {"fct", "dim", "report"}),
        ("staging.*", STAGING),
        ("fqn:proj.marts.*", {"fct", "dim", "report"}),
        ("fqn:intermediate.int_joined", {"int_joined"}),
        ("config.materialized:table", {"stg_users", "fct", "dim", "report"}),
        ("config.materialized:view", {"stg_events", "stg_people", "int_joined"} | SIDE),
        ("config.materialized:seed", {"raw_people"}),
        ("resource_type:seed", {"raw_people"}),
        ("resource_type:source", {"raw.events", "raw.users"}),
        ("source:raw.events", {"raw.events"}),
        ("source:raw", {"raw.events", "raw.users"}),
        ("source:raw.*", {"raw.events", "raw.users"}),
        ("source:raw.users+", {"raw.users", "stg_users", "dim", "report"}),
        ("stg_*", STAGING),
        ("*_people", {"stg_people", "raw_people"}),
        ("st?_users", {"stg_users"}),
        ("fct dim", {"fct", "dim"}),
        ("fct   dim other", {"fct", "dim", "other"}),
        ("tag:x,config.materialized:view", {"stg_events", "stg_people"}),
        ("+report,tag:x", STAGING),
        ("+report,config.materialized:table,tag:x", {"stg_users"}),
        ("tag:x,config.materialized:view other", {"stg_events", "stg_people", "other"}),
        ("no_such_model", set()),
        ("tag:nothing", set()),
    ],
)
def test_select_evaluates(graph, select, expected):
    assert pick(graph, select) == expected


def test_repeated_select_is_a_union(graph):
    assert pick(graph, "fct", "dim") == {"fct", "dim"}
    assert pick(graph, "tag:x,config.materialized:view", "other") == {"stg_events", "stg_people", "other"}


def test_exclude_removes_nodes(graph):
    assert pick(graph, "+report", exclude=("tag:x",)) == {
        "raw.events",
        "raw.users",
        "raw_people",
        "int_joined",
        "fct",
        "dim",
        "report",
    }
    assert pick(graph, "+report", exclude=("source:raw", "resource_type:seed")) == {
        "stg_events",
        "stg_people",
        "stg_users",
        "int_joined",
        "fct",
        "dim",
        "report",
    }
    assert pick(graph, "stg_events+", exclude=("fct+",)) == {"stg_events", "int_joined"}
    assert pick(graph, exclude=("report", "other", "source:raw", "tag:x")) == {
        "lonely",
        "side",
        "raw_people",
        "int_joined",
        "fct",
        "dim",
    }


def test_no_selector_means_every_model_and_seed(graph):
    uids = selection.select(graph, (), ())
    assert {short(graph, u) for u in uids} == EVERYTHING - {"raw.events", "raw.users"}


def test_resource_types_restrict_the_result(graph):
    assert pick(graph, "+int_joined", kinds=("model",)) == {"int_joined", "stg_events", "stg_people"}
    assert pick(graph, "+int_joined", kinds=("seed",)) == {"raw_people"}
    assert pick(graph, "+int_joined", kinds=("source",)) == {"raw.events"}


def test_selection_is_in_dependency_order(graph):
    uids = selection.select(graph, ["+report"], (), ALL_KINDS)
    position = {uid: i for i, uid in enumerate(uids)}
    assert len(uids) == 10
    for uid in uids:
        for parent in graph.parents(uid):
            assert position[parent] < position[uid], (parent, uid)
    # The same call gives the same order (ties are broken by id).
    assert selection.select(graph, ["+report"], (), ALL_KINDS) == uids


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "column", "fragment"),
    [
        ("orders +", 7, "dangling '+'"),
        ("+", 0, "dangling '+'"),
        ("2+ a", 0, "dangling '+'"),
        ("@", 0, "dangling '@'"),
        ("a,,b", 2, "',' needs a selector on both sides"),
        ("a,", 1, "',' needs a selector on both sides"),
        ("a, b", 2, "',' needs a selector on both sides"),
        (",a", 0, "unexpected ','"),
        ("foo:bar", 0, "unknown method 'foo'"),
        ("config:x", 0, "config needs a key"),
        ("@+a", 1, "unexpected '+': expected a name"),
        ("@a+", 1, "'@' cannot be combined with '+'"),
        ("a+b", 2, "unexpected 'b'"),
        ("+1a", 0, "a depth goes before a leading '+'"),
        ("tag:", 0, "tag: needs a value"),
        ("", 0, "empty selector"),
        ("   ", 3, "empty selector"),
    ],
)
def test_malformed_selector_shows_the_token_and_the_valid_forms(text, column, fragment):
    with pytest.raises(SelectorError) as caught:
        selection.parse(text)
    error = caught.value
    assert isinstance(error, UserError)
    assert error.exit_code == 2
    lines = str(error).splitlines()
    assert lines[0].startswith("invalid selector: ")
    assert fragment in lines[0]
    assert lines[1] == "  " + text
    assert lines[2] == "  " + " " * column + "^"
    assert lines[3].startswith("  hint: valid forms: name, +name")
    assert "a space means union, a comma means intersection" in lines[3]


def test_known_methods_are_listed_for_an_unknown_one():
    with pytest.raises(
        SelectorError, match=r"known: config, default, exposure, fqn, package, path, resource_type"
    ):
        selection.parse("tags:x")


def test_an_invalid_exclude_is_an_error_too(graph):
    with pytest.raises(SelectorError, match="needs a selector on both sides"):
        selection.select(graph, ["fct"], ["a,"])


# --------------------------------------------------------------------------- through `sqlflow ls`


def ls_lines(project, *args: str) -> list[str]:
    result = project.cli("ls", *args)
    assert result.exit_code == 0, result.output
    return result.output.splitlines()


def test_ls_select_and_exclude(shop):
    assert ls_lines(shop, "-s", "+fct", "--exclude", "source:raw", "-o", "name") == [
        "raw_people",
        "stg_people",
        "stg_events",
        "int_joined",
        "fct",
    ]
    assert set(ls_lines(shop, "--select", "fct", "--select", "dim", "-o", "name")) == {"fct", "dim"}
    assert set(ls_lines(shop, "-m", "tag:x,config.materialized:view", "-o", "name")) == {
        "stg_events",
        "stg_people",
    }
    assert set(ls_lines(shop, "-s", "source:raw", "-o", "name")) == {"raw.events", "raw.users"}
    assert ls_lines(shop, "-s", "nothing_matches") == []


@pytest.mark.parametrize("text", ["orders +", "+", "a,,b", "a,", "foo:bar", "config:x", "@+a", ""])
def test_ls_malformed_selector_exits_2(shop, text):
    result = shop.cli("ls", "-s", text)
    assert result.exit_code == 2
    assert "Error: invalid selector" in result.output
    assert "  " + text + "\n" in result.output
    assert "^" in result.output
    assert "hint: valid forms" in result.output
    assert "Traceback" not in result.output


def test_ls_malformed_exclude_exits_2(shop):
    result = shop.cli("ls", "--exclude", "foo:bar")
    assert result.exit_code == 2
    assert "unknown method 'foo'" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- property: random DAGs


@st.composite
def dags(draw) -> nx.DiGraph:
    size = draw(st.integers(min_value=3, max_value=15))
    pairs = [(i, j) for i in range(size) for j in range(i + 1, size)]
    edges = draw(st.lists(st.sampled_from(pairs), max_size=2 * size, unique=True))
    dag = nx.DiGraph()
    dag.add_nodes_from(f"m{i}" for i in range(size))
    dag.add_edges_from((f"m{i}", f"m{j}") for i, j in edges)
    return dag


FORMS = ("name", "+name", "name+", "+name+", "N+name", "name+N", "N+name+N", "@name")


@st.composite
def criteria(draw, names: list[str]) -> tuple[str, str, int | None, int | None]:
    form = draw(st.sampled_from(FORMS))
    name = draw(st.sampled_from(names))
    up = draw(st.integers(min_value=0, max_value=4)) if form.startswith("N+") else None
    down = draw(st.integers(min_value=0, max_value=4)) if form.endswith("+N") else None
    return form, name, up, down


def render_criterion(criterion) -> str:
    form, name, up, down = criterion
    text = form.replace("name", name)
    if up is not None:
        text = f"{up}{text[1:]}"
    if down is not None:
        text = f"{text[:-1]}{down}"
    return text


def reach(dag: nx.DiGraph, node: str, depth: int | None) -> set[str]:
    return set(nx.single_source_shortest_path_length(dag, node, cutoff=depth))


def expected_criterion(dag: nx.DiGraph, criterion) -> set[str]:
    form, name, up, down = criterion
    if form == "@name":
        below = reach(dag, name, None)
        return below.union(*(nx.ancestors(dag, n) for n in below))
    chosen = {name}
    if form.startswith(("+", "N+")):
        chosen |= reach(dag.reverse(copy=False), name, up)
    if form.endswith(("+", "+N")):
        chosen |= reach(dag, name, down)
    return chosen


def write_dag_project(root: Path, dag: nx.DiGraph) -> None:
    (root / "models").mkdir(parents=True)
    (root / "sqlflow.yml").write_text("name: proj\nprofile: proj\n")
    (root / "profiles.yml").write_text(
        "proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: w.duckdb\n"
    )
    for node in dag:
        parents = sorted(dag.predecessors(node))
        body = (
            "\nunion all\n".join(f"select x from {{{{ ref('{p}') }}}}" for p in parents)
            if parents
            else "select 1 as x"
        )
        (root / "models" / f"{node}.sql").write_text(body + "\n")


@settings(max_examples=40, deadline=None, database=None)
@given(data=st.data())
def test_selection_matches_networkx_on_random_dags(data):
    dag = data.draw(dags(), label="dag")
    names = sorted(dag)
    groups = data.draw(
        st.lists(st.lists(criteria(names), min_size=1, max_size=3), min_size=1, max_size=3), label="select"
    )
    excluded = data.draw(st.lists(criteria(names), max_size=2), label="exclude")
    select_text = " ".join(",".join(render_criterion(c) for c in group) for group in groups)
    exclude_text = [render_criterion(c) for c in excluded]

    expected: set[str] = set()
    for group in groups:
        members = expected_criterion(dag, group[0])
        for criterion in group[1:]:
            members &= expected_criterion(dag, criterion)
        expected |= members
    for criterion in excluded:
        expected -= expected_criterion(dag, criterion)

    with tempfile.TemporaryDirectory() as folder:
        write_dag_project(Path(folder), dag)
        session = commands.open_session(folder, use_cache=False)
        graph = session.graph
        assert {uid.split(".")[-1] for uid in graph} == set(names)
        assert {(graph.resource(a).name, graph.resource(b).name) for a, b in graph.dag.edges} == set(
            dag.edges
        )
        uids = selection.select(graph, [select_text], exclude_text, ("model",))

        # Every single-criterion form on every node, too: cheap once the graph is loaded.
        singles = [
            (form, name, up, down)
            for name in names
            for form, up, down in [
                ("name", None, None),
                ("+name", None, None),
                ("name+", None, None),
                ("+name+", None, None),
                ("@name", None, None),
                *(("N+name", depth, None) for depth in range(4)),
                *(("name+N", None, depth) for depth in range(4)),
            ]
        ]
        for criterion in singles:
            text = render_criterion(criterion)
            got = {uid.removeprefix("model.proj.") for uid in selection.select(graph, [text], [], ("model",))}
            assert got == expected_criterion(dag, criterion), text

    picked = [uid.removeprefix("model.proj.") for uid in uids]
    assert set(picked) == expected, (select_text, exclude_text)
    assert len(picked) == len(set(picked))
    position = {name: i for i, name in enumerate(picked)}
    for parent, child in dag.edges:
        if parent in position and child in position:
            assert position[parent] < position[child]
