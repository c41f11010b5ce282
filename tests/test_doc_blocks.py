"""dbt's doc blocks: `{% docs %}` in .md files, `{{ doc() }}` in YAML descriptions, as users of
dbt projects (jaffle shop among them) write them; on real DuckDB files through the CLI."""

from __future__ import annotations

import json

from test_user_errors import assert_user_error

DOCS_MD = """\
Text outside blocks is ignored.

{% docs orders_status %}
Orders can be one of:

| status  | meaning             |
|---------|---------------------|
| placed  | not yet shipped     |
{% enddocs %}

{% docs __overview__ %}
## The shop
Built {{ 'by' | upper }} sqlflow.
{% enddocs %}
"""

SCHEMA_YML = """\
version: 2
sources:
  - name: raw
    schema: main
    tables:
      - name: raw_orders
        description: '{{ doc("orders_status") }}'
models:
  - name: orders
    description: "All orders. {{ doc('orders_status') }}"
    columns:
      - name: status
        description: '{{ doc("orders_status") }}'
      - name: id
        description: plain text, { braces } kept as written
"""


def shop(make_project, **extra: str):
    return make_project(
        {
            "models/orders.sql": "select 1 as id, 'placed' as status",
            "models/schema.yml": SCHEMA_YML,
            "models/docs.md": DOCS_MD,
            **extra,
        }
    )


def manifest(project) -> dict:
    return json.loads((project.root / "target" / "manifest.json").read_text())


def test_doc_blocks_fill_descriptions_and_the_manifest(make_project):
    project = shop(make_project)
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.scalar("select status from orders") == "placed"

    data = manifest(project)
    block = data["docs"]["doc.proj.orders_status"]
    assert block["block_contents"].startswith("Orders can be one of:\n\n| status")
    assert block["block_contents"].endswith("| placed  | not yet shipped     |")  # stripped, as in dbt
    assert block["original_file_path"] == "models/docs.md"
    assert block["path"] == "docs.md"
    assert block["resource_type"] == "doc"
    # Jinja inside a block is rendered.
    assert data["docs"]["doc.proj.__overview__"]["block_contents"] == "## The shop\nBuilt BY sqlflow."

    orders = data["nodes"]["model.proj.orders"]
    assert orders["description"] == "All orders. " + block["block_contents"]
    assert orders["columns"]["status"]["description"] == block["block_contents"]
    assert orders["columns"]["id"]["description"] == "plain text, { braces } kept as written"
    assert data["sources"]["source.proj.raw.raw_orders"]["description"] == block["block_contents"]


def test_editing_a_doc_block_reaches_the_next_command(make_project):
    # The whole-project cache must see .md files: a stale description would be served otherwise.
    project = shop(make_project)
    assert project.cli("compile").exit_code == 0
    project.write("models/docs.md", DOCS_MD.replace("not yet shipped", "waiting in the warehouse"))
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    status = manifest(project)["nodes"]["model.proj.orders"]["columns"]["status"]["description"]
    assert "waiting in the warehouse" in status


def test_docs_paths_setting(make_project):
    project = make_project(
        {
            "models/orders.sql": "select 1 as id",
            "models/schema.yml": "models:\n  - name: orders\n    description: '{{ doc(\"orders\") }}'\n",
            "documentation/orders.md": "{% docs orders %}One row per order.{% enddocs %}",
            # Outside the docs paths once they are set: not read, so no duplicate.
            "models/other.md": "{% docs orders %}ignored{% enddocs %}",
        },
        settings="name: proj\nprofile: proj\ndocs-paths: [documentation]\n",
    )
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert manifest(project)["nodes"]["model.proj.orders"]["description"] == "One row per order."
    # A folder of its own is part of what the whole-project cache checks.
    project.write("documentation/orders.md", "{% docs orders %}One row per placed order.{% enddocs %}")
    assert project.cli("compile").exit_code == 0
    assert manifest(project)["nodes"]["model.proj.orders"]["description"] == "One row per placed order."


def test_unknown_doc_is_an_error_with_file_line_and_suggestion(make_project):
    project = shop(make_project)
    project.write(
        "models/schema.yml",
        """\
        models:
          - name: orders
            columns:
              - name: status
                description: '{{ doc("order_status") }}'
        """,
    )
    result = project.cli("compile")
    assert_user_error(
        result,
        "models/schema.yml:5",
        "doc('order_status'): there is no doc block named 'order_status'",
        "did you mean 'orders_status'?",
    )


def test_doc_block_names_are_unique(make_project):
    project = shop(
        make_project, **{"models/more/other.md": "\n\n{% docs orders_status %}again{% enddocs %}\n"}
    )
    result = project.cli("ls")
    assert_user_error(
        result,
        "models/more/other.md:3",
        "two doc blocks are named 'orders_status'",
        "the other is in models/docs.md:3; rename one",
    )


def test_unclosed_doc_block(make_project):
    project = shop(make_project, **{"models/broken.md": "intro\n{% docs broken %}\nno end\n"})
    result = project.cli("compile")
    assert_user_error(result, "models/broken.md:2", "doc block 'broken' has no {% enddocs %}")


def test_overview_reaches_the_docs_site(make_project):
    project = shop(make_project)
    assert project.cli("run").exit_code == 0
    result = project.cli("docs", "generate")
    assert result.exit_code == 0, result.output
    index = (project.root / "target" / "docs" / "data" / "index.js").read_text()
    assert '"overview":"## The shop\\nBuilt BY sqlflow."' in index
