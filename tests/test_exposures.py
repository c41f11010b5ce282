"""Exposures: declared in YAML, vertices of the graph, never built; selection, artifacts, errors."""

from __future__ import annotations

import json

import pytest

MODELS = {
    "models/raw_orders.sql": "select 1 as id, 10 as amount",
    "models/orders.sql": "select * from {{ ref('raw_orders') }}",
    "models/unrelated.sql": "select 1 as x",
    "models/marts/revenue.sql": "select sum(amount) as revenue from {{ ref('orders') }}",
}

EXPOSURES = """\
version: 2
sources:
  - name: crm
    tables:
      - name: accounts
exposures:
  - name: weekly_kpis
    label: Weekly KPIs
    type: dashboard
    maturity: high
    url: https://bi.example.com/dashboards/1
    description: The Monday meeting's numbers.
    owner:
      name: Ann Analyst
      email: ann@example.com
    tags: [finance]
    meta: {team: growth}
    depends_on:
      - ref('revenue')
      - "ref(\\"orders\\")"
      - source('crm', 'accounts')
      - metric('not_modelled')
"""


@pytest.fixture
def project(make_project):
    return make_project({**MODELS, "models/marts/exposures.yml": EXPOSURES})


def test_build_with_exposure_ancestors_builds_only_what_it_reads(project):
    result = project.cli("build", "-s", "+exposure:weekly_kpis")
    assert result.exit_code == 0, result.output
    built = {
        row[0]
        for row in project.query(
            "select table_name from information_schema.tables where table_schema = 'main'"
        )
    }
    assert built == {"raw_orders", "orders", "revenue"}
    assert "weekly_kpis" not in result.output  # nothing to build for the exposure itself


def test_ls_lists_exposures_in_dbts_form(project):
    result = project.cli("ls", "-s", "+exposure:weekly_kpis")
    assert result.exit_code == 0, result.output
    assert sorted(result.output.split()) == [
        "exposure:proj.marts.weekly_kpis",
        "proj.marts.revenue",
        "proj.orders",
        "proj.raw_orders",
        "source:proj.crm.accounts",
    ]
    only = project.cli("ls", "--resource-type", "exposure", "-o", "json")
    assert [json.loads(line) for line in only.output.splitlines()] == [
        {
            "unique_id": "exposure.proj.weekly_kpis",
            "name": "weekly_kpis",
            "resource_type": "exposure",
            "path": "models/marts/exposures.yml",
            "materialized": None,
            "tags": ["finance"],
        }
    ]
    assert project.cli("ls", "-s", "resource_type:exposure,tag:finance").output.split() == [
        "exposure:proj.marts.weekly_kpis"
    ]


def test_manifest_has_the_exposure_and_its_edges(project):
    assert project.cli("compile").exit_code == 0
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    exposure = manifest["exposures"]["exposure.proj.weekly_kpis"]
    assert exposure["type"] == "dashboard" and exposure["maturity"] == "high"
    assert exposure["owner"] == {"name": "Ann Analyst", "email": "ann@example.com"}
    assert exposure["label"] == "Weekly KPIs" and exposure["url"] == "https://bi.example.com/dashboards/1"
    assert exposure["description"] == "The Monday meeting's numbers."
    assert exposure["fqn"] == ["proj", "marts", "weekly_kpis"]
    assert exposure["path"] == "marts/exposures.yml"
    assert exposure["meta"] == {"team": "growth"} and exposure["tags"] == ["finance"]
    assert sorted(exposure["depends_on"]["nodes"]) == [
        "model.proj.orders",
        "model.proj.revenue",
        "source.proj.crm.accounts",
    ]
    assert [r["name"] for r in exposure["refs"]] == ["revenue", "orders"]
    assert exposure["sources"] == [["crm", "accounts"]]
    assert "exposure.proj.weekly_kpis" in manifest["child_map"]["model.proj.revenue"]
    assert sorted(manifest["parent_map"]["exposure.proj.weekly_kpis"]) == sorted(
        exposure["depends_on"]["nodes"]
    )


def test_an_edited_exposure_is_seen_by_the_next_command(project):
    assert project.cli("ls").exit_code == 0  # fills the load caches
    project.write("models/marts/exposures.yml", EXPOSURES.replace("weekly_kpis", "monthly_kpis"))
    names = project.cli("ls", "--resource-type", "exposure").output.split()
    assert names == ["exposure:proj.marts.monthly_kpis"]


def test_disabled_exposures_are_left_out(make_project):
    disabled_in_yaml = EXPOSURES.replace(
        "    tags: [finance]\n", "    tags: [finance]\n    config: {enabled: false}\n"
    )
    project = make_project({**MODELS, "models/marts/exposures.yml": disabled_in_yaml})
    assert project.cli("ls", "--resource-type", "exposure").output.split() == []
    settings = "name: proj\nprofile: proj\nexposures:\n  proj:\n    marts:\n      +enabled: false\n"
    project = make_project({**MODELS, "models/marts/exposures.yml": EXPOSURES}, settings=settings, name="p2")
    result = project.cli("ls", "--resource-type", "exposure")
    assert result.exit_code == 0, result.output
    assert result.output.split() == []


def test_docs_site_draws_the_exposure_with_its_facts(project):
    from test_docs_site import details, index_of

    assert project.cli("build").exit_code == 0
    assert project.cli("docs", "generate").exit_code == 0
    index = index_of(project.root)
    by_name = {n["n"]: (i, n) for i, n in enumerate(index["nodes"])}
    position, node = by_name["weekly_kpis"]
    assert node["t"] == "exposure" and "x" in node and node["f"] == "proj.marts.weekly_kpis"
    edges = set(zip(index["edges"][::2], index["edges"][1::2], strict=True))
    assert (by_name["revenue"][0], position) in edges
    detail = details(project.root, index, "weekly_kpis")
    assert detail["exposure_type"] == "dashboard" and detail["owner"]["email"] == "ann@example.com"
    assert detail["url"] == "https://bi.example.com/dashboards/1"
    assert "columns" not in detail


@pytest.mark.parametrize(
    ("change", "message", "line"),
    [
        (("ref('revenue')", "ref('revenu')"), "weekly_kpis refs 'revenu', which does not exist", 18),
        (("type: dashboard", "type: report"), "exposure 'weekly_kpis': type 'report' is not one of", 9),
        (("    owner:\n      name: Ann Analyst\n      email: ann@example.com\n", ""), "has no owner", 7),
        (("maturity: high", "maturity: great"), "maturity 'great' is not one of", 10),
        (("- ref('revenue')", "- ref('a', 'b', 'c')"), "cannot read depends_on item", 18),
        (("- ref('revenue')", "- ref('revenue'"), "cannot read depends_on item", 18),
        (("name: weekly_kpis", "name: weekly kpis"), "exposure name 'weekly kpis' is not a plain name", 7),
    ],
)
def test_a_broken_exposure_is_a_user_error_at_its_line(make_project, change, message, line):
    broken = EXPOSURES.replace(*change)
    assert broken != EXPOSURES
    project = make_project({**MODELS, "models/marts/exposures.yml": broken})
    result = project.cli("ls")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert f"models/marts/exposures.yml:{line}" in result.output
    assert "Traceback" not in result.output


def test_two_exposures_with_one_name_are_an_error_naming_both_files(make_project):
    project = make_project(
        {
            **MODELS,
            "models/marts/exposures.yml": EXPOSURES,
            "models/more.yml": "exposures:\n  - name: weekly_kpis\n    type: ml\n    owner: {name: B}\n",
        }
    )
    result = project.cli("ls")
    assert result.exit_code == 2
    assert "exposure 'weekly_kpis' is defined twice" in result.output
    assert "models/marts/exposures.yml" in result.output and "models/more.yml" in result.output
