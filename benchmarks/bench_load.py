#!/usr/bin/env python3
"""Load: successive `sqlflow run --threads 16` of a 5,000-model project on DuckDB and PostgreSQL.

Each run is its own process, measured for wall time and peak resident memory (DuckDB included,
as it runs inside sqlflow's process). After each PostgreSQL run the script counts sqlflow's
connections left in pg_stat_activity, and after each run on either warehouse the rows of the
state table for the project: both must stay flat (issue 7's load requirements).

    python benchmarks/bench_load.py                     # 5,000 models, 20 runs on each warehouse
    python benchmarks/bench_load.py --runs 3 --models 1000 --warehouse duckdb
    python benchmarks/bench_load.py --out docs/benchmarks.md

The project comes from shared/bench/gen_project.py (100 rows per base model); for PostgreSQL its
`range(R)` is replaced by `generate_series(0, R - 1)` (bench_postgres.py). The server is
SQLFLOW_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import duckdb
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core
import bench_postgres

SECTION_START, SECTION_END = "<!-- bench_load:start -->", "<!-- bench_load:end -->"
SCHEMA = "sqlflow_bench_load"


def duckdb_state_rows(project: Path) -> int:
    connection = duckdb.connect(str(project / "bench.duckdb"), read_only=True)
    try:
        return connection.execute("select count(*) from sqlflow_state.nodes").fetchone()[0]
    finally:
        connection.close()


def run_series(label: str, project: Path, runs: int, workdir: Path, after_run) -> dict:
    """`runs` successive runs; after_run() -> (state rows, connections left) after each."""
    command = [*bench_core.sqlflow_command(), "run", "--threads", "16", "--project-dir", str(project)]
    seconds, peaks, states, connections = [], [], [], []
    for i in range(runs):
        status, wall, peak = bench_core.measure(
            command, project, workdir / "logs" / f"load-{label}-{i}.log", bench_core.sqlflow_env(workdir)
        )
        if status != "ok":
            raise SystemExit(f"{label} run {i + 1}: {status}")
        state_rows, left = after_run()
        seconds.append(wall)
        peaks.append(peak)
        states.append(state_rows)
        connections.append(left)
        print(f"  {label} run {i + 1}: {wall:.2f}s {peak:.0f} MB state rows {state_rows} connections {left}")
    return {
        "warehouse": label,
        "runs": runs,
        "first": seconds[0],
        "median_again": statistics.median(seconds[1:]) if runs > 1 else None,
        "peak_mb": max(peaks),
        "state_rows": sorted(set(states)),
        # Only PostgreSQL has connections to count (DuckDB runs inside the process).
        "connections": max(c for c in connections if c is not None)
        if any(c is not None for c in connections)
        else None,
    }


def bench_duckdb(workdir: Path, models: int, runs: int) -> dict:
    project = bench_core.generate_project(workdir, models, 100)
    bench_core.reset(project, target=True)
    return run_series("duckdb", project, runs, workdir, lambda: (duckdb_state_rows(project), None))


def bench_postgres_load(workdir: Path, models: int, runs: int, url: sa.URL) -> dict:
    project = bench_postgres.generate(workdir / "pg", models, 100)
    folder = bench_postgres.profiles(workdir / "pg-profiles", url, SCHEMA, 16, "postgres")
    shutil.copy(folder / "profiles.yml", project / "profiles.yml")
    bench_core.reset(project, target=True)
    bench_postgres.drop_schema(url, SCHEMA)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")

    def after_run() -> tuple[int, int]:
        with engine.connect() as connection:
            state = connection.exec_driver_sql(
                "select count(*) from sqlflow_state.nodes where relation_name like %s", (f'"{SCHEMA}"%',)
            ).scalar()
            # A backend takes a moment to exit after its client closed the connection.
            deadline = time.monotonic() + 10
            while True:
                left = connection.exec_driver_sql(
                    "select count(*) from pg_stat_activity where application_name like 'sqlflow%%'"
                ).scalar()
                if left == 0 or time.monotonic() > deadline:
                    return state, left
                time.sleep(0.1)

    try:
        return run_series("postgres", project, runs, workdir, after_run)
    finally:
        engine.dispose()
        bench_postgres.drop_schema(url, SCHEMA)


def markdown(results: list[dict], models: int, command: str) -> str:
    lines = [
        SECTION_START,
        "## Load: successive runs of 5,000 models with 16 threads (bench_load.py)",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; python "
        f"{platform.python_version()}; sqlflow {bench_core.package_version('sqlflow')}; duckdb "
        f"{bench_core.package_version('duckdb')}",
        "",
        "| warehouse | models | runs | first run s | later runs s (median) | peak MB (any run) "
        "| state rows after each run | sqlflow connections left (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        again = "-" if r["median_again"] is None else f"{r['median_again']:.2f}"
        lines.append(
            f"| {r['warehouse']} | {models} | {r['runs']} | {r['first']:.2f} | {again} | {r['peak_mb']:.0f} "
            f"| {', '.join(map(str, r['state_rows']))} | {'-' if r['connections'] is None else r['connections']} |"
        )
    return "\n".join([*lines, SECTION_END, ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warehouse", choices=["duckdb", "postgres", "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=bench_core.REPO / "benchmarks" / ".work")
    parser.add_argument("--out", type=Path, help="write the results into this markdown file")
    args = parser.parse_args(argv)
    if bench_core.sqlflow_command() is None:
        raise SystemExit("sqlflow is not installed")
    results = []
    if args.warehouse in ("duckdb", "both"):
        results.append(bench_duckdb(args.workdir, args.models, args.runs))
    if args.warehouse in ("postgres", "both"):
        results.append(
            bench_postgres_load(
                args.workdir,
                args.models,
                args.runs,
                sa.make_url(os.environ.get("SQLFLOW_TEST_POSTGRES_URL", bench_postgres.DEFAULT_URL)),
            )
        )
    command = "python benchmarks/bench_load.py" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--models", args.models, 5000),
            ("--runs", args.runs, 20),
            ("--warehouse", args.warehouse, "both"),
            ("--workdir", args.workdir, bench_core.REPO / "benchmarks" / ".work"),
        )
        if value != default
    )
    section = markdown(results, args.models, command + (f" --out {args.out}" if args.out else ""))
    print(section)
    if args.out:
        bench_core.write_markdown(args.out, section, SECTION_START, SECTION_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
