"""`sqlflow run-operation`: a macro run on its own against the warehouse, as dbt's."""

from __future__ import annotations

from test_user_errors import assert_user_error

MACROS = """\
{% macro make_numbers(n=2, table='numbers') %}
  {% do run_query('create or replace table ' ~ target.schema ~ '.' ~ table ~ ' as select * from range(' ~ n ~ ') as t(i)') %}
  {% set total = run_query('select count(*) from ' ~ target.schema ~ '.' ~ table).rows[0][0] %}
  {{ log('made ' ~ total ~ ' rows in ' ~ table, info=True) }}
{% endmacro %}

{% macro broken() %}
  {% do run_query('select * from no_such_table') %}
{% endmacro %}
"""


def test_run_operation_runs_a_macro_with_its_arguments(make_project):
    project = make_project({"macros/ops.sql": MACROS})
    result = project.cli("run-operation", "make_numbers", "--args", "{n: 3, table: three}")
    assert result.exit_code == 0, result.output
    assert "made 3 rows in three" in result.output
    assert project.scalar("select count(*) from three") == 3
    result = project.cli("run-operation", "make_numbers")  # the macro's defaults
    assert result.exit_code == 0, result.output
    assert project.scalar("select count(*) from numbers") == 2


def test_run_operation_finds_package_macros_by_namespace(make_project, tmp_path):
    package = tmp_path / "ops_pkg"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: ops_pkg\n")
    (package / "macros" / "ops.sql").write_text(MACROS)
    project = make_project({"packages.yml": f"packages:\n  - local: {package}\n"})
    assert project.cli("deps").exit_code == 0
    result = project.cli("run-operation", "ops_pkg.make_numbers", "--args", '{"n": 5}')
    assert result.exit_code == 0, result.output
    assert project.scalar("select count(*) from numbers") == 5


def test_run_operation_errors(make_project):
    project = make_project({"macros/ops.sql": MACROS})
    assert_user_error(project.cli("run-operation", "make_numbres"), "no macro 'make_numbres'", "make_numbers")
    assert_user_error(project.cli("run-operation", "nowhere.make_numbers"), "no package 'nowhere'")
    assert_user_error(project.cli("run-operation", "make_numbers", "--args", "{n: [1"), "--args")
    assert_user_error(project.cli("run-operation", "make_numbers", "--args", "{m: 1}"), "cannot take")
    output = assert_user_error(project.cli("run-operation", "broken"), "no_such_table", code=1)
    assert "macros/ops.sql" in output


def test_run_operation_can_ref_and_source(make_project):
    project = make_project(
        {
            "models/orders.sql": "{{ config(materialized='table') }} select 1 as id union all select 2",
            "models/sources.yml": "sources:\n  - name: raw\n    schema: main\n    tables: [{name: orders}]\n",
            "macros/count.sql": (
                "{% macro count_rows() %}"
                "{{ log('model ' ~ run_query('select count(*) from ' ~ ref('orders')).rows[0][0], info=True) }}"
                "{{ log('source ' ~ run_query('select count(*) from ' ~ source('raw', 'orders')).rows[0][0], info=True) }}"
                "{% endmacro %}"
            ),
        }
    )
    assert project.cli("run").exit_code == 0
    result = project.cli("run-operation", "count_rows")
    assert result.exit_code == 0, result.output
    assert "model 2" in result.output and "source 2" in result.output
    project.write("macros/count.sql", "{% macro count_rows() %}{{ ref('nowhere') }}{% endmacro %}")
    assert_user_error(project.cli("run-operation", "count_rows"), "ref('nowhere') names no model")


def test_run_operation_finds_a_package_macro_without_its_prefix(make_project, tmp_path):
    # As `dbt run-operation generate_source` runs codegen's macro.
    package = tmp_path / "ops_pkg"
    (package / "macros").mkdir(parents=True)
    (package / "dbt_project.yml").write_text("name: ops_pkg\n")
    (package / "macros" / "ops.sql").write_text(MACROS)
    other = tmp_path / "other_pkg"
    (other / "macros").mkdir(parents=True)
    (other / "dbt_project.yml").write_text("name: other_pkg\n")
    project = make_project({"packages.yml": f"packages:\n  - local: {package}\n"})
    assert project.cli("deps").exit_code == 0
    result = project.cli("run-operation", "make_numbers", "--args", "{n: 4}")
    assert result.exit_code == 0, result.output
    assert project.scalar("select count(*) from numbers") == 4
    (other / "macros" / "ops.sql").write_text(MACROS)
    project.write("packages.yml", f"packages:\n  - local: {package}\n  - local: {other}\n")
    assert project.cli("deps").exit_code == 0
    assert_user_error(
        project.cli("run-operation", "make_numbers"),
        "packages ops_pkg, other_pkg all have",
        "ops_pkg.make_numbers",
    )


def test_graph_and_api_are_in_the_context(make_project):
    project = make_project(
        {
            "models/orders.sql": "select 1 as id",
            "models/totals.sql": "select count(*) as n from {{ ref('orders') }}",
            "macros/inspect.sql": """\
            {% macro inspect() %}
              {% set node = graph.nodes.values() | selectattr('name', 'equalto', 'totals') | first %}
              {{ log('parents ' ~ node.depends_on.nodes | join(','), info=True) }}
              {{ log('relation ' ~ api.Relation.create(schema='main', identifier='Totals'), info=True) }}
            {% endmacro %}
            """,
        }
    )
    result = project.cli("run-operation", "inspect")
    assert result.exit_code == 0, result.output
    assert "parents model.proj.orders" in result.output
    assert 'relation "main"."Totals"' in result.output
