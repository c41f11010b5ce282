"""Templates that read the warehouse while compiling (run_query, statement/load_result,
adapter.get_columns_in_relation/get_relation): compiled when built, after their parents, on real
DuckDB files."""

from __future__ import annotations

import json

from test_user_errors import assert_user_error

ORDERS = (
    "select * from (values (1, 'placed', 10), (2, 'shipped', 20), (3, 'placed', 5)) as t(id, status, amount)"
)

# Pivots on the statuses found in orders: dbt_utils.get_column_values' pattern.
PIVOT = """\
{% set statuses = run_query("select distinct status from " ~ ref('orders') ~ " order by 1") %}
select
{%- if execute %}
{%- for status in statuses.columns[0].values() %}
    sum(case when status = '{{ status }}' then amount else 0 end) as amount_{{ status }}{{ "," if not loop.last }}
{%- endfor %}
{%- else %} 1 as placeholder
{%- endif %}
from {{ ref('orders') }}
"""

# Every column but one: dbt_utils.star's pattern.
STAR = """\
select
{%- for column in adapter.get_columns_in_relation(ref('orders')) if column.name != 'amount' %}
    {{ adapter.quote(column.name) }}{{ "," if not loop.last }}
{%- endfor %}
from {{ ref('orders') }}
"""

STATEMENT = """\
{% call statement('total', fetch_result=True) %}
select sum(amount) as total, count(*) as n from {{ ref('orders') }}
{% endcall %}
{% set result = load_result('total') %}
select {{ result['data'][0][0] if result else 0 }} as total, {{ result['table'].rows[0]['n'] if result else 0 }} as n
"""

EXISTS = """\
select
    {{ 'true' if load_relation(ref('orders')) is not none else 'false' }} as orders_exists,
    {{ 'true' if adapter.get_relation(database=none, schema=target.schema, identifier='nowhere') is none else 'false' }} as nowhere_missing
"""


def introspecting(make_project):
    return make_project(
        {
            "models/orders.sql": ORDERS,
            "models/by_status.sql": PIVOT,
            "models/star.sql": STAR,
            "models/statement_total.sql": STATEMENT,
            "models/relation_checks.sql": EXISTS,
        }
    )


def test_models_that_read_the_warehouse_are_compiled_after_their_parents_on_a_fresh_database(make_project):
    project = introspecting(make_project)
    result = project.cli("run")  # orders does not exist before this run
    assert result.exit_code == 0, result.output
    assert project.query("select amount_placed, amount_shipped from by_status") == [(15, 20)]
    assert [c for (c,) in project.query("select column_name from (describe star)")] == ["id", "status"]
    assert project.query("select total, n from statement_total") == [(35, 3)]
    assert project.query("select orders_exists, nowhere_missing from relation_checks") == [(True, True)]
    compiled = (project.root / "target" / "compiled" / "proj" / "models" / "by_status.sql").read_text()
    assert "amount_placed" in compiled and "amount_shipped" in compiled
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    # Compiled only when built: manifest.json (written before the run) does not claim its SQL.
    assert "compiled_code" not in manifest["nodes"]["model.proj.by_status"]


def test_a_new_upstream_value_changes_the_next_build(make_project):
    project = introspecting(make_project)
    assert project.cli("run").exit_code == 0
    project.write("models/orders.sql", ORDERS.replace("(3, 'placed', 5)", "(3, 'returned', 5)"))
    assert project.cli("run").exit_code == 0
    assert project.query("select amount_placed, amount_returned, amount_shipped from by_status") == [
        (10, 5, 20)
    ]


def test_compile_reads_the_warehouse_when_there_is_one_and_warns_when_not(make_project):
    project = introspecting(make_project)
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert "by_status: not compiled: it reads the warehouse" in result.output
    assert not (project.root / "target" / "compiled" / "proj" / "models" / "by_status.sql").exists()
    assert not project.db_path.exists()  # compile never creates the warehouse
    assert project.cli("run").exit_code == 0
    result = project.cli("compile", "-s", "star")
    assert result.exit_code == 0, result.output
    assert '"id"' in result.output and '"amount"' not in result.output


def test_a_failing_query_fails_only_its_model_and_skips_its_children(make_project):
    project = introspecting(make_project)
    project.write("models/broken.sql", "{% set r = run_query('select * from no_such_table') %}select 1 as x")
    project.write("models/child.sql", "select * from {{ ref('broken') }}")
    result = project.cli("run")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "a query run while compiling failed" in result.output and "no_such_table" in result.output
    statuses = {
        r["unique_id"]: r["status"]
        for r in json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    }
    assert statuses["model.proj.broken"] == "error"
    assert statuses["model.proj.child"] == "skipped"
    assert statuses["model.proj.by_status"] == "success"


def test_unchanged_introspecting_models_are_not_state_modified(make_project):
    project = introspecting(make_project)
    assert project.cli("run").exit_code == 0
    result = project.cli("ls", "-s", "state:modified", "-o", "name")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ""
    project.write("models/by_status.sql", PIVOT.replace("as amount_{{ status }}", "as total_{{ status }}"))
    result = project.cli("ls", "-s", "state:modified", "-o", "name")
    assert result.output.split() == ["by_status"]


def test_tests_that_read_the_warehouse_run_after_their_model(make_project):
    project = make_project(
        {
            "models/orders.sql": ORDERS,
            "macros/has_columns.sql": """\
            {% test has_columns(model, names) %}
            {% set found = adapter.get_columns_in_relation(model) | map(attribute='name') | list %}
            {% set missing = [] %}
            {% for n in names if n not in found %}{% do missing.append(n) %}{% endfor %}
            select 1 as missing_column from (select 1) as one where {{ 'true' if missing else 'false' }}
            {% endtest %}
            """,
            "models/schema.yml": """\
            models:
              - name: orders
                data_tests:
                  - has_columns: {names: [id, status]}
            """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    project.write(
        "models/schema.yml",
        "models:\n  - name: orders\n    data_tests:\n      - has_columns: {names: [id, colour]}\n",
    )
    result = project.cli("build")
    assert result.exit_code == 1, result.output


def test_relations_are_what_packages_check_for(make_project):
    # dbt_utils' _is_relation: `obj is mapping and obj.get('metadata', {}).get('type', '').endswith('Relation')`.
    project = make_project(
        {
            "models/orders.sql": ORDERS,
            "models/relation_check.sql": """\
            {% set r = ref('orders') %}
            select {{ (r is mapping and r.get('metadata', {}).get('type', '').endswith('Relation')) | lower }} as is_relation,
                   {{ r.is_cte | lower }} as is_cte,
                   '{% for k, v in r | items %}{{ k }}={{ v }};{% endfor %}' as parts,
                   '{{ r.get("schema") }}' as via_get
            """,
        }
    )
    assert project.cli("run").exit_code == 0
    assert project.query("select is_relation, is_cte, parts, via_get from relation_check") == [
        (True, False, "database=None;schema=main;identifier=orders;", "main")
    ]


def test_unsupported_adapter_methods_say_so(make_project):
    project = make_project({"models/m.sql": "{% do adapter.drop_relation(this) %}select 1 as x"})
    assert_user_error(
        project.cli("compile"), "adapter.drop_relation() is not offered by sqlflow", "models/m.sql"
    )


def test_project_hooks_read_the_warehouse_when_they_run(make_project):
    project = make_project(
        {"models/orders.sql": ORDERS},
        settings="""\
name: proj
profile: proj
on-run-end:
  - "{% set r = run_query('select count(*) from ' ~ target.schema ~ '.orders') %}create table audit as select {{ r.rows[0][0] }} as n"
""",
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.scalar("select n from audit") == 3


def test_an_ephemeral_that_reads_the_warehouse_defers_its_readers(make_project):
    project = make_project(
        {
            "models/orders.sql": ORDERS,
            "models/statuses.sql": (
                "{{ config(materialized='ephemeral') }}"
                "{% set n = run_query('select count(*) from ' ~ ref('orders')) %}"
                "select status, {{ n.rows[0][0] if execute else 0 }} as total_orders from {{ ref('orders') }}"
            ),
            "models/summary.sql": "select distinct status, total_orders from {{ ref('statuses') }}",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select status, total_orders from summary order by 1") == [
        ("placed", 3),
        ("shipped", 3),
    ]
    assert (project.root / "target" / "compiled" / "proj" / "models" / "summary.sql").exists()


def test_many_deferred_models_on_many_threads(make_project):
    files = {"models/orders.sql": ORDERS}
    for i in range(24):
        files[f"models/star_{i:02}.sql"] = STAR
    project = make_project(files)
    result = project.cli("run", "--threads", "4")
    assert result.exit_code == 0, result.output
    compiled = project.root / "target" / "compiled" / "proj" / "models"
    assert all((compiled / f"star_{i:02}.sql").exists() for i in range(24))
    assert {c for (c,) in project.query("select column_name from (describe star_23)")} == {"id", "status"}


def test_a_microbatch_model_that_reads_the_warehouse(make_project):
    project = make_project(
        {
            "models/events.sql": "{{ config(materialized='table', event_time='ts') }}"
            "select 1 as id, timestamp '2024-01-02 10:00:00' as ts, 'x' as payload",
            "models/daily.sql": (
                "{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts', "
                "batch_size='day', begin='2024-01-01', end='2024-01-04') }}"
                "select {% for c in adapter.get_columns_in_relation(ref('events')) %}{{ c.name }}"
                "{{ ',' if not loop.last }}{% endfor %} from {{ ref('events') }}"
            ),
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select id, payload from daily") == [(1, "x")]


def test_statement_without_fetch_result_gives_empty_data(make_project):
    project = make_project(
        {
            "models/orders.sql": ORDERS,
            "models/m.sql": (
                "{% call statement('probe') %}select 1 from {{ ref('orders') }}{% endcall %}"
                "{% set r = load_result('probe') %}"
                "select {{ (r['data'] | length) if execute else 0 }} as n, "
                "{{ (r['table'].rows | length) if execute else 0 }} as t"
            ),
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select n, t from m") == [(0, 0)]
