"""`config(timeout=...)`: a query that runs longer is cancelled and reported, the old relation
stays, and the rest of the run goes on (DuckDB and PostgreSQL)."""

from __future__ import annotations

import json
import time

import pytest
from warehouses import Postgres
from warehouses import postgres as postgres  # a fixture

# Far longer than any timeout below on any machine; {{ var('slow') }} switches it on.
DUCKDB_SLOW = "select count(*) as n from range(100000000) a cross join range(100000) b"
POSTGRES_SLOW = "select count(*) as n from pg_sleep(60) cross join generate_series(1, 10)"


def model(slow: str) -> str:
    return (
        "{{ config(materialized='table', timeout=1) }}\n"
        "{% if var('slow', false) %}" + slow + "{% else %}select 42 as n{% endif %}\n"
    )


def results(project) -> dict[str, dict]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: r for r in data["results"]}


@pytest.mark.parametrize("warehouse", ["duckdb", "postgres"])
def test_a_query_over_its_timeout_is_cancelled_and_the_old_table_kept(make_project, request, warehouse):
    files = {"models/other.sql": "{{ config(materialized='table') }}\nselect 1 as x\n"}
    if warehouse == "duckdb":
        project = make_project({**files, "models/slow.sql": model(DUCKDB_SLOW)})
        rows = lambda: project.query("select n from slow")  # noqa: E731
    else:
        pg: Postgres = request.getfixturevalue("postgres")
        project = make_project({**files, "models/slow.sql": model(POSTGRES_SLOW)}, profiles=pg.profiles())
        rows = lambda: pg.query(f'select n from "{pg.schema}"."slow"')  # noqa: E731
    assert project.cli("run").exit_code == 0
    started = time.monotonic()
    outcome = project.cli("run", "--vars", "{slow: true}")
    elapsed = time.monotonic() - started
    assert outcome.exit_code == 1
    assert elapsed < 30, "the query was not cancelled"  # a hang guard, not a timing claim
    by_name = results(project)
    assert by_name["slow"]["status"] == "error"
    assert "cancelled after 1 s, its timeout" in by_name["slow"]["message"]
    assert by_name["other"]["status"] == "success"
    assert rows() == [(42,)]


def test_timeout_must_be_a_positive_number(make_project):
    project = make_project({"models/m.sql": "{{ config(timeout='soon') }}\nselect 1 as x\n"})
    outcome = project.cli("run")
    assert outcome.exit_code == 2
    assert (
        "timeout must be a number of seconds greater than 0" in outcome.output
        and "models/m.sql" in outcome.output
    )
