"""The Spark adapter in local mode, each test in a schema of its own (see spark_support.py).

One SparkSession serves the whole test process: the tests build small projects through the CLI
in-process and read the results back through that session.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spark_support import Spark
from spark_support import spark as spark  # a fixture
from spark_support import spark_session as spark_session  # a fixture

from sqlflow import commands
from sqlflow.adapters import adapter_for
from sqlflow.adapters.spark import SparkAdapter
from sqlflow.errors import WarehouseError
from sqlflow.project import Target


@pytest.fixture
def spark_project(make_project, spark: Spark):
    def make(files: dict[str, str], **extra):
        return make_project(files, profiles=spark.profiles(**extra))

    return make


def results(project) -> dict[str, tuple[str, str]]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return {r["unique_id"].split(".")[-1]: (r["status"], r["message"] or "") for r in data["results"]}


SECOND = "var('second', false)"
SHOP = {
    "seeds/raw_items.csv": "id,name,price,added_on\n1,pen,1.50,2024-01-01\n2,ink,3.25,2024-01-02\n",
    # A reserved word as a table name, a column needing quotes, DuckDB SQL transpiled to Spark's.
    "models/order.sql": (
        "select id, name as \"Mixed Case\", price::decimal(10, 2) as price, added_on from {{ ref('raw_items') }}\n"
        "{% if " + SECOND + " %} union all select 3, 'cap', 0.75, date '2024-01-02' {% endif %}"
    ),
    "models/priced.sql": "{{ config(materialized='ephemeral') }} select id, price * 2 as double_price from {{ ref('order') }}",
    "models/select.sql": (
        "{{ config(materialized='table') }}\n"
        "select o.id, o.\"Mixed Case\", p.double_price from {{ ref('order') }} as o join {{ ref('priced') }} as p using (id)"
    ),
    "models/events.sql": (
        "{{ config(materialized='incremental') }}\n"
        "select id, \"Mixed Case\" as name from {{ ref('order') }}\n"
        "{% if is_incremental() %} where id > (select max(id) from {{ this }}) {% endif %}"
    ),
    # Each day a partition; a run overwrites the days it recomputes, and only those.
    "models/daily.sql": (
        "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='added_on') }}\n"
        "select added_on, count(*) as items, sum(price) as total from {{ ref('order') }}\n"
        "{% if is_incremental() %} where added_on >= (select max(added_on) from {{ this }}) {% endif %}\n"
        "group by added_on"
    ),
    "snapshots/items.sql": (
        "{% snapshot items_history %}\n"
        "{{ config(unique_key='id', strategy='check', check_cols=['name'], hard_deletes='invalidate') }}\n"
        "select id, case when id = 1 and {{ " + SECOND + " }} then 'pencil' else \"Mixed Case\" end as name\n"
        "from {{ ref('order') }} where id < 2 or not {{ " + SECOND + " }}\n"
        "{% endsnapshot %}"
    ),
    "models/schema.yml": """
        models:
          - name: select
            columns:
              - name: id
                data_tests: [unique, not_null]
        unit_tests:
          - name: doubles_prices
            model: select
            given:
              - input: ref('order')
                rows: [{id: 7, "Mixed Case": x}]
              - input: ref('priced')
                rows: [{id: 7, double_price: 5}]
            expect:
              rows: [{id: 7, "Mixed Case": x, double_price: 5}]
        """,
}


def test_every_materialization_builds_and_rebuilds(spark_project, spark):
    project = spark_project(SHOP)
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert spark.relations() == {
        "raw_items": "table",
        "order": "view",
        "select": "table",
        "events": "table",
        "daily": "table",
        "items_history": "table",
    }
    assert results(project)["doubles_prices"][0] == "pass"
    result = project.cli("build", "--vars", "{second: true}")
    assert result.exit_code == 0, result.output
    found = results(project)
    assert found["events"] == ("success", "APPEND")
    assert found["daily"] == ("success", "INSERT_OVERWRITE")
    assert found["items_history"][1].startswith("snapshot: 1 changed, 0 new, 1 deleted")
    schema = spark.schema
    assert spark.query(f"select id, `Mixed Case`, double_price from {schema}.`select` order by id") == [
        (1, "pen", pytest.approx(3)),
        (2, "ink", pytest.approx(6.5)),
        (3, "cap", pytest.approx(1.5)),
    ]
    assert spark.query(f"select id, name from {schema}.events order by id") == [
        (1, "pen"),
        (2, "ink"),
        (3, "cap"),
    ]
    # 2024-01-01 was left alone; 2024-01-02 was recomputed and overwritten, not appended to.
    daily = spark.query(
        f"select cast(added_on as string), items, cast(total as string) from {schema}.daily order by 1"
    )
    assert daily == [("2024-01-01", 1, "1.50"), ("2024-01-02", 2, "4.00")]
    history = spark.query(
        f"select id, name, dbt_valid_to is null from {schema}.items_history order by id, dbt_valid_from"
    )
    assert history == [(1, "pen", False), (1, "pencil", True), (2, "ink", False)]
    # The state table holds one row per built relation, rewritten in place (parquet has no DELETE).
    names = spark.query(
        f"select relation_name, count(*) from sqlflow_state.nodes where relation_name like '`{schema}`.%' "
        "group by relation_name"
    )
    assert len(names) == 6 and {count for _, count in names} == {1}


def test_a_failing_rebuild_keeps_the_old_table(spark_project, spark):
    table = "{{ config(materialized='table') }} "
    project = spark_project({"models/totals.sql": table + "select 1 as id union all select 2"})
    assert project.cli("run").exit_code == 0
    project.write("models/totals.sql", table + "select raise_error('boom') as id")
    result = project.cli("run")
    assert result.exit_code == 1 and "boom" in result.output
    assert "Traceback" not in result.output
    assert spark.query(f"select count(*) from {spark.schema}.totals") == [(2,)]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            "incremental_strategy='merge', unique_key='id'",
            "incremental_strategy 'merge' needs a table format",
        ),
        ("unique_key='id'", "incremental_strategy 'merge' needs a table format"),
        ("incremental_strategy='delete+insert', unique_key='id'", "'delete+insert' needs a table format"),
        (
            "incremental_strategy='microbatch', event_time='ts', batch_size='day', begin='2024-01-01'",
            "'microbatch' needs a table format",
        ),
    ],
)
def test_strategies_the_table_format_cannot_do_are_compile_errors(spark_project, spark, config, message):
    project = spark_project(
        {"models/events.sql": f"{{{{ config(materialized='incremental', {config}) }}}} select 1 as id"}
    )
    result = project.cli("run")
    assert result.exit_code == 2, result.output
    assert message in result.output and "insert_overwrite" in result.output
    assert spark.relations() == {}  # nothing ran


def test_names_the_session_catalog_refuses_are_compile_errors(spark_project, spark):
    project = spark_project({"models/Mixed Case.sql": "select 1 as id"})
    result = project.cli("run")
    assert result.exit_code == 2
    assert "only letters, digits and _" in result.output and "'Mixed Case'" in result.output


def test_insert_overwrite_refuses_an_unpartitioned_table(spark_project, spark):
    model = "{{ config(materialized='incremental'%s) }} select 1 as id, date '2024-01-01' as day"
    project = spark_project({"models/days.sql": model % ""})
    assert project.cli("run").exit_code == 0
    project.write("models/days.sql", model % ", incremental_strategy='insert_overwrite', partition_by='day'")
    result = project.cli("run")
    assert result.exit_code == 1 and "is not partitioned" in result.output, result.output
    assert spark.query(f"select count(*) from {spark.schema}.days") == [(1,)]
    result = project.cli("run", "--full-refresh")
    assert result.exit_code == 0, result.output
    assert project.cli("run").exit_code == 0
    assert spark.query(f"select id from {spark.schema}.days") == [(1,)]


def test_an_update_matching_a_row_twice_leaves_the_table_unchanged(spark_project, spark):
    project = spark_project({"models/t.sql": "{{ config(materialized='table') }} select 1 as k, 'a' as v"})
    assert project.cli("run").exit_code == 0
    with commands.open_session(project.root) as session:
        adapter = session.adapter
        statement = (
            f"UPDATE `{spark.schema}`.`t` AS t SET v = s.v FROM (SELECT 1 AS k, 'b' AS v UNION ALL SELECT 1, 'c') AS s "
            "WHERE t.k = s.k"
        )
        import sqlglot

        with pytest.raises(WarehouseError, match="matches some rows more than once"):
            adapter.execute(sqlglot.parse_one(statement, read="spark"))
        update = sqlglot.parse_one(
            f"UPDATE `{spark.schema}`.`t` AS t SET v = 'z' WHERE t.k = 1", read="spark"
        )
        assert adapter.execute(update).rowcount == 1
    assert spark.query(f"select k, v from {spark.schema}.t") == [(1, "z")]
    assert set(spark.relations()) == {"t"}


def test_a_second_run_on_the_same_local_warehouse_waits_for_the_lock(spark_project, spark, tmp_path):
    project = spark_project({"models/a.sql": "select 1 as id"}, warehouse_dir=str(tmp_path / "wh"))
    with commands.open_session(project.root) as session:
        lock = adapter_for(session.project.target).run_lock()
        assert lock.try_acquire()
        try:
            result = project.cli("run", "--lock-timeout", "0")
        finally:
            lock.release()
    assert result.exit_code == 2 and "locked by another sqlflow run" in result.output


# --------------------------------------------------------------------------- settings (no Spark)


def _target(**settings) -> Target:
    return Target("p", "spark", "spark", "shop", None, 4, {"type": "spark", **settings}, Path("profiles.yml"))


def test_profile_settings():
    local = SparkAdapter(_target(warehouse_dir="/w/wh", spark_conf={"spark.sql.ansi.enabled": True}))
    conf = local.session_conf()
    assert local.master == "local[*]" and not local.is_connect
    assert conf["spark.sql.warehouse.dir"] == "/w/wh" and conf["spark.sql.ansi.enabled"] == "true"
    assert "databaseName=/w/wh/_sqlflow_metastore" in conf["spark.hadoop.javax.jdo.option.ConnectionURL"]
    cluster = SparkAdapter(_target(master="spark://h:7077", warehouse_dir="/w/wh"))
    assert not cluster.is_connect and "spark.sql.warehouse.dir" not in cluster.session_conf()
    connect = SparkAdapter(_target(master="sc://h:15002", token="t0ken"))
    assert connect.is_connect and connect.connect_url() == "sc://h:15002/;token=t0ken"
    assert "t0ken" not in connect.describe()
    assert SparkAdapter(_target(method="connect", master="h:15002")).connect_url() == "sc://h:15002"
    assert SparkAdapter(_target(file_format="delta")).supports_merge
    assert not SparkAdapter(_target()).supports_merge
