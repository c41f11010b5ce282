"""Load: a 5,000-model project built with --threads 16 on DuckDB and on PostgreSQL.

The run completes, sqlflow's process stays under 1 GB of memory (its peak resident set, DuckDB
included, as the kernel reports it for the finished process) and the state table holds one row
per model. On PostgreSQL a second run, over the 5,000 relations (where a table read by
thousands of views is refilled in place), leaves no connection open and no extra state row.
Twenty successive runs of a smaller project are tested in test_postgres_faults.py; twenty of
this one are measured by benchmarks/bench_load.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from warehouses import Postgres
from warehouses import postgres as postgres  # a fixture

MODELS = 5_000
BASES = 50  # models that read no other model
MEMORY_LIMIT_MB = 1024


def load_project_files() -> dict[str, str]:
    """5,000 small models in 50 folders: views, and one table in five; each reads one or two
    earlier models, so the DAG is wide and a few hundred levels deep."""
    files = {}
    for i in range(MODELS):
        table = i % 5 == 0
        head = "{{ config(materialized='table') }}\n" if table else ""
        if i < BASES:
            body = f"select g.i as id, {i} as origin from generate_series(1, 10) as g(i)\n"
        else:
            first, second = (i * 7919) % i, (i * 104729) % i
            body = (
                f"select a.id, a.origin + b.origin as origin from {{{{ ref('m{first}') }}}} as a "
                f"join {{{{ ref('m{second}') }}}} as b on a.id = b.id\n"
            )
        files[f"models/f{i % 50}/m{i}.sql"] = head + body
    return files


def problems(output: str) -> str:
    return "\n".join(line for line in output.splitlines() if "SKIP" not in line and " OK " not in line)


def run_measured(project, timeout: float = 600) -> tuple[int, float, float, str]:
    """`sqlflow run --threads 16` as its own process: (exit code, seconds, peak resident MB, output)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlflow.cli", "run", "--threads", "16", "--project-dir", str(project.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = process.stdout.read()  # type: ignore[union-attr]
    deadline = started + timeout
    while True:
        # wait4 reports the finished process's own peak resident set (ru_maxrss, in KB on Linux).
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        assert time.monotonic() < deadline, "the run did not finish"
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.monotonic() - started, usage.ru_maxrss / 1024, output


def test_5000_models_with_16_threads_on_duckdb(make_project):
    project = make_project(load_project_files())
    code, _, peak_mb, output = run_measured(project)
    assert code == 0, problems(output)
    assert f"OK={MODELS}" in output.replace(",", "")
    assert peak_mb < MEMORY_LIMIT_MB, f"peak {peak_mb:.0f} MB"
    assert project.scalar("select count(*) from information_schema.tables where table_schema = 'main'") == (
        MODELS
    )
    assert project.scalar("select count(*) from sqlflow_state.nodes") == MODELS
    assert (
        project.scalar("select count(*) from information_schema.tables where table_name like '%sqlflow%'")
        == 0
    )


def test_5000_models_with_16_threads_on_postgres(make_project, postgres: Postgres):
    project = make_project(load_project_files(), profiles=postgres.profiles(threads=16))

    def sqlflow_connections() -> int:
        return postgres.scalar(
            "select count(*) from pg_stat_activity where application_name like 'sqlflow%%'"
        )

    baseline = sqlflow_connections()  # other tests' runs may be connected right now
    for _ in range(2):
        code, _, peak_mb, output = run_measured(project)
        assert code == 0, problems(output)
        assert peak_mb < MEMORY_LIMIT_MB, f"peak {peak_mb:.0f} MB"
        state_rows = postgres.scalar(
            "select count(*) from sqlflow_state.nodes where relation_name like %s", f'"{postgres.schema}"%'
        )
        assert state_rows == MODELS
    assert len(postgres.relations()) == MODELS
    deadline = time.monotonic() + 10
    while sqlflow_connections() > baseline:
        assert time.monotonic() < deadline, "sqlflow's connections are still open"
        time.sleep(0.1)
