"""Faults on a real PostgreSQL: kill -9 of sqlflow mid-build, the backend terminated mid-run
(pg_terminate_backend), and repeated runs that must not leak connections or state rows."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from test_kill import kill_while_building
from test_kill import sqlflow as argv
from warehouses import Postgres
from warehouses import postgres as postgres  # a fixture

from sqlflow import commands

# pg_sleep makes the build slow on purpose when {{ var('slow') }} is set.
QUERY = (
    "select i as id, {{ var('version') }} as version from generate_series(1, 100) as g(i)"
    "{% if var('slow', false) %} cross join (select pg_sleep(60)) as s{% endif %}"
)
CASES = {
    "table": ("models/subject.sql", "{{ config(materialized='table') }}\n" + QUERY + "\n", ""),
    "incremental merge": (
        "models/subject.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\n" + QUERY + "\n",
        "",
    ),
    "snapshot": (
        "snapshots/subject.sql",
        "{% snapshot subject %}\n{{ config(unique_key='id', strategy='check', check_cols='all', "
        "target_schema=target.schema ~ '_snapshots') }}\n" + QUERY + "\n{% endsnapshot %}\n",
        "_snapshots",
    ),
}


def checksum(pg: Postgres, relation: str) -> tuple:
    return pg.query(f"select count(*), sum(id * 1000 + version), min(version), max(version) from {relation}")[
        0
    ]


def state(pg: Postgres) -> list[tuple]:
    return pg.query(
        "select relation_name, fingerprint from sqlflow_state.nodes where relation_name like %s order by 1",
        f'"{pg.schema}%',
    )


def leftovers(pg: Postgres) -> list[tuple]:
    return pg.query(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema like %s and table_name like '%%sqlflow%%'",
        pg.schema + "%",
    )


@pytest.mark.parametrize("case", list(CASES))
def test_kill_9_mid_build_keeps_the_old_relation(make_project, postgres: Postgres, case):
    path, text, schema_suffix = CASES[case]
    project = make_project({path: text}, profiles=postgres.profiles())
    relation = f'"{postgres.schema}{schema_suffix}"."subject"'
    command = "snapshot" if case == "snapshot" else "run"
    first = subprocess.run(argv(project, command, {"version": 1}), capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stdout + first.stderr
    before, state_before = checksum(postgres, relation), state(postgres)

    kill_while_building(argv(project, command, {"version": 2, "slow": True}), "subject")

    # The server ends the dead client's session and rolls its transaction back.
    deadline = time.monotonic() + 20
    while postgres.scalar(
        "select count(*) from pg_stat_activity where query ilike '%%pg_sleep(60)%%' and pid <> pg_backend_pid()"
    ):
        assert time.monotonic() < deadline, "the killed run's query is still running"
        time.sleep(0.2)
    assert checksum(postgres, relation) == before
    assert state(postgres) == state_before
    assert leftovers(postgres) == []
    after = subprocess.run(argv(project, command, {"version": 3}), capture_output=True, text=True, timeout=60)
    assert after.returncode == 0, after.stdout + after.stderr
    assert checksum(postgres, relation)[2:] == ((1, 3) if case == "snapshot" else (3, 3))


SLOW_MIDDLE = (
    "{{ config(materialized='table') }}\nselect 1 as id from (select pg_sleep({{ var('sleep', 0) }})) as s\n"
)


def test_a_terminated_backend_fails_the_model_and_retry_finishes(make_project, postgres: Postgres):
    project = make_project(
        {
            "models/a_first.sql": "{{ config(materialized='table') }}\nselect 1 as id\n",
            "models/b_slow.sql": SLOW_MIDDLE,
            "models/c_after.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('b_slow') }}\n",
            "models/d_other.sql": "{{ config(materialized='table') }}\nselect 2 as id\n",
        },
        profiles=postgres.profiles(),
    )

    def terminate_the_sleeper() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pids = postgres.query(
                "select pid from pg_stat_activity where query ilike '%%pg_sleep(30)%%' "
                "and state = 'active' and pid <> pg_backend_pid()"
            )
            if pids:
                postgres.query("select pg_terminate_backend(%s)", pids[0][0])
                return
            time.sleep(0.1)

    killer = threading.Thread(target=terminate_the_sleeper)
    killer.start()
    outcome = project.cli("run", "--vars", "{sleep: 30}", "--threads", "1")
    killer.join()
    assert outcome.exit_code == 1
    results = {
        r["unique_id"].split(".")[-1]: r
        for r in json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    }
    assert results["b_slow"]["status"] == "error"
    assert (
        "terminat" in results["b_slow"]["message"].lower()
        or "connection" in results["b_slow"]["message"].lower()
    )
    assert results["c_after"]["status"] == "skipped"
    assert results["a_first"]["status"] == results["d_other"]["status"] == "success"
    # The connection is gone, not the run: retry finishes the job (without the sleep this time,
    # since retry repeats the vars).
    project.write("models/b_slow.sql", "{{ config(materialized='table') }}\nselect 1 as id\n")
    outcome = project.cli("retry")
    assert outcome.exit_code == 0, outcome.output
    built = {
        r["unique_id"].split(".")[-1]
        for r in json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    }
    assert built == {"b_slow", "c_after"}
    assert postgres.scalar(f'select count(*) from "{postgres.schema}"."c_after"') == 1


def test_repeated_runs_leak_no_connections_and_keep_one_state_row_per_model(make_project, postgres: Postgres):
    files = {
        f"models/m{i}.sql": "{{ config(materialized='table') }}\n" + f"select {i} as id\n" for i in range(10)
    }
    files.update({f"models/v{i}.sql": f"select * from {{{{ ref('m{i}') }}}}\n" for i in range(10)})
    project = make_project(files, profiles=postgres.profiles(threads=16))

    def sqlflow_connections() -> int:
        return postgres.scalar(
            "select count(*) from pg_stat_activity where application_name like 'sqlflow%%'"
        )

    baseline = sqlflow_connections()  # other tests' runs may be connected right now
    for _ in range(20):
        with commands.open_session(project.root) as session:
            assert not commands.run(session).failed
    # Each session closed its connections when it ended (a backend takes a moment to exit).
    deadline = time.monotonic() + 10
    while sqlflow_connections() > baseline:
        assert time.monotonic() < deadline, "sqlflow's connections are still open"
        time.sleep(0.1)
    rows = postgres.query(
        "select relation_name, count(*) from sqlflow_state.nodes where relation_name like %s group by 1",
        f'"{postgres.schema}"%',
    )
    assert len(rows) == 20 and {n for _, n in rows} == {1}
