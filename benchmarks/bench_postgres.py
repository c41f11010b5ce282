#!/usr/bin/env python3
"""Benchmark sqlflow against dbt-postgres on PostgreSQL, in one run.

The generated 1,000-model project (shared/bench/gen_project.py; `range(R)` replaced by PostgreSQL's
`generate_series(0, R - 1)`) is run twice by each tool with 8 threads, each in a schema of its
own that is dropped before and after. dbt runs from a throwaway venv (`dbt-core<1.11` and
dbt-postgres); measuring reuses bench_core.py.

    python benchmarks/bench_postgres.py                       # 1000 models, 1000 rows, 8 threads
    python benchmarks/bench_postgres.py --out docs/benchmarks.md
    python benchmarks/bench_postgres.py --models 100 --skip-dbt

The server is SQLFLOW_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core  # the measuring and reporting helpers

REPO = bench_core.REPO
DBT_REQUIREMENTS = ["dbt-core<1.11", "dbt-postgres"]
SECTION_START, SECTION_END = "<!-- bench_postgres:start -->", "<!-- bench_postgres:end -->"
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def generate(workdir: Path, models: int, rows: int) -> Path:
    project = bench_core.generate_project(workdir, models, rows)
    for path in (project / "models").rglob("*.sql"):
        text = path.read_text()
        if f"range({rows})" in text:
            path.write_text(text.replace(f"range({rows})", f"generate_series(0, {rows - 1})"))
    return project


def profiles(folder: Path, url: sa.URL, schema: str, threads: int, adapter_type: str) -> Path:
    """A profiles.yml for one tool (both read dbt's format), in a folder of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        "bench:",
        "  target: pg",
        "  outputs:",
        "    pg:",
        f"      type: {adapter_type}",
        f"      host: {url.host or '127.0.0.1'}",
        f"      port: {url.port or 5432}",
        f"      user: {url.username or 'postgres'}",
        f'      password: "{url.password or ""}"',
        f"      dbname: {url.database}",
        f"      schema: {schema}",
        f"      threads: {threads}",
    ]
    (folder / "profiles.yml").write_text("\n".join(lines) + "\n")
    return folder


def drop_schema(url: sa.URL, schema: str) -> None:
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # Newest first and one at a time: one DROP SCHEMA of thousands of relations exhausts the
        # server's lock table (max_locks_per_transaction).
        for name, kind in connection.exec_driver_sql(
            "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'v') order by c.oid desc",
            (schema,),
        ).fetchall():
            kind_word = "view" if kind == "v" else "table"
            connection.exec_driver_sql(f'drop {kind_word} if exists "{schema}"."{name}" cascade')
        connection.exec_driver_sql(f'drop schema if exists "{schema}" cascade')
        if connection.exec_driver_sql("select to_regclass('sqlflow_state.nodes') is not null").scalar():
            connection.exec_driver_sql(
                "delete from sqlflow_state.nodes where relation_name like %s", (f'"{schema}".%',)
            )
    engine.dispose()


def server_version(url: sa.URL) -> str:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        version = connection.exec_driver_sql("show server_version").scalar()
    engine.dispose()
    return str(version).split()[0]


def benchmark(args) -> tuple[list[bench_core.Measurement], dict[str, str]]:
    url = sa.make_url(os.environ.get("SQLFLOW_TEST_POSTGRES_URL", DEFAULT_URL))
    workdir, results = args.workdir, []
    logs = workdir / "logs"
    project = generate(workdir, args.models, args.rows)
    dbt = (
        None if args.skip_dbt else bench_core.setup_dbt_venv(workdir / "dbt-postgres-venv", DBT_REQUIREMENTS)
    )
    sqlflow = bench_core.sqlflow_command()
    versions = {
        "python": platform.python_version(),
        "PostgreSQL": server_version(url),
        "sqlflow": bench_core.package_version("sqlflow"),
        "psycopg": bench_core.package_version("psycopg"),
    }
    if dbt:
        code = "import importlib.metadata as m; print(m.version('dbt-core'), m.version('dbt-postgres'))"
        out = subprocess.run([str(dbt.parent / "python"), "-c", code], capture_output=True, text=True)
        if out.returncode == 0:
            core, postgres = out.stdout.split()
            versions.update({"dbt-core (dbt venv)": core, "dbt-postgres (dbt venv)": postgres})
    runs = (("run (fresh schema)", "run1"), ("run (again, unchanged)", "run2"))
    suffix = os.getpid()
    tools = []
    if dbt:
        tools.append(
            ("dbt", f"bench_dbt_{suffix}", "postgres", [str(dbt), "run", "--threads", str(args.threads)])
        )
    elif not args.skip_dbt:
        bench_core.add(results, bench_core.Measurement("dbt", "install", 0, 0, status="not available"))
    if sqlflow:
        tools.append(
            (
                "sqlflow",
                f"bench_sqlflow_{suffix}",
                "postgres",
                [*sqlflow, "run", "--threads", str(args.threads)],
            )
        )
    for tool, schema, adapter_type, argv in tools:
        folder = profiles(workdir / "profiles" / tool, url, schema, args.threads, adapter_type)
        env = {**bench_core.dbt_env(project), "DBT_PROFILES_DIR": str(folder)}
        if tool == "sqlflow":
            argv = [*argv, "--project-dir", str(project), "--profiles-dir", str(folder)]
        bench_core.reset(project, target=True)
        drop_schema(url, schema)
        try:
            for label, step in runs:
                bench_core.record(
                    results,
                    bench_core.Measurement(tool, label, args.models, args.rows, step=step),
                    argv,
                    project,
                    logs / f"pg-{tool}-{step}-{args.models}.log",
                    env,
                )
        finally:
            drop_schema(url, schema)
    return results, versions


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=1000, help="models in the generated project")
    parser.add_argument("--rows", type=int, default=1000, help="rows per base model")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--skip-dbt", action="store_true", help="measure sqlflow only")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    results, versions = benchmark(args)
    rows = bench_core.table_rows(results)
    header = bench_core.HEADER[:-2] + bench_core.HEADER[-1:]  # no physical floor here
    rows = [row[:-2] + row[-1:] for row in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for line in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    if args.out:
        section = bench_core.markdown_section(rows, versions)
        section = section.replace(bench_core.SECTION_START, SECTION_START).replace(
            bench_core.SECTION_END, SECTION_END
        )
        section = section.replace("## Core benchmark (bench_core.py)", "## PostgreSQL (bench_postgres.py)")
        lines = section.splitlines()
        table_at = next(i for i, line in enumerate(lines) if line.startswith("| tool"))
        lines[table_at] = "| " + " | ".join(header) + " |"
        lines[table_at + 1] = "|" + " --- |" * len(header)
        text = "\n".join(lines) + "\n"
        bench_core.write_markdown(args.out, text, SECTION_START, SECTION_END)
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
