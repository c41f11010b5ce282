"""Installed packages' models, seeds, sources and YAML tests, built as dbt builds them, on real
DuckDB files through the CLI."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from test_user_errors import assert_user_error

PACKAGE = {
    "dbt_project.yml": """\
        name: shop_pkg
        version: '1.0.0'
        config-version: 2
        models:
          shop_pkg:
            +materialized: table
            staging:
              +materialized: view
        vars:
          currency: EUR
          shop_pkg:
            min_amount: 0
        """,
    "seeds/raw_orders.csv": "id,amount\n1,10\n2,20\n3,0\n",
    "models/staging/stg_orders.sql": """\
        select id, amount, '{{ var("currency") }}' as currency
        from {{ ref('raw_orders') }}
        where amount >= {{ var('min_amount') }}
        """,
    # Its own macro, called without its name as dbt lets a package's models call them.
    "models/order_totals.sql": """\
        select count(*) as n, sum(amount) as total, {{ cents('sum(amount)') }} as total_cents
        from {{ ref('stg_orders') }}
        """,
    "macros/cents.sql": """\
        {% macro cents(column) %}({{ column }} * 100){% endmacro %}
        {% test at_least(model, column_name, value) %}
        select * from {{ model }} where {{ column_name }} < {{ value }}
        {% endtest %}
        """,
    "models/legacy.sql": "select 1 as x\n",
    "tests/no_negative_amounts.sql": "select * from {{ ref('stg_orders') }} where amount < 0\n",
    "models/payments.sql": "select id from {{ source('pay', 'payments') }}\n",
    "models/docs.md": "{% docs stg_orders %}Orders, staged.{% enddocs %}\n",
    "models/schema.yml": """\
        version: 2
        sources:
          - name: pay
            schema: "{{ var('pay_schema', 'nowhere') }}"
            tables:
              - name: payments
                columns:
                  - name: id
                    data_tests: [not_null]
        models:
          - name: stg_orders
            description: "{{ doc('stg_orders') }}"
            columns:
              - name: id
                data_tests: [unique, not_null]
          - name: order_totals
            config:
              tags: [totals]
            columns:
              - name: n
                data_tests:
                  - at_least: {value: 1}
        """,
}

ROOT_SETTINGS = """\
name: proj
profile: proj
on-run-start:
  - "create schema if not exists raw"
  - "create or replace table raw.payments as select 1 as id"
models:
  shop_pkg:
    +schema: pkg
    legacy:
      +enabled: false
vars:
  pay_schema: raw
  shop_pkg:
    min_amount: 5
"""


def write_files(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


@pytest.fixture
def shop(make_project, tmp_path):
    package = write_files(tmp_path / "shop_pkg", PACKAGE)
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/report.sql": "select * from {{ ref('order_totals') }}\n",
            "models/named.sql": "select * from {{ ref('shop_pkg', 'stg_orders') }}\n",
        },
        settings=ROOT_SETTINGS,
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    return project


def relations(project) -> dict[str, tuple[str, str]]:
    rows = project.query(
        "select table_name, table_schema, table_type from information_schema.tables "
        "where table_schema != 'sqlflow_state'"
    )
    return {name: (schema, kind) for name, schema, kind in rows}


def test_build_builds_and_tests_a_packages_models_seeds_and_sources(shop):
    result = shop.cli("build")
    assert result.exit_code == 0, result.output
    built = relations(shop)
    # Root `models: shop_pkg: +schema: pkg` puts them in <target schema>_pkg (generate_schema_name);
    # the package's own config makes staging views and the rest tables.
    assert built["stg_orders"] == ("main_pkg", "VIEW")
    assert built["order_totals"] == ("main_pkg", "BASE TABLE")
    assert built["raw_orders"] == ("main", "BASE TABLE")  # seeds: no `seeds:` schema set
    assert built["report"] == ("main", "VIEW")
    assert "legacy" not in built  # +enabled: false from the root
    # The root's var scoped to the package wins over the package's; its global default stays.
    assert shop.query("select id, currency from main_pkg.stg_orders order by id") == [(1, "EUR"), (2, "EUR")]
    assert shop.query("select n, total, total_cents from report") == [(2, 30, 3000)]
    assert shop.query("select count(*) from named") == [(2,)]
    tests = ("unique_stg_orders_id", "not_null_stg_orders_id", "not_null_source_pay_payments_id")
    for test in (*tests, "at_least_order_totals_n__1", "no_negative_amounts"):
        assert test in result.output
    results = json.loads((shop.root / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses["model.shop_pkg.stg_orders"] == "success"
    assert statuses["seed.shop_pkg.raw_orders"] == "success"
    assert statuses["test.shop_pkg.unique_stg_orders_id"] == "pass"
    assert (
        shop.root / "target" / "compiled" / "shop_pkg" / "models" / "staging" / "stg_orders.sql"
    ).is_file()


def test_manifest_names_package_nodes_as_dbt_does(shop):
    assert shop.cli("compile").exit_code == 0
    manifest = json.loads((shop.root / "target" / "manifest.json").read_text())
    nodes = manifest["nodes"]
    stg = nodes["model.shop_pkg.stg_orders"]
    assert stg["package_name"] == "shop_pkg"
    assert stg["fqn"] == ["shop_pkg", "staging", "stg_orders"]
    assert stg["original_file_path"] == "models/staging/stg_orders.sql"
    assert stg["description"] == "Orders, staged."
    assert stg["depends_on"]["nodes"] == ["seed.shop_pkg.raw_orders"]
    assert nodes["model.shop_pkg.order_totals"]["config"]["tags"] == ["totals"]
    assert nodes["seed.shop_pkg.raw_orders"]["fqn"] == ["shop_pkg", "raw_orders"]
    assert nodes["test.shop_pkg.unique_stg_orders_id"]["package_name"] == "shop_pkg"
    assert "model.shop_pkg.legacy" not in nodes
    assert nodes["model.proj.report"]["depends_on"]["nodes"] == ["model.shop_pkg.order_totals"]
    assert nodes["model.proj.named"]["depends_on"]["nodes"] == ["model.shop_pkg.stg_orders"]
    source = manifest["sources"]["source.shop_pkg.pay.payments"]
    assert source["package_name"] == "shop_pkg" and source["fqn"] == ["shop_pkg", "pay", "payments"]
    assert source["schema"] == "raw"  # rendered: the project's global var over the call's default


def test_selection_by_package_name_and_method_and_across_packages(shop):
    def listed(*selector: str) -> set[str]:
        result = shop.cli("ls", *selector, "--output", "json")
        assert result.exit_code == 0, result.output
        return {json.loads(line)["unique_id"] for line in result.output.splitlines() if line.startswith("{")}

    package_nodes = {
        "model.shop_pkg.stg_orders",
        "model.shop_pkg.order_totals",
        "model.shop_pkg.payments",
        "seed.shop_pkg.raw_orders",
        "test.shop_pkg.unique_stg_orders_id",
        "test.shop_pkg.not_null_stg_orders_id",
        "test.shop_pkg.not_null_source_pay_payments_id",
        "test.shop_pkg.at_least_order_totals_n__1",
        "test.shop_pkg.no_negative_amounts",
    }
    # A package's name selects all its nodes (dbt matches the fqn's first part), as `package:` does.
    assert listed("-s", "shop_pkg") == {*package_nodes, "source.shop_pkg.pay.payments"}
    assert listed("-s", "package:shop_pkg") == {*package_nodes, "source.shop_pkg.pay.payments"}
    assert listed("-s", "+report", "--resource-type", "model") == {
        "model.proj.report",
        "model.shop_pkg.order_totals",
        "model.shop_pkg.stg_orders",
    }
    assert "model.proj.report" in listed("-s", "raw_orders+")
    result = shop.cli("build", "-s", "package:shop_pkg")
    assert result.exit_code == 0, result.output
    assert set(relations(shop)) == {"raw_orders", "stg_orders", "order_totals", "payments"}


def test_a_changed_package_model_is_seen_by_the_next_run(shop, tmp_path):
    assert shop.cli("build").exit_code == 0
    path = tmp_path / "shop_pkg" / "models" / "order_totals.sql"
    path.write_text("select count(*) * 10 as n, sum(amount) as total from {{ ref('stg_orders') }}\n")
    result = shop.cli("run", "-s", "order_totals")
    assert result.exit_code == 0, result.output
    assert shop.query("select n from main_pkg.order_totals") == [(20,)]
    # And a changed var in the package's dbt_project.yml.
    settings = tmp_path / "shop_pkg" / "dbt_project.yml"
    settings.write_text(settings.read_text().replace("currency: EUR", "currency: USD"))
    assert shop.cli("run", "-s", "stg_orders").exit_code == 0
    assert shop.scalar("select any_value(currency) from main_pkg.stg_orders") == "USD"


def test_a_one_argument_ref_that_two_packages_answer_is_an_error(shop, tmp_path):
    other = write_files(
        tmp_path / "other_pkg",
        {
            "dbt_project.yml": "name: other_pkg\nversion: '1.0.0'\nconfig-version: 2\n",
            "models/order_totals.sql": "select 1 as n\n",
        },
    )
    shop.write("packages.yml", f"packages:\n  - local: {tmp_path / 'shop_pkg'}\n  - local: {other}\n")
    assert shop.cli("deps").exit_code == 0
    assert_user_error(
        shop.cli("compile"),
        "ref('order_totals') is ambiguous",
        "other_pkg, shop_pkg",
        "models/report.sql:1",
        "ref('other_pkg', 'order_totals')",
    )
    shop.write("models/report.sql", "select * from {{ ref('other_pkg', 'order_totals') }}\n")
    result = shop.cli("run", "-s", "+report")
    assert result.exit_code == 0, result.output
    assert shop.query("select n from report") == [(1,)]
    manifest = json.loads((shop.root / "target" / "manifest.json").read_text())
    assert manifest["nodes"]["model.proj.report"]["depends_on"]["nodes"] == ["model.other_pkg.order_totals"]


def test_ref_resolution_order_and_errors(shop, tmp_path):
    # A package's ref finds the root project's model first, as dbt searches (root, own, others).
    shop.write("models/raw_orders.sql", "select 7 as id, 7 as amount\n")
    assert_user_error(
        shop.cli("compile"),
        "model.proj.raw_orders and seed.shop_pkg.raw_orders both build main.raw_orders",
        "+schema",
    )
    shop.write("models/raw_orders.sql", "{{ config(alias='root_orders') }} select 7 as id, 7 as amount\n")
    result = shop.cli("run", "-s", "+stg_orders")
    assert result.exit_code == 0, result.output
    assert shop.query("select id from main_pkg.stg_orders") == [(7,)]
    shop.remove("models/raw_orders.sql")
    shop.write("models/report.sql", "select * from {{ ref('legacy') }}\n")
    assert_user_error(shop.cli("compile"), "report refs 'legacy', which is disabled", "models/report.sql:1")
    shop.write("models/report.sql", "select * from {{ ref('nope_pkg', 'order_totals') }}\n")
    assert_user_error(shop.cli("compile"), "no package named 'nope_pkg'", "models/report.sql:1")


def test_a_package_var_holding_a_source_points_its_model_at_the_projects_table(make_project, tmp_path):
    # Fivetran's source packages: `vars: {stripe__charge: "{{ source('stripe', 'charge') }}"}` in
    # their dbt_project.yml, `select * from {{ var('stripe__charge') }}` in their models; the
    # project may point the var at a table of its own.
    package = write_files(
        tmp_path / "pay_pkg",
        {
            "dbt_project.yml": """\
                name: pay_pkg
                config-version: 2
                vars:
                  pay_pkg:
                    pay__charges: "{{ source('pay', 'charges') }}"
                """,
            "models/src.yml": "sources:\n  - name: pay\n    schema: raw\n    tables: [{name: charges}]\n",
            "models/stg_charges.sql": "select id, amount from {{ var('pay__charges') }}\n",
        },
    )
    settings = (
        "name: proj\nprofile: proj\non-run-start:\n  - create schema if not exists raw\n"
        "  - create or replace table raw.charges as select 1 as id, 5 as amount\n"
    )
    project = make_project({"packages.yml": f"packages:\n  - local: {package}\n"}, settings=settings)
    assert project.cli("deps").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select id, amount from stg_charges") == [(1, 5)]
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    assert manifest["nodes"]["model.pay_pkg.stg_charges"]["depends_on"]["nodes"] == [
        "source.pay_pkg.pay.charges"
    ]

    # The project's own var wins, and may name one of the project's models.
    project.write("models/my_charges.sql", "select 2 as id, 7 as amount")
    project.write(
        "sqlflow.yml", settings + "vars:\n  pay_pkg:\n    pay__charges: \"{{ ref('my_charges') }}\"\n"
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select id, amount from stg_charges") == [(2, 7)]
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    assert manifest["nodes"]["model.pay_pkg.stg_charges"]["depends_on"]["nodes"] == ["model.proj.my_charges"]


def test_a_unit_test_can_give_rows_for_a_packages_model(shop):
    # The given input names a package's model: its built relation's columns type the rows
    # (this looked the name up among the project's own models only, a KeyError).
    shop.write(
        "models/report_tests.yml",
        """\
        unit_tests:
          - name: report_passes_totals_through
            model: report
            given:
              - input: ref('order_totals')
                rows:
                  - {n: 2, total: 30, total_cents: 3000}
            expect:
              rows:
                - {n: 2, total: 30, total_cents: 3000}
        """,
    )
    assert shop.cli("build", "--exclude", "test_type:unit").exit_code == 0
    result = shop.cli("test", "-s", "test_type:unit")
    assert result.exit_code == 0, result.output


def test_an_env_var_in_a_packages_settings_is_seen_by_the_next_load(make_project, tmp_path, monkeypatch):
    # The package's `+schema` reads an environment variable: a new value must not be served the
    # schema the load cache kept from the last command.
    package = write_files(
        tmp_path / "env_pkg",
        {
            "dbt_project.yml": """\
                name: env_pkg
                models:
                  env_pkg:
                    +schema: "{{ env_var('SHOP_PKG_SCHEMA', 'first') }}"
                """,
            "models/pkg_model.sql": "select 1 as x\n",
        },
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/reader.sql": "select * from {{ ref('pkg_model') }}\n",
        }
    )
    assert project.cli("deps").exit_code == 0
    compiled = project.root / "target" / "compiled" / "proj" / "models" / "reader.sql"
    monkeypatch.delenv("SHOP_PKG_SCHEMA", raising=False)
    assert project.cli("compile").exit_code == 0
    assert '"main_first"."pkg_model"' in compiled.read_text()
    monkeypatch.setenv("SHOP_PKG_SCHEMA", "second")
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert '"main_second"."pkg_model"' in compiled.read_text()


def test_run_operation_refs_a_packages_models(shop):
    shop.write(
        "macros/totals.sql",
        "{% macro totals() %}"
        "{{ log('one ' ~ run_query('select n from ' ~ ref('order_totals')).rows[0][0], info=True) }}"
        "{{ log('two ' ~ run_query('select count(*) from ' ~ ref('shop_pkg', 'stg_orders')).rows[0][0], info=True) }}"
        "{{ log('source ' ~ source('pay', 'payments'), info=True) }}"
        "{% endmacro %}",
    )
    assert shop.cli("build").exit_code == 0
    result = shop.cli("run-operation", "totals")
    assert result.exit_code == 0, result.output
    assert "one 2" in result.output and "two 2" in result.output  # min_amount 5 leaves two orders
    assert '"raw"."payments"' in result.output


def test_a_package_nodes_manifest_path_is_inside_its_own_model_folder(make_project, tmp_path):
    package = write_files(
        tmp_path / "odd_pkg",
        {
            "dbt_project.yml": "name: odd_pkg\nconfig-version: 2\nmodel-paths: [src]\nseed-paths: [data]\n",
            "src/marts/odd.sql": "select 1 as x\n",
            "data/odd_seed.csv": "a\n1\n",
        },
    )
    project = make_project({"packages.yml": f"packages:\n  - local: {package}\n"})
    assert project.cli("deps").exit_code == 0
    for _ in range(2):  # a cold load, then one from the load cache
        assert project.cli("compile").exit_code == 0
        nodes = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"]
        assert nodes["model.odd_pkg.odd"]["original_file_path"] == "src/marts/odd.sql"
        assert nodes["model.odd_pkg.odd"]["path"] == "marts/odd.sql"
        assert nodes["seed.odd_pkg.odd_seed"]["path"] == "odd_seed.csv"
