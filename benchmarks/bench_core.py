#!/usr/bin/env python3
"""Benchmark sqlflow against dbt and against the physical floor, in one run.

See benchmarks/README.md. Standard library plus the duckdb package only.

    python benchmarks/bench_core.py                    # full run, default sizes
    python benchmarks/bench_core.py --setup-dbt        # only build the dbt venv
    python benchmarks/bench_core.py --sizes 100 --run-size 50 --skip-dbt
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GENERATOR = Path("/work/shared/bench/gen_project.py")
if not GENERATOR.exists():  # a checkout with shared/ beside it
    GENERATOR = REPO.parent / "shared" / "bench" / "gen_project.py"
DBT_REQUIREMENTS = ["dbt-core<1.11", "dbt-duckdb"]
COMMAND_TIMEOUT_S = 3600
SECTION_START, SECTION_END = "<!-- bench_core:start -->", "<!-- bench_core:end -->"


@dataclass
class Measurement:
    tool: str
    command: str
    models: int
    rows: int
    seconds: float | None = None
    peak_mb: float | None = None
    status: str = "ok"
    step: str = ""  # "parse", "run1" or "run2": sqlflow rows are compared with dbt's row of the same step
    floor_relative: bool = False  # show seconds / floor seconds
    runs: int = 1  # seconds is the median of this many runs, peak_mb their maximum


# --- running one command and measuring it ------------------------------------


def measure(argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None):
    """Run argv; return (status, wall seconds, peak RSS in MB of the child and its descendants)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        out.write(f"$ {shlex.join(argv)}  (cwd={cwd})\n")
        out.flush()
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        except OSError as exc:
            return f"not available ({exc.strerror})", None, None
        timer = threading.Timer(COMMAND_TIMEOUT_S, os.kill, (proc.pid, signal.SIGKILL))
        timer.start()
        # wait4 gives this child's own rusage: ru_maxrss (KiB on Linux) covers it and its reaped children.
        _, wait_status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(wait_status)
    status = "ok" if proc.returncode == 0 else f"failed (rc={proc.returncode}, see {log})"
    return status, seconds, usage.ru_maxrss / 1024


def record(
    results: list[Measurement], row: Measurement, argv, cwd, log, env=None, repeats=1, before=None
) -> Measurement:
    """Run the command `repeats` times (calling `before()` first each time): the median seconds."""
    seconds, peaks = [], []
    for i in range(repeats):
        if before is not None:
            before()
        row.status, wall, peak = measure(argv, cwd, log.with_name(f"{log.stem}-{i}{log.suffix}"), env)
        if row.status != "ok":
            break
        seconds.append(wall)
        peaks.append(peak)
    if row.status == "ok":
        row.seconds, row.peak_mb, row.runs = statistics.median(seconds), max(peaks), len(seconds)
    return add(results, row)


def summarize(
    results: list[Measurement], row: Measurement, timings: list[tuple[str, float | None, float | None]]
) -> Measurement:
    """Add `row` with the median seconds and the highest peak of `timings` (measure()'s results)."""
    failed = [status for status, _, _ in timings if status != "ok"]
    row.status = failed[0] if failed else "ok"
    if not failed:
        row.seconds = statistics.median(seconds for _, seconds, _ in timings)
        row.peak_mb = max(peak for _, _, peak in timings)
        row.runs = len(timings)
    return add(results, row)


def add(results: list[Measurement], row: Measurement) -> Measurement:
    if row.status != "ok":
        row.seconds = row.peak_mb = None
    results.append(row)
    print(
        f"  {row.tool:8} {row.command:28} {row.models:>6} models  "
        f"{_fmt(row.seconds, '{:.2f}s')}  {_fmt(row.peak_mb, '{:.0f} MB')}  {row.status}",
        flush=True,
    )
    return row


def _fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


# --- projects ------------------------------------------------------------------


def generate_project(workdir: Path, models: int, rows: int) -> Path:
    project = workdir / "projects" / f"p{models}_r{rows}"
    subprocess.run(
        [
            sys.executable,
            str(GENERATOR),
            str(project),
            "--models",
            str(models),
            "--rows",
            str(rows),
            "--force",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return project


def reset(project: Path, target: bool = False) -> None:
    """Delete the project's duckdb file (and target/ if asked) so the next command starts fresh.

    target/ is moved aside, not deleted: on ext4, creating files within ~30 s of deleting
    thousands costs up to half a millisecond each (the kernel skips recently freed inodes one by
    one, `recently_deleted()`), which would bill the benchmark's own clean-up to the next
    command's thousands of compiled files. The set-aside folders are deleted at the end."""
    for name in ("bench.duckdb", "bench.duckdb.wal"):
        (project / name).unlink(missing_ok=True)
    if target and (project / "target").exists():
        aside = project.parent / "set-aside"
        aside.mkdir(exist_ok=True)
        (project / "target").rename(aside / f"target-{project.name}-{time.time_ns()}")


def delete_set_aside(workdir: Path) -> None:
    shutil.rmtree(workdir / "projects" / "set-aside", ignore_errors=True)


# --- dbt ---------------------------------------------------------------------


def setup_dbt_venv(venv: Path, requirements: list[str] = DBT_REQUIREMENTS) -> Path | None:
    """Create the throwaway dbt venv (reused when it already works); return the dbt executable."""
    dbt = venv / "bin" / "dbt"
    if dbt.exists() and subprocess.run([str(dbt), "--version"], capture_output=True).returncode == 0:
        return dbt
    print(f"installing {' '.join(requirements)} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", *requirements], capture_output=True, text=True
    )
    if install.returncode != 0:
        print(f"dbt install failed:\n{install.stderr[-2000:]}", file=sys.stderr)
        return None
    return dbt


def dbt_env(project: Path) -> dict[str, str]:
    return {"DBT_PROFILES_DIR": str(project), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1"}


def dbt_versions(dbt: Path | None) -> dict[str, str]:
    if dbt is None:
        return {}
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({p: m.version(p) for p in ('dbt-core', 'dbt-duckdb', 'duckdb')}))"
    )
    out = subprocess.run([str(dbt.parent / "python"), "-c", code], capture_output=True, text=True)
    return {f"{k} (dbt venv)": v for k, v in json.loads(out.stdout).items()} if out.returncode == 0 else {}


# --- sqlflow -----------------------------------------------------------------


def sqlflow_command() -> list[str] | None:
    # The executable installed beside the interpreter running this script, as dbt is run from its
    # venv's bin/: a version manager's shim found on PATH (pyenv's) adds ~80 ms to every command.
    script = Path(sys.executable).parent / "sqlflow"
    if script.exists():
        return [str(script)]
    if shutil.which("sqlflow"):
        return ["sqlflow"]
    if importlib.util.find_spec("sqlflow") is not None:
        return [sys.executable, "-m", "sqlflow"]
    return None


def sqlflow_env(workdir: Path) -> dict[str, str]:
    """Bytecode caching on, as for any installed program (a development shell may turn it off
    with PYTHONDONTWRITEBYTECODE, which adds ~50 ms of compiling to every sqlflow command)."""
    return {"PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(workdir / "pycache")}


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


# --- the physical floor ------------------------------------------------------


def models_in_build_order(target: Path) -> list[tuple[str, str, Path]]:
    """(name, materialization, compiled SQL path) of every model in a compiled project's
    `target` folder, parents before children."""
    manifest = json.loads((target / "manifest.json").read_text())
    models = {uid: node for uid, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    parents = {uid: {p for p in node["depends_on"]["nodes"] if p in models} for uid, node in models.items()}
    ordered, done = [], set()
    while len(ordered) < len(models):
        ready = sorted(uid for uid in models if uid not in done and parents[uid] <= done)
        if not ready:
            raise ValueError("cycle in the model graph")
        ordered.extend(ready)
        done.update(ready)
    compiled = target / "compiled"
    return [
        (
            models[uid]["name"],
            models[uid]["config"]["materialized"],
            compiled / models[uid]["package_name"] / models[uid]["original_file_path"],
        )
        for uid in ordered
    ]


def run_floor(target: Path, database: Path, result: Path) -> None:
    """Execute the compiled SQL, one statement per model, in a fresh duckdb file; write the loop's seconds."""
    import duckdb

    statements = []
    for name, materialized, sql_path in models_in_build_order(target):
        kind = "VIEW" if materialized == "view" else "TABLE"  # incremental: first run is a full build
        statements.append(f'CREATE OR REPLACE {kind} "main"."{name}" AS {sql_path.read_text()}')
    database.parent.mkdir(parents=True, exist_ok=True)
    database.unlink(missing_ok=True)
    start = time.perf_counter()
    connection = duckdb.connect(str(database))
    for statement in statements:
        connection.execute(statement)
    connection.close()
    result.write_text(json.dumps({"seconds": time.perf_counter() - start, "models": len(statements)}))


def compile_for_floor(
    project: Path, workdir: Path, command: list[str], env: dict[str, str], log: Path
) -> str:
    """Compile the project against a fresh database (so incremental models compile to their full
    build) and keep its target/ as the floor's SQL, apart from the runs that follow; the status."""
    reset(project, target=True)
    status, _, _ = measure(command, project, log, env)
    if status == "ok":
        shutil.rmtree(workdir / "floor" / "target", ignore_errors=True)
        shutil.copytree(project / "target", workdir / "floor" / "target")
    reset(project, target=True)
    return status


def measure_floor_once(workdir: Path, log: Path) -> tuple[str, float | None, float | None]:
    """One run of the floor in a child process: (status, seconds of its timed loop, peak MB)."""
    # The compiled SQL names relations "bench"."main"."x": the file must be called bench.duckdb.
    database, result = workdir / "floor" / "bench.duckdb", workdir / "floor" / "result.json"
    result.unlink(missing_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), "--floor", str(workdir / "floor" / "target")]
    argv += ["--floor-db", str(database), "--floor-result", str(result)]
    status, _, peak = measure(argv, REPO, log)
    if status != "ok":
        return status, None, None
    return status, json.loads(result.read_text())["seconds"], peak  # the timed loop, without start-up


# --- the benchmark -----------------------------------------------------------


def benchmark(args) -> tuple[list[Measurement], dict[str, str]]:
    workdir, results = args.workdir, []
    logs = workdir / "logs"
    dbt = None if args.skip_dbt else setup_dbt_venv(workdir / "dbt-venv")
    sqlflow = sqlflow_command()
    versions = {
        "python": platform.python_version(),
        "duckdb (floor, sqlflow)": package_version("duckdb"),
        "sqlflow": package_version("sqlflow"),
        **dbt_versions(dbt),
    }
    if not args.skip_dbt and dbt is None:
        add(results, Measurement("dbt", "install", 0, 0, status="not available (pip install failed)"))
    if sqlflow is None:
        add(results, Measurement("sqlflow", "*", 0, 0, status="not available (not installed)"))

    for size in args.sizes:
        project = generate_project(workdir, size, 100)
        # In rounds: one dbt parse, then sqlflow's cold and warm compiles, so that both tools'
        # medians come from the same minutes of a machine whose speed drifts.
        timings: dict[str, list[tuple[str, float | None, float | None]]] = {"dbt": [], "cold": [], "warm": []}
        for round_ in range(args.parse_rounds):
            if dbt:
                log = logs / f"dbt-parse-{size}-{round_}.log"
                timings["dbt"].append(
                    measure([str(dbt), "parse", "--no-partial-parse"], project, log, dbt_env(project))
                )
            for label in ("cold", "warm") if sqlflow else ():
                for i in range(args.repeats):
                    if label == "cold":
                        reset(project, target=True)
                    log = logs / f"sqlflow-compile-{label}-{size}-{round_}-{i}.log"
                    argv = [*sqlflow, "compile", "--project-dir", str(project)]
                    timings[label].append(measure(argv, project, log, sqlflow_env(workdir)))
        if dbt:
            summarize(
                results,
                Measurement("dbt", "parse --no-partial-parse", size, 100, step="parse"),
                timings["dbt"],
            )
        for label in ("cold", "warm") if sqlflow else ():
            row = Measurement("sqlflow", f"compile ({label})", size, 100, step="parse")
            summarize(results, row, timings[label])

    size, rows = args.run_size, args.rows
    project = generate_project(workdir, size, rows)
    runs = (("run (fresh db)", "run1"), ("run (again, unchanged)", "run2"))
    if dbt:
        reset(project, target=True)
        for label, step in runs:
            record(
                results,
                Measurement("dbt", label, size, rows, step=step, floor_relative=True),
                [str(dbt), "run"],
                project,
                logs / f"dbt-{step}-{size}.log",
                dbt_env(project),
            )
    source = "dbt" if dbt else "sqlflow" if sqlflow else None
    floor_status = "not available (no compiler)"
    if source is not None:
        compile_argv = (
            [str(dbt), "compile"] if source == "dbt" else [*sqlflow, "compile", "--project-dir", str(project)]
        )
        env = {**dbt_env(project), **sqlflow_env(workdir)}
        floor_status = compile_for_floor(
            project, workdir, compile_argv, env, logs / f"{source}-compile-for-floor.log"
        )
        if floor_status != "ok":
            floor_status = f"no compiled SQL: {floor_status}"
    # Each repeat is a fresh build, a second run of the unchanged project, then the floor: side by
    # side, so that the machine's speed, which drifts from minute to minute, is the same for their ratio.
    timings: dict[str, list[tuple[str, float | None, float | None]]] = {step: [] for _, step in runs}
    timings["floor"] = []
    argv = [*sqlflow, "run", "--project-dir", str(project)] if sqlflow else []
    for i in range(args.repeats):
        if sqlflow:
            reset(project, target=True)
            for _, step in runs:
                log = logs / f"sqlflow-{step}-{size}-{i}.log"
                timings[step].append(measure(argv, project, log, sqlflow_env(workdir)))
        if floor_status == "ok":
            timings["floor"].append(measure_floor_once(workdir, logs / f"floor-{i}.log"))
    rows_to_add = [
        (Measurement("sqlflow", label, size, rows, step=step, floor_relative=True), step)
        for label, step in runs
        if sqlflow
    ]
    rows_to_add.append(
        (Measurement("floor", f"duckdb API (SQL from {source})", size, rows, floor_relative=True), "floor")
    )
    for row, step in rows_to_add:
        if step == "floor" and floor_status != "ok":
            add(results, Measurement(row.tool, row.command, size, rows, status=floor_status))
        else:
            summarize(results, row, timings[step])
    delete_set_aside(workdir)
    return results, versions


# --- reporting ---------------------------------------------------------------


def table_rows(results: list[Measurement]) -> list[list[str]]:
    dbt_seconds = {(r.step, r.models): r.seconds for r in results if r.tool == "dbt" and r.step}
    floor = next((r.seconds for r in results if r.tool == "floor" and r.seconds), None)
    rows = []
    for row in results:
        baseline = dbt_seconds.get((row.step, row.models)) if row.tool == "sqlflow" else None
        speedup = f"{baseline / row.seconds:.1f}x" if baseline and row.seconds else ""
        vs_floor = f"{row.seconds / floor:.2f}x" if row.floor_relative and floor and row.seconds else ""
        rows.append(
            [
                row.tool,
                row.command,
                str(row.models or ""),
                str(row.rows or ""),
                str(row.runs) if row.seconds is not None else "",
                _fmt(row.seconds, "{:.2f}"),
                _fmt(row.peak_mb, "{:.0f}"),
                speedup,
                vs_floor,
                row.status,
            ]
        )
    return rows


HEADER = [
    "tool",
    "command",
    "models",
    "rows/base model",
    "runs",
    "seconds (median)",
    "peak MB",
    "speed-up vs dbt (dbt s / s)",
    "vs floor (s / floor s)",
    "status",
]


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    for line in [HEADER, ["-" * w for w in widths], *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def markdown_section(rows: list[list[str]], versions: dict[str, str]) -> str:
    command = shlex.join(["python", *sys.argv])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION_START,
        "## Core benchmark (bench_core.py)",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {now}; nproc: {os.cpu_count()}; " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + " --- |" * len(HEADER),
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join([*lines, SECTION_END, ""])


def write_markdown(path: Path, section: str, start: str = SECTION_START, end: str = SECTION_END) -> None:
    """Replace the file's section between the `start` and `end` markers (every benchmark script
    has its own pair), or append it."""
    text = path.read_text() if path.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1000,5000", help="model counts for parse/compile timing")
    parser.add_argument("--run-size", type=int, default=500, help="model count of the project that is run")
    parser.add_argument("--rows", type=int, default=10000, help="rows per base model in the run project")
    parser.add_argument("--skip-dbt", action="store_true", help="measure sqlflow and the floor only")
    parser.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="runs of each sqlflow and floor measurement (median) per round; dbt runs once per round",
    )
    parser.add_argument(
        "--parse-rounds",
        type=int,
        default=3,
        help="rounds of dbt parse followed by sqlflow's compiles, per size (the medians span them all)",
    )
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    parser.add_argument("--setup-dbt", action="store_true", help="only create the dbt venv, then exit")
    for hidden in ("--floor", "--floor-db", "--floor-result"):  # the floor's own child process
        parser.add_argument(hidden, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    args.workdir = args.workdir.resolve()
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.floor:
        run_floor(args.floor, args.floor_db, args.floor_result)
        return 0
    if args.setup_dbt:
        return 0 if setup_dbt_venv(args.workdir / "dbt-venv") else 1
    results, versions = benchmark(args)
    rows = table_rows(results)
    print()
    print_table(rows)
    if args.out:
        write_markdown(args.out, markdown_section(rows, versions))
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
