"""The scheduler through the CLI: dependency order, threads, failures and skips, selection,
Ctrl-C, JSON logs, and a full build of the example project at the repository root."""

from __future__ import annotations

import _thread
import itertools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from sqlflow.plan import Plan
from sqlflow.runner import NodeResult, run_dag

REPO_ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers


def results_of(project) -> list[dict]:
    return json.loads((project.root / "target" / "run_results.json").read_text())["results"]


def statuses(project) -> dict[str, str]:
    return {r["unique_id"].split(".")[-1]: r["status"] for r in results_of(project)}


def relations(project) -> set[str]:
    if not project.db_path.exists():
        return set()
    return {
        name
        for (name,) in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
    }


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def timing(result: dict) -> tuple[datetime, datetime]:
    (execute,) = [t for t in result["timing"] if t["name"] == "execute"]
    return moment(execute["started_at"]), moment(execute["completed_at"])


def table(sql: str) -> str:
    return "{{ config(materialized='table') }}\n" + sql + "\n"


# --------------------------------------------------------------------------- order and threads


def test_chain_builds_in_dependency_order(make_project):
    project = make_project(
        {
            # names sort against the dependency order, so only the DAG can explain the result
            "models/c.sql": table("select n + 1 as n from {{ ref('b') }}"),
            "models/b.sql": table("select n * 10 as n from {{ ref('a') }}"),
            "models/a.sql": table("select 4 as n"),
        }
    )
    result = project.cli("run", "--threads", "4")
    assert result.exit_code == 0, result.output
    assert project.query("select n from c") == [(41,)]
    results = results_of(project)
    assert [r["unique_id"] for r in results] == ["model.proj.a", "model.proj.b", "model.proj.c"]
    assert {r["status"] for r in results} == {"success"}
    a, b, c = (timing(r) for r in results)
    assert a[1] <= b[0]
    assert b[1] <= c[0]

    # a change at the root flows through the chain on the next run
    project.write("models/a.sql", table("select 5 as n"))
    assert project.cli("run").exit_code == 0
    assert project.query("select n from c") == [(51,)]


def test_diamond_waits_for_both_parents(make_project):
    heavy = "select sum(hash(range)) as h, {k} as k from range(2000000)"
    project = make_project(
        {
            "models/root.sql": table("select 1 as k"),
            "models/left.sql": table(heavy.format(k="(select k from {{ ref('root') }})")),
            "models/right.sql": table(heavy.format(k="(select k + 1 from {{ ref('root') }})")),
            "models/joined.sql": table(
                "select l.k as lk, r.k as rk from {{ ref('left') }} l cross join {{ ref('right') }} r"
            ),
        }
    )
    result = project.cli("run", "--threads", "4")
    assert result.exit_code == 0, result.output
    assert project.query("select lk, rk from joined") == [(1, 2)]
    by_name = {r["unique_id"].split(".")[-1]: timing(r) for r in results_of(project)}
    assert by_name["root"][1] <= min(by_name["left"][0], by_name["right"][0])
    assert max(by_name["left"][1], by_name["right"][1]) <= by_name["joined"][0]


def test_independent_models_run_on_several_threads(make_project):
    files = {
        f"models/wide_{i}.sql": table(f"select sum(hash(range + {i})) as h from range(15000000)")
        for i in range(4)
    }
    project = make_project(files)
    result = project.cli("run", "--threads", "4")
    assert result.exit_code == 0, result.output
    results = results_of(project)
    assert len(results) == 4
    assert {r["status"] for r in results} == {"success"}
    threads = {r["thread_id"] for r in results}
    assert all(t and t.startswith("sqlflow") for t in threads)
    assert len(threads) >= 2
    # and at least two of them were building at the same moment
    spans = [timing(r) for r in results]
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1 :])
    assert json.loads((project.root / "target/run_results.json").read_text())["args"]["threads"] == 4


def test_threads_1_uses_one_thread(make_project):
    project = make_project({f"models/m{i}.sql": "select 1 as n" for i in range(4)})
    result = project.cli("run", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert len({r["thread_id"] for r in results_of(project)}) == 1
    spans = sorted(timing(r) for r in results_of(project))
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))


# --------------------------------------------------------------------------- failures


FAILING_DAG = {
    "models/ok_root.sql": table("select 1 as n"),
    "models/bad.sql": table("select n, error('kaboom') as e from {{ ref('ok_root') }}"),
    "models/child.sql": table("select * from {{ ref('bad') }}"),
    "models/grandchild.sql": "select * from {{ ref('child') }}\n",
    "models/unrelated.sql": table("select 2 as n"),
    "models/sibling.sql": "select n + 1 as n from {{ ref('ok_root') }}\n",
}


def test_failure_skips_descendants_and_builds_the_rest(make_project):
    project = make_project(FAILING_DAG)
    result = project.cli("run")
    assert result.exit_code == 1
    assert "kaboom" in result.output
    assert statuses(project) == {
        "ok_root": "success",
        "bad": "error",
        "child": "skipped",
        "grandchild": "skipped",
        "unrelated": "success",
        "sibling": "success",
    }
    by_id = {r["unique_id"]: r for r in results_of(project)}
    assert by_id["model.proj.child"]["message"] == "skipped: upstream model.proj.bad failed"
    assert "kaboom" in by_id["model.proj.bad"]["message"]
    assert relations(project) == {"ok_root", "unrelated", "sibling"}
    assert project.query("select n from sibling") == [(2,)]


def test_fail_fast_starts_nothing_after_the_failure(make_project):
    project = make_project(
        {
            # with one thread and equal path lengths, nodes start in name order: a_bad first
            "models/a_bad.sql": table("select error('first') as e"),
            "models/b_later.sql": table("select 1 as n"),
            "models/c_later.sql": table("select 2 as n"),
        }
    )
    result = project.cli("run", "--threads", "1", "-x")
    assert result.exit_code == 1
    assert statuses(project) == {"a_bad": "error", "b_later": "skipped", "c_later": "skipped"}
    messages = {r["unique_id"]: r["message"] for r in results_of(project)}
    assert messages["model.proj.b_later"] == "skipped: --fail-fast"
    assert relations(project) == set()

    # without --fail-fast the others are built
    result = project.cli("run", "--threads", "1")
    assert result.exit_code == 1
    assert statuses(project) == {"a_bad": "error", "b_later": "success", "c_later": "success"}


def test_fail_fast_long_option_with_descendants(make_project):
    project = make_project(FAILING_DAG)
    result = project.cli("run", "--threads", "1", "--fail-fast")
    assert result.exit_code == 1
    found = statuses(project)
    assert found["bad"] == "error"
    assert found["child"] == "skipped"
    assert found["grandchild"] == "skipped"
    assert "kaboom" in result.output


# --------------------------------------------------------------------------- selection

SELECTION_DAG = {
    "seeds/raw.csv": "id,amount\n1,10\n2,20\n",
    "models/stg.sql": "select id, amount from {{ ref('raw') }}\n",
    "models/orders.sql": table(
        "select id, amount, '{{ var(\"version\", \"v1\") }}' as version from {{ ref('stg') }}"
    ),
    "models/customers.sql": table(
        "select count(*) as n, any_value(version) as version from {{ ref('orders') }}"
    ),
    "models/unrelated.sql": table(
        "select count(*) as n, '{{ var(\"version\", \"v1\") }}' as version from {{ ref('raw') }}"
    ),
}


def test_select_descendants_rebuilds_only_those(make_project):
    project = make_project(SELECTION_DAG)
    assert project.cli("build").exit_code == 0
    assert project.query("select version from unrelated") == [("v1",)]

    # new source rows and a new version: only orders and its descendants see them
    project.write("seeds/raw.csv", "id,amount\n1,10\n2,20\n3,30\n")
    assert project.cli("seed").exit_code == 0
    result = project.cli("run", "-s", "orders+", "--vars", "{version: v2}")
    assert result.exit_code == 0, result.output
    assert [r["unique_id"] for r in results_of(project)] == ["model.proj.orders", "model.proj.customers"]
    assert project.query("select n, version from customers") == [(3, "v2")]
    assert project.scalar("select count(*) from orders where version = 'v2'") == 3
    assert project.query("select n, version from unrelated") == [(2, "v1")]

    ls = project.cli("ls", "-s", "orders+", "-o", "name")
    assert ls.exit_code == 0
    assert ls.output.split() == ["orders", "customers"]


DAG = {
    # a -> b -> c -> d, x -> b, y alone
    "models/a.sql": "select 1 as n\n",
    "models/x.sql": "select 2 as n\n",
    "models/b.sql": "select * from {{ ref('a') }} union all select * from {{ ref('x') }}\n",
    "models/c.sql": "select * from {{ ref('b') }}\n",
    "models/d.sql": "select * from {{ ref('c') }}\n",
    "models/y.sql": "select 3 as n\n",
}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("-s", "c"), {"c"}),
        (("-s", "+c"), {"a", "x", "b", "c"}),
        (("-s", "c+"), {"c", "d"}),
        (("-s", "+b+"), {"a", "x", "b", "c", "d"}),
        (("-s", "1+c"), {"b", "c"}),
        (("-s", "b+1"), {"b", "c"}),
        (("-s", "@c"), {"a", "x", "b", "c", "d"}),
        (("-s", "+c", "--exclude", "a"), {"x", "b", "c"}),
        (("-s", "b+", "--exclude", "d"), {"b", "c"}),
        (("-s", "a y"), {"a", "y"}),
        (("-s", "a", "-s", "y"), {"a", "y"}),
        (("--exclude", "b+"), {"a", "x", "y"}),
        (("-s", "+c,x+"), {"x", "b", "c"}),
    ],
)
def test_graph_selectors_in_ls_and_run(make_project, args, expected):
    project = make_project(DAG)
    assert project.cli("run").exit_code == 0
    ls = project.cli("ls", "-o", "name", *args)
    assert ls.exit_code == 0, ls.output
    assert set(ls.output.split()) == expected
    result = project.cli("run", *args)
    assert result.exit_code == 0, result.output
    assert {r["unique_id"].split(".")[-1] for r in results_of(project)} == expected
    assert statuses(project) == dict.fromkeys(expected, "success")


def test_run_with_unbuilt_parent_fails_only_that_model(make_project):
    project = make_project(DAG)
    result = project.cli("run", "-s", "c")
    assert result.exit_code == 1
    assert statuses(project) == {"c": "error"}
    assert project.cli("run", "-s", "+c").exit_code == 0
    assert project.scalar("select count(*) from c") == 2


def test_ls_lists_in_dependency_order(make_project):
    project = make_project(DAG)
    result = project.cli("ls", "-o", "name", "-s", "+d")
    assert result.exit_code == 0
    names = result.output.split()
    assert set(names) == {"a", "x", "b", "c", "d"}
    assert names.index("b") > max(names.index("a"), names.index("x"))
    assert names.index("b") < names.index("c") < names.index("d")


def test_bad_selector_is_a_usage_error(make_project):
    project = make_project(DAG)
    result = project.cli("run", "-s", "c++")
    assert result.exit_code == 2
    assert "invalid selector" in result.output
    assert not (project.root / "target" / "run_results.json").exists()


# --------------------------------------------------------------------------- Ctrl-C

SLOW_MODEL = table(
    "select count(*) as c, sum(a.range * b.range) as s "
    "from range({{ var('n', 10) }}) a cross join range(100000) b"
)


class JsonRun:
    """`sqlflow run --log-format json` as a real process, its events read (with a bound) as they come."""

    def __init__(self, project, *args: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sqlflow.cli",
                "run",
                "--log-format",
                "json",
                *args,
                "--project-dir",
                str(project.root),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.events: list[dict] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def until(self, done) -> None:
        """Read events until `done(started, finished)` (sets of model names) holds."""
        started: set[str] = set()
        finished: set[str] = set()
        while not done(started, finished):
            line = self.lines.get(timeout=60)
            assert line is not None, f"sqlflow exited early after {self.events}"
            event = json.loads(line)
            self.events.append(event)
            if event["event"] == "node_started":
                started.add(event["data"]["name"])
            elif event["event"] == "node_finished":
                finished.add(event["data"]["name"])

    def interrupt(self) -> int:
        """Ctrl-C, then the exit code (a bounded wait; killed if it does not stop)."""
        try:
            self.proc.send_signal(signal.SIGINT)
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def rest(self) -> list[dict]:
        while (line := self.lines.get(timeout=10)) is not None:
            self.events.append(json.loads(line))
        return self.events


def test_ctrl_c_stops_the_run_and_keeps_finished_work(make_project):
    files = {f"models/quick_{i}.sql": table(f"select {i} as n") for i in range(3)}
    files["models/slow.sql"] = SLOW_MODEL
    project = make_project(files)
    assert project.cli("run").exit_code == 0
    assert project.query("select c from slow") == [(1_000_000,)]

    run = JsonRun(project, "--vars", "{n: 100000000}", "--threads", "4")
    quick = {"quick_0", "quick_1", "quick_2"}
    run.until(lambda started, finished: quick <= finished and "slow" in started)
    assert run.interrupt() == 130
    events = run.rest()
    finished = {e["data"]["name"]: e["data"]["status"] for e in events if e["event"] == "node_finished"}
    assert finished == {"quick_0": "success", "quick_1": "success", "quick_2": "success", "slow": "error"}
    assert events[-1]["event"] == "run_finished"
    assert events[-1]["msg"] == "Interrupted."

    assert statuses(project) == {
        "quick_0": "success",
        "quick_1": "success",
        "quick_2": "success",
        "slow": "error",
    }
    by_id = {r["unique_id"]: r for r in results_of(project)}
    assert "cancelled" in by_id["model.proj.slow"]["message"]
    # the interrupted build rolled back: the old table and its rows are still there
    assert project.query("select c from slow") == [(1_000_000,)]
    assert not [name for name in relations(project) if "__sqlflow" in name]


def test_ctrl_c_skips_the_dependants_of_the_interrupted_model(make_project):
    project = make_project(
        {
            "models/first.sql": table("select 1 as n"),
            "models/slow.sql": SLOW_MODEL.replace("range(100000) b", "range(100000) b, {{ ref('first') }}"),
            "models/after_slow.sql": table("select c from {{ ref('slow') }}"),
        }
    )
    run = JsonRun(project, "--vars", "{n: 100000000}", "--threads", "1")
    run.until(lambda started, finished: "slow" in started)
    assert run.interrupt() == 130
    assert statuses(project) == {"first": "success", "slow": "error", "after_slow": "skipped"}
    by_id = {r["unique_id"]: r for r in results_of(project)}
    assert by_id["model.proj.after_slow"]["message"] in (
        "skipped: upstream model.proj.slow failed",
        "not started: the run was interrupted",
    )
    assert relations(project) == {"first"}


def test_interrupt_is_repeated_until_running_nodes_stop():
    """A cancel that lands between two statements of a node is lost; the runner must cancel again
    instead of waiting for the node's (possibly hours-long) statement to finish."""
    cancels: list[int] = []
    stopped = threading.Event()

    def on_interrupt() -> None:
        cancels.append(1)
        if len(cancels) >= 2:  # the first cancel is lost, the second one stops the statement
            stopped.set()

    def work(uid: str) -> NodeResult:
        if uid == "slow":
            # Ctrl-C while this node runs (the pause lets the scheduler finish submitting it)
            time.sleep(0.3)
            _thread.interrupt_main()
            if stopped.wait(timeout=15):
                return NodeResult(uid, "error", "cancelled")
            return NodeResult(uid, "success", "ran to the end")
        return NodeResult(uid, "success")

    plan = Plan()
    plan.add_edge("slow", "child")
    plan.add_node("other")
    outcome = run_dag(plan, work, threads=1, on_interrupt=on_interrupt)
    assert outcome.interrupted
    assert len(cancels) >= 2
    by_id = {r.unique_id: r for r in outcome.results}
    assert by_id["slow"].status == "error"
    assert by_id["child"].status == "skipped"
    assert by_id["other"].status == "skipped"
    assert by_id["other"].message == "not started: the run was interrupted"


def test_interrupt_while_a_node_is_being_submitted():
    stopped = threading.Event()

    def work(uid: str) -> NodeResult:
        _thread.interrupt_main()  # Ctrl-C as the node's thread starts
        if stopped.wait(timeout=10):
            return NodeResult(uid, "error", "cancelled")
        return NodeResult(uid, "success")

    plan = Plan(["slow"])
    outcome = run_dag(plan, work, threads=1, on_interrupt=stopped.set)
    assert outcome.interrupted
    assert [(r.unique_id, r.status, r.message) for r in outcome.results] == [("slow", "error", "cancelled")]


# --------------------------------------------------------------------------- JSON log


def test_json_log_format(make_project):
    project = make_project(
        {
            "models/a.sql": table("select 1 as n"),
            "models/b.sql": "select n from {{ ref('a') }}\n",
            "models/broken.sql": table("select error('nope') as n"),
            "models/after_broken.sql": "select n from {{ ref('broken') }}\n",
        }
    )
    proc = project.subprocess("run", "--log-format", "json")
    assert proc.returncode == 1
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events
    for event in events:
        assert set(event) == {"ts", "event", "level", "msg", "data"}
        moment(event["ts"])
    names = [e["event"] for e in events]
    assert names[0] == "run_started"
    assert names.count("run_finished") == 1
    assert names[-1] == "run_finished"
    finished = {e["data"]["name"]: e for e in events if e["event"] == "node_finished"}
    assert set(finished) == {"a", "b", "broken", "after_broken"}
    assert names.count("node_finished") == 4
    assert finished["a"]["data"]["status"] == "success"
    assert finished["a"]["data"]["rows"] == 1
    assert finished["broken"]["level"] == "error"
    assert "nope" in finished["broken"]["msg"]
    assert finished["after_broken"]["data"]["status"] == "skipped"
    summary = events[-1]
    assert summary["level"] == "error"
    assert summary["data"]["counts"] == {"success": 2, "error": 1, "skipped": 1}


def test_json_log_format_success(make_project):
    project = make_project({"models/a.sql": "select 1 as n\n", "seeds/s.csv": "x\n1\n"})
    proc = project.subprocess("build", "--log-format", "json")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] != "node_started"] == [
        "run_started",
        "node_finished",
        "node_finished",
        "run_finished",
    ]
    assert events[-1]["msg"] == "Done."
    assert events[-1]["level"] == "info"


# --------------------------------------------------------------------------- the example project


def sqlflow(*args: str, root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sqlflow.cli", *args, "--project-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k not in ("SQLFLOW_PROFILES_DIR", "DBT_PROFILES_DIR")},
    )


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_build_example_project(tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(
        REPO_ROOT,
        root,
        ignore=shutil.ignore_patterns(
            "target", "*.duckdb", "*.duckdb.wal", ".*", "benchmarks", "tests", "sqlflow", "*.egg-info"
        ),
    )
    db = root / "shop.duckdb"
    assert not db.exists()
    proc = sqlflow("build", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Done." in proc.stdout
    assert query(db, "select count(*) from orders") == [(600,)]
    assert query(db, "select count(*) from customers") == [(200,)]
    assert query(db, "select count(*) from (select order_id from orders group by 1 having count(*) > 1)") == [
        (0,)
    ]
    kinds = dict(query(db, "select table_name, table_type from information_schema.tables"))
    assert kinds["orders"] == "BASE TABLE"
    assert kinds["customers"] == "BASE TABLE"
    assert kinds["payments_daily"] == "BASE TABLE"
    assert kinds["stg_orders"] == "VIEW"
    assert "int_order_payments" not in kinds  # ephemeral
    daily = query(db, "select payment_date, number_of_payments, total_amount from payments_daily order by 1")
    results = json.loads((root / "target/run_results.json").read_text())["results"]
    built = [r for r in results if not r["unique_id"].startswith(("test.", "unit_test."))]
    tests = [r for r in results if r["unique_id"].startswith(("test.", "unit_test."))]
    assert len(built) == 11 and {r["status"] for r in built} == {"success"}
    assert len(tests) >= 27 and {r["status"] for r in tests} == {"pass"}
    kinds_run = {r["unique_id"].split(".")[0] for r in results}
    assert kinds_run == {"seed", "model", "snapshot", "test", "unit_test"}
    assert query(db, "select count(*) from customers_snapshot where dbt_valid_to is null") == [(200,)]

    # the second build takes the incremental path and changes nothing
    proc = sqlflow("build", root=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert query(db, "select count(*) from orders") == [(600,)]
    assert query(db, "select count(*) from customers") == [(200,)]
    assert (
        query(db, "select payment_date, number_of_payments, total_amount from payments_daily order by 1")
        == daily
    )
    by_id = {r["unique_id"]: r for r in json.loads((root / "target/run_results.json").read_text())["results"]}
    assert by_id["model.shop.payments_daily"]["message"] == "MERGE"
    assert {r["status"] for r in by_id.values()} == {"success", "pass"}
