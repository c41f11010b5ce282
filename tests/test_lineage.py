"""Column-level lineage: tricky SQL traced exactly, unknowns marked unresolved, never guessed."""

from __future__ import annotations

import pytest
from shop_example import copy_example
from sqlglot import exp

from sqlflow import catalog, commands, lineage, project_lineage, selection
from sqlflow.lineage import AGGREGATE, DIRECT, EXPRESSION, Upstream, trace_query
from sqlflow.nodes import Relation
from sqlflow.project_lineage import LineageInput, RelationIndex

# Relations of an imaginary project: main.orders, main.customers, main.payments.
INDEX = RelationIndex.build(
    [
        ("model.p.orders", Relation(None, "main", "orders")),
        ("model.p.customers", Relation(None, "main", "customers")),
        ("model.p.payments", Relation(None, "main", "payments")),
    ],
    case_insensitive=True,
)
COLUMNS = {
    "model.p.orders": ["id", "customer_id", "amount", "status", "ordered_at"],
    "model.p.customers": ["id", "name", "region"],
    "model.p.payments": ["id", "order_id", "amount", "method"],
}


def trace(sql: str, columns=COLUMNS, **kwargs) -> dict[str, lineage.ColumnLineage]:
    result = trace_query(sql, "duckdb", table_owner=INDEX.owner, columns_of=columns, **kwargs)
    assert result.unresolved is None, result.unresolved
    return {c.name: c for c in result.columns}


def up(column: lineage.ColumnLineage) -> set[tuple[str, str, str]]:
    return {(u.unique_id.rsplit(".", 1)[1], u.column, u.kind) for u in column.upstream}


def test_ctes_are_traced_through_to_the_relations_they_read():
    columns = trace(
        """
        with recent as (select id, amount * 2 as doubled, status from main.orders),
             renamed as (select id as order_id, doubled as value from recent)
        select order_id, value from renamed
        """
    )
    assert up(columns["order_id"]) == {("orders", "id", DIRECT)}
    assert up(columns["value"]) == {("orders", "amount", EXPRESSION)}


def test_join_aliases_and_unqualified_columns_resolve_with_the_catalog():
    columns = trace(
        """
        select o.id, c.name as customer, region, o.amount + 1 as plus_one
        from main.orders as o join main.customers c on o.customer_id = c.id
        """
    )
    assert up(columns["id"]) == {("orders", "id", DIRECT)}
    assert up(columns["customer"]) == {("customers", "name", DIRECT)}
    assert up(columns["region"]) == {("customers", "region", DIRECT)}  # only customers has it
    assert up(columns["plus_one"]) == {("orders", "amount", EXPRESSION)}


def test_an_unqualified_column_in_a_join_without_catalog_is_unresolved_not_guessed():
    result = trace_query(
        "select o.id, amount from main.orders o join main.payments p on p.order_id = o.id",
        "duckdb",
        table_owner=INDEX.owner,
        columns_of={},
    )
    by_name = {c.name: c for c in result.columns}
    assert up(by_name["id"]) == {("orders", "id", DIRECT)}
    assert by_name["amount"].upstream == []
    assert "cannot tell which relation" in by_name["amount"].unresolved


def test_select_star_expands_with_the_catalog_and_is_unresolved_without_it():
    columns = trace("select * from main.customers")
    assert list(columns) == ["id", "name", "region"]
    assert up(columns["name"]) == {("customers", "name", DIRECT)}

    unknown = trace_query("select * from main.customers", "duckdb", table_owner=INDEX.owner, columns_of={})
    assert unknown.columns == []
    assert "`*` over customers" in unknown.unresolved


def test_select_star_with_the_models_own_columns_traces_each_through_the_star():
    # The model is built (its columns are known) but what it reads is not in the catalog.
    result = trace_query(
        "select * from main.customers",
        "duckdb",
        table_owner=INDEX.owner,
        columns_of={},
        output_columns=["id", "name"],
    )
    assert result.unresolved is None
    assert [(c.name, up(c)) for c in result.columns] == [
        ("id", {("customers", "id", DIRECT)}),
        ("name", {("customers", "name", DIRECT)}),
    ]


def test_aggregates_group_keys_and_count_star():
    columns = trace(
        """
        select customer_id, sum(amount) as total, count(*) as orders,
               coalesce(max(ordered_at), current_date) as last_order, count(distinct status) as statuses
        from main.orders group by customer_id
        """
    )
    assert up(columns["customer_id"]) == {("orders", "customer_id", DIRECT)}
    assert up(columns["total"]) == {("orders", "amount", AGGREGATE)}
    assert columns["orders"].upstream == [] and columns["orders"].unresolved is None
    assert up(columns["last_order"]) == {("orders", "ordered_at", AGGREGATE)}
    assert up(columns["statuses"]) == {("orders", "status", AGGREGATE)}


def test_an_aggregate_inside_a_cte_makes_the_whole_path_an_aggregate():
    columns = trace(
        """
        with totals as (select customer_id, sum(amount) as total from main.orders group by 1)
        select customer_id, total * 100 as cents from totals
        """
    )
    assert up(columns["cents"]) == {("orders", "amount", AGGREGATE)}
    assert up(columns["customer_id"]) == {("orders", "customer_id", DIRECT)}


def test_window_functions_are_expressions_over_their_arguments_partitions_and_order():
    columns = trace(
        """
        select id,
               sum(amount) over (partition by customer_id) as customer_total,
               row_number() over (partition by customer_id order by ordered_at) as position
        from main.orders
        """
    )
    assert up(columns["customer_total"]) == {
        ("orders", "amount", EXPRESSION),
        ("orders", "customer_id", EXPRESSION),
    }
    assert up(columns["position"]) == {
        ("orders", "customer_id", EXPRESSION),
        ("orders", "ordered_at", EXPRESSION),
    }


def test_union_all_matches_columns_by_position_in_every_branch():
    columns = trace(
        """
        select id, amount as value, 'order' as kind from main.orders
        union all
        select order_id, amount * -1, method from main.payments
        """
    )
    assert list(columns) == ["id", "value", "kind"]
    assert up(columns["id"]) == {("orders", "id", DIRECT), ("payments", "order_id", DIRECT)}
    assert up(columns["value"]) == {("orders", "amount", DIRECT), ("payments", "amount", EXPRESSION)}
    assert up(columns["kind"]) == {("payments", "method", DIRECT)}  # the literal branch adds nothing


def test_scalar_subqueries_and_derived_tables():
    columns = trace(
        """
        select d.id, (select max(p.amount) from main.payments p) as top_payment
        from (select id from main.orders where status = 'paid') as d
        """
    )
    assert up(columns["id"]) == {("orders", "id", DIRECT)}
    assert up(columns["top_payment"]) == {("payments", "amount", AGGREGATE)}


def test_filters_do_not_feed_columns_and_cannot_break_the_trace():
    # The subquery in WHERE reads a relation whose columns are unknown: only the filter uses it.
    columns = trace(
        "select id from main.orders where amount > (select max(amount) from main.payments)",
        columns={"model.p.orders": COLUMNS["model.p.orders"]},
    )
    assert up(columns["id"]) == {("orders", "id", DIRECT)}


def test_a_table_outside_the_project_is_unresolved_with_the_reason():
    result = trace_query(
        "select id, total from analytics.legacy_orders", "duckdb", table_owner=INDEX.owner, columns_of={}
    )
    assert all("not a model, seed or source" in c.unresolved for c in result.columns)


def test_table_functions_and_constants_have_nothing_upstream():
    columns = trace("select range as id, 42 as answer from range(10)")
    assert columns["id"].upstream == [] and columns["id"].unresolved is None
    assert columns["answer"].upstream == []


def test_inlined_ephemeral_ctes_stop_at_the_ephemeral_model():
    columns = trace(
        """
        with "__sqlflow_cte__recent" as (select id, amount from main.orders)
        select id, amount * 2 as doubled from "__sqlflow_cte__recent"
        """,
        ephemeral_ctes={"__sqlflow_cte__recent": "model.p.recent"},
    )
    assert up(columns["doubled"]) == {("recent", "amount", EXPRESSION)}


def test_unreadable_sql_is_unresolved_not_an_error():
    result = trace_query("select from where", "duckdb", table_owner=INDEX.owner, columns_of={})
    assert result.columns == [] and "could not be read" in result.unresolved


def test_relation_index_folds_case_only_for_case_insensitive_warehouses():
    table = exp.to_table('"MAIN"."Orders"', dialect="duckdb")
    assert INDEX.owner(table) == "model.p.orders"
    strict = RelationIndex.build(
        [("model.p.orders", Relation(None, "main", "orders"))], case_insensitive=False
    )
    assert strict.owner(table) is None
    assert strict.owner(exp.to_table('"main"."orders"')) == "model.p.orders"


def test_project_lineage_uses_traced_columns_downstream_and_caches(tmp_path):
    inputs = [
        LineageInput("model.p.orders", "select id, amount from main.raw", reads=[]),
        LineageInput("model.p.customers", "select * from main.orders", reads=["model.p.orders"]),
    ]
    index = RelationIndex.build(
        [
            ("model.p.orders", Relation(None, "main", "orders")),
            ("model.p.raw", Relation(None, "main", "raw")),
        ],
        case_insensitive=True,
    )
    cache = tmp_path / "cache.pickle"
    first = project_lineage.trace_models(
        inputs, "duckdb", relations=index, known_columns={}, cache_path=cache
    )
    # `select *` over orders resolves with the columns traced from orders' own SQL.
    assert [(c.name, c.upstream) for c in first["model.p.customers"].columns] == [
        ("id", [Upstream("model.p.orders", "id", DIRECT)]),
        ("amount", [Upstream("model.p.orders", "amount", DIRECT)]),
    ]
    assert cache.exists()
    again = project_lineage._LineageCache(cache)
    assert len(again.entries) == 2
    second = project_lineage.trace_models(
        inputs, "duckdb", relations=index, known_columns={}, cache_path=cache
    )
    assert second == first


def test_worker_processes_trace_the_same_as_one_process(monkeypatch):
    inputs = [
        LineageInput(
            f"model.p.m{i}", f"select id, amount * {i} as value from main.orders", reads=["model.p.orders"]
        )
        for i in range(6)
    ]
    known = {"model.p.orders": COLUMNS["model.p.orders"]}
    alone = project_lineage.trace_models(inputs, "duckdb", relations=INDEX, known_columns=known, workers=1)
    monkeypatch.setattr(project_lineage, "PARALLEL_THRESHOLD", 2)
    pooled = project_lineage.trace_models(inputs, "duckdb", relations=INDEX, known_columns=known, workers=2)
    assert pooled == alone
    assert {(u.column, u.kind) for u in pooled["model.p.m3"].columns[1].upstream} == {("amount", EXPRESSION)}


# --------------------------------------------------------------------------- through the compiler


@pytest.fixture
def ephemeral_project(make_project):
    return make_project(
        {
            "seeds/raw_events.csv": "id,user_id,amount\n1,10,5\n2,10,7\n",
            "models/base_events.sql": """
                {{ config(materialized='ephemeral') }}
                select id as event_id, user_id, amount / 100.0 as dollars from {{ ref('raw_events') }}
            """,
            "models/user_totals.sql": """
                select user_id, sum(dollars) as total from {{ ref('base_events') }} group by user_id
            """,
            "models/everything.sql": "select * from {{ ref('user_totals') }}",
        }
    )


def _project_lineage(project_dir):
    with commands.open_session(project_dir) as session:
        connect = commands._warehouse_exists(session)
        compiler = commands._compiler(session, connect=connect)
        uids = selection.select(session.graph, (), (), ("model", "seed", "snapshot", "source"))
        compiled = commands._compile_all(session, [u for u in uids if u.startswith("model.")], compiler)
        adapter = session.adapter if connect else None
        columns = catalog.read_catalog(session.manifest, uids, adapter, compiler.existing)
        return project_lineage.trace_project(
            session.manifest, compiled, columns, dialect="duckdb", case_insensitive=True
        )


def test_ephemeral_models_are_a_hop_of_their_own_before_anything_is_built(ephemeral_project):
    traced = _project_lineage(ephemeral_project.root)
    totals = {c.name: up(c) for c in traced["model.proj.user_totals"].columns}
    assert totals == {
        "user_id": {("base_events", "user_id", DIRECT)},
        "total": {("base_events", "dollars", AGGREGATE)},
    }
    base = {c.name: up(c) for c in traced["model.proj.base_events"].columns}
    # The seed's columns come from its CSV header: nothing needs to be loaded.
    assert base["dollars"] == {("raw_events", "amount", EXPRESSION)}
    assert base["event_id"] == {("raw_events", "id", DIRECT)}
    # `select *` through a ref resolves with the columns traced from the parent's SQL.
    everything = {c.name: up(c) for c in traced["model.proj.everything"].columns}
    assert everything == {
        "user_id": {("user_totals", "user_id", DIRECT)},
        "total": {("user_totals", "total", DIRECT)},
    }


def test_example_project_orders_amount_comes_from_payments(tmp_path):
    traced = _project_lineage(copy_example(tmp_path / "shop"))
    orders = {c.name: up(c) for c in traced["model.shop.orders"].columns}
    assert orders["amount"] == {("int_order_payments", "total_amount", EXPRESSION)}
    assert orders["order_id"] == {("stg_orders", "order_id", DIRECT)}
    payments = {c.name: up(c) for c in traced["model.shop.int_order_payments"].columns}
    assert payments["total_amount"] == {("stg_payments", "amount", AGGREGATE)}
    staged = {c.name: up(c) for c in traced["model.shop.stg_payments"].columns}
    assert staged["amount"] == {("raw_payments", "amount", EXPRESSION)}
    assert all(c.unresolved is None for m in traced.values() for c in m.columns)
