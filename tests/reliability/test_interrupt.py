"""Ctrl-C (SIGINT) in the middle of a run, on DuckDB and PostgreSQL.

The running query is cancelled (DuckDB interrupt, PostgreSQL cancel), no model starts after the
signal, run_results.json records what finished, the interrupted table keeps its old rows, and
the process exits 130 within 2 s of the signal.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import time

import pytest
from test_kill import sqlflow
from warehouses import Postgres
from warehouses import postgres as postgres  # a fixture

# How long the interrupted process may take to exit, from the signal (the bound).
EXIT_BOUND_SECONDS = 2.0

# `slow` runs for minutes with the slow vars, instantly with the fast ones; `first` is quick,
# `after` waits for `slow`, and the `queued_*` models wait for `first`, on a single thread.
SLOW_QUERY = {
    "duckdb": (
        "select count(*) as c, {{ var('version') }} as version "
        "from range({{ var('n') }}) a cross join range(100000) b"
    ),
    "postgres": (
        "select count(*) as c, {{ var('version') }} as version "
        "from generate_series(1, 10) as g(i) cross join (select pg_sleep({{ var('sleep') }})) as s"
    ),
}
FAST = {"version": 1, "n": 10, "sleep": 0}
SLOW = {"version": 2, "n": 1_000_000_000, "sleep": 600}


def files(warehouse: str) -> dict[str, str]:
    table = "{{ config(materialized='table') }}\n"
    models = {
        "models/first.sql": table + "select 1 as n\n",
        "models/slow.sql": table + "-- {{ ref('first') }}\n" + SLOW_QUERY[warehouse] + "\n",
        "models/after.sql": table + "select c from {{ ref('slow') }}\n",
    }
    models.update({f"models/queued_{i}.sql": table + "select n from {{ ref('first') }}\n" for i in range(3)})
    return models


@pytest.fixture(params=["duckdb", "postgres"])
def interruptible(request, make_project):
    """(project, a function that reads one relation's contents, the warehouse's running queries)."""
    if request.param == "duckdb":
        project = make_project(files("duckdb"))
        return project, lambda name: project.query(f"select c, version from {name}"), lambda: 0
    pg: Postgres = request.getfixturevalue("postgres")
    project = make_project(files("postgres"), profiles=pg.profiles(threads=1))

    def running() -> int:
        return pg.scalar(
            "select count(*) from pg_stat_activity where state = 'active' and query ilike %s",
            "%pg_sleep%",
        )

    return project, lambda name: pg.query(f'select c, version from "{pg.schema}".{name}'), running


def run_argv(project, variables: dict) -> list[str]:
    return [*sqlflow(project, "run", variables), "--threads", "1"]


def interrupt_slow(project, signals: int = 1) -> tuple[int, float, list[dict], str, datetime.datetime]:
    """Run with the slow vars, send `signals` SIGINTs once `slow` runs: (exit code, seconds from
    the first signal to the exit, the JSON events, stderr, when the first signal was sent)."""
    process = subprocess.Popen(
        run_argv(project, SLOW),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    events: list[dict] = []
    try:
        deadline = time.monotonic() + 60
        for line in process.stdout:  # type: ignore[union-attr]
            events.append(json.loads(line))
            if events[-1]["event"] == "node_started" and events[-1]["data"]["name"] == "slow":
                break
            assert time.monotonic() < deadline, "slow never started"
        else:
            pytest.fail(f"the run ended before slow started: {events}")
        time.sleep(1.0)  # well inside the slow query
        assert process.poll() is None
        signalled_at = datetime.datetime.now(datetime.timezone.utc)
        sent = time.monotonic()
        for _ in range(signals):
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
        code = process.wait(timeout=60)
        elapsed = time.monotonic() - sent
        rest, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, elapsed, events + [json.loads(line) for line in rest.splitlines()], stderr, signalled_at


def test_ctrl_c_cancels_the_running_query_and_exits_130_within_2_s(interruptible):
    project, contents, running_queries = interruptible
    first = subprocess.run(run_argv(project, FAST), capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    before = contents("slow")

    code, elapsed, events, stderr, signalled_at = interrupt_slow(project)

    assert code == 130, stderr
    assert elapsed < EXIT_BOUND_SECONDS, f"exited {elapsed:.2f} s after the signal"
    assert "Traceback" not in stderr
    # No model started after the signal.
    started_after = [
        e["data"]["name"]
        for e in events
        if e["event"] == "node_started" and datetime.datetime.fromisoformat(e["ts"]) >= signalled_at
    ]
    assert started_after == []
    assert events[-1]["event"] == "run_finished" and events[-1]["msg"] == "Interrupted."

    # run_results.json records what finished, what was cancelled and what never ran.
    results = json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    status = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    message = {r["unique_id"].split(".")[-1]: r["message"] for r in results}
    succeeded = {
        e["data"]["name"]
        for e in events
        if e["event"] == "node_finished" and e["data"]["status"] == "success"
    }
    assert status["first"] == "success" and status["slow"] == "error"
    assert "cancelled" in message["slow"]
    assert status["after"] == "skipped"
    for name in ("queued_0", "queued_1", "queued_2"):
        # Each queued model either ran to the end before `slow` started, or never started.
        assert (status.get(name), name in succeeded) in (("success", True), ("skipped", False), (None, False))

    # The query was cancelled in the warehouse, and the interrupted table kept its old rows.
    assert running_queries() == 0
    assert contents("slow") == before
    # The next run builds everything.
    again = subprocess.run(run_argv(project, FAST), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_second_ctrl_c_forces_the_exit(make_project):
    project = make_project(files("duckdb"))
    code, elapsed, _, stderr, _ = interrupt_slow(project, signals=2)
    assert code == 130 and elapsed < EXIT_BOUND_SECONDS, (code, elapsed, stderr)
    assert "Traceback" not in stderr
    assert not any(
        "__sqlflow" in name for (name,) in project.query("select table_name from information_schema.tables")
    )
