#!/usr/bin/env python3
"""What an incremental run costs next to a full refresh of the same model, in one run.

A source table of N rows (10 million by default) feeds one incremental model per strategy
(append with an is_incremental() filter, merge, delete+insert, microbatch). Each model is built
with --full-refresh, then 1% new rows are added to the source and `sqlflow run` adds them; both
are repeated and the medians compared. Times are the model's own build time from
run_results.json (execution_time), so interpreter start-up does not blur the ratio.

    python benchmarks/bench_incremental.py                       # 10M rows, 3 repeats
    python benchmarks/bench_incremental.py --rows 1000000 --repeats 1
    python benchmarks/bench_incremental.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import textwrap
from pathlib import Path

import bench_core  # the shared markdown section writer
import duckdb

REPO = Path(__file__).resolve().parent.parent
SECTION_START, SECTION_END = "<!-- bench_incremental:start -->", "<!-- bench_incremental:end -->"
# Each model does a little work per row (expressions, a CASE), as real models do.
BODY = """\
select id, user_id, ts, amount, amount * 1.2 as amount_with_tax,
       case when amount > 500 then 'large' else 'small' end as size
from {{ source('raw', 'events') }}"""
MODELS = {
    "inc_append": "{{ config(materialized='incremental', incremental_strategy='append') }}\n"
    + BODY
    + "\n{% if is_incremental() %} where id > (select max(id) from {{ this }}) {% endif %}\n",
    "inc_merge": "{{ config(materialized='incremental', unique_key='id') }}\n"
    + BODY
    + "\n{% if is_incremental() %} where ts >= (select max(ts) from {{ this }}) {% endif %}\n",
    "inc_delete_insert": "{{ config(materialized='incremental', incremental_strategy='delete+insert', "
    "unique_key='id') }}\n"
    + BODY
    + "\n{% if is_incremental() %} where ts >= (select max(ts) from {{ this }}) "
    "{% endif %}\n",
    "inc_microbatch": "{{ config(materialized='incremental', incremental_strategy='microbatch', "
    "event_time='ts', batch_size='day', begin='BEGIN', lookback=1) }}\n" + BODY + "\n",
}
STRATEGY = {
    "inc_append": "append",
    "inc_merge": "merge",
    "inc_delete_insert": "delete+insert",
    "inc_microbatch": "microbatch (day)",
}


def write_project(root: Path, start: dt.datetime) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "models").mkdir(parents=True)
    (root / "sqlflow.yml").write_text("name: bench_incremental\nprofile: bench\n")
    (root / "profiles.yml").write_text(
        "bench:\n  target: dev\n  outputs:\n    dev: {type: duckdb, path: warehouse.duckdb, threads: 1}\n"
    )
    (root / "models" / "sources.yml").write_text(
        textwrap.dedent(
            """\
            version: 2
            sources:
              - name: raw
                schema: raw
                tables:
                  - name: events
                    config: {event_time: ts}
            """
        )
    )
    for name, sql in MODELS.items():
        (root / "models" / f"{name}.sql").write_text(sql.replace("BEGIN", start.strftime("%Y-%m-%d")))


def add_rows(database: Path, first_id: int, count: int, start: dt.datetime, seconds_apart: float) -> None:
    """Rows first_id .. first_id+count-1, one every `seconds_apart` seconds from `start`."""
    con = duckdb.connect(str(database))
    try:
        con.execute("create schema if not exists raw")
        con.execute(
            "create table if not exists raw.events "
            "(id bigint, user_id integer, ts timestamp, amount decimal(12,2))"
        )
        con.execute(
            """
            insert into raw.events
            select i, (i * 7919) % 100000, ?::timestamp + to_microseconds(cast((i - ?) * ? * 1e6 as bigint)),
                   cast(((i * 31) % 100000) / 100.0 as decimal(12,2))
            from range(?, ?) t(i)
            """,
            [start, first_id, seconds_apart, first_id, first_id + count],
        )
    finally:
        con.close()


def sqlflow(root: Path, *args: str) -> dict[str, float]:
    """Run sqlflow; return execution_time per model from run_results.json."""
    argv = [sys.executable, "-m", "sqlflow.cli", *args, "--project-dir", str(root)]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}")
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"].rsplit(".", 1)[1]: r["execution_time"] for r in results}


def count(database: Path, table: str) -> int:
    con = duckdb.connect(str(database), read_only=True)
    try:
        return con.execute(f'select count(*) from main."{table}"').fetchone()[0]
    finally:
        con.close()


def benchmark(rows: int, repeats: int, workdir: Path) -> list[list[str]]:
    root = workdir / "incremental"
    # The source spans the days up to yesterday; each increment lands in the last 20 hours, so a
    # microbatch run (lookback 1) builds yesterday's batch and today's.
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
    span_seconds = 60 * 24 * 3600  # 60 days
    start = now - dt.timedelta(seconds=span_seconds) - dt.timedelta(days=1)
    write_project(root, start)
    database = root / "warehouse.duckdb"
    add_rows(database, 0, rows, start, span_seconds / rows)
    full: dict[str, list[float]] = {name: [] for name in MODELS}
    incremental: dict[str, list[float]] = {name: [] for name in MODELS}
    next_id, increment = rows, rows // 100
    for repeat in range(repeats):
        for name, seconds in sqlflow(root, "run", "--full-refresh").items():
            full[name].append(seconds)
        # 1% new rows, later than every row so far (the last 20 hours, a slice per repeat),
        # then an incremental run.
        slice_hours = 20 / repeats
        slice_start = now - dt.timedelta(hours=20 - slice_hours * repeat)
        add_rows(database, next_id, increment, slice_start, 3600 * slice_hours / increment)
        next_id += increment
        for name, seconds in sqlflow(root, "run").items():
            incremental[name].append(seconds)
        print(f"repeat {repeat + 1}/{repeats} done", file=sys.stderr)
    table = []
    for name in MODELS:
        assert count(database, name) == next_id, (
            f"{name} has {count(database, name)} rows, expected {next_id}"
        )
        f, i = statistics.median(full[name]), statistics.median(incremental[name])
        table.append(
            [STRATEGY[name], f"{rows:,}", f"{increment:,}", f"{f:.3f}", f"{i:.3f}", f"{100 * i / f:.1f}%"]
        )
    return table


HEADER = ["strategy", "rows in model", "new rows", "full refresh s", "incremental s", "incremental / full"]


def markdown(table: list[list[str]], command: str, repeats: int) -> str:
    lines = [
        SECTION_START,
        "## Incremental runs against full refresh (bench_incremental.py)",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; duckdb {duckdb.__version__}; "
        f"median of {repeats} repeat(s); times are the model's build time from run_results.json.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" for _ in HEADER) + " |",
        *("| " + " | ".join(row) + " |" for row in table),
        SECTION_END,
        "",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    bench_core.write_markdown(path, section, SECTION_START, SECTION_END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    args = parser.parse_args(argv)
    table = benchmark(args.rows, args.repeats, args.workdir.resolve())
    widths = [max(len(r[i]) for r in [HEADER, *table]) for i in range(len(HEADER))]
    for row in [HEADER, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    if args.out:
        command = "python benchmarks/bench_incremental.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        write_markdown(args.out, markdown(table, command.strip(), args.repeats))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
