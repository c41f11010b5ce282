"""The PostgreSQL adapter on a real server, each test in a schema of its own (see warehouses.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from warehouses import Postgres
from warehouses import postgres as postgres  # a fixture

from sqlflow import commands
from sqlflow.adapters import adapter_for
from sqlflow.adapters.postgres import PostgresAdapter
from sqlflow.errors import WarehouseError

SETTINGS = "name: proj\nprofile: proj\n"


@pytest.fixture
def pg_project(make_project, postgres: Postgres):
    def make(files: dict[str, str], **extra):
        return make_project(files, profiles=postgres.profiles(**extra))

    return make


def statuses(project) -> dict[str, str]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: r["status"] for r in data["results"]}


def messages(project) -> dict[str, str]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: r["message"] for r in data["results"]}


def test_a_failing_rebuild_keeps_the_old_rows_and_leaves_nothing_behind(pg_project, postgres):
    table = "{{ config(materialized='table') }} "
    project = pg_project({"models/totals.sql": table + "select 1 as id union all select 2"})
    assert project.cli("run").exit_code == 0
    project.write("models/totals.sql", table + "select 1 / (id - id) as id from (select 1 as id) as t")
    result = project.cli("run")
    assert result.exit_code == 1
    assert "division by zero" in result.output
    assert postgres.scalar(f'select count(*) from "{postgres.schema}"."totals"') == 2
    assert set(postgres.relations()) == {"totals"}  # no __sqlflow_tmp left


def test_identifiers_that_need_quotes(pg_project, postgres):
    project = pg_project(
        {
            "models/order.sql": "select 1 as id, 'x' as \"Select\"",
            "models/Mixed Case.sql": "select id, \"Select\" from {{ ref('order') }}",
            "models/user.sql": "{{ config(materialized='table') }} select * from {{ ref('Mixed Case') }}",
        }
    )
    for _ in range(2):  # the second run replaces each relation
        result = project.cli("run")
        assert result.exit_code == 0, result.output
    assert postgres.relations() == {"order": "VIEW", "Mixed Case": "VIEW", "user": "BASE TABLE"}
    assert postgres.query(f'select id, "Select" from "{postgres.schema}"."user"') == [(1, "x")]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("append", [(1, "a"), (2, "b"), (2, "b2"), (3, "c")]),
        ("merge", [(1, "a"), (2, "b2"), (3, "c")]),
        ("delete+insert", [(1, "a"), (2, "b2"), (3, "c")]),
    ],
)
def test_incremental_strategies(pg_project, postgres, strategy, expected):
    key = "" if strategy == "append" else ", unique_key='id'"
    model = (
        f"{{{{ config(materialized='incremental', incremental_strategy='{strategy}'{key}) }}}}\n"
        "{% if var('second', false) %} select 2 as id, 'b2' as v union all select 3, 'c'\n"
        "{% else %} select 1 as id, 'a' as v union all select 2, 'b' {% endif %}"
    )
    project = pg_project({"models/events.sql": model})
    assert project.cli("run").exit_code == 0
    result = project.cli("run", "--vars", "{second: true}")
    assert result.exit_code == 0, result.output
    assert messages(project)["events"].startswith(strategy.upper())
    rows = postgres.query(f'select id, v from "{postgres.schema}"."events" order by id, v')
    assert rows == expected


def test_merge_before_postgres_15_is_a_delete_insert(pg_project, postgres):
    model = (
        "{{ config(materialized='incremental', unique_key='id') }}\n"
        "select {{ var('id', 1) }} as id, '{{ var('v', 'a') }}' as v"
    )
    project = pg_project({"models/events.sql": model})
    with commands.open_session(project.root) as session:
        adapter = session.adapter
        assert isinstance(adapter, PostgresAdapter)
        assert adapter.supports_merge == (adapter.server_version >= 150000)
        adapter.supports_merge = False  # as on PostgreSQL 14: no MERGE statement
        assert not commands.run(session).failed
    with commands.open_session(project.root, vars={"id": 1, "v": "b"}) as session:
        adapter = session.adapter
        adapter.supports_merge = False
        sent, execute = [], adapter.execute
        adapter.execute = lambda statement, **kw: (
            sent.append(type(statement).__name__),
            execute(statement, **kw),
        )[1]
        outcome = commands.run(session)
        assert not outcome.failed and outcome.results[0].message == "MERGE"
    assert "Delete" in sent and "Merge" not in sent
    assert postgres.query(f'select id, v from "{postgres.schema}"."events"') == [(1, "b")]


def test_views_reading_a_replaced_table_survive(pg_project, postgres):
    project = pg_project(
        {
            "models/base.sql": "{{ config(materialized='table') }} select {{ var('n', 1) }} as n {{ var('extra', '') }}",
            "models/reader.sql": "select n * 10 as n10 from {{ ref('base') }}",
            "models/reader_of_reader.sql": "select n10 + 1 as m from {{ ref('reader') }}",
        }
    )
    assert project.cli("run").exit_code == 0

    def view_oids() -> set:
        return {
            row[0]
            for row in postgres.query(
                "select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = %s and c.relkind = 'v'",
                postgres.schema,
            )
        }

    views = view_oids()
    # Only the table is rebuilt, with the same columns: its rows are replaced in place and the
    # views reading it are not touched (a root model of a large project has thousands).
    result = project.cli("run", "-s", "base", "--vars", "{n: 5}")
    assert result.exit_code == 0, result.output
    assert postgres.scalar(f'select m from "{postgres.schema}"."reader_of_reader"') == 51
    assert view_oids() == views
    # New columns: the table is swapped, and the views PostgreSQL drops with it are re-created.
    result = project.cli("run", "-s", "base", "--vars", "{n: 7, extra: ', 2 as two'}")
    assert result.exit_code == 0, result.output
    assert postgres.scalar(f'select m from "{postgres.schema}"."reader_of_reader"') == 71
    assert len(view_oids()) == 2 and view_oids() != views
    assert set(postgres.relations()) == {"base", "reader", "reader_of_reader"}


def test_contract_types_compare_with_postgres_types(pg_project):
    project = pg_project(
        {
            "models/money.sql": "{{ config(materialized='table') }} select sum(cast(1.5 as decimal(18, 2))) as total, "
            "cast('2024-01-01' as date) as day, 'x' as label",
            "models/money.yml": """
                models:
                  - name: money
                    config: {contract: {enforced: true}}
                    columns:
                      - {name: total, data_type: "decimal(38, 2)"}
                      - {name: day, data_type: date}
                      - {name: label, data_type: varchar}
                """,
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    project.write(
        "models/money.yml", project.root.joinpath("models/money.yml").read_text().replace("date}", "int}")
    )
    result = project.cli("run")
    assert result.exit_code == 1 and "type differs" in result.output


def test_snapshot_records_changes(pg_project, postgres):
    project = pg_project(
        {
            "snapshots/people.sql": """
                {% snapshot people %}
                {{ config(unique_key='id', strategy='check', check_cols=['name'], hard_deletes='invalidate') }}
                select * from (values (1, '{{ var("name", "ann") }}'), (2, 'bob')) as t(id, name)
                {% endsnapshot %}
                """
        }
    )
    assert project.cli("snapshot").exit_code == 0
    result = project.cli("snapshot", "--vars", "{name: anne}")
    assert result.exit_code == 0, result.output
    assert messages(project)["people"].startswith("snapshot: 1 changed")
    rows = postgres.query(
        f'select id, name, dbt_valid_to is null from "{postgres.schema}"."people" order by id, dbt_valid_from'
    )
    assert rows == [(1, "ann", False), (1, "anne", True), (2, "bob", True)]


def test_seed_column_types_and_source_freshness(pg_project, postgres):
    project = pg_project(
        {
            "seeds/codes.csv": "code,loaded_at,amount\n007,2024-01-01 10:00:00,1.5\n010,2024-01-02 11:30:00,\n",
            "seeds/codes.yml": "seeds:\n  - name: codes\n    config: {column_types: {code: varchar}}\n",
            "models/sources.yml": f"""
                sources:
                  - name: raw
                    schema: {postgres.schema}
                    tables:
                      - name: codes
                        loaded_at_field: loaded_at
                        freshness: {{warn_after: {{count: 1, period: day}}}}
                """,
        }
    )
    assert project.cli("seed").exit_code == 0
    rows = postgres.query(f'select code, amount from "{postgres.schema}"."codes" order by code')
    assert rows == [("007", 1.5), ("010", None)]
    result = project.cli("source", "freshness")
    assert result.exit_code == 0 and "WARN" in result.output, result.output


def test_run_state_modified_rebuilds_exactly_the_changed_model_and_its_descendants(pg_project, postgres):
    project = pg_project(
        {
            "models/a.sql": "{{ config(materialized='table') }} select 1 as x",
            "models/b.sql": "{{ config(materialized='table') }} select x from {{ ref('a') }}",
            "models/c.sql": "{{ config(materialized='table') }} select x from {{ ref('b') }}",
            "models/d.sql": "{{ config(materialized='table') }} select 4 as x",
        }
    )
    assert project.cli("run").exit_code == 0
    built = dict(
        postgres.query(
            "select relation_name, built_at from sqlflow_state.nodes where relation_name like %s",
            f'"{postgres.schema}".%',
        )
    )
    assert len(built) == 4
    project.write("models/b.sql", "{{ config(materialized='table') }} select x + 1 as x from {{ ref('a') }}")
    result = project.cli("run", "-s", "state:modified+")
    assert result.exit_code == 0, result.output
    assert statuses(project) == {"b": "success", "c": "success"}
    after = dict(
        postgres.query(
            "select relation_name, built_at from sqlflow_state.nodes where relation_name like %s",
            f'"{postgres.schema}".%',
        )
    )
    changed = {name.split(".")[1].strip('"') for name in after if after[name] != built[name]}
    assert changed == {"b", "c"}
    assert postgres.scalar(f'select x from "{postgres.schema}"."c"') == 2
    # Nothing modified any more: nothing to run.
    result = project.cli("run", "-s", "state:modified+")
    assert result.exit_code == 0 and statuses(project) == {}


def test_ctrl_c_cancels_the_running_query_through_the_driver(pg_project, postgres):
    project = pg_project(
        {
            "models/slow.sql": "{{ config(materialized='table') }} select 1 as s from (select pg_sleep(60)) as t"
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "sqlflow.cli", "run", "--project-dir", str(project.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        query = "select count(*) from pg_stat_activity where query ilike %s and state = 'active'"
        deadline = time.monotonic() + 30
        while postgres.scalar(query, "%sqlflow_tmp%pg_sleep(60)%") == 0 and process.poll() is None:
            assert time.monotonic() < deadline, "the model never started"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=40)  # far less than the 60 s query, if cancelled
    finally:
        process.kill()
    assert process.returncode == 130, output
    assert "cancelled" in output
    assert postgres.scalar(query, "%sqlflow_tmp%pg_sleep(60)%") == 0
    assert postgres.relations() == {}


def test_connection_errors_are_user_errors_without_the_password(make_project, postgres):
    profiles = postgres.profiles(port=1, password="{{ env_var('SQLFLOW_TEST_PG_PASSWORD') }}")
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles)
    process = subprocess.run(
        [sys.executable, "-m", "sqlflow.cli", "run", "--project-dir", str(project.root)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SQLFLOW_TEST_PG_PASSWORD": "s3cr3t-pw"},
    )
    assert process.returncode == 2
    assert "cannot connect" in process.stderr and "Traceback" not in process.stderr
    assert "s3cr3t-pw" not in process.stdout + process.stderr


def test_errors_are_warehouse_errors_and_the_connection_recovers(make_project, postgres):
    project = make_project({}, profiles=postgres.profiles())
    with commands.open_session(project.root) as session:
        adapter = adapter_for(session.project.target)
        adapter.open()
        try:
            with pytest.raises(WarehouseError, match="does not exist"):
                adapter.execute("select * from no_such_table_anywhere", fetch=True)
            assert adapter.execute("select 'a%' like 'a%%' as x", fetch=True).rows == [(True,)]
        finally:
            adapter.close()


def test_cross_database_macros_and_introspection_on_postgres(make_project, postgres):
    """dbt.* macros written for PostgreSQL, run_query and get_columns_in_relation on a real server."""
    orders = "select * from (values (1, 'placed', 10), (2, 'shipped', 20), (3, 'placed', 5)) as t(id, status, amount)"
    project = make_project(
        {
            "models/orders.sql": "{{ config(materialized='table') }} " + orders,
            "models/by_status.sql": (
                "{% set statuses = run_query('select distinct status from ' ~ ref('orders') ~ ' order by 1') %}"
                "select {% for s in (statuses.columns[0].values() if execute else ['placed']) %}"
                "sum(case when status = '{{ s }}' then amount else 0 end) as amount_{{ s }}{{ ',' if not loop.last }}"
                "{% endfor %} from {{ ref('orders') }}"
            ),
            "models/no_amount.sql": (
                "select {% for c in adapter.get_columns_in_relation(ref('orders')) if c.name != 'amount' %}"
                "{{ adapter.quote(c.name) }}{{ ',' if not loop.last }}{% endfor %} from {{ ref('orders') }}"
            ),
            "models/cross_db.sql": """\
            select
                {{ dbt.dateadd('day', 3, "date '2024-01-30'") }} as added,
                {{ dbt.datediff("date '2024-01-01'", "date '2024-03-01'", 'day') }} as days_between,
                {{ dbt.concat(["'x'", "'-'", "'y'"]) }} as joined,
                {{ dbt.hash("'abc'") }} = md5('abc') as hashed,
                {{ dbt.split_part("'a,b,c'", "','", 2) }} as second_part,
                {{ dbt.safe_cast("'7'", dbt.type_int()) }} as seven,
                {{ dbt.last_day("date '2024-02-10'", 'month') }} as month_end
            """,
        },
        settings="name: proj\nprofile: proj\ndialect: postgres\n",
        profiles=postgres.profiles(),
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    schema = postgres.schema
    assert postgres.query(f'select amount_placed, amount_shipped from "{schema}"."by_status"') == [(15, 20)]
    columns = postgres.query(
        f"select column_name from information_schema.columns where table_schema = '{schema}' "
        "and table_name = 'no_amount' order by ordinal_position"
    )
    assert columns == [("id",), ("status",)]
    row = postgres.query(
        "select added::date::text, days_between, joined, hashed, second_part, seven, month_end::text "
        f'from "{schema}"."cross_db"'
    )[0]
    assert row == ("2024-02-02", 60, "x-y", True, "b", 7, "2024-02-29")
