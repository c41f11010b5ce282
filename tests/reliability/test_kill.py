"""`kill -9` in the middle of a table build, an incremental merge and a snapshot, on DuckDB.

Each relation must afterwards hold its old rows exactly (checksum), the state table must still
describe the last good build, no temporary relation may be left, and the next run must succeed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

# n rows, of which those with hash(i) % m = 0 are kept: large n makes the query slow on purpose.
QUERY = (
    "select i as id, {{ var('version') }} as version from range({{ var('n') }}) t(i) "
    "where hash(i) % {{ var('m') }} = 0"
)
FAST = {"version": 1, "n": 100, "m": 1}
SLOW = {"version": 2, "n": 20_000_000_000, "m": 1_000_000_000}
CASES = {
    "table": ("models/subject.sql", "{{ config(materialized='table') }}\n" + QUERY + "\n", "main.subject"),
    "incremental merge": (
        "models/subject.sql",
        "{{ config(materialized='incremental', unique_key='id') }}\n" + QUERY + "\n",
        "main.subject",
    ),
    "snapshot": (
        "snapshots/subject.sql",
        "{% snapshot subject %}\n{{ config(unique_key='id', strategy='check', check_cols='all', "
        "target_schema='snapshots') }}\n" + QUERY + "\n{% endsnapshot %}\n",
        "snapshots.subject",
    ),
}


def sqlflow(project, command: str, variables: dict) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sqlflow.cli",
        command,
        "--vars",
        json.dumps(variables),
        "--log-format",
        "json",
        "--project-dir",
        str(project.root),
    ]


def checksum(project, relation: str) -> tuple:
    return project.query(
        f"select count(*), sum(hash(id, version)), min(version), max(version) from {relation}"
    )[0]


def state_rows(project) -> list[tuple]:
    return project.query("select relation_name, fingerprint from sqlflow_state.nodes order by 1")


def leftovers(project) -> list[tuple]:
    return project.query(
        "select table_schema, table_name from information_schema.tables where table_name like '%sqlflow%'"
    )


def kill_while_building(argv: list[str], name: str) -> None:
    """Start the command, wait until it starts building `name`, let the query run, then SIGKILL."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        for line in process.stdout:  # type: ignore[union-attr]
            if '"node_started"' in line and f'"name": "{name}"' in line:
                break
            assert time.monotonic() < deadline, "the node never started"
        else:
            pytest.fail(f"the command ended before building {name}: exit {process.wait()}")
        time.sleep(1.0)  # inside the slow statement, inside its transaction
        assert process.poll() is None, "the slow query finished before the kill"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


@pytest.mark.parametrize("case", list(CASES))
def test_kill_9_mid_build_keeps_the_old_relation(make_project, case):
    path, text, relation = CASES[case]
    project = make_project({path: text})
    command = "snapshot" if case == "snapshot" else "run"
    first = subprocess.run(sqlflow(project, command, FAST), capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stdout + first.stderr
    before, state_before = checksum(project, relation), state_rows(project)

    kill_while_building(sqlflow(project, command, SLOW), "subject")

    assert checksum(project, relation) == before
    assert state_rows(project) == state_before
    assert leftovers(project) == []
    after = subprocess.run(sqlflow(project, command, {**FAST, "version": 3}), capture_output=True, text=True)
    assert after.returncode == 0, after.stdout + after.stderr
    assert checksum(project, relation)[2:] == ((1, 3) if case == "snapshot" else (3, 3))
    assert leftovers(project) == []
