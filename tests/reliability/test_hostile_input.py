"""Hostile and malformed projects: exit 2 with the file (and line where there is one), never a
traceback, a hang or a write to the warehouse. Hypothesis mutates a valid project; hand-written
cases cover what random bytes rarely reach (deep chains, huge projects, odd names)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VALID = {
    "models/staging/stg_orders.sql": "{{ config(materialized='view') }}\nselect 1 as id, 10 as amount\n",
    "models/orders.sql": "{{ config(materialized='table', tags=['finance']) }}\n"
    "select id, {{ cents('amount') }} as amount from {{ ref('stg_orders') }}\n",
    "models/schema.yml": "version: 2\nmodels:\n  - name: orders\n    description: Orders.\n"
    "    columns:\n      - name: id\n        data_tests: [not_null, unique]\n",
    "macros/cents.sql": "{% macro cents(column) %}({{ column }} * 100){% endmacro %}\n",
}
FILES = sorted([*VALID, "sqlflow.yml", "profiles.yml"])
# What a mutation inserts: fragments of every language a project is written in.
FRAGMENTS = [
    "{{",
    "}}",
    "{%",
    "%}",
    "{% if %}",
    "{% endmacro %}",
    "{{ ref() }}",
    "{{ ref('nope') }}",
    "{{ ref('orders') }}",
    "{{ source('a') }}",
    "{{ config(materialized=42) }}",
    "{{ config(unique_key=) }}",
    "{{ undefined_macro() }}",
    "{{ var('missing') }}",
    "{{ cents(cents) }}",
    "{% macro cents(x) %}{{ cents(x) }}{% endmacro %}{{ cents(1) }}",
    "select",
    "from",
    "(",
    ")",
    "'",
    '"',
    ";",
    "; drop table x",
    ":",
    "- ",
    "  - name:",
    "\t",
    "&anchor",
    "*anchor",
    "!!python/object:os.system",
    "[",
    "]",
    "{",
    "}",
    "\x00",
    "é\u202e",
    "\n",
    "models:",
    "version: 2",
    "+materialized: nope",
]


def internal_error(output: str) -> bool:
    return "Traceback" in output or "Internal error" in output


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    file=st.sampled_from(FILES),
    position=st.floats(min_value=0, max_value=1),
    fragment=st.sampled_from(FRAGMENTS) | st.text(max_size=8),
    truncate=st.booleans(),
)
def test_a_mutated_project_fails_cleanly_or_builds(make_project, file, position, fragment, truncate):
    project = make_project(VALID)
    path = project.root / file
    text = path.read_text(encoding="utf-8")
    cut = int(len(text) * position)
    path.write_text(text[:cut] + fragment + ("" if truncate else text[cut:]), encoding="utf-8")
    (project.root / "target").mkdir(exist_ok=True)
    outcome = project.cli("compile")
    assert not internal_error(outcome.output), outcome.output
    assert outcome.exit_code in (0, 2), outcome.output
    if outcome.exit_code == 2:
        assert outcome.output.startswith("Error: "), outcome.output
        assert not project.db_path.exists()  # nothing was written to the warehouse


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"sqlflow.yml": "name: proj\nprofile: proj\nmodel_paths: [models]\n"},
            r"sqlflow.yml:3: unknown key 'model_paths'",
        ),
        ({"models/m.sql": "{{ config(materialized='table') }\nselect 1"}, r"models/m.sql:1"),
        ({"models/m.sql": "select 1 as x\n{% for %}"}, r"models/m.sql:2"),
        ({"models/m.sql": "select {{ nope() }}"}, r"models/m.sql:1: .*nope"),
        ({"models/m.sql": "select 1 +"}, r"models/m.sql:1: SQL syntax error"),
        (
            {"models/a.sql": "select * from {{ ref('b') }}", "models/b.sql": "select * from {{ ref('a') }}"},
            r"a -> b -> a|b -> a -> b",
        ),
        ({"models/m.yml": "version: 2\nmodels: [\n"}, r"models/m.yml:\d+"),
        ({"models/m.yml": "version: 2\nmodels:\n  - name: m\n    columns: 7\n"}, r"models/m.yml:\d+"),
    ],
    ids=[
        "unknown-settings-key",
        "jinja-braces",
        "jinja-for",
        "undefined-macro",
        "sql-syntax",
        "cycle",
        "yaml-syntax",
        "yaml-shape",
    ],
)
def test_hand_written_breakage(make_project, files, expected):
    project = make_project({"models/m.sql": "select 1 as x\n", **files})
    outcome = project.cli("run")
    assert outcome.exit_code == 2, outcome.output
    assert re.search(expected, outcome.output), outcome.output
    assert not internal_error(outcome.output)
    assert not project.db_path.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "-s", "orders +"], "dangling"),
        (["run", "-s", "+"], "selector"),
        (["run", "-s", "tag:"], "selector"),
        (["run", "-s", "nosuchmethod:x"], "unknown method"),
        (["run", "-s", "a,,b"], "selector"),
        (["run", "--vars", "[1, 2]"], "--vars must be a mapping"),
        (["run", "--vars", "{a: [}"], "--vars"),
        (["run", "--target", "nope"], "target 'nope'"),
    ],
)
def test_bad_options_are_exit_2(make_project, args, expected):
    project = make_project(VALID)
    outcome = project.cli(*args)
    assert outcome.exit_code == 2, outcome.output
    assert expected.lower() in outcome.output.lower(), outcome.output
    assert not internal_error(outcome.output)
    assert not project.db_path.exists()


def test_unicode_and_quotes_in_model_names_build(make_project):
    project = make_project(
        {
            "models/Ünïcode model.sql": 'select 1 as "quoted "" column"\n',
            "models/it's.sql": "select * from {{ ref('Ünïcode model') }}\n",
            "models/order.sql": "{{ config(materialized='table') }}\nselect * from {{ ref(\"it's\") }}\n",
        }
    )
    outcome = project.cli("run")
    assert outcome.exit_code == 0, outcome.output
    assert project.query('select "quoted "" column" from "order"') == [(1,)]


def chain(length: int) -> dict[str, str]:
    files = {"models/m0.sql": "select 0 as n\n"}
    for i in range(1, length):
        files[f"models/m{i}.sql"] = f"select n + 1 as n from {{{{ ref('m{i - 1}') }}}}\n"
    return files


def test_a_10000_deep_chain_loads_and_compiles(make_project):
    project = make_project(chain(10_000))
    outcome = project.cli("ls", "-s", "m9999+", "--output", "name")
    assert outcome.exit_code == 0, outcome.output
    assert outcome.output.split() == ["m9999"]
    outcome = project.cli("ls", "-s", "+m9999", "--output", "name")
    assert outcome.exit_code == 0 and len(outcome.output.split()) == 10_000


def test_a_cycle_at_the_end_of_a_10000_deep_chain_is_exit_2(make_project):
    files = chain(10_000)
    files["models/m0.sql"] = "select n from {{ ref('m9999') }}\n"
    outcome = make_project(files).cli("ls")
    assert outcome.exit_code == 2
    assert "m0 -> m1 -> m2" in outcome.output and not internal_error(outcome.output)


def test_a_20000_model_project_lists(make_project):
    files = {f"models/f{i % 50}/m{i}.sql": "select 1 as x\n" for i in range(20_000)}
    outcome = make_project(files).cli("ls", "-s", "path:models/f7", "--output", "name")
    assert outcome.exit_code == 0, outcome.output
    assert len(outcome.output.split()) == 400
