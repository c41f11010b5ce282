#!/usr/bin/env python3
"""Selective reruns: `run -s state:modified+` and selector evaluation on a 5,000-model project.

Whole commands are timed as a user runs them (interpreter start-up included), several times, and
the median is reported: the machine is shared, so single runs are noisy. Selector evaluation is
timed inside one process on the loaded project (`selection.select`, what `ls`, `run` and `build`
call), once per form and then repeatedly. dbt's `dbt run -s state:modified+ --state` is timed on
a smaller project beside sqlflow's at the same size (a dbt build of 5,000 models takes minutes).

    python benchmarks/bench_state.py                          # 5,000 models; dbt at 500
    python benchmarks/bench_state.py --models 1000 --skip-dbt --repeats 3
    python benchmarks/bench_state.py --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core as core  # the shared helpers: measuring, generating, the dbt venv

SECTION_START, SECTION_END = "<!-- bench_state:start -->", "<!-- bench_state:end -->"
EDIT_MARK = "\n-- bench_state edit"


def selectors(project: Path) -> list[tuple[str, str]]:
    """Every form of the grammar (form, selector), on names the generator wrote. Tags and
    sources are added to the project by make_project."""
    model = pick_model(project)  # has descendants
    names = sorted(path.stem for path in (project / "models").rglob("*.sql"))
    staging, mart = (next(n for n in names if n.startswith(prefix)) for prefix in ("stg_", "mart_"))
    return [
        ("name", mart),
        ("glob name", staging[:-2] + "*"),
        ("path:", "path:models/staging"),
        ("path: glob", "path:models/*/int_01*.sql"),
        ("tag:", "tag:nightly"),
        ("config.k:v", "config.materialized:table"),
        ("source:", "source:raw"),
        ("resource_type:", "resource_type:model"),
        ("fqn wildcard", "staging.*"),
        ("state:modified", "state:modified"),
        ("state:modified+", "state:modified+"),
        ("result:", "result:success"),
        ("+m", f"+{model}"),
        ("m+", f"{model}+"),
        ("2+m", f"2+{model}"),
        ("m+3", f"{model}+3"),
        ("+m+", f"+{model}+"),
        ("@m", f"@{model}"),
        ("union", f"tag:nightly {staging}+"),
        ("intersection", "config.materialized:table,staging.*"),
        ("graph op on many", "config.materialized:table+"),
        ("exclude", "resource_type:model --exclude staging.*"),
    ]


ALL_KINDS = ("model", "seed", "snapshot", "test", "unit_test", "source")


# --- the project -----------------------------------------------------------------------------


def make_project(workdir: Path, models: int) -> Path:
    """A generated project, with folder tags and a declared source so every method has data."""
    project = core.generate_project(workdir, models, 10)
    settings = project / "dbt_project.yml"
    text = settings.read_text()
    if "nightly" not in text:
        settings.write_text(text + "    marts:\n      +tags: [nightly]\n")
    tables = "\n".join(f"      - name: events_{i}" for i in range(20))
    (project / "models" / "sources.yml").write_text(
        f"version: 2\n\nsources:\n  - name: raw\n    schema: raw\n    tables:\n{tables}\n"
    )
    return project


def pick_model(project: Path, wanted: int = 20) -> str:
    """An intermediate model with about `wanted` descendants (ties: the first name), as an edit
    in a real project touches a corner of the DAG, not half of it."""
    children: dict[str, set[str]] = {}
    for path in sorted((project / "models").rglob("*.sql")):
        for parent in re.findall(r"ref\('(\w+)'\)", path.read_text()):
            children.setdefault(parent, set()).add(path.stem)

    def descendants(name: str) -> int:
        seen, stack = set(), [name]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return len(seen)

    candidates = sorted(name for name in children if name.startswith("int_"))
    return min(candidates, key=lambda name: (abs(descendants(name) - wanted), name))


def model_file(project: Path, model: str) -> Path:
    return next((project / "models").rglob(f"{model}.sql"))


def edit_model(project: Path, model: str, round_: int) -> None:
    """Change what `model` computes (not only its spacing), so its fingerprint changes."""
    path = model_file(project, model)
    text = path.read_text().split(EDIT_MARK)[0].rstrip("\n")
    path.write_text(f"{text}{EDIT_MARK}\nlimit {1_000_000 + round_}\n")


def restore_model(project: Path, model: str) -> None:
    path = model_file(project, model)
    path.write_text(path.read_text().split(EDIT_MARK)[0].rstrip("\n") + "\n")


# --- whole commands --------------------------------------------------------------------------


def timed(label: str, argv: list[str], cwd: Path, logs: Path, repeats: int, env=None, before=None) -> dict:
    """Run a command `repeats` times; the median, min and max wall seconds and the peak RSS."""
    seconds, peaks, status = [], [], "ok"
    for i in range(repeats):
        if before:
            before(i)
        status, wall, peak = core.measure(argv, cwd, logs / f"{label.replace(' ', '_')}-{i}.log", env)
        if status != "ok":
            break
        seconds.append(wall)
        peaks.append(peak)
    row = {"label": label, "runs": len(seconds), "status": status}
    if seconds:
        row.update(median=statistics.median(seconds), min=min(seconds), max=max(seconds), peak=max(peaks))
    print(f"  {label:58} {_s(row.get('median'))}  ({len(seconds)} runs)  {status}", flush=True)
    return row


def nodes_run(project: Path) -> int | None:
    try:
        return len(json.loads((project / "target" / "run_results.json").read_text())["results"])
    except (OSError, ValueError, KeyError):
        return None


def sqlflow_rows(workdir: Path, models: int, repeats: int) -> list[dict]:
    sqlflow = core.sqlflow_command()
    if sqlflow is None:
        return [{"label": "sqlflow", "status": "not available (not installed)", "runs": 0}]
    project = make_project(workdir, models)
    logs, env = workdir / "logs" / f"state-{models}", core.sqlflow_env(workdir)
    core.reset(project, target=True)
    run = [*sqlflow, "run", "--project-dir", str(project)]
    rows = [timed(f"sqlflow run, {models} models (fresh database)", run, project, logs, 1, env)]
    saved = workdir / "state-results"  # the build's run_results.json, for result: selectors
    shutil.rmtree(saved, ignore_errors=True)
    shutil.copytree(project / "target", saved)
    modified = [*run, "-s", "state:modified+"]
    label = f"sqlflow run -s state:modified+ ({models}, nothing modified)"
    rows.append(timed(label + ", first after the build", modified, project, logs, 1, env))
    rows.append(timed(label, modified, project, logs, repeats, env))
    rows[-1]["nodes"] = nodes_run(project)
    model = pick_model(project)
    rows.append(
        timed(
            f"sqlflow run -s state:modified+ ({models}, {model} modified)",
            modified,
            project,
            logs,
            repeats,
            env,
            before=lambda i: edit_model(project, model, i),
        )
    )
    rows[-1]["nodes"] = nodes_run(project)
    restore_model(project, model)
    core.measure(modified, project, logs / "restore.log", env)
    rows.append(
        timed(
            "sqlflow --version (interpreter and imports only)",
            [*sqlflow, "--version"],
            project,
            logs,
            repeats,
            env,
        )
    )
    return rows


def dbt_rows(workdir: Path, venv: Path, models: int, repeats: int) -> tuple[list[dict], dict[str, str]]:
    """dbt and sqlflow side by side on the same smaller project: `run -s state:modified+ --state`."""
    dbt = core.setup_dbt_venv(venv)
    if dbt is None:
        return [{"label": "dbt", "status": "not available (pip install failed)", "runs": 0}], {}
    project = make_project(workdir, models)
    logs, env = workdir / "logs" / f"state-dbt-{models}", core.dbt_env(project)
    core.reset(project, target=True)
    rows = [timed(f"dbt run, {models} models (fresh database)", [str(dbt), "run"], project, logs, 1, env)]
    state_dir = workdir / f"dbt-state-{models}"
    shutil.rmtree(state_dir, ignore_errors=True)
    shutil.copytree(project / "target", state_dir)
    argv = [str(dbt), "run", "-s", "state:modified+", "--state", str(state_dir)]
    rows.append(
        timed(
            f"dbt run -s state:modified+ --state ({models}, nothing modified)",
            argv,
            project,
            logs,
            repeats,
            env,
        )
    )
    sqlflow = core.sqlflow_command()
    if sqlflow:
        core.reset(project, target=True)
        run = [*sqlflow, "run", "--project-dir", str(project)]
        core.measure(run, project, logs / "sqlflow-build.log", core.sqlflow_env(workdir))
        sqlflow_state = workdir / f"sqlflow-state-{models}"
        shutil.rmtree(sqlflow_state, ignore_errors=True)
        shutil.copytree(project / "target", sqlflow_state)
        for how, extra in (("warehouse state", []), ("--state", ["--state", str(sqlflow_state)])):
            rows.append(
                timed(
                    f"sqlflow run -s state:modified+{' --state' if extra else ''} ({models}, nothing modified, {how})",
                    [*run, "-s", "state:modified+", *extra],
                    project,
                    logs,
                    repeats,
                    core.sqlflow_env(workdir),
                )
            )
    return rows, core.dbt_versions(dbt)


# --- selector evaluation (in a child process: `--selectors PROJECT`) ---------------------------


def time_selectors(project: Path, results_dir: Path, repeats: int) -> list[dict]:
    gc.set_threshold(700, 10, 1_000_000)  # as the CLI runs
    from sqlflow import commands, selection, state

    with commands.open_session(project) as session:
        compiler = commands._compiler(session)
        adapter, manifest = session.adapter, session.manifest
        context = selection.Context(
            state=state.Comparison(
                lambda uid: commands._fingerprint(manifest, compiler, uid),
                recorded=state.WarehouseState(adapter).read(compiler.existing),
                relation_of=lambda uid: state.relation_name(manifest.nodes[uid].relation, adapter.dialect),
            ),
            results=state.read_results(results_dir),
        )
        rows = []
        for form, text in selectors(project):
            select, _, exclude = text.partition(" --exclude ")
            times, picked = [], 0
            for _ in range(repeats):
                start = time.perf_counter()
                picked = len(
                    selection.select(
                        session.graph, [select], [exclude] if exclude else [], ALL_KINDS, context
                    )
                )
                times.append(1000 * (time.perf_counter() - start))
            rows.append(
                {
                    "form": form,
                    "selector": text,
                    "nodes": picked,
                    "first": times[0],
                    "median": statistics.median(times[1:] or times),
                }
            )
        return rows


def selector_rows(workdir: Path, models: int, repeats: int) -> list[dict]:
    project = workdir / "projects" / f"p{models}_r10"
    out = workdir / "selectors.json"
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--selectors",
        str(project),
        "--results",
        str(workdir / "state-results"),
        "--selector-out",
        str(out),
        "--repeats",
        str(repeats),
    ]
    status, _, _ = core.measure(
        argv, core.REPO, workdir / "logs" / "selectors.log", core.sqlflow_env(workdir)
    )
    if status != "ok":
        print(f"  selector timing {status}")
        return []
    rows = json.loads(out.read_text())
    for row in rows:
        print(
            f"  {row['form']:18} {row['selector']:45} {row['nodes']:6} nodes  first {row['first']:7.1f} ms  median {row['median']:7.1f} ms"
        )
    return rows


# --- reporting -------------------------------------------------------------------------------


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(commands_: list[dict], selectors: list[dict], versions: dict[str, str], repeats: int) -> str:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION_START,
        "## Selective reruns (bench_state.py)",
        "",
        f"Command: `{shlex.join(['python', *sys.argv])}`",
        "",
        f"Date: {now}; nproc: {os.cpu_count()}; " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        f"Whole commands, wall seconds including interpreter start-up: median of {repeats} runs (min-max), "
        "peak RSS of the process.",
        "",
        "| command | runs | median s | min-max s | peak MB | nodes run | status |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in commands_:
        spread = f"{_s(row.get('min'))}-{_s(row.get('max'))}" if row.get("runs") else "-"
        peak = f"{row['peak']:.0f}" if row.get("peak") else "-"
        nodes = "" if row.get("nodes") is None else str(row["nodes"])
        lines.append(
            f"| {row['label']} | {row['runs']} | {_s(row.get('median'))} | {spread} | {peak} | {nodes} | {row['status']} |"
        )
    if selectors:
        lines += [
            "",
            "Selector evaluation in one process (`selection.select` over every resource type, as `ls` "
            "does), milliseconds: the first evaluation of each form, then the median of the repeats. "
            "`state:` computes every model's fingerprint on first use (rendering every model); "
            "later forms reuse them, as one command does.",
            "",
            "| form | selector | nodes | first ms | median ms |",
            "| --- | --- | --- | --- | --- |",
        ]
        for row in selectors:
            text = row["selector"].replace("|", "\\|")
            lines.append(
                f"| {row['form']} | `{text}` | {row['nodes']} | {row['first']:.1f} | {row['median']:.1f} |"
            )
    return "\n".join([*lines, SECTION_END, ""])


def write_markdown(path: Path, section: str) -> None:
    core.write_markdown(path, section, SECTION_START, SECTION_END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=5000, help="models in the project (default 5000)")
    parser.add_argument("--repeats", type=int, default=7, help="runs of each timed command (default 7)")
    parser.add_argument(
        "--dbt-models", type=int, default=500, help="models in the dbt comparison (default 500)"
    )
    parser.add_argument("--skip-dbt", action="store_true", help="do not install or run dbt")
    parser.add_argument("--workdir", type=Path, default=core.REPO / "benchmarks" / ".work" / "state")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    for hidden in ("--selectors", "--results", "--selector-out"):  # the selector timing child
        parser.add_argument(hidden, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.selectors:
        args.selector_out.write_text(json.dumps(time_selectors(args.selectors, args.results, args.repeats)))
        return 0
    workdir = args.workdir.resolve()
    versions = {"python": platform.python_version(), "sqlflow": core.package_version("sqlflow")}
    print(f"sqlflow, {args.models} models:", flush=True)
    commands_ = sqlflow_rows(workdir, args.models, args.repeats)
    print("selector evaluation:", flush=True)
    selectors = selector_rows(workdir, args.models, args.repeats)
    if not args.skip_dbt:
        print(f"dbt and sqlflow, {args.dbt_models} models:", flush=True)
        venv = core.REPO / "benchmarks" / ".work" / "dbt-venv"  # shared with bench_core.py
        rows, dbt_versions = dbt_rows(workdir, venv, args.dbt_models, args.repeats)
        commands_ += rows
        versions.update(dbt_versions)
    section = markdown(commands_, selectors, versions, args.repeats)
    print()
    print(section)
    if args.out:
        write_markdown(args.out, section)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
