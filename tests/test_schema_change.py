"""on_schema_change for incremental models, and per-model retries of transient warehouse errors.

Schema changes are tested through the CLI on real DuckDB files: the model's SQL is rewritten between
two runs, and the table's columns, types and rows are read back afterwards. Retries are tested
through the Python API, with an adapter that fails a chosen statement (and with a real DuckDB
write conflict from a second connection).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from sqlflow import commands
from sqlflow.adapters.base import Adapter
from sqlflow.adapters.duckdb import DuckDBAdapter
from sqlflow.errors import WarehouseError

# --------------------------------------------------------------------------- helpers


def model(select: str, **config: str) -> str:
    options = ", ".join(["materialized='incremental'", *(f"{k}={v!r}" for k, v in config.items())])
    return f"{{{{ config({options}) }}}}\n{select}\n"


def columns(project, table: str = "inc") -> list[tuple[str, str]]:
    return project.query(
        "select column_name, data_type from information_schema.columns "
        f"where table_name = '{table}' order by ordinal_position"
    )


def rows(project, sql: str) -> list[tuple]:
    return sorted(project.query(sql), key=repr)


def result_of(project, name: str = "inc") -> dict:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return next(r for r in data["results"] if r["unique_id"] == f"model.proj.{name}")


def leftovers(project) -> list[str]:
    return [
        name
        for (name,) in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
        if "__sqlflow" in name
    ]


FIRST = "select 1 as id, 10 as val, 'kept' as old"


def two_runs(make_project, second: str, **config: str):
    """Build `inc` from FIRST, then run it incrementally with `second` as its SELECT."""
    project = make_project({"models/inc.sql": model(FIRST, **config)})
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    project.write("models/inc.sql", model(second, **config))
    return project, project.cli("run")


# --------------------------------------------------------------------------- ignore


@pytest.mark.parametrize("config", [{}, {"on_schema_change": "ignore"}])
@pytest.mark.parametrize("strategy", ["append", "merge", "delete+insert"])
def test_ignore_inserts_only_the_columns_in_both(make_project, config, strategy):
    keys = {} if strategy == "append" else {"unique_key": "id"}
    project, result = two_runs(
        make_project,
        "select 2 as id, 20 as val, 'x' as added",  # `old` removed, `added` new
        incremental_strategy=strategy,
        **keys,
        **config,
    )
    assert result.exit_code == 0, result.output
    assert columns(project) == [("id", "INTEGER"), ("val", "INTEGER"), ("old", "VARCHAR")]
    assert rows(project, "select id, val, old from inc") == [(1, 10, "kept"), (2, 20, None)]
    assert result_of(project)["message"] == strategy.upper()  # nothing changed, nothing reported


# --------------------------------------------------------------------------- fail


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        ("select 2 as id, 20 as val, 'kept' as old, 'x' as \"new col\"", "added columns: new col"),
        ("select 2 as id, 20 as val", "removed columns: old"),
        ("select 2 as id, 'twenty' as val, 'kept' as old", "changed types: val (INTEGER -> VARCHAR)"),
    ],
)
def test_fail_stops_and_leaves_the_table_untouched(make_project, second, expected):
    project, result = two_runs(make_project, second, unique_key="id", on_schema_change="fail")
    assert result.exit_code == 1
    assert "on_schema_change='fail'" in result.output
    assert expected in result.output
    assert "--full-refresh" in result.output and "append_new_columns" in result.output
    assert result_of(project)["status"] == "error"
    assert expected in result_of(project)["message"]
    assert columns(project) == [("id", "INTEGER"), ("val", "INTEGER"), ("old", "VARCHAR")]
    assert project.query("select id, val, old from inc") == [(1, 10, "kept")]
    assert leftovers(project) == []


def test_fail_lists_every_difference(make_project):
    project, result = two_runs(
        make_project, "select 2 as id, 'twenty' as val, 3 as c", on_schema_change="fail"
    )
    assert result.exit_code == 1
    for part in ("added columns: c", "removed columns: old", "changed types: val (INTEGER -> VARCHAR)"):
        assert part in result.output
    assert project.query("select id, val, old from inc") == [(1, 10, "kept")]


def test_fail_without_a_change_runs_normally(make_project):
    project, result = two_runs(
        make_project, "select 2 as id, 20 as val, 'new' as old", on_schema_change="fail"
    )
    assert result.exit_code == 0, result.output
    assert project.scalar("select count(*) from inc") == 2
    assert result_of(project)["message"] == "APPEND"


def test_full_refresh_rebuilds_whatever_the_mode(make_project):
    project, result = two_runs(make_project, "select 2 as id, 'x' as other", on_schema_change="fail")
    assert result.exit_code == 1
    result = project.cli("run", "--full-refresh")
    assert result.exit_code == 0, result.output
    assert columns(project) == [("id", "INTEGER"), ("other", "VARCHAR")]
    assert project.query("select * from inc") == [(2, "x")]


# --------------------------------------------------------------------------- append_new_columns


@pytest.mark.parametrize("strategy", ["append", "merge", "delete+insert"])
def test_append_new_columns_adds_and_keeps_removed(make_project, strategy):
    keys = {} if strategy == "append" else {"unique_key": "id"}
    project, result = two_runs(
        make_project,
        'select 2 as id, 20 as val, cast(1.5 as decimal(10, 2)) as "New Col"',  # `old` removed
        incremental_strategy=strategy,
        on_schema_change="append_new_columns",
        **keys,
    )
    assert result.exit_code == 0, result.output
    assert columns(project) == [
        ("id", "INTEGER"),
        ("val", "INTEGER"),
        ("old", "VARCHAR"),
        ("New Col", "DECIMAL(10,2)"),  # the type of the model's column
    ]
    assert rows(project, 'select id, val, old, "New Col" from inc') == [
        (1, 10, "kept", None),
        (2, 20, None, pytest.approx(1.5)),
    ]
    assert result_of(project)["message"] == f"{strategy.upper()} (added columns: New Col)"
    assert leftovers(project) == []


def test_append_new_columns_merge_updates_the_new_column(make_project):
    project, result = two_runs(
        make_project,
        "select 1 as id, 11 as val, 'kept' as old, 'c1' as c union all select 2, 20, 'two', 'c2'",
        unique_key="id",
        on_schema_change="append_new_columns",
    )
    assert result.exit_code == 0, result.output
    assert rows(project, "select id, val, old, c from inc") == [(1, 11, "kept", "c1"), (2, 20, "two", "c2")]
    # a third run without a change reports no change
    assert project.cli("run").exit_code == 0
    assert result_of(project)["message"] == "MERGE"


def test_append_new_columns_failure_after_alter_rolls_it_back(make_project):
    # The ALTER TABLE ADD COLUMN runs, then the insert fails casting 'oops' into the INTEGER `val`
    # (append_new_columns does not change types): the added column must go with the failure.
    project, result = two_runs(
        make_project,
        "select 2 as id, 'oops' as val, 'kept' as old, 'c' as added",
        on_schema_change="append_new_columns",
    )
    assert result.exit_code == 1
    assert "oops" in result.output
    assert columns(project) == [("id", "INTEGER"), ("val", "INTEGER"), ("old", "VARCHAR")]
    assert project.query("select id, val, old from inc") == [(1, 10, "kept")]
    assert leftovers(project) == []


# --------------------------------------------------------------------------- sync_all_columns


@pytest.mark.parametrize("strategy", ["append", "merge", "delete+insert"])
def test_sync_all_columns(make_project, strategy):
    keys = {} if strategy == "append" else {"unique_key": "id"}
    first = "select 1 as id, 10 as val, 'kept' as old, 'same' as \"my col\""
    project = make_project(
        {
            "models/inc.sql": model(
                first, incremental_strategy=strategy, on_schema_change="sync_all_columns", **keys
            )
        }
    )
    assert project.cli("run").exit_code == 0
    project.write(
        "models/inc.sql",
        model(
            "select 2 as id, 'twenty' as val, 'two' as \"my col\", true as \"is new\"",
            incremental_strategy=strategy,
            on_schema_change="sync_all_columns",
            **keys,
        ),
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert columns(project) == [
        ("id", "INTEGER"),
        ("val", "VARCHAR"),  # retyped
        ("my col", "VARCHAR"),
        ("is new", "BOOLEAN"),  # added; `old` dropped
    ]
    # the old row keeps its data in the unchanged columns; its `val` is converted
    assert rows(project, 'select id, val, "my col", "is new" from inc') == [
        (1, "10", "same", None),
        (2, "twenty", "two", True),
    ]
    assert result_of(project)["message"] == (
        f"{strategy.upper()} (added columns: is new; removed columns: old; "
        "changed types: val (INTEGER -> VARCHAR))"
    )
    assert leftovers(project) == []


def test_sync_all_columns_replaces_every_column(make_project):
    project, result = two_runs(make_project, "select 'a' as x, 'b' as y", on_schema_change="sync_all_columns")
    assert result.exit_code == 0, result.output
    assert columns(project) == [("x", "VARCHAR"), ("y", "VARCHAR")]
    assert rows(project, "select x, y from inc") == [("a", "b"), (None, None)]


def test_sync_all_columns_failed_type_change_rolls_back_earlier_alters(make_project):
    # ADD COLUMN and DROP COLUMN succeed, then `val` cannot become an integer ('ten' is in the
    # table): the whole change is rolled back.
    project = make_project(
        {
            "models/inc.sql": model(
                "select 1 as id, 'ten' as val, 'kept' as old", on_schema_change="sync_all_columns"
            )
        }
    )
    assert project.cli("run").exit_code == 0
    project.write(
        "models/inc.sql",
        model("select 2 as id, 20 as val, 'c' as added", on_schema_change="sync_all_columns"),
    )
    result = project.cli("run")
    assert result.exit_code == 1
    assert "ten" in result.output
    assert columns(project) == [("id", "INTEGER"), ("val", "VARCHAR"), ("old", "VARCHAR")]
    assert project.query("select id, val, old from inc") == [(1, "ten", "kept")]
    assert leftovers(project) == []


class FailingAdapter(DuckDBAdapter):
    """DuckDB, recording every statement and failing the first one that contains `fail_on`."""

    fail_on = "\x00"
    error = "boom"

    def __init__(self, target) -> None:
        super().__init__(target)
        self.statements: list[str] = []
        self.failures = 0
        self.failures_left = 1

    def _run(self, sql, params=None, *, fetch):
        self.statements.append(sql)
        if self.fail_on in sql and self.failures_left > 0:
            self.failures_left -= 1
            self.failures += 1
            raise WarehouseError(self.error)
        return super()._run(sql, params, fetch=fetch)


def test_sync_all_columns_merge_failure_rolls_back_alters(make_project):
    config = {"unique_key": "id", "on_schema_change": "sync_all_columns"}
    project = make_project({"models/inc.sql": model(FIRST, **config)})
    assert project.cli("run").exit_code == 0
    project.write("models/inc.sql", model("select 2 as id, 'x' as val, 'c' as added", **config))

    class FailMerge(FailingAdapter):
        fail_on = "MERGE INTO"

    with commands.open_session(project.root) as session:
        session._adapter = adapter = FailMerge(session.project.target)
        outcome = commands.run(session)
    (result,) = outcome.results
    assert result.status == "error" and result.message == "boom"
    alters = [s for s in adapter.statements if s.startswith("ALTER TABLE")]
    assert len(alters) == 3  # add `added`, drop `old`, retype `val`: all ran before the MERGE
    assert 'ADD COLUMN "added"' in alters[0] and 'DROP COLUMN "old"' in alters[1]
    assert 'ALTER COLUMN "val" SET DATA TYPE' in alters[2]
    assert columns(project) == [("id", "INTEGER"), ("val", "INTEGER"), ("old", "VARCHAR")]
    assert project.query("select id, val, old from inc") == [(1, 10, "kept")]


def test_sync_all_columns_statements_are_quoted_for_duckdb_and_postgres():
    from sqlflow.materializations import SchemaChange, _schema_statements
    from sqlflow.nodes import Relation

    change = SchemaChange(
        added=[("new col", "DECIMAL(18,3)")],
        removed=[("old col", "VARCHAR")],
        changed=[("a b", "INTEGER", "VARCHAR")],
        incoming=set(),
    )
    relation = Relation(None, "my schema", "my table")
    for dialect in ("duckdb", "postgres"):
        sql = [
            s.sql(dialect=dialect) for s in _schema_statements(relation, change, "sync_all_columns", dialect)
        ]
        assert sql == [
            'ALTER TABLE "my schema"."my table" ADD COLUMN "new col" DECIMAL(18, 3)',
            'ALTER TABLE "my schema"."my table" DROP COLUMN "old col"',
            'ALTER TABLE "my schema"."my table" ALTER COLUMN "a b" SET DATA TYPE '
            + ("TEXT" if dialect == "duckdb" else "VARCHAR"),
        ]
    assert _schema_statements(relation, change, "ignore", "duckdb") == []
    assert len(_schema_statements(relation, change, "append_new_columns", "duckdb")) == 1


def test_unique_key_removed_under_sync_fails_before_altering(make_project):
    project, result = two_runs(
        make_project, "select 20 as val, 'x' as c", unique_key="id", on_schema_change="sync_all_columns"
    )
    assert result.exit_code == 1
    assert "unique_key column(s) id are not in both" in result.output
    assert columns(project) == [("id", "INTEGER"), ("val", "INTEGER"), ("old", "VARCHAR")]


# --------------------------------------------------------------------------- configuration


def test_on_schema_change_from_folder_config_and_yaml(make_project):
    project = make_project(
        {
            "models/a/inc.sql": model(FIRST),
            "models/b/inc2.sql": model(FIRST),
            "models/b/_b.yml": """\
                models:
                  - name: inc2
                    config:
                      on_schema_change: sync_all_columns
                """,
        },
        settings="""\
            name: proj
            profile: proj
            models:
              proj:
                +on_schema_change: append_new_columns
            """,
    )
    assert project.cli("run").exit_code == 0
    project.write("models/a/inc.sql", model("select 2 as id, 20 as val, 'c' as c"))
    project.write("models/b/inc2.sql", model("select 2 as id, 20 as val, 'c' as c"))
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert [name for name, _ in columns(project, "inc")] == ["id", "val", "old", "c"]
    assert [name for name, _ in columns(project, "inc2")] == ["id", "val", "c"]  # YAML wins


@pytest.mark.parametrize(
    ("files", "where"),
    [
        ({"models/inc.sql": model(FIRST, on_schema_change="sync")}, "models/inc.sql"),
        (
            {
                "models/inc.sql": model(FIRST),
                "models/_m.yml": "models:\n  - name: inc\n    config:\n      on_schema_change: append\n",
            },
            "models/inc.sql",
        ),
    ],
)
def test_bad_on_schema_change_is_a_load_error(make_project, files, where):
    project = make_project(files)
    result = project.cli("run")
    assert result.exit_code == 2
    assert "unknown on_schema_change" in result.output
    assert where in result.output
    assert "ignore, fail, append_new_columns, sync_all_columns" in result.output
    assert not project.db_path.exists()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("retries=-1", "retries must be a whole number, zero or more, not -1"),
        ("retries='2'", "retries must be a whole number, zero or more, not '2'"),
        ("retries=true", "retries must be a whole number, zero or more, not True"),
        ("retry_delay=1.5", "retry_delay must be a whole number, zero or more, not 1.5"),
        ("retry_delay=-3", "retry_delay must be a whole number, zero or more, not -3"),
    ],
)
def test_bad_retries_is_a_load_error(make_project, config, message):
    project = make_project({"models/m.sql": f"{{{{ config({config}) }}}}\nselect 1 as x\n"})
    result = project.cli("run")
    assert result.exit_code == 2
    assert message in result.output
    assert "models/m.sql" in result.output
    assert "hint:" in result.output


def test_bad_retries_in_seed_and_folder_config(make_project):
    project = make_project(
        {"seeds/s.csv": "a\n1\n"},
        settings="name: proj\nprofile: proj\nseeds:\n  proj:\n    +retries: many\n",
    )
    result = project.cli("seed")
    assert result.exit_code == 2
    assert "retries must be a whole number" in result.output and "seeds/s.csv" in result.output


# --------------------------------------------------------------------------- retries


class FlakyAdapter(FailingAdapter):
    """Fails the statement that creates the model's table `failures_left` times."""

    fail_on = 'CREATE TABLE "main"."m__sqlflow_tmp"'
    error = "TransactionContext Error: Conflict on tuple deletion!"


def flaky_run(make_project, config: str, *, failures: int, error: str | None = None, cancel=None):
    project = make_project(
        {"models/m.sql": f"{{{{ config(materialized='table', {config}) }}}}\nselect 1 as x\n"}
    )
    events = []
    with commands.open_session(project.root, on_event=events.append) as session:
        adapter = FlakyAdapter(session.project.target)
        adapter.failures_left = failures
        if error:
            adapter.error = error
        session._adapter = adapter
        started = time.perf_counter()
        outcome = commands.run(session, cancel=cancel)
        elapsed = time.perf_counter() - started
    (result,) = outcome.results
    retries = [e for e in events if e.name == "node_retry"]
    return project, result, adapter, retries, elapsed


def test_transient_error_is_retried_until_success(make_project):
    project, result, adapter, retries, _ = flaky_run(make_project, "retries=2, retry_delay=0", failures=2)
    assert adapter.failures == 2
    assert result.status == "success"
    assert result.message == "CREATE TABLE (retried 2 times; succeeded on attempt 3 of 3)"
    assert result_of(project, "m")["message"] == result.message
    assert result_of(project, "m")["status"] == "success"
    assert [e.message for e in retries] == [
        "m: attempt 1 of 3 failed: TransactionContext Error: Conflict on tuple deletion!; retrying in 0s",
        "m: attempt 2 of 3 failed: TransactionContext Error: Conflict on tuple deletion!; retrying in 0s",
    ]
    assert all(e.level == "warning" for e in retries)
    assert project.query("select x from m") == [(1,)]


def test_retries_exhausted_reports_every_attempt(make_project):
    project, result, adapter, retries, _ = flaky_run(make_project, "retries=2, retry_delay=0", failures=5)
    assert adapter.failures == 3
    assert result.status == "error"
    assert result.message.splitlines() == [
        f"attempt {n} of 3 failed: TransactionContext Error: Conflict on tuple deletion!" for n in (1, 2, 3)
    ]
    assert len(retries) == 2
    assert result_of(project, "m")["status"] == "error"
    assert not project.query("select * from information_schema.tables where table_name = 'm'")


def test_non_transient_error_is_never_retried(make_project):
    _, result, adapter, retries, _ = flaky_run(
        make_project,
        "retries=3, retry_delay=0",
        failures=1,
        error='Binder Error: Referenced column "y" not found',
    )
    assert adapter.failures == 1
    assert result.status == "error"
    assert result.message == 'Binder Error: Referenced column "y" not found'
    assert retries == []


def test_without_retries_a_transient_error_fails(make_project):
    _, result, adapter, retries, _ = flaky_run(make_project, "tags=['x']", failures=1)
    assert adapter.failures == 1
    assert result.status == "error"
    assert result.message == "TransactionContext Error: Conflict on tuple deletion!"
    assert retries == []


def test_retry_waits_retry_delay(make_project):
    _, result, _, retries, elapsed = flaky_run(make_project, "retries=1, retry_delay=1", failures=1)
    assert result.status == "success"
    assert retries[0].data["delay"] == 1
    assert elapsed >= 1


def test_cancel_interrupts_the_wait_between_attempts(make_project):
    cancel = threading.Event()
    project = make_project(
        {"models/m.sql": "{{ config(materialized='table', retries=3, retry_delay=60) }}\nselect 1 as x\n"}
    )

    def on_event(event):
        if event.name == "node_retry":
            cancel.set()  # Ctrl-C while the node waits for its next attempt

    with commands.open_session(project.root, on_event=on_event) as session:
        adapter = FlakyAdapter(session.project.target)
        adapter.failures_left = 10
        session._adapter = adapter
        started = time.perf_counter()
        outcome = commands.run(session, cancel=cancel)
        elapsed = time.perf_counter() - started
    assert elapsed < 10
    assert outcome.interrupted
    (result,) = outcome.results
    assert result.status == "error"
    assert result.message.splitlines()[-1] == "cancelled while waiting to retry"
    assert adapter.failures == 1


def test_real_duckdb_write_conflict_is_retried(make_project):
    # Another connection holds an uncommitted update of row 1; the model's MERGE conflicts with it
    # ("Conflict on update!"), and succeeds once that transaction has committed.
    config = "materialized='incremental', unique_key='id', retries=2, retry_delay=0"
    project = make_project({"models/m.sql": f"{{{{ config({config}) }}}}\nselect 1 as id, 'first' as val\n"})
    assert project.cli("run").exit_code == 0
    project.write("models/m.sql", f"{{{{ config({config}) }}}}\nselect 1 as id, 'second' as val\n")
    events = []

    def on_event(event):
        events.append(event)
        if event.name == "node_retry":
            blocker.execute("commit")  # the other writer finishes while the model waits

    with commands.open_session(project.root, on_event=on_event) as session:
        blocker = session.adapter._database.cursor()
        blocker.execute("begin transaction")
        blocker.execute("update m set val = 'blocker' where id = 1")
        outcome = commands.run(session)
        blocker.close()
    (result,) = outcome.results
    assert result.status == "success", result.message
    assert result.message == "MERGE (retried 1 time; succeeded on attempt 2 of 3)"
    retries = [e for e in events if e.name == "node_retry"]
    assert len(retries) == 1 and "Conflict on update" in retries[0].message
    assert project.query("select id, val from m") == [(1, "second")]


@pytest.mark.parametrize(
    ("message", "transient"),
    [
        ("TransactionContext Error: Conflict on update!", True),
        ('TransactionContext Error: Catalog write-write conflict on alter with "t"', True),
        ("server closed the connection unexpectedly", True),
        ("connection reset by peer", True),
        ("Connection was closed", True),
        ('ERROR: could not obtain lock on relation "t"', True),
        ("Lock wait timeout exceeded; try restarting transaction", True),
        ("could not serialize access due to concurrent update", True),
        ("ERROR: deadlock detected", True),
        ("database is locked", True),
        ("cancelled", False),
        ('Binder Error: Referenced column "x" not found', False),
        ("Conversion Error: Could not convert string 'a' to INT32", False),
        ("Catalog Error: Table with name t does not exist!", False),
    ],
)
def test_is_transient(message, transient):
    adapter = DuckDBAdapter.__new__(DuckDBAdapter)
    assert adapter.is_transient(WarehouseError(message)) is transient
    if "write-write" not in message:
        assert Adapter.is_transient(adapter, WarehouseError(message)) is transient
