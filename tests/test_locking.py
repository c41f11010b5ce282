"""One run at a time per target, between real processes: DuckDB and SQLite (file lock), PostgreSQL
(advisory lock). A second run waits up to --lock-timeout, then exits 2 naming the holder; two runs
never interleave; a lock left by a killed process is taken over."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from warehouses import Postgres, require_postgres, sqlite_profiles
from warehouses import postgres as postgres  # a fixture

from sqlflow.adapters.postgres import LOCK_NAMESPACE, _schema_key

# warehouse -> the name of its target in profiles_for()
WAREHOUSES = {"duckdb": "dev", "sqlite": "lite", "postgres": "pg"}
# A process holding the target's lock through sqlflow's API until its stdin closes.
HOLDER = textwrap.dedent(
    """
    import sys
    from sqlflow import commands

    session = commands.open_session(sys.argv[1])
    session.lock_target()
    print("locked", flush=True)
    sys.stdin.read()
    session.close()
    """
)


def profiles_for(warehouse: str, request, database: Path) -> str:
    if warehouse == "duckdb":
        return (
            f"proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {database}.duckdb\n"
        )
    if warehouse == "sqlite":
        return sqlite_profiles(f"{database}.sqlite")
    require_postgres()
    pg: Postgres = request.getfixturevalue("postgres")
    return pg.profiles()


@pytest.fixture(params=list(WAREHOUSES))
def locked_project(request, make_project, tmp_path):
    """(project, warehouse) with a few models; its target is shared by any copy made with `copy`."""
    warehouse = request.param

    def make(name: str = "proj", models: dict[str, str] | None = None):
        files = models or {
            "models/a.sql": "{{ config(materialized='table') }} select 1 as x",
            "models/b.sql": "{{ config(materialized='table') }} select x + 1 as x from {{ ref('a') }}",
        }
        return make_project(files, profiles=profiles, name=name)

    profiles = profiles_for(warehouse, request, tmp_path / "shared")
    return make, warehouse


class Holder:
    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(root)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.process.stdout.readline()
        assert line.strip() == "locked", self.process.stderr.read()

    @property
    def pid(self) -> int:
        return self.process.pid

    def release(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)


def sqlflow(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sqlflow.cli", *args, "--project-dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    output, _ = process.communicate(timeout=120)
    return process.returncode, output


def test_a_second_run_gives_up_after_the_timeout_naming_the_holder(locked_project):
    make, _ = locked_project
    project = make()
    holder = Holder(project.root)
    try:
        code, output = finish(sqlflow(project.root, "run", "--lock-timeout", "0.5"))
        assert code == 2, output
        assert "is locked by another sqlflow run" in output and "Traceback" not in output
        assert f"pid {holder.pid} on host {socket.gethostname()}, started 20" in output
        assert "after waiting 0.5s" in output
        # A run that waits long enough goes ahead once the holder is done.
        waiting = sqlflow(project.root, "run", "--lock-timeout", "60")
    finally:
        holder.release()
    code, output = finish(waiting)
    assert code == 0, output


def _span(root: Path) -> tuple[datetime, datetime]:
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    moments = [
        datetime.fromisoformat(t[key].replace("Z", "+00:00"))
        for r in results
        for t in r["timing"]
        if t["name"] == "execute"
        for key in ("started_at", "completed_at")
    ]
    assert len(results) == 3
    return min(moments), max(moments)


def test_two_runs_on_one_target_never_interleave(locked_project):
    make, warehouse = locked_project
    # pg_sleep makes the runs long enough to overlap if nothing kept them apart.
    pause = "(select pg_sleep(0.3)) as pause, " if warehouse == "postgres" else ""
    models = {
        "models/a.sql": "{{ config(materialized='table') }} select 1 as x from "
        + pause
        + "(select 1) as one",
        "models/b.sql": "{{ config(materialized='table') }} select x + 1 as x from "
        + pause
        + "{{ ref('a') }}",
        "models/c.sql": "{{ config(materialized='table') }} select x + 1 as x from "
        + pause
        + "{{ ref('b') }}",
    }
    first, second = make("first", models), make("second", models)  # two checkouts, one target
    runs = [sqlflow(p.root, "run", "--lock-timeout", "120") for p in (first, second)]
    for run in runs:
        code, output = finish(run)
        assert code == 0, output
    spans = sorted([_span(first.root), _span(second.root)])
    assert spans[0][1] <= spans[1][0], f"the runs interleaved: {spans}"


def test_a_lock_left_by_a_killed_run_is_taken_over(locked_project):
    make, warehouse = locked_project
    project = make()
    holder = Holder(project.root)
    holder.kill()
    code, output = finish(sqlflow(project.root, "run"))
    assert code == 0, output
    if warehouse != "postgres":  # PostgreSQL ends a dead client's session, and its lock, by itself
        target = WAREHOUSES[warehouse]
        assert f"took over a stale lock on target '{target}' left by pid {holder.pid}" in output


def test_a_postgres_lock_whose_process_is_gone_is_taken_over(make_project, postgres: Postgres):
    """A session still holding the advisory lock for a sqlflow process that no longer exists
    (a lost client the server has not noticed yet) is terminated and the lock taken over."""
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=postgres.profiles())
    gone = subprocess.Popen(["true"])
    gone.wait()
    engine = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    connection = engine.connect()
    try:
        name = f"sqlflow pid={gone.pid} host={socket.gethostname()}"
        connection.exec_driver_sql(f"set application_name = '{name}'")
        connection.exec_driver_sql(
            f"select pg_advisory_lock({LOCK_NAMESPACE}, {_schema_key(postgres.schema)})"
        )
        code, output = finish(sqlflow(project.root, "run"))
        assert code == 0, output
        assert f"took over a stale lock on target 'pg' left by pid {gone.pid}" in output
        with pytest.raises(sa.exc.DBAPIError):  # its session was terminated
            connection.exec_driver_sql("select 1")
    finally:
        connection.invalidate()
        engine.dispose()


def test_a_lock_held_by_another_program_is_reported(make_project, postgres: Postgres):
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=postgres.profiles())
    engine = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.exec_driver_sql("set application_name = 'psql'")
        connection.exec_driver_sql(
            f"select pg_advisory_lock({LOCK_NAMESPACE}, {_schema_key(postgres.schema)})"
        )
        code, output = finish(sqlflow(project.root, "build", "--lock-timeout", "0"))
        assert code == 2, output
        assert "an unknown process on host" in output and "backend pid" in output
    engine.dispose()
