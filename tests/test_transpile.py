"""Dialect transpilation: models in the project's dialect (default DuckDB), generated for the
warehouse's, with what the warehouse cannot take reported at compile time (exit 2, model, line,
construct) before anything is built; `config(transpile=false)` sends a model as written."""

from __future__ import annotations

import sqlite3

from warehouses import Postgres, sqlite_profiles
from warehouses import postgres as postgres  # a fixture

from sqlflow.project import load_project


def lite(make_project, files, settings="name: proj\nprofile: proj\n"):
    return make_project(files, profiles=sqlite_profiles(), settings=settings)


def read(project, sql: str) -> list[tuple]:
    connection = sqlite3.connect(project.root / "warehouse.sqlite")
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def test_models_are_duckdb_sql_unless_the_project_says_otherwise(make_project):
    project = lite(make_project, {})
    assert load_project(project.root).dialect == "duckdb"
    declared = lite(make_project, {}, settings="name: proj\nprofile: proj\ndialect: postgres\n")
    assert load_project(declared.root).dialect == "postgres"


def test_a_dbt_project_is_written_in_its_warehouse_dialect(make_project):
    project = make_project({}, profiles=sqlite_profiles(), settings="name: proj\nprofile: proj\n")
    (project.root / "sqlflow.yml").rename(project.root / "dbt_project.yml")
    assert load_project(project.root).dialect == "sqlite"


def test_duckdb_sql_runs_on_sqlite_transpiled(make_project):
    project = lite(
        make_project,
        {
            "models/m.sql": (
                "select strftime(cast('2024-03-05' as date), '%Y') as year, "
                "'7'::int + 1 as eight, 5 // 2 as half"
            )
        },
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    compiled = (project.root / "target/compiled/proj/models/m.sql").read_text()
    assert "STRFTIME('%Y', " in compiled and "CAST('7' AS INTEGER)" in compiled
    assert read(project, 'select year, eight, half from "m"') == [("2024", 8, 2)]


def test_transpile_false_sends_the_model_as_written(make_project):
    # SQLite's strftime takes the format first; read as DuckDB's (date first), it would be swapped.
    sql = "{{ config(transpile=false) }} select strftime('%Y', '2024-03-05') as year"
    project = lite(make_project, {"models/m.sql": sql})
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert read(project, 'select year from "m"') == [("2024",)]
    compiled = (project.root / "target/compiled/proj/models/m.sql").read_text()
    assert "strftime('%Y', '2024-03-05')" in compiled


def test_transpile_false_accepts_sql_sqlglot_cannot_parse(make_project):
    sql = "{{ config(transpile=false) }} select 1 as x where 1 not glob '[a'"
    project = lite(make_project, {"models/m.sql": sql})
    result = project.cli("run")
    assert result.exit_code == 0, result.output


def test_a_function_the_warehouse_lacks_is_a_compile_error(make_project):
    project = lite(
        make_project,
        {
            "models/fine.sql": "{{ config(materialized='table') }} select 1 as x",
            "models/uses_duckdb.sql": "select x,\n  x + 1 as y,\n  bit_count(x) as bits\nfrom {{ ref('fine') }}",
        },
    )
    result = project.cli("run")
    assert result.exit_code == 2, result.output
    assert "models/uses_duckdb.sql:3" in result.output
    assert "BIT_COUNT() is not a function of the sqlite warehouse" in result.output
    assert "transpile=false" in result.output and "Traceback" not in result.output
    # compiled first, so nothing was built
    assert (
        not (project.root / "warehouse.sqlite").exists()
        or read(project, "select name from sqlite_master") == []
    )


def test_sql_the_warehouse_cannot_parse_is_a_compile_error(make_project):
    project = lite(make_project, {"models/later.sql": "select current_date + interval 1 day as tomorrow"})
    result = project.cli("compile")
    assert result.exit_code == 2
    assert "models/later.sql" in result.output and "is not valid sqlite SQL" in result.output


def test_a_construct_sqlglot_cannot_transpile_is_a_compile_error(make_project, postgres: Postgres):
    project = make_project(
        {
            "models/wide.sql": (
                "select *\nfrom (select 'x' as k, 1 as v)\npivot (sum(v) for k in ('x', 'y'))\n"
            )
        },
        profiles=postgres.profiles(),
    )
    result = project.cli("compile", "-s", "wide")
    assert result.exit_code == 2
    assert "models/wide.sql:3" in result.output
    assert "cannot transpile from duckdb to postgres: PIVOT unsupported" in result.output
    assert "PIVOT(" in result.output  # the construct, as written


def test_compile_on_postgres_shows_the_transpiled_sql(make_project, postgres: Postgres):
    project = make_project(
        {"models/m.sql": "select list_value(1, 2) as l, '7'::int as n, epoch_ms(1700000000000) as t"},
        profiles=postgres.profiles(),
    )
    result = project.cli("compile", "-s", "m")
    assert result.exit_code == 0, result.output
    assert "ARRAY[1, 2] AS l" in result.output and "CAST('7' AS INT) AS n" in result.output
    assert "TO_TIMESTAMP(" in result.output
    assert project.cli("run").exit_code == 0


def test_a_postgres_project_on_duckdb(make_project):
    settings = "name: proj\nprofile: proj\ndialect: postgres\n"
    project = make_project(
        {
            "models/m.sql": "select '7'::int + 1 as eight, string_agg(x, ',') as xs from (select 'a' as x) as t"
        },
        settings=settings,
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query('select eight, xs from "m"') == [(8, "a")]
    # A function DuckDB lacks is found before the database file is even created.
    project.write("models/m.sql", "select pg_backend_pid() as pid")
    project.db_path.unlink()
    result = project.cli("run")
    assert (
        result.exit_code == 2
        and "PG_BACKEND_PID() is not a function of the duckdb warehouse" in result.output
    )
    assert not project.db_path.exists()
