"""The docs site in a real browser: Playwright driving the system's Chromium.

Skipped when Chromium or Playwright is missing, unless SQLFLOW_REQUIRE_BROWSER=1 (CI), where that
is a failure. One browser serves the whole module; each test opens its own page.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from shop_example import REPO_ROOT, copy_example

from sqlflow import docs_site, selection, state
from sqlflow.cli import main
from sqlflow.graph import Graph
from sqlflow.manifest import load_manifest
from sqlflow.project import load_project

CHROMIUM = os.environ.get("SQLFLOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "target" / "browser-tests"
GRAPH_TYPES = ("model", "seed", "snapshot", "source", "exposure")


def _unavailable(reason: str) -> None:
    if os.environ.get("SQLFLOW_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required (SQLFLOW_REQUIRE_BROWSER=1) but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """open_page(url) -> a page; fails the test on any JavaScript error."""
    pages, errors = [], []

    def open_(url: str):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(url)
        page.wait_for_selector("#graph g.node")
        pages.append(page)
        return page

    yield open_
    for page in pages:
        page.close()
    assert errors == []


def cli(*args: str) -> None:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """The example project, with orders and stg_payments tagged `finance`, built and documented."""
    root = copy_example(tmp_path_factory.mktemp("browser") / "shop")
    for name, properties in (("orders", "marts/_marts.yml"), ("stg_payments", "staging/_staging.yml")):
        path = root / "models" / properties
        entry = f"  - name: {name}\n"
        path.write_text(path.read_text().replace(entry, entry + "    config:\n      tags: ['finance']\n", 1))
    cli("build", "--project-dir", str(root))
    cli("docs", "generate", "--project-dir", str(root))
    return root


def site_url(root: Path, fragment: str = "") -> str:
    return (root / "target" / "docs" / "index.html").as_uri() + fragment


def graph_names(page) -> set[str]:
    return set(page.eval_on_selector_all("#graph g.node", "nodes => nodes.map(n => n.dataset.name)"))


def python_selection(root: Path, selector: str) -> set[str]:
    manifest = load_manifest(load_project(root))
    graph = Graph(manifest)
    context = selection.Context(results=state.read_results(root / "target"))
    chosen = selection.select(graph, [selector], (), GRAPH_TYPES, context)
    return {graph.resource(u).name for u in chosen}


def test_the_graph_shows_every_model_seed_and_snapshot(shop, open_page):
    page = open_page(site_url(shop))
    manifest = json.loads((shop / "target" / "manifest.json").read_text())
    expected = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] in GRAPH_TYPES}
    expected |= {e["name"] for e in manifest["exposures"].values()}
    assert {"orders", "customers_snapshot", "revenue_dashboard"} <= expected
    assert graph_names(page) == expected
    assert page.text_content("#page h1") == "shop"


def test_clicking_a_model_opens_its_sql_and_columns(shop, open_page):
    page = open_page(site_url(shop))
    page.click('#graph g.node[data-name="orders"]')
    page.wait_for_selector("#page table.columns")
    assert page.evaluate("location.hash") == "#/n/model.shop.orders"
    assert page.text_content("#page h1") == "orders"
    assert "{{ ref('stg_orders') }}" in page.text_content("#page pre.sql")
    page.click('#page button[data-tab="compiled"]')
    assert '"main"."stg_orders"' in page.text_content("#page pre.sql")
    assert page.locator("#page pre.sql span.tok-kw").count() > 5  # highlighted
    amount = page.locator('#page table.columns tr[data-column="amount"]')
    assert "DECIMAL" in amount.text_content()
    assert "Total amount paid" in amount.text_content()
    # Upstream and downstream are highlighted, the rest dimmed.
    assert "selected" in page.get_attribute('#graph g.node[data-name="orders"]', "class")
    assert "upstream" in page.get_attribute('#graph g.node[data-name="raw_payments"]', "class")
    assert "downstream" in page.get_attribute('#graph g.node[data-name="customers"]', "class")
    assert "upstream" not in page.get_attribute('#graph g.node[data-name="raw_customers"]', "class")
    page.select_option("#colour-by", "status")
    assert "colour-status" in page.get_attribute("#graph", "class")
    assert "status-success" in page.get_attribute('#graph g.node[data-name="orders"]', "class")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "model-page.png"))


def test_an_exposure_page_shows_its_owner_link_and_what_it_reads(shop, open_page):
    page = open_page(site_url(shop))
    page.click('#graph g.node[data-name="revenue_dashboard"]')
    page.wait_for_selector("#page dl.facts")
    assert page.evaluate("location.hash") == "#/n/exposure.shop.revenue_dashboard"
    facts = page.text_content("#page dl.facts")
    assert "Finance team" in facts and "finance@example.com" in facts and "medium" in facts
    assert (
        page.get_attribute("#page dl.facts a[rel=noopener]", "href")
        == "https://bi.example.com/dashboards/revenue"
    )
    assert sorted(page.eval_on_selector_all("#page ul.refs a", "links => links.map(a => a.textContent)")) == [
        "orders",
        "payments_daily",
    ]
    assert "upstream" in page.get_attribute('#graph g.node[data-name="orders"]', "class")


def test_a_selector_filters_the_graph(shop, open_page):
    page = open_page(site_url(shop))
    everything = graph_names(page)
    for selector in ("+orders+", "tag:finance", "stg_orders+1", "@stg_payments,resource_type:model"):
        page.fill("#selector", selector)
        page.press("#selector", "Enter")
        page.wait_for_function("s => document.getElementById('graph').dataset.selector === s", arg=selector)
        assert graph_names(page) == python_selection(shop, selector), selector
    assert graph_names(page) < everything
    assert python_selection(shop, "tag:finance") == {"orders", "stg_payments"}
    assert "?s=" in page.evaluate("location.hash")  # the filtered graph has an address too
    page.fill("#selector", "orders+ +")
    page.press("#selector", "Enter")
    page.wait_for_selector("#selector-message.error")
    assert "dangling '+'" in page.text_content("#selector-message")


def test_the_pages_selector_agrees_with_sqlflows(shop, open_page):
    page = open_page(site_url(shop))
    selectors = [
        "orders",
        "+orders",
        "orders+",
        "1+orders",
        "+customers,path:models/staging",
        "@int_order_payments",
        "stg_*",
        "path:models/marts",
        "marts.*",
        "resource_type:seed",
        "config.materialized:view",
        "raw_orders stg_orders+1",
        "result:success,tag:finance",
        "+exposure:revenue_dashboard",
        "resource_type:exposure",
    ]
    for selector in selectors:
        found = page.evaluate(
            "s => [...SF.selector.evaluate(s, SF.graphData)].map(i => SF.nodes[i].n).sort()", selector
        )
        assert set(found) == python_selection(shop, selector), selector


def test_a_columns_lineage_shows_where_it_comes_from(shop, open_page):
    page = open_page(site_url(shop, "#/n/model.shop.orders"))
    page.wait_for_selector("#page table.columns")
    page.click('#page tr[data-column="amount"] a.lineage-link')
    page.wait_for_selector("#page table.lineage-up")
    assert page.evaluate("location.hash") == "#/lineage/model.shop.orders/amount"
    upstream = page.eval_on_selector_all(
        "#page table.lineage-up tr.lineage-row", "rows => rows.map(r => r.dataset.column)"
    )
    assert upstream == ["int_order_payments.total_amount", "stg_payments.amount", "raw_payments.amount"]
    downstream = page.eval_on_selector_all(
        "#page table.lineage-down tr.lineage-row", "rows => rows.map(r => r.dataset.column)"
    )
    assert downstream == ["customers.lifetime_value"]
    boxes = page.eval_on_selector_all(
        "#page svg.column-graph g.column-node", "g => g.map(n => n.dataset.column)"
    )
    assert set(boxes) == {"orders.amount", *upstream, *downstream}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "orders-amount-lineage.png"))
    # One click further upstream: the ephemeral model's own column.
    page.click('#page table.lineage-up tr[data-column="int_order_payments.total_amount"] a:text("lineage")')
    page.wait_for_function("location.hash === '#/lineage/model.shop.int_order_payments/total_amount'")
    page.wait_for_selector('#page h1:has-text("int_order_payments.total_amount")')


def test_search_finds_columns_and_opens_them(shop, open_page):
    page = open_page(site_url(shop))
    page.wait_for_function("document.body.dataset.searchReady === 'true'")
    page.fill("#search", "lifetime")
    page.wait_for_selector("#search-results a.result")
    first = page.text_content("#search-results a.result")
    assert "customers" in first and "column lifetime_value" in first
    page.press("#search", "Enter")
    page.wait_for_selector('#page tr.focused[data-column="lifetime_value"]')
    page.fill("#search", "one row per order")
    page.wait_for_selector("#search-results a.result")
    assert page.text_content("#search-results a.result .name") in (
        "orders",
        "stg_orders",
        "int_order_payments",
    )


def test_tree_by_folder_and_by_schema(shop, open_page):
    page = open_page(site_url(shop))
    page.click('#tree summary:text("marts")')
    page.click('#tree a:text-is("customers")')
    page.wait_for_function("location.hash === '#/n/model.shop.customers'")
    page.click('#tree-tabs button[data-tree="database"]')
    page.click('#tree summary:text("main")')
    page.wait_for_selector('#tree a:text-is("raw_orders")')
    assert page.locator('#tree a:text-is("int_order_payments")').count() == 0  # ephemeral: no relation


def test_markup_in_user_strings_is_shown_as_text(make_project, open_page):
    attack = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>'
    project = make_project(
        {
            "models/evil.sql": "-- </script><script>window.pwned=3</script>\nselect 1 as id, 'x' as label",
            "models/evil.yml": f"""
                version: 2
                models:
                  - name: evil
                    description: '{attack}'
                    config:
                      tags: ['<b onmouseover="window.pwned=4">t</b>']
                    columns:
                      - name: label
                        description: '{attack}'
            """,
        }
    )
    assert project.cli("docs", "generate").exit_code == 0
    page = open_page(site_url(project.root, "#/n/model.proj.evil"))
    page.wait_for_selector("#page table.columns")
    assert page.text_content("#page p.description") == attack
    assert attack in page.text_content('#page tr[data-column="label"]')
    assert '<b onmouseover="window.pwned=4">t</b>' in page.text_content("#page .badges")
    assert "</script><script>window.pwned=3</script>" in page.text_content("#page pre.sql")
    page.fill("#search", "pwned")
    page.wait_for_selector("#search-results a.result")
    page.goto(site_url(project.root, "#/lineage/model.proj.evil/label"))
    page.wait_for_selector("#page h1")
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("#page img, #page script, #page b").count() == 0


def test_served_over_http(shop, open_page):
    server = docs_site.make_server(shop / "target" / "docs", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = open_page(docs_site.url_of(server) + "#/n/model.shop.customers")
        page.wait_for_selector("#page table.columns")
        assert page.text_content("#page h1") == "customers"
    finally:
        server.shutdown()
        server.server_close()


def test_a_large_project_opens_focused_and_expands_on_click(make_project, open_page):
    # 400 models in a binary tree: m{i} reads m{(i-1)//2}.
    files = {"models/m0.sql": "select 1 as id"}
    files.update(
        {f"models/m{i}.sql": f"select id from {{{{ ref('m{(i - 1) // 2}') }}}}" for i in range(1, 400)}
    )
    project = make_project(files)
    assert project.cli("docs", "generate").exit_code == 0
    page = open_page(site_url(project.root, "#/n/model.proj.m10"))
    shown = graph_names(page)
    # 2+m10+2: m1, m4 above; m21, m22 and their children below.
    assert shown == {"m1", "m4", "m10", "m21", "m22", "m43", "m44", "m45", "m46"}
    page.click('#graph g.node[data-name="m1"] g.knob[data-direction="parents"]')
    page.wait_for_selector('#graph g.node[data-name="m0"]')
    page.dispatch_event('#graph g.node[data-name="m46"]', "click")  # may lie outside the view
    page.wait_for_selector('#graph g.node[data-name="m187"]')  # grows around the clicked node
    assert len(graph_names(page)) < 400
    page.fill("#selector", "*")
    page.press("#selector", "Enter")
    page.wait_for_function("document.querySelectorAll('#graph g.node').length === 400")
