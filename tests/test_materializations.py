"""Materializations on a real DuckDB file: views, tables, incremental models, ephemerals and seeds.

Every test builds a throwaway project with the CLI and checks what the warehouse holds afterwards:
relation types from information_schema, row counts and row contents.
"""

from __future__ import annotations

import json
import threading

import pytest

from sqlflow import commands

# --------------------------------------------------------------------------- helpers


def relation_type(project, name: str, schema: str = "main") -> str | None:
    """'BASE TABLE', 'VIEW' or None when the relation does not exist."""
    rows = project.query(
        "select table_type from information_schema.tables "
        f"where table_schema = '{schema}' and table_name = '{name}'"
    )
    return rows[0][0] if rows else None


def relation_names(project) -> set[str]:
    return {
        name
        for (name,) in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
    }


def rows(project, sql: str) -> list[tuple]:
    return sorted(project.query(sql))


def run_results(project) -> dict[str, dict]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return {r["unique_id"]: r for r in data["results"]}


def assert_no_leftovers(project) -> None:
    """A failed or successful build leaves no temporary relation behind."""
    assert not [n for n in relation_names(project) if "__sqlflow" in n]


def values_model(values: list[tuple], columns: str = "id, val", materialized: str = "table") -> str:
    body = ", ".join("(" + ", ".join(repr(v) for v in row) + ")" for row in values)
    return f"{{{{ config(materialized='{materialized}') }}}}\nselect * from (values {body}) as v({columns})\n"


# --------------------------------------------------------------------------- view and table


def test_view_and_table_contents(make_project):
    project = make_project(
        {
            "models/numbers.sql": "{{ config(materialized='table') }}\nselect range as n from range(10)\n",
            "models/evens.sql": "select n from {{ ref('numbers') }} where n % 2 = 0\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "numbers") == "BASE TABLE"
    assert relation_type(project, "evens") == "VIEW"
    assert project.scalar("select count(*) from numbers") == 10
    assert rows(project, "select n from evens") == [(0,), (2,), (4,), (6,), (8,)]
    results = run_results(project)
    assert results["model.proj.numbers"]["status"] == "success"
    assert results["model.proj.numbers"]["adapter_response"] == {"rows_affected": 10}
    assert results["model.proj.evens"]["message"] == "CREATE VIEW"


def test_view_reflects_upstream_changes_and_table_is_a_snapshot(make_project):
    project = make_project(
        {
            "models/src.sql": values_model([(1, "a"), (2, "b")]),
            "models/as_view.sql": "select * from {{ ref('src') }}\n",
            "models/as_table.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('src') }}\n",
        }
    )
    assert project.cli("run").exit_code == 0
    project.write("models/src.sql", values_model([(1, "a"), (2, "b"), (3, "c")]))
    assert project.cli("run", "-s", "src").exit_code == 0
    assert project.scalar("select count(*) from as_view") == 3
    assert project.scalar("select count(*) from as_table") == 2


def test_switching_view_table_view(make_project):
    project = make_project({"models/m.sql": "select 1 as x\n"})
    assert project.cli("run").exit_code == 0
    assert relation_type(project, "m") == "VIEW"

    project.write("models/m.sql", "{{ config(materialized='table') }}\nselect 1 as x union all select 2\n")
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "m") == "BASE TABLE"
    assert project.scalar("select count(*) from m") == 2

    project.write("models/m.sql", "select 7 as y\n")
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "m") == "VIEW"
    assert project.query("select * from m") == [(7,)]

    # view -> incremental -> view as well
    project.write("models/m.sql", "{{ config(materialized='incremental') }}\nselect 8 as y\n")
    assert project.cli("run").exit_code == 0
    assert relation_type(project, "m") == "BASE TABLE"
    project.write("models/m.sql", "select 9 as y\n")
    assert project.cli("run").exit_code == 0
    assert relation_type(project, "m") == "VIEW"
    assert project.query("select * from m") == [(9,)]
    assert_no_leftovers(project)


def test_view_replaced_with_different_columns(make_project):
    project = make_project({"models/v.sql": "select 1 as a, 2 as b\n"})
    assert project.cli("run").exit_code == 0
    project.write("models/v.sql", "select 'x' as c\n")
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select * from v") == [("x",)]


# --------------------------------------------------------------------------- incremental

INCREMENTAL_FIRST = [(1, "a"), (2, "b"), (3, "c")]
INCREMENTAL_SECOND = [(2, "B"), (3, "c"), (4, "d")]
MERGED = [(1, "a"), (2, "B"), (3, "c"), (4, "d")]


def incremental_project(make_project, config: str):
    return make_project(
        {
            "models/src.sql": values_model(INCREMENTAL_FIRST),
            "models/inc.sql": f"{{{{ config(materialized='incremental', {config}) }}}}\n"
            "select id, val from {{ ref('src') }}\n",
        }
    )


def run_twice(project) -> None:
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert rows(project, "select id, val from inc") == INCREMENTAL_FIRST
    project.write("models/src.sql", values_model(INCREMENTAL_SECOND))
    result = project.cli("run")
    assert result.exit_code == 0, result.output


def test_incremental_append_adds_rows(make_project):
    project = incremental_project(make_project, "incremental_strategy='append'")
    run_twice(project)
    assert rows(project, "select id, val from inc") == sorted(INCREMENTAL_FIRST + INCREMENTAL_SECOND)
    assert relation_type(project, "inc") == "BASE TABLE"
    result = run_results(project)["model.proj.inc"]
    assert result["message"] == "APPEND"
    assert result["adapter_response"] == {"rows_affected": 3}


def test_incremental_without_unique_key_defaults_to_append(make_project):
    project = incremental_project(make_project, "tags=['x']")
    run_twice(project)
    assert project.scalar("select count(*) from inc") == 6
    assert run_results(project)["model.proj.inc"]["message"] == "APPEND"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("unique_key='id', incremental_strategy='merge'", "MERGE"),
        ("unique_key='id', incremental_strategy='delete+insert'", "DELETE+INSERT"),
        ("unique_key='id'", "MERGE"),  # the default strategy with a unique_key is merge
        ("unique_key=['id']", "MERGE"),
    ],
)
def test_incremental_upsert_strategies(make_project, config, message):
    project = incremental_project(make_project, config)
    run_twice(project)
    assert rows(project, "select id, val from inc") == MERGED
    assert run_results(project)["model.proj.inc"]["message"] == message
    assert_no_leftovers(project)


@pytest.mark.parametrize("strategy", ["merge", "delete+insert"])
def test_incremental_composite_unique_key(make_project, strategy):
    first = [(1, "x", 10), (1, "y", 20), (2, "x", 30)]
    second = [(1, "y", 21), (2, "y", 40)]
    project = make_project(
        {
            "models/src.sql": values_model(first, "a, b, amount"),
            "models/inc.sql": "{{ config(materialized='incremental', unique_key=['a', 'b'], "
            f"incremental_strategy='{strategy}') }}}}\n"
            "select a, b, amount from {{ ref('src') }}\n",
        }
    )
    assert project.cli("run").exit_code == 0
    project.write("models/src.sql", values_model(second, "a, b, amount"))
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    # (1, 'y') updated; (2, 'y') inserted; rows matching only one key column are untouched
    assert rows(project, "select a, b, amount from inc") == [
        (1, "x", 10),
        (1, "y", 21),
        (2, "x", 30),
        (2, "y", 40),
    ]


def test_merge_keeps_target_columns_the_model_does_not_return(make_project):
    project = make_project(
        {
            "models/src.sql": values_model([(1, "a")]),
            "models/inc.sql": "{{ config(materialized='incremental', unique_key='id') }}\n"
            "select id, val{% if not is_incremental() %}, 'first' as origin{% endif %}"
            " from {{ ref('src') }}\n",
        }
    )
    assert project.cli("run").exit_code == 0
    project.write("models/src.sql", values_model([(1, "A"), (2, "b")]))
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert rows(project, "select id, val, origin from inc") == [(1, "A", "first"), (2, "b", None)]


def test_is_incremental_false_first_true_second(make_project):
    project = make_project(
        {
            "models/inc.sql": """\
                {{ config(materialized='incremental') }}
                select
                {% if is_incremental() %}
                    'incremental' as mode, (select count(*) from {{ this }}) as rows_before
                {% else %}
                    'full' as mode, 0 as rows_before
                {% endif %}
                """,
        }
    )
    assert project.cli("run").exit_code == 0
    assert project.query("select mode, rows_before from inc") == [("full", 0)]
    compiled = project.root / "target/compiled/proj/models/inc.sql"
    assert "'full'" in compiled.read_text()
    assert project.cli("run").exit_code == 0
    assert rows(project, "select mode, rows_before from inc") == [("full", 0), ("incremental", 1)]
    assert "'incremental'" in compiled.read_text()
    assert project.cli("run").exit_code == 0
    assert project.scalar("select count(*) from inc") == 3

    # --full-refresh rebuilds from scratch: is_incremental() is false again
    result = project.cli("run", "--full-refresh")
    assert result.exit_code == 0, result.output
    assert project.query("select mode, rows_before from inc") == [("full", 0)]


def test_full_refresh_rebuilds_incremental_from_source(make_project):
    project = incremental_project(make_project, "incremental_strategy='append'")
    run_twice(project)
    assert project.scalar("select count(*) from inc") == 6
    result = project.cli("run", "-f")
    assert result.exit_code == 0, result.output
    assert rows(project, "select id, val from inc") == INCREMENTAL_SECOND
    assert run_results(project)["model.proj.inc"]["message"] == "CREATE TABLE"


def test_full_refresh_false_config_keeps_incremental(make_project):
    project = incremental_project(make_project, "incremental_strategy='append', full_refresh=false")
    run_twice(project)
    assert project.cli("run", "--full-refresh").exit_code == 0
    assert project.scalar("select count(*) from inc") == 9


def test_merge_with_duplicate_keys_fails_and_keeps_rows(make_project):
    project = incremental_project(make_project, "unique_key='id'")
    assert project.cli("run").exit_code == 0
    project.write("models/src.sql", values_model([(2, "x"), (2, "y"), (5, "z")]))
    result = project.cli("run")
    assert result.exit_code == 1
    assert "unique_key (id) is not unique" in result.output
    assert "id=2 appears 2 times" in result.output
    assert run_results(project)["model.proj.inc"]["status"] == "error"
    assert rows(project, "select id, val from inc") == INCREMENTAL_FIRST
    assert relation_type(project, "inc") == "BASE TABLE"
    assert_no_leftovers(project)


def test_incremental_unique_key_missing_from_model(make_project):
    project = incremental_project(make_project, "unique_key='order_id'")
    assert project.cli("run").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 1
    assert "unique_key column(s) order_id are not in both the model and inc" in result.output
    assert rows(project, "select id, val from inc") == INCREMENTAL_FIRST


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("incremental_strategy='upsert', unique_key='id'", "unknown incremental_strategy 'upsert'"),
        ("incremental_strategy='merge'", "incremental_strategy 'merge' needs a unique_key"),
    ],
)
def test_incremental_bad_strategy_config(make_project, config, message):
    project = incremental_project(make_project, config)
    result = project.cli("run")  # caught when the project loads, before anything is built
    assert result.exit_code == 2
    assert message in result.output
    assert "models/inc.sql" in result.output
    assert "hint:" in result.output
    assert not project.db_path.exists() or project.query(
        "select count(*) from information_schema.tables where table_name = 'inc'"
    ) == [(0,)]


def test_incremental_replaces_a_view_of_the_same_name(make_project):
    project = make_project({"models/inc.sql": "select 1 as id\n"})
    assert project.cli("run").exit_code == 0
    assert relation_type(project, "inc") == "VIEW"
    project.write(
        "models/inc.sql", "{{ config(materialized='incremental', unique_key='id') }}\nselect 1 as id\n"
    )
    assert project.cli("run").exit_code == 0
    assert relation_type(project, "inc") == "BASE TABLE"
    assert project.cli("run").exit_code == 0
    assert project.query("select id from inc") == [(1,)]


# --------------------------------------------------------------------------- ephemeral


def compiled_sql(project, name: str) -> str:
    return (project.root / "target" / "compiled" / "proj" / "models" / f"{name}.sql").read_text()


def test_ephemeral_is_inlined_and_never_created(make_project):
    project = make_project(
        {
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect range as n from range(5)\n",
            "models/uses.sql": "{{ config(materialized='table') }}\nselect sum(n) as total from {{ ref('eph') }}\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select total from uses") == [(10,)]
    assert "eph" not in relation_names(project)
    assert "__sqlflow_cte__eph" in compiled_sql(project, "uses")
    assert list(run_results(project)) == ["model.proj.uses"]

    # selecting only the model still inlines the ephemeral
    assert project.cli("run", "-s", "uses").exit_code == 0
    assert project.query("select total from uses") == [(10,)]
    assert "eph" not in relation_names(project)


def test_nested_ephemerals(make_project):
    project = make_project(
        {
            "models/eph1.sql": "{{ config(materialized='ephemeral') }}\nselect range as n from range(4)\n",
            "models/eph2.sql": "{{ config(materialized='ephemeral') }}\nselect n * 10 as m from {{ ref('eph1') }}\n",
            "models/top.sql": "select m from {{ ref('eph2') }}\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert rows(project, "select m from top") == [(0,), (10,), (20,), (30,)]
    sql = compiled_sql(project, "top")
    assert sql.index("__sqlflow_cte__eph1") < sql.index("__sqlflow_cte__eph2")
    assert relation_names(project) == {"top"}


def test_ephemeral_in_union_all(make_project):
    project = make_project(
        {
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect 1 as n\n",
            "models/u.sql": """\
                {{ config(materialized='table') }}
                select n from {{ ref('eph') }}
                union all
                select n + 1 from {{ ref('eph') }}
                union all
                select 3
                """,
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert rows(project, "select n from u") == [(1,), (2,), (3,)]
    assert compiled_sql(project, "u").count('"__sqlflow_cte__eph" AS') == 1


def test_ephemeral_in_model_with_its_own_with_clause(make_project):
    project = make_project(
        {
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect range as n from range(3)\n",
            "models/m.sql": """\
                with doubled as (
                    select n * 2 as d from {{ ref('eph') }}
                ),
                tripled as (select n * 3 as t from {{ ref('eph') }})
                select d, t from doubled join tripled on d / 2 = t / 3
                """,
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert rows(project, "select d, t from m") == [(0, 0), (2, 3), (4, 6)]
    assert "__sqlflow_cte__eph" in compiled_sql(project, "m")


def test_two_models_ref_the_same_ephemeral(make_project):
    project = make_project(
        {
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect 'shared' as s\n",
            "models/a.sql": "select s || '-a' as s from {{ ref('eph') }}\n",
            "models/b.sql": "{{ config(materialized='table') }}\nselect s || '-b' as s from {{ ref('eph') }}\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select s from a") == [("shared-a",)]
    assert project.query("select s from b") == [("shared-b",)]
    for name in ("a", "b"):
        assert "__sqlflow_cte__eph" in compiled_sql(project, name)
    assert relation_names(project) == {"a", "b"}


def test_ephemeral_between_two_built_models_keeps_the_order(make_project):
    project = make_project(
        {
            "models/base.sql": "{{ config(materialized='table') }}\nselect 5 as n\n",
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect n + 1 as n from {{ ref('base') }}\n",
            "models/top.sql": "{{ config(materialized='table') }}\nselect n + 1 as n from {{ ref('eph') }}\n",
        }
    )
    result = project.cli("run", "--threads", "4")
    assert result.exit_code == 0, result.output
    assert project.query("select n from top") == [(7,)]
    project.write("models/base.sql", "{{ config(materialized='table') }}\nselect 50 as n\n")
    assert project.cli("run").exit_code == 0
    assert project.query("select n from top") == [(52,)]


# --------------------------------------------------------------------------- failures keep the old relation


def test_failed_table_build_keeps_old_table(make_project):
    project = make_project(
        {"models/t.sql": "{{ config(materialized='table') }}\nselect range as n from range(3)\n"}
    )
    assert project.cli("run").exit_code == 0
    project.write(
        "models/t.sql", "{{ config(materialized='table') }}\nselect error('boom') as x from range(3)\n"
    )
    result = project.cli("run")
    assert result.exit_code == 1
    assert "boom" in result.output
    assert run_results(project)["model.proj.t"]["status"] == "error"
    assert relation_type(project, "t") == "BASE TABLE"
    assert rows(project, "select n from t") == [(0,), (1,), (2,)]
    assert_no_leftovers(project)


def test_failed_cast_keeps_old_table(make_project):
    project = make_project({"models/t.sql": "{{ config(materialized='table') }}\nselect 1 as n\n"})
    assert project.cli("run").exit_code == 0
    project.write("models/t.sql", "{{ config(materialized='table') }}\nselect cast('abc' as integer) as n\n")
    assert project.cli("run").exit_code == 1
    assert project.query("select n from t") == [(1,)]


def test_failed_view_to_table_switch_keeps_old_view(make_project):
    project = make_project({"models/t.sql": "select 1 as n\n"})
    assert project.cli("run").exit_code == 0
    project.write("models/t.sql", "{{ config(materialized='table') }}\nselect error('boom') as n\n")
    assert project.cli("run").exit_code == 1
    assert relation_type(project, "t") == "VIEW"
    assert project.query("select n from t") == [(1,)]


def test_failed_view_build_keeps_old_view(make_project):
    project = make_project({"models/v.sql": "select 1 as n\n"})
    assert project.cli("run").exit_code == 0
    project.write("models/v.sql", "select n from a_table_that_does_not_exist\n")
    result = project.cli("run")
    assert result.exit_code == 1
    assert "a_table_that_does_not_exist" in result.output
    assert relation_type(project, "v") == "VIEW"
    assert project.query("select n from v") == [(1,)]


def test_failed_table_to_view_switch_keeps_old_table(make_project):
    project = make_project({"models/t.sql": "{{ config(materialized='table') }}\nselect 1 as n\n"})
    assert project.cli("run").exit_code == 0
    project.write("models/t.sql", "select n from a_table_that_does_not_exist\n")
    assert project.cli("run").exit_code == 1
    assert relation_type(project, "t") == "BASE TABLE"
    assert project.query("select n from t") == [(1,)]
    assert_no_leftovers(project)


def test_failed_incremental_run_keeps_old_rows(make_project):
    project = make_project(
        {
            "models/inc.sql": """\
                {{ config(materialized='incremental', unique_key='id') }}
                {% if is_incremental() %}
                select cast('not a number' as integer) as id, 'new' as val
                {% else %}
                select range as id, 'old' as val from range(3)
                {% endif %}
                """,
        }
    )
    assert project.cli("run").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 1
    assert "not a number" in result.output
    assert rows(project, "select id, val from inc") == [(0, "old"), (1, "old"), (2, "old")]
    assert relation_type(project, "inc") == "BASE TABLE"
    assert_no_leftovers(project)
    # a later successful run works normally
    assert project.cli("run", "--full-refresh").exit_code == 0
    assert project.scalar("select count(*) from inc") == 3


def test_readers_never_see_the_table_missing(make_project):
    project = make_project(
        {"models/t.sql": "{{ config(materialized='table') }}\nselect range as n from range(1000)\n"}
    )
    errors: list[Exception] = []
    counts: list[int] = []
    stop = threading.Event()
    session = commands.open_session(project.root)
    try:
        outcome = commands.run(session, ["t"])
        assert not outcome.failed
        reader = session.adapter._database.cursor()

        def read() -> None:
            try:
                while not stop.is_set():
                    counts.append(reader.execute("select count(*) from t").fetchone()[0])
            except Exception as exc:  # the assertion below reports it
                errors.append(exc)

        thread = threading.Thread(target=read)
        thread.start()
        try:
            for _ in range(20):
                outcome = commands.run(session, ["t"])
                assert [r.status for r in outcome.results] == ["success"]
        finally:
            stop.set()
            thread.join(timeout=30)
        reader.close()
    finally:
        session.close()
    assert errors == []
    assert counts
    assert set(counts) == {1000}


# --------------------------------------------------------------------------- identifiers and schemas


def test_identifiers_that_need_quoting(make_project):
    project = make_project(
        {
            "models/order.sql": "{{ config(materialized='table') }}\nselect 1 as \"select\", 'x' as \"Group\"\n",
            "models/Mixed Case.sql": "select 2 as n\n",
            "models/aliased.sql": "{{ config(materialized='table', alias='Mixed Alias', schema='Marts') }}\n"
            "select \"select\" from {{ ref('order') }}\n",
            "models/downstream.sql": "select * from {{ ref('aliased') }} cross join {{ ref('Mixed Case') }}\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "order") == "BASE TABLE"
    assert project.query('select "select", "Group" from "order"') == [(1, "x")]
    assert relation_type(project, "Mixed Case") == "VIEW"
    assert project.query('select n from "Mixed Case"') == [(2,)]
    assert relation_type(project, "Mixed Alias", schema="main_Marts") == "BASE TABLE"
    assert project.query('select "select" from "main_Marts"."Mixed Alias"') == [(1,)]
    assert project.query("select * from downstream") == [(1, 2)]
    # a second run replaces them all in place
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.scalar('select count(*) from "main_Marts"."Mixed Alias"') == 1


def test_incremental_merge_with_keyword_names(make_project):
    project = make_project(
        {
            "models/src.sql": values_model([(1, "a")], '"select", "from"'),
            "models/order.sql": "{{ config(materialized='incremental', unique_key='select', schema='Sales') }}\n"
            'select "select", "from" from {{ ref(\'src\') }}\n',
        }
    )
    assert project.cli("run").exit_code == 0
    project.write("models/src.sql", values_model([(1, "A"), (2, "b")], '"select", "from"'))
    for strategy in ("merge", "delete+insert"):
        project.write(
            "models/order.sql",
            "{{ config(materialized='incremental', unique_key='select', schema='Sales', "
            f"incremental_strategy='{strategy}') }}}}\n"
            'select "select", "from" from {{ ref(\'src\') }}\n',
        )
        result = project.cli("run")
        assert result.exit_code == 0, result.output
        assert rows(project, 'select "select", "from" from "main_Sales"."order"') == [(1, "A"), (2, "b")]


def test_custom_schema_is_created(make_project):
    project = make_project(
        {
            "models/m.sql": "{{ config(materialized='table', schema='marts') }}\nselect 1 as n\n",
            "models/v.sql": "{{ config(schema='marts') }}\nselect n from {{ ref('m') }}\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert (
        project.scalar("select count(*) from information_schema.schemata where schema_name = 'main_marts'")
        == 1
    )
    assert relation_type(project, "m", schema="main_marts") == "BASE TABLE"
    assert relation_type(project, "v", schema="main_marts") == "VIEW"
    assert relation_type(project, "m") is None
    assert project.query("select n from main_marts.v") == [(1,)]


def test_custom_schema_from_settings_folder_config(make_project):
    project = make_project(
        {"models/marts/m.sql": "select 1 as n\n"},
        settings="name: proj\nprofile: proj\nmodels:\n  proj:\n    marts:\n      +schema: marts\n      +materialized: table\n",
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "m", schema="main_marts") == "BASE TABLE"


def test_model_config_by_name_in_settings(make_project):
    project = make_project(
        {"models/staging/m.sql": "select 1 as n\n", "models/staging/other.sql": "select 2 as n\n"},
        settings="name: proj\nprofile: proj\nmodels:\n  proj:\n    staging:\n      m:\n        +materialized: table\n",
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "m") == "BASE TABLE"
    assert relation_type(project, "other") == "VIEW"


# --------------------------------------------------------------------------- seeds

SEED_CSV = """\
id,name,signed_up,score
1,alice,2024-01-05,1.5
2,bob,2024-02-10,2.25
3,carol,2024-03-15,3
"""


def column_types(project, table: str) -> dict[str, str]:
    return dict(
        project.query(
            f"select column_name, data_type from information_schema.columns where table_name = '{table}' "
            "order by ordinal_position"
        )
    )


def test_seed_infers_types(make_project):
    project = make_project({"seeds/people.csv": SEED_CSV})
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    assert relation_type(project, "people") == "BASE TABLE"
    types = column_types(project, "people")
    assert types["id"] == "INTEGER"  # as dbt-duckdb: integer while the values fit
    assert types["name"] == "VARCHAR"
    assert types["signed_up"] == "DATE"
    assert types["score"] == "DOUBLE"
    assert project.scalar("select count(*) from people") == 3
    assert project.query("select name from people where signed_up = date '2024-02-10'") == [("bob",)]
    assert run_results(project)["seed.proj.people"]["adapter_response"] == {"rows_affected": 3}


def test_seed_column_types_from_settings(make_project):
    settings = """\
        name: proj
        profile: proj
        seeds:
          proj:
            people:
              +column_types:
                id: varchar
                score: decimal(10, 2)
        """
    project = make_project({"seeds/people.csv": SEED_CSV, "seeds/other.csv": SEED_CSV}, settings=settings)
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    types = column_types(project, "people")
    assert types["id"] == "VARCHAR"
    assert types["score"] == "DECIMAL(10,2)"
    assert types["signed_up"] == "DATE"
    assert column_types(project, "other")["id"] == "INTEGER"
    assert project.query("select id from people where name = 'alice'") == [("1",)]


def test_seed_column_types_from_folder_config(make_project):
    settings = "name: proj\nprofile: proj\nseeds:\n  proj:\n    +column_types: {id: varchar}\n"
    project = make_project({"seeds/people.csv": SEED_CSV}, settings=settings)
    assert project.cli("seed").exit_code == 0
    assert column_types(project, "people")["id"] == "VARCHAR"


def test_seed_column_types_from_properties_yaml(make_project):
    project = make_project(
        {
            "seeds/people.csv": SEED_CSV,
            "seeds/_seeds.yml": """\
                version: 2
                seeds:
                  - name: people
                    config:
                      column_types:
                        id: varchar
                        signed_up: varchar
                """,
        }
    )
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    types = column_types(project, "people")
    assert types["id"] == "VARCHAR"
    assert types["signed_up"] == "VARCHAR"
    assert project.query("select signed_up from people where id = '3'") == [("2024-03-15",)]


def test_reseed_replaces_rows(make_project):
    project = make_project({"seeds/people.csv": SEED_CSV})
    assert project.cli("seed").exit_code == 0
    assert project.cli("seed").exit_code == 0
    assert project.scalar("select count(*) from people") == 3
    project.write("seeds/people.csv", "id,name,signed_up,score\n9,zed,2025-01-01,9\n")
    assert project.cli("seed").exit_code == 0
    assert project.query("select id, name from people") == [(9, "zed")]
    assert_no_leftovers(project)


def test_seed_and_model_in_one_build(make_project):
    project = make_project(
        {
            "seeds/people.csv": SEED_CSV,
            "models/names.sql": "{{ config(materialized='table') }}\nselect upper(name) as n from {{ ref('people') }}\n",
        }
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert rows(project, "select n from names") == [("ALICE",), ("BOB",), ("CAROL",)]
