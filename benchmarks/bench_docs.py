#!/usr/bin/env python3
"""Benchmark `sqlflow docs generate` and the generated site, beside `dbt docs generate`.

    python benchmarks/bench_docs.py                          # 5,000 models; dbt at 1,000
    python benchmarks/bench_docs.py --models 500 --skip-dbt  # quick
    python benchmarks/bench_docs.py --out docs/benchmarks.md # also write the markdown section

On the generated project (shared/bench/gen_project.py, 10 rows per base model), built first with
`sqlflow run` so the catalog comes from the warehouse, it measures:

- `sqlflow docs generate` with column lineage traced from scratch (target/docs and the lineage
  cache deleted), and again with nothing changed (lineage from the cache);
- the size of the data files (target/docs/data) and of the whole site;
- in headless Chromium (/usr/bin/chromium, through Playwright), from navigation start: the graph
  drawn, the search index loaded, and the first search answered (median of 3 page loads);
- at `--dbt-models` models, `sqlflow docs generate` and `dbt docs generate` (dbt-core<1.11 and
  dbt-duckdb in the throwaway venv bench_core.py makes), each after its own tool built the project.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_core

REPO = bench_core.REPO
CHROMIUM = os.environ.get("SQLFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SECTION_START, SECTION_END = "<!-- bench_docs:start -->", "<!-- bench_docs:end -->"
PAGE_LOADS = 3


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(argv: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> float:
    status, seconds, _ = bench_core.measure(argv, cwd, log, env)
    if status != "ok":
        raise SystemExit(f"{shlex.join(argv)}: {status}")
    return seconds


def timed_with_cpu(argv: list[str], cwd: Path, log: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the workers it started and reaped)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        out.write(f"$ {shlex.join(argv)}  (cwd={cwd})\n")
        out.flush()
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{shlex.join(argv)}: failed, see {log}")
    return wall, usage.ru_utime + usage.ru_stime


def page_timings(index_html: Path, query: str) -> dict[str, float]:
    """Milliseconds from navigation start to the graph drawn, the search index loaded and the
    first search answered (median of PAGE_LOADS fresh pages)."""
    from playwright.sync_api import sync_playwright

    runs: list[dict[str, float]] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(PAGE_LOADS):
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(index_html.as_uri())
            page.wait_for_function("performance.getEntriesByName('sqlflow:search-ready').length > 0")
            page.wait_for_function("performance.getEntriesByName('sqlflow:graph-drawn').length > 0")
            marks = page.evaluate(
                """q => {
                    const at = (name) => performance.getEntriesByName(name)[0].startTime;
                    const start = performance.now();
                    const results = SF.search.query(q, 30);
                    const answered = performance.now();
                    return {graph: at('sqlflow:graph-drawn'), search_ready: at('sqlflow:search-ready'),
                            query_ms: answered - start, results: results.length,
                            nodes_drawn: document.querySelectorAll('#graph g.node').length};
                }""",
                query,
            )
            if not marks["results"]:
                raise SystemExit(f"the search for {query!r} found nothing")
            marks["usable"] = max(marks["graph"], marks["search_ready"]) + marks["query_ms"]
            runs.append(marks)
            page.close()
        browser.close()
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def sqlflow_docs(project: Path, logs: Path, label: str, repeat: int) -> dict[str, float]:
    """`docs generate` from scratch (no site, no lineage cache) and again unchanged, `repeat` times
    each; the best wall time of each (on a shared machine, other work only ever adds time)."""
    sqlflow = bench_core.sqlflow_command()
    if sqlflow is None:
        raise SystemExit("sqlflow is not installed in this interpreter")
    target = project / "target"
    argv = [*sqlflow, "docs", "generate", "--project-dir", str(project)]
    cold, warm = [], []
    for attempt in range(repeat):
        shutil.rmtree(target / "docs", ignore_errors=True)
        (target / "sqlflow_lineage_cache.pickle").unlink(missing_ok=True)
        cold.append(timed_with_cpu(argv, project, logs / f"sqlflow-docs-{label}-cold-{attempt}.log"))
        warm.append(timed_with_cpu(argv, project, logs / f"sqlflow-docs-{label}-warm-{attempt}.log"))
    return {
        "cold": min(cold)[0],
        "cold_cpu": min(cold)[1],
        "cold_median": statistics.median(w for w, _ in cold),
        "warm": min(warm)[0],
        "warm_cpu": min(warm)[1],
        "data_bytes": folder_bytes(target / "docs" / "data"),
        "site_bytes": folder_bytes(target / "docs"),
    }


def build_with_sqlflow(project: Path, logs: Path, label: str) -> float:
    bench_core.reset(project, target=True)
    sqlflow = bench_core.sqlflow_command()
    assert sqlflow is not None
    return timed([*sqlflow, "run", "--project-dir", str(project)], project, logs / f"sqlflow-run-{label}.log")


def dbt_docs(project: Path, dbt: Path, logs: Path, label: str) -> dict[str, float]:
    bench_core.reset(project, target=True)
    env = bench_core.dbt_env(project)
    timed([str(dbt), "run"], project, logs / f"dbt-run-{label}.log", env)
    seconds = timed([str(dbt), "docs", "generate"], project, logs / f"dbt-docs-{label}.log", env)
    target = project / "target"
    files = [target / name for name in ("index.html", "manifest.json", "catalog.json")]
    return {"seconds": seconds, "site_bytes": sum(f.stat().st_size for f in files if f.exists())}


def mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=5000, help="models in the main project")
    parser.add_argument("--dbt-models", type=int, default=1000, help="models in the project dbt is timed on")
    parser.add_argument("--skip-dbt", action="store_true", help="do not install or run dbt")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each docs generate (best is kept)")
    parser.add_argument("--out", type=Path, help="markdown file to write the results section into")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve() / "docs"
    logs = workdir / "logs"
    rows: list[tuple[str, str, str, str]] = []  # (measure, models, value, target)

    project = bench_core.generate_project(workdir, args.models, 10)
    print(f"building {args.models} models with sqlflow run ...", flush=True)
    build_with_sqlflow(project, logs, str(args.models))
    load = os.getloadavg()[0]
    ours = sqlflow_docs(project, logs, str(args.models), args.repeat)
    print(f"  docs generate: {ours['cold']:.2f} s cold, {ours['warm']:.2f} s warm", flush=True)
    page = page_timings(project / "target" / "docs" / "index.html", "mart amount")
    print(f"  page: graph {page['graph']:.0f} ms, search ready {page['search_ready']:.0f} ms", flush=True)
    n = str(args.models)
    rows += [
        (
            "sqlflow docs generate, lineage traced from scratch (best of runs; CPU time; median)",
            n,
            f"{ours['cold']:.2f} s ({ours['cold_cpu']:.1f} s CPU; median {ours['cold_median']:.2f} s)",
            "under 10 s",
        ),
        (
            "sqlflow docs generate again, nothing changed",
            n,
            f"{ours['warm']:.2f} s ({ours['warm_cpu']:.1f} s CPU)",
            "",
        ),
        ("data files (target/docs/data)", n, mb(ours["data_bytes"]), "under 20 MB"),
        ("whole site (target/docs)", n, mb(ours["site_bytes"]), ""),
        (
            f"page: graph drawn ({page['nodes_drawn']:.0f} nodes shown)",
            n,
            f"{page['graph']:.0f} ms",
            "",
        ),
        ("page: search index loaded", n, f"{page['search_ready']:.0f} ms", ""),
        ("page: one search answered", n, f"{page['query_ms']:.1f} ms", ""),
        ("page usable (graph drawn and search answering)", n, f"{page['usable']:.0f} ms", "under 2 s"),
    ]
    versions = {
        "python": platform.python_version(),
        "sqlflow": bench_core.package_version("sqlflow"),
        "load average at start": f"{load:.1f}",
    }

    if args.dbt_models:
        small = bench_core.generate_project(workdir, args.dbt_models, 10)
        build_with_sqlflow(small, logs, str(args.dbt_models))
        theirs_ours = sqlflow_docs(small, logs, str(args.dbt_models), 1)
        m = str(args.dbt_models)
        rows.append(
            ("sqlflow docs generate, lineage traced from scratch", m, f"{theirs_ours['cold']:.2f} s", "")
        )
        rows.append(("sqlflow site size", m, mb(theirs_ours["site_bytes"]), ""))
        dbt = None if args.skip_dbt else bench_core.setup_dbt_venv(args.workdir.resolve() / "dbt-venv")
        if dbt is not None:
            print(f"building {args.dbt_models} models with dbt run, then dbt docs generate ...", flush=True)
            theirs = dbt_docs(small, dbt, logs, m)
            rows.append(("dbt docs generate (no column lineage)", m, f"{theirs['seconds']:.2f} s", ""))
            rows.append(
                ("dbt site size (index.html, manifest.json, catalog.json)", m, mb(theirs["site_bytes"]), "")
            )
            versions.update(bench_core.dbt_versions(dbt))

    width = max(len(r[0]) for r in rows)
    print()
    for measure, models, value, target in rows:
        print(f"{measure:<{width}}  {models:>5}  {value:>10}  {target}")
    if args.out:
        write_markdown(args.out, markdown_section(rows, versions))
        print(f"\nwrote {args.out}")
    return 0


def markdown_section(rows: list[tuple[str, str, str, str]], versions: dict[str, str]) -> str:
    command = shlex.join(["python", *sys.argv])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION_START,
        "## Docs site benchmark (bench_docs.py)",
        "",
        f"Command: `{command}`",
        "",
        f"Date: {now}; nproc: {os.cpu_count()}; " + "; ".join(f"{k} {v}" for k, v in versions.items()),
        "",
        "| measure | models | measured | target |",
        "| --- | --- | --- | --- |",
        *(f"| {m} | {n} | {v} | {t} |" for m, n, v, t in rows),
        SECTION_END,
        "",
    ]
    return "\n".join(lines)


def write_markdown(path: Path, section: str) -> None:
    bench_core.write_markdown(path, section, SECTION_START, SECTION_END)


if __name__ == "__main__":
    sys.exit(main())
