"""The SQLite adapter on real files, and `type: sqlalchemy` (best-effort) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import sqlite3

import pytest
from warehouses import Postgres, sqlite_profiles
from warehouses import postgres as postgres  # a fixture

TABLE = "{{ config(materialized='table') }} "


@pytest.fixture
def lite(make_project):
    def make(files: dict[str, str], **extra):
        return make_project(files, profiles=sqlite_profiles(**extra))

    return make


def query(project, sql: str, database: str = "warehouse.sqlite", attach: str | None = None) -> list[tuple]:
    connection = sqlite3.connect(project.root / "warehouse.sqlite")
    if attach:  # a schema's file, attached under the schema's name as sqlflow does
        connection.execute(f"attach database '{project.root / database}' as \"{attach}\"")
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def relations(project, schema: str = "main") -> dict[str, str]:
    """The tables and views of one schema (for another than main, its attached file)."""
    sql = f"select name, type from \"{schema}\".sqlite_master where type in ('table', 'view')"
    if schema == "main":
        return dict(query(project, sql))
    return dict(query(project, sql, f"warehouse.{schema}.sqlite", schema))


def results(project) -> dict[str, dict]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: r for r in data["results"]}


def test_a_failing_rebuild_keeps_the_old_rows_and_leaves_nothing_behind(lite):
    project = lite({"models/totals.sql": TABLE + "select 1 as id union all select 2"})
    assert project.cli("run").exit_code == 0
    # Fails in the warehouse once the new table is being filled (SQLite's integer overflow).
    project.write("models/totals.sql", TABLE + "select abs(-9223372036854775807 - 1) as id")
    result = project.cli("run")
    assert result.exit_code == 1 and "integer overflow" in result.output
    assert query(project, 'select count(*) from "totals"') == [(2,)]
    assert set(relations(project)) == {"totals"}


def test_a_view_is_replaced_in_one_transaction(lite):
    # SQLite cannot rename views: the old one is dropped and the new one created together, and a
    # contract checked before the commit keeps the old view when it fails.
    contract = """
        models:
          - name: v
            config: {contract: {enforced: true}}
            columns: [{name: a, data_type: int}, {name: b, data_type: int}]
        """
    project = lite({"models/v.sql": "select 1 as a, 2 as b", "models/v.yml": contract})
    assert project.cli("run").exit_code == 0
    project.write("models/v.sql", "select 1 as a, 2 as c")
    result = project.cli("run")
    assert result.exit_code == 1 and "contract not met" in result.output
    assert query(project, 'select * from "v"') == [(1, 2)]
    project.write("models/v.sql", "select 10 as a, 20 as b")
    assert project.cli("run").exit_code == 0
    assert query(project, 'select * from "v"') == [(10, 20)]


def test_identifiers_that_need_quotes(lite):
    project = lite(
        {
            "models/order.sql": "select 1 as id, 'x' as \"Select\"",
            "models/Mixed Case.sql": "select id, \"Select\" from {{ ref('order') }}",
            "models/group.sql": TABLE + "select * from {{ ref('Mixed Case') }}",
        }
    )
    for _ in range(2):
        result = project.cli("run")
        assert result.exit_code == 0, result.output
    assert relations(project) == {"order": "view", "Mixed Case": "view", "group": "table"}
    assert query(project, 'select id, "Select" from "group"') == [(1, "x")]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("append", [(1, "a"), (2, "b"), (2, "b2"), (3, "c")]),
        ("merge", [(1, "a"), (2, "b2"), (3, "c")]),
        ("delete+insert", [(1, "a"), (2, "b2"), (3, "c")]),
    ],
)
def test_incremental_strategies(lite, strategy, expected):
    key = "" if strategy == "append" else ", unique_key='id'"
    model = (
        f"{{{{ config(materialized='incremental', incremental_strategy='{strategy}'{key}) }}}}\n"
        "{% if var('second', false) %} select 2 as id, 'b2' as v union all select 3, 'c'\n"
        "{% else %} select 1 as id, 'a' as v union all select 2, 'b' {% endif %}"
    )
    project = lite({"models/events.sql": model})
    assert project.cli("run").exit_code == 0
    result = project.cli("run", "--vars", "{second: true}")
    assert result.exit_code == 0, result.output
    # SQLite has no MERGE: a merge is a delete+insert in one transaction
    assert results(project)["events"]["message"].startswith(strategy.upper())
    assert query(project, 'select id, v from "events" order by id, v') == expected


def test_custom_schemas_are_attached_files(lite):
    project = lite(
        {
            "models/a.sql": "{{ config(schema='marts', materialized='table') }} select 1 as x",
            "models/b.sql": "{{ config(schema='marts') }} select x + 1 as y from {{ ref('a') }}",
        }
    )
    for _ in range(2):
        result = project.cli("build")
        assert result.exit_code == 0, result.output
    assert relations(project, "main_marts") == {"a": "table", "b": "view"}
    # (SQLite's rule: a view reads relations of its own schema only, named with it)
    assert query(project, 'select y from "main_marts"."b"', "warehouse.main_marts.sqlite", "main_marts") == [
        (2,)
    ]
    # the build state lives in a schema (file) of its own
    assert relations(project, "sqlflow_state") == {"nodes": "table"}


def test_snapshot_and_seed(lite):
    project = lite(
        {
            "seeds/people.csv": "id,name,joined\n1,ann,2024-01-01\n2,bob,2024-02-01\n",
            "snapshots/history.sql": """
                {% snapshot history %}
                {{ config(unique_key='id', strategy='check', check_cols='all', hard_deletes='invalidate') }}
                select id, name from {{ ref('people') }} where name != '{{ var("gone", "") }}'
                {% endsnapshot %}
                """,
        }
    )
    assert project.cli("build").exit_code == 0
    project.write("seeds/people.csv", "id,name,joined\n1,anne,2024-01-01\n2,bob,2024-02-01\n")
    result = project.cli("build", "--vars", "{gone: bob}")
    assert result.exit_code == 0, result.output
    assert results(project)["history"]["message"] == "snapshot: 1 changed, 0 new, 1 deleted"
    rows = query(project, 'select id, name, dbt_valid_to is null from "history" order by id, dbt_valid_from')
    assert rows == [(1, "ann", 0), (1, "anne", 1), (2, "bob", 0)]
    assert query(project, "select typeof(id), joined from people where id = 1") == [("integer", "2024-01-01")]


def test_unsupported_sql_is_a_compile_error_before_anything_is_built(lite):
    project = lite(
        {
            "models/fine.sql": TABLE + "select 1 as x",
            "models/bad.sql": "select 1 as x,\n  arg_max(x, x) as y\nfrom {{ ref('fine') }}",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 2
    assert (
        "models/bad.sql:2" in result.output
        and "ARG_MAX() is not a function of the sqlite warehouse" in result.output
    )
    assert not (project.root / "warehouse.sqlite").exists() or relations(project) == {}


def test_a_sqlalchemy_url_to_sqlite_points_to_the_sqlite_type(make_project, tmp_path):
    url = f"sqlite:///{tmp_path / 'generic.db'}"
    profiles = f"proj:\n  target: any\n  outputs:\n    any:\n      type: sqlalchemy\n      url: '{url}'\n"
    project = make_project({"models/t.sql": "select 1 as id"}, profiles=profiles)
    result = project.cli("run")
    assert result.exit_code == 2 and "use `type: sqlite`" in result.output


def test_sqlalchemy_url_best_effort_on_postgres(make_project, postgres: Postgres):
    url = postgres.url.render_as_string(hide_password=False)
    profiles = (
        f"proj:\n  target: any\n  outputs:\n    any:\n      type: sqlalchemy\n      url: '{url}'\n"
        f"      schema: {postgres.schema}\n"
    )
    project = make_project(
        {
            "models/t.sql": TABLE + "select 1 as id union all select 2",
            "models/v.sql": "select id * 2 as id2 from {{ ref('t') }}",
            "models/inc.sql": "{{ config(materialized='incremental', unique_key='id') }} "
            "select {{ var('id', 1) }} as id, 'x' as v",
            "seeds/people.csv": "id,name\n1,ann\n",
        },
        profiles=profiles,
    )
    for run in range(2):  # the second run replaces t under v, and merges into inc
        result = project.cli("build", "--vars", f"{{id: {run + 1}}}")
        assert result.exit_code == 0, result.output
    assert postgres.scalar(f'select sum(id2) from "{postgres.schema}"."v"') == 6
    assert postgres.query(f'select id from "{postgres.schema}"."inc" order by id') == [(1,), (2,)]
    assert postgres.query(f'select id, name from "{postgres.schema}"."people"') == [(1, "ann")]


def test_source_freshness_and_a_unit_test(lite):
    project = lite(
        {
            "seeds/loads.csv": "id,loaded_at\n1,2024-01-01 10:00:00\n2,2024-01-02 11:30:00\n",
            "models/sources.yml": """
                sources:
                  - name: raw
                    schema: main
                    tables:
                      - name: loads
                        loaded_at_field: loaded_at
                        freshness: {warn_after: {count: 1, period: day}}
                """,
            "models/doubled.sql": "select id * 2 as id2 from {{ source('raw', 'loads') }}",
            "models/tests.yml": """
                unit_tests:
                  - name: doubles
                    model: doubled
                    given:
                      - input: source('raw', 'loads')
                        rows: [{id: 1}, {id: 5}]
                    expect:
                      rows: [{id2: 2}, {id2: 10}]
                """,
        }
    )
    assert project.cli("seed").exit_code == 0
    result = project.cli("source", "freshness")
    assert result.exit_code == 0 and "WARN" in result.output, result.output
    result = project.cli("build")
    assert result.exit_code == 0 and "PASS" in result.output, result.output
