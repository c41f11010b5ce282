"""Unit tests (YAML `unit_tests:`) on real DuckDB files: given rows in, expected rows out."""

from __future__ import annotations

import json

import pytest

FILES = {
    "seeds/raw_orders.csv": "id,amount_cents,ordered_at\n1,1000,2024-01-01\n2,250,2024-01-02\n",
    "models/orders.sql": (
        "select id as order_id, amount_cents / 100.0 as amount, cast(ordered_at as date) as order_date\n"
        "from {{ ref('raw_orders') }}\n"
    ),
    "models/big_orders.sql": (
        "select order_id, amount, order_date + interval 1 day as due\n"
        "from {{ ref('orders') }} where amount >= {{ var('threshold', 5) }}\n"
    ),
}


def results(project) -> dict[str, dict]:
    data = json.loads((project.root / "target/run_results.json").read_text())
    return {r["unique_id"]: r for r in data["results"]}


def relations(project) -> set[str]:
    if not project.db_path.exists():
        return set()
    return {
        r[0]
        for r in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
    }


def unit(yaml_body: str) -> str:
    return "unit_tests:\n" + yaml_body


@pytest.fixture
def shop(make_project):
    return make_project(
        {
            **FILES,
            "models/unit.yml": unit(
                """\
  - name: keeps_big_orders
    model: big_orders
    given:
      - input: ref('orders')
        rows:
          - {order_id: 1, amount: 10, order_date: 2024-03-01}
          - {order_id: 2, amount: 1, order_date: 2024-03-02}
    expect:
      rows:
        - {order_id: 1, amount: 10, due: 2024-03-02 00:00:00}
"""
            ),
        }
    )


def test_unit_test_passes_without_building_anything(shop):
    result = shop.cli("test", "-s", "test_type:unit")
    assert result.exit_code == 0, result.output
    assert results(shop) == {
        "unit_test.proj.big_orders.keeps_big_orders": results(shop)[
            "unit_test.proj.big_orders.keeps_big_orders"
        ]
    }
    assert results(shop)["unit_test.proj.big_orders.keeps_big_orders"]["status"] == "pass"
    assert not {"orders", "big_orders", "raw_orders"} & relations(shop)


def test_failing_unit_test_prints_a_row_diff_and_build_skips_the_model(shop):
    shop.write(
        "models/big_orders.sql",
        "select order_id, amount * 2 as amount, order_date as due from {{ ref('orders') }}\n",
    )
    result = shop.cli("build")
    assert result.exit_code == 1
    by_id = results(shop)
    assert by_id["unit_test.proj.big_orders.keeps_big_orders"]["status"] == "fail"
    assert by_id["model.proj.big_orders"]["status"] == "skipped"
    assert by_id["model.proj.orders"]["status"] == "success"
    assert "- 1 | 10 | 2024-03-02 00:00:00" in result.output
    assert "+ 1 | 20 | 2024-03-01" in result.output
    assert "+ 2 | 2 | 2024-03-02" in result.output
    assert "big_orders" not in relations(shop)


def test_unit_test_runs_before_its_model_in_build(shop):
    assert shop.cli("build").exit_code == 0
    order = list(results(shop))
    assert order.index("unit_test.proj.big_orders.keeps_big_orders") < order.index("model.proj.big_orders")


def test_given_rows_take_the_types_of_the_built_upstream_relation(make_project):
    # order_date is given as text; once `orders` exists its DATE type is used, so `+ interval` works
    project = make_project(
        {
            **FILES,
            "models/unit.yml": unit(
                """\
  - name: typed_from_upstream
    model: big_orders
    given:
      - input: ref('orders')
        format: csv
        rows: |
          order_id,amount,order_date
          7,99.5,2024-02-28
    expect:
      format: csv
      rows: |
        order_id,amount,due
        7,99.5,2024-02-29 00:00:00
"""
            ),
        }
    )
    assert project.cli("run", "--exclude", "big_orders").exit_code == 1  # seeds are not built by run
    assert project.cli("build", "--exclude", "test_type:unit").exit_code == 0
    result = project.cli("test", "-s", "test_type:unit")
    assert result.exit_code == 0, result.output


def test_sources_sql_rows_fixtures_vars_and_env_overrides(make_project, monkeypatch):
    monkeypatch.setenv("SQLFLOW_TEST_REGION", "eu")
    project = make_project(
        {
            "models/sources.yml": "sources:\n  - name: app\n    tables:\n      - name: events\n",
            "models/regional.sql": (
                "select kind, count(*) as n, '{{ env_var('SQLFLOW_TEST_REGION') }}' as region\n"
                "from {{ source('app', 'events') }} where kind != '{{ var('skip_kind', 'none') }}' group by kind\n"
            ),
            "data_tests/fixtures/expected_regional.csv": "kind,n,region\nclick,2,us\n",
            "models/unit.yml": unit(
                """\
  - name: counts_by_kind
    model: regional
    given:
      - input: source('app', 'events')
        format: sql
        rows: select 'click' as kind union all select 'click' union all select 'view'
    overrides:
      vars: {skip_kind: view}
      env_vars: {SQLFLOW_TEST_REGION: us}
    expect:
      format: csv
      fixture: expected_regional
"""
            ),
        }
    )
    result = project.cli("test")
    assert result.exit_code == 0, result.output


def test_incremental_model_with_this_and_is_incremental_override(make_project):
    project = make_project(
        {
            "models/events.sql": "select 1 as id, 5 as ts\n",
            "models/inc.sql": (
                "{{ config(materialized='incremental', unique_key='id') }}\n"
                "select id, ts from {{ ref('events') }}\n"
                "{% if is_incremental() %}where ts > (select max(ts) from {{ this }}){% endif %}\n"
            ),
            "models/unit.yml": unit(
                """\
  - name: only_new_rows
    model: inc
    overrides:
      macros: {is_incremental: true}
    given:
      - input: ref('events')
        rows: [{id: 1, ts: 1}, {id: 2, ts: 5}, {id: 3, ts: 9}]
      - input: this
        rows: [{id: 1, ts: 4}]
    expect:
      rows: [{id: 2, ts: 5}, {id: 3, ts: 9}]
  - name: everything_on_first_run
    model: inc
    given:
      - input: ref('events')
        rows: [{id: 1, ts: 1}, {id: 2, ts: 5}]
    expect:
      rows: [{id: 1, ts: 1}, {id: 2, ts: 5}]
"""
            ),
        }
    )
    result = project.cli("test", "-s", "inc")
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in results(project).values()} == {"pass"}
    assert len(results(project)) == 2


def test_an_ephemeral_parent_is_given_like_any_other_input(make_project):
    project = make_project(
        {
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect 1 as x\n",
            "models/doubled.sql": "select x * 2 as y from {{ ref('eph') }}\n",
            "models/unit.yml": unit(
                """\
  - name: doubles
    model: doubled
    given:
      - input: ref('eph')
        rows: [{x: 21}]
    expect:
      rows: [{y: 42}]
"""
            ),
        }
    )
    assert project.cli("test").exit_code == 0


@pytest.mark.parametrize(
    ("entry", "message", "line"),
    [
        (
            "  - name: t\n    model: big_orders\n    given: []\n    expect: {rows: []}\n",
            "gives no rows for orders, which big_orders reads",
            4,
        ),
        (
            "  - name: t\n    model: nope\n    given: []\n    expect: {rows: []}\n",
            "tests model 'nope', which does not exist",
            2,
        ),
        (
            "  - name: t\n    model: big_orders\n    given:\n      - input: ref(orders)\n        rows: []\n"
            "    expect: {rows: []}\n",
            "is not ref('model'), source('src', 'table') or this",
            5,
        ),
        (
            "  - name: t\n    model: big_orders\n    given:\n      - input: ref('orders')\n        format: xml\n"
            "        rows: []\n    expect: {rows: []}\n",
            "unknown format 'xml'",
            5,
        ),
        (
            "  - name: t\n    model: big_orders\n    given:\n      - input: ref('orders')\n        rows: []\n"
            "      - input: ref('raw_orders')\n        rows: []\n    expect: {rows: []}\n",
            "gives rows for raw_orders, which big_orders does not read",
            4,
        ),
        ("  - name: t\n    model: big_orders\n    given: []\n", "has no `expect:` rows", 2),
    ],
)
def test_bad_unit_tests_are_user_errors(make_project, entry, message, line):
    project = make_project({**FILES, "models/unit.yml": unit(entry)})
    result = project.cli("test")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert f"models/unit.yml:{line}" in result.output
    assert "Traceback" not in result.output


def test_selecting_a_model_selects_its_unit_tests(shop):
    listed = shop.cli("ls", "-s", "big_orders", "--resource-type", "unit_test", "-o", "name")
    assert listed.output.splitlines() == ["keeps_big_orders"]
    listed = shop.cli("ls", "-s", "orders", "--resource-type", "unit_test", "-o", "name")
    assert listed.output.splitlines() == []


def test_unit_test_names_do_not_hide_models_and_fixture_files_are_not_tests(make_project):
    project = make_project(
        {
            **FILES,
            "data_tests/fixtures/rows.sql": "select 1 as order_id, 10.0 as amount, date '2024-01-01' as order_date\n",
            "models/unit.yml": unit(
                """\
  - name: orders
    model: big_orders
    given:
      - input: ref('orders')
        format: sql
        fixture: rows
    expect:
      rows: [{order_id: 1, amount: 10}]
"""
            ),
        }
    )
    result = project.cli("test")
    assert result.exit_code == 0, result.output
    assert list(results(project)) == ["unit_test.proj.big_orders.orders"]


def test_unit_test_of_a_seed_is_a_user_error(make_project):
    project = make_project(
        {
            **FILES,
            "models/unit.yml": unit(
                "  - name: t\n    model: raw_orders\n    given: []\n    expect: {rows: [{id: 1}]}\n"
            ),
        }
    )
    result = project.cli("test")
    assert result.exit_code == 2
    assert "which is a seed" in result.output
