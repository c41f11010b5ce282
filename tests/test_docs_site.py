"""`sqlflow docs generate|serve` without a browser: the files written, their data, the server."""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.request
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from shop_example import copy_example
from warehouses import postgres as postgres  # a fixture

from sqlflow import commands, docs_site
from sqlflow.cli import main
from sqlflow.docs_site.layout import layered
from sqlflow.docs_site.search_index import COLUMN, COLUMN_PART, DESCRIPTION, NAME, NAME_PART, SearchIndex


def read_data(path: Path) -> object:
    """The value a data script passes to sqlflowData(name, value)."""
    text = path.read_text(encoding="utf-8")
    assert text.startswith("sqlflowData(") and text.rstrip().endswith(");")
    return json.JSONDecoder().raw_decode(text, text.index(",") + 1)[0]


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """The example project, built (so run_results.json and the warehouse exist), docs generated."""
    root = copy_example(tmp_path_factory.mktemp("docs") / "shop")
    code, output = cli("build", "--project-dir", str(root))
    assert code == 0, output
    code, output = cli("docs", "generate", "--project-dir", str(root))
    assert code == 0, output
    assert "Wrote the docs site for" in output
    return root


def index_of(root: Path) -> dict:
    return read_data(root / "target" / "docs" / "data" / "index.js")  # type: ignore[return-value]


def details(root: Path, index: dict, name: str) -> dict:
    idx = next(i for i, n in enumerate(index["nodes"]) if n["n"] == name)
    chunk = read_data(root / "target" / "docs" / "data" / "nodes" / f"{index['nodes'][idx]['c']}.js")
    return chunk[str(idx)]  # type: ignore[index]


def test_the_site_is_self_contained_static_files(shop):
    docs = shop / "target" / "docs"
    page = (docs / "index.html").read_text()
    scripts = [line for line in page.splitlines() if "<script" in line or "<link" in line]
    assert scripts and all("http" not in line and "//" not in line for line in scripts)
    for line in scripts:
        src = line.split('src="')[-1].split('href="')[-1].split('"')[0]
        assert (docs / src).exists(), src
    all_text = "".join(p.read_text() for p in docs.rglob("*.js")) + page
    # file:// must work: no fetch(url) or XMLHttpRequest anywhere, and nothing from a network.
    assert not re.search(r"\bfetch\(\s*[^)\s]", all_text) and "XMLHttpRequest" not in all_text


def test_index_has_every_node_with_layout_status_and_edges(shop):
    index = index_of(shop)
    by_name = {n["n"]: n for n in index["nodes"]}
    models = ["stg_customers", "stg_orders", "stg_payments", "int_order_payments", "int_customer_orders"]
    models += ["orders", "customers", "payments_daily"]
    for name in [*models, "raw_orders", "customers_snapshot"]:
        assert "x" in by_name[name] and "y" in by_name[name], name
    assert by_name["orders"]["st"] == "success" and by_name["orders"]["du"] >= 0
    assert by_name["int_order_payments"]["m"] == "ephemeral" and "st" not in by_name["int_order_payments"]
    assert by_name["cents_to_dollars"]["t"] == "macro"
    assert by_name["not_null_orders_order_id"]["t"] == "test"
    position = {n["i"]: i for i, n in enumerate(index["nodes"])}
    edges = set(zip(index["edges"][::2], index["edges"][1::2], strict=True))
    assert (position["model.shop.int_order_payments"], position["model.shop.orders"]) in edges
    for parent, child in edges:  # layered left to right
        assert index["nodes"][parent]["x"] < index["nodes"][child]["x"]


def test_model_details_have_sql_columns_types_tests_and_lineage(shop):
    index = index_of(shop)
    orders = details(shop, index, "orders")
    assert "{{ ref('stg_orders') }}" in orders["raw"]
    assert '"main"."stg_orders"' in orders["compiled"]
    assert orders["catalog"] == "warehouse"
    columns = {c["name"]: c for c in orders["columns"]}
    assert columns["amount"]["type"].startswith("DECIMAL")
    assert columns["amount"]["description"].startswith("Total amount paid")
    assert [t[1:] for t in columns["order_id"]["tests"]] == [["not_null", "pass"], ["unique", "pass"]]
    position = {n["i"]: i for i, n in enumerate(index["nodes"])}
    assert columns["amount"]["up"] == [[position["model.shop.int_order_payments"], "total_amount", "e"]]
    ephemeral = {c["name"]: c for c in details(shop, index, "int_order_payments")["columns"]}
    assert ephemeral["total_amount"]["up"] == [[position["model.shop.stg_payments"], "amount", "a"]]
    assert [position["model.shop.orders"], "amount", "e"] in ephemeral["total_amount"]["down"]
    assert orders["result"]["status"] == "success"


def test_catalog_json_is_written_in_dbts_format(shop):
    catalog = json.loads((shop / "target" / "catalog.json").read_text())
    assert catalog["metadata"]["dbt_schema_version"].endswith("catalog/v1.json")
    orders = catalog["nodes"]["model.shop.orders"]
    assert orders["metadata"]["type"] == "TABLE"
    assert orders["columns"]["order_id"]["index"] == 1
    assert "model.shop.int_order_payments" not in catalog["nodes"]  # ephemeral: nothing built


def test_before_the_first_run_columns_come_from_seed_files_and_yaml(tmp_path):
    root = copy_example(tmp_path / "shop")
    code, output = cli("docs", "generate", "--project-dir", str(root))
    assert code == 0, output
    assert not (root / "shop.duckdb").exists()  # docs never create the warehouse
    index = index_of(root)
    seed = details(root, index, "raw_payments")
    assert seed["catalog"] == "seed file"
    assert {c["name"]: c.get("type") for c in seed["columns"]}["amount"] == "integer"
    orders = details(root, index, "orders")
    assert orders["catalog"] == "yaml"
    # Lineage still resolves: seeds' headers, then each model's traced columns downstream.
    columns = {c["name"]: c for c in orders["columns"]}
    assert columns["amount"]["up"][0][1:] == ["total_amount", "e"]
    assert all("unresolved" not in c for c in orders["columns"])
    assert not any("st" in n for n in index["nodes"])


def test_select_restricts_the_site(tmp_path):
    root = copy_example(tmp_path / "shop")
    code, output = cli("docs", "generate", "--select", "+orders", "--project-dir", str(root))
    assert code == 0, output
    names = {n["n"] for n in index_of(root)["nodes"] if n["t"] in ("model", "seed")}
    assert names == {
        "orders",
        "stg_orders",
        "int_order_payments",
        "stg_payments",
        "raw_orders",
        "raw_payments",
    }


def test_a_description_with_markup_is_stored_as_data(make_project):
    project = make_project(
        {
            "models/evil.sql": "select 1 as id -- </script><script>alert(1)</script>",
            "models/evil.yml": """
                version: 2
                models:
                  - name: evil
                    description: "<script>window.pwned = 1</script> & <b>bold</b>"
            """,
        }
    )
    assert project.cli("docs", "generate").exit_code == 0
    data = read_data(project.root / "target" / "docs" / "data" / "nodes" / "0.js")
    evil = next(d for d in data.values() if d.get("description", "").startswith("<script>"))
    assert evil["description"] == "<script>window.pwned = 1</script> & <b>bold</b>"


def test_layout_puts_every_child_right_of_its_parents_and_groups_neighbours():
    nodes = ["a", "b", "c", "d", "e", "f"]
    edges = [("a", "c"), ("b", "d"), ("c", "e"), ("d", "e"), ("a", "f"), ("e", "f")]
    layout = layered(nodes, edges)
    for parent, child in edges:
        assert layout[parent].layer < layout[child].layer
    assert layout["f"].layer == 3  # the longest path decides
    ranks = {(p.layer, p.rank) for p in layout.values()}
    assert len(ranks) == len(nodes)  # no two nodes in one place


def test_layout_reduces_crossings():
    # Two chains given crossed: a1 -> b2 and a2 -> b1 start in the wrong order.
    layout = layered(
        ["a1", "a2", "b1", "b2"], [("a1", "b2"), ("a2", "b1")], order=["a1", "a2", "b1", "b2"].index
    )
    assert (layout["a1"].rank < layout["a2"].rank) == (layout["b2"].rank < layout["b1"].rank)


def test_search_index_is_sorted_with_fields():
    index = SearchIndex()
    index.add(0, "stg_orders", NAME)
    index.add(1, "order_amount", COLUMN)
    index.add(1, "The amount of the order", DESCRIPTION)
    data = index.data()
    assert data["tokens"] == sorted(data["tokens"])
    postings = dict(zip(data["tokens"], data["postings"], strict=True))
    assert postings["stg_orders"] == [0 * 8 + NAME]
    assert postings["orders"] == [0 * 8 + NAME_PART]
    assert postings["order_amount"] == [1 * 8 + COLUMN]
    assert postings["amount"] == [1 * 8 + DESCRIPTION, 1 * 8 + COLUMN_PART]
    assert "the" not in postings


def test_serve_binds_localhost_and_serves_the_site(shop):
    server = docs_site.make_server(shop / "target" / "docs", port=0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = docs_site.url_of(server)
        with urllib.request.urlopen(url + "data/index.js", timeout=5) as response:
            assert response.headers["Cache-Control"] == "no-store"
            assert response.read().startswith(b"sqlflowData(")
    finally:
        server.shutdown()
        server.server_close()


def test_serve_without_a_site_is_a_user_error(tmp_path, make_project):
    project = make_project({"models/a.sql": "select 1 as id"})
    code, output = cli("docs", "serve", "--project-dir", str(project.root))
    assert code == 2
    assert "sqlflow docs generate" in output


def test_docs_generate_from_python(shop, tmp_path):
    root = tmp_path / "shop"
    shutil.copytree(shop, root)
    with commands.open_session(root) as session:
        summary = commands.docs_generate(session, ["orders"])
    assert summary.path == root / "target" / "docs" / "index.html"
    assert summary.models == 1 and summary.unresolved_columns == 0
    assert summary.data_bytes > 0


def test_sources_take_columns_from_the_warehouse_and_unknown_stars_stay_unresolved(make_project):
    project = make_project(
        {
            "models/sources.yml": """
                version: 2
                sources:
                  - name: app
                    schema: raw
                    tables:
                      - name: users
                        description: People who signed up.
                      - name: ghosts
                        columns:
                          - name: id
                            description: Documented, but the table was never loaded.
            """,
            "models/all_users.sql": "select * from {{ source('app', 'users') }}",
            "models/all_ghosts.sql": "select * from {{ source('app', 'ghosts') }}",
            "models/ghost_ids.sql": "select id from {{ source('app', 'ghosts') }}",
        }
    )
    con = duckdb.connect(str(project.db_path))
    con.execute("create schema raw; create table raw.users (id integer, email varchar)")
    con.close()
    assert project.cli("docs", "generate").exit_code == 0
    index = index_of(project.root)
    users = details(project.root, index, "app.users")
    assert users["catalog"] == "warehouse"
    assert [(c["name"], c["type"]) for c in users["columns"]] == [("id", "INTEGER"), ("email", "VARCHAR")]
    position = {n["i"]: i for i, n in enumerate(index["nodes"])}
    source = position["source.proj.app.users"]
    assert index["nodes"][source]["sn"] == "app"
    everyone = {c["name"]: c for c in details(project.root, index, "all_users")["columns"]}
    assert everyone["email"]["up"] == [[source, "email", "d"]]
    ghosts = details(project.root, index, "all_ghosts")
    assert "`*` over ghosts" in ghosts["lineage_unresolved"]
    assert ghosts["columns"] == []
    ids = {c["name"]: c for c in details(project.root, index, "ghost_ids")["columns"]}
    assert ids["id"]["up"] == [[position["source.proj.app.ghosts"], "id", "d"]]
    assert details(project.root, index, "app.ghosts")["catalog"] == "yaml"


def test_docs_of_a_postgres_project_read_its_catalog_and_trace_its_quoted_relations(make_project, postgres):
    project = make_project(
        {
            "seeds/raw_sales.csv": "id,amount\n1,10\n2,20\n",
            "models/stg_sales.sql": "select id, amount * 2 as doubled from {{ ref('raw_sales') }}",
            "models/all_sales.sql": "select * from {{ ref('stg_sales') }}",
        },
        profiles=postgres.profiles(),
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert project.cli("docs", "generate").exit_code == 0
    index = index_of(project.root)
    position = {n["i"]: i for i, n in enumerate(index["nodes"])}
    assert {n["s"] for n in index["nodes"] if n["t"] in ("model", "seed")} == {postgres.schema}
    sales = details(project.root, index, "all_sales")
    assert sales["catalog"] == "warehouse"
    assert {c["name"]: c["type"] for c in sales["columns"]} == {"id": "integer", "doubled": "integer"}
    assert {c["name"]: c["up"] for c in sales["columns"]} == {
        "id": [[position["model.proj.stg_sales"], "id", "d"]],
        "doubled": [[position["model.proj.stg_sales"], "doubled", "d"]],
    }
    staged = {c["name"]: c for c in details(project.root, index, "stg_sales")["columns"]}
    assert staged["doubled"]["up"] == [[position["seed.proj.raw_sales"], "amount", "e"]]


def test_secrets_read_with_env_var_are_masked_in_the_site(make_project, monkeypatch):
    monkeypatch.setenv("SHOP_API_TOKEN", 'tok"en-s3cr3t')
    project = make_project(
        {"models/calls.sql": "select '{{ env_var(\"SHOP_API_TOKEN\") }}' as token, 1 as id"}
    )
    assert project.cli("docs", "generate").exit_code == 0
    site = project.root / "target" / "docs" / "data"
    text = "".join(path.read_text() for path in site.rglob("*.js"))
    assert "s3cr3t" not in text
    assert "*****" in text
