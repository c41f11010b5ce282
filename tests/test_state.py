"""Build state on real DuckDB files: fingerprints, state:/result: selectors, --state, retry, selectors.yml."""

from __future__ import annotations

import json
import shutil

import pytest

FILES = {
    "seeds/raw.csv": "id,v\n1,10\n2,20\n",
    "models/base.sql": "select id, v from {{ ref('raw') }}\n",
    "models/doubled.sql": "{{ config(materialized='table') }}\nselect id, v * 2 as v from {{ ref('base') }}\n",
    "models/total.sql": "{{ config(materialized='table') }}\nselect sum(v) as v from {{ ref('doubled') }}\n",
    "models/other.sql": "{{ config(materialized='table') }}\nselect 1 as x\n",
}


def names(project, *args: str) -> list[str]:
    result = project.cli("ls", "-o", "name", *args)
    assert result.exit_code == 0, result.output
    return sorted(result.output.splitlines())


def run_ids(project) -> list[str]:
    data = json.loads((project.root / "target/run_results.json").read_text())
    return sorted(r["unique_id"] for r in data["results"])


def built_at(project) -> dict[str, str]:
    rows = project.query("select unique_id, built_at from sqlflow_state.nodes")
    return dict(rows)


@pytest.fixture
def built(make_project):
    project = make_project(FILES)
    assert project.cli("build").exit_code == 0
    return project


def test_nothing_is_modified_after_a_build_and_whitespace_or_comments_do_not_count(built):
    assert names(built, "-s", "state:modified") == []
    assert len(names(built, "-s", "state:unmodified")) == 5
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\n-- a comment\nselect id,\n   v*2 as v\nfrom {{ ref('base') }}\n",
    )
    assert names(built, "-s", "state:modified") == []


def test_changed_sql_config_seed_and_new_nodes_are_modified(built):
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, v * 3 as v from {{ ref('base') }}\n",
    )
    assert names(built, "-s", "state:modified") == ["doubled"]
    assert names(built, "-s", "state:modified+") == ["doubled", "total"]
    built.write("models/other.sql", "{{ config(materialized='view') }}\nselect 1 as x\n")
    assert "other" in names(built, "-s", "state:modified")
    built.write("models/other.sql", "{{ config(materialized='table', tags=['x']) }}\nselect 1 as x\n")
    assert "other" not in names(built, "-s", "state:modified")  # tags do not change what is built
    built.write("models/fresh.sql", "select 2 as y\n")
    assert names(built, "-s", "state:new") == ["fresh"]
    built.write("seeds/raw.csv", "id,v\n1,10\n2,21\n")
    assert "raw" in names(built, "-s", "state:modified")


def test_run_state_modified_plus_rebuilds_exactly_the_changed_models_and_descendants(built):
    before = built_at(built)
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, v * 3 as v from {{ ref('base') }}\n",
    )
    result = built.cli("run", "-s", "state:modified+")
    assert result.exit_code == 0, result.output
    assert run_ids(built) == ["model.proj.doubled", "model.proj.total"]
    after = built_at(built)
    assert after["model.proj.doubled"] > before["model.proj.doubled"]
    assert after["model.proj.total"] > before["model.proj.total"]
    for untouched in ("model.proj.base", "model.proj.other", "seed.proj.raw"):
        assert after[untouched] == before[untouched]
    assert built.scalar("select v from total") == 90
    assert names(built, "-s", "state:modified") == []
    # the state table holds one row per node, however many runs
    assert built.scalar("select count(*) from sqlflow_state.nodes") == 5


def test_state_dir_compares_with_another_runs_manifest(built, tmp_path):
    prod = tmp_path / "prod_target"
    shutil.copytree(built.root / "target", prod)
    built.write("models/other.sql", "{{ config(materialized='table') }}\nselect 2 as x\n")
    assert names(built, "-s", "state:modified", "--state", str(prod)) == ["other"]
    assert built.cli("ls", "-s", "state:modified", "--state", str(tmp_path / "nope")).exit_code == 2


def test_result_selectors_read_the_last_run(built):
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, cast('x' as integer) as v from {{ ref('base') }}\n",
    )
    assert built.cli("run").exit_code == 1
    assert names(built, "-s", "result:error") == ["doubled"]
    assert names(built, "-s", "result:skipped") == ["total"]
    assert "base" in names(built, "-s", "result:success")


def test_retry_runs_only_what_failed_or_was_skipped(built):
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, cast('x' as integer) as v from {{ ref('base') }}\n",
    )
    assert built.cli("run").exit_code == 1
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, v * 2 as v from {{ ref('base') }}\n",
    )
    result = built.cli("retry")
    assert result.exit_code == 0, result.output
    assert run_ids(built) == ["model.proj.doubled", "model.proj.total"]
    assert built.cli("retry").exit_code == 0
    assert "Nothing to retry" in built.cli("retry").output


def test_retry_after_a_failed_test_in_build_rebuilds_the_tested_model(make_project):
    project = make_project(
        {
            **FILES,
            "models/schema.yml": "models:\n  - name: doubled\n    columns:\n      - name: v\n        data_tests:\n"
            "          - accepted_values: {values: ['20', '40'], quote: false}\n",
            "seeds/raw.csv": "id,v\n1,10\n2,30\n",
        }
    )
    assert project.cli("build").exit_code == 1
    project.write("seeds/raw.csv", "id,v\n1,10\n2,20\n")
    assert project.cli("seed").exit_code == 0
    project.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, v * 2 as v from {{ ref('base') }}\n",
    )
    # the last run is now `seed`; run build again to fail, then retry it
    project.write("seeds/raw.csv", "id,v\n1,10\n2,30\n")
    assert project.cli("build").exit_code == 1
    project.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, least(v * 2, 40) as v from {{ ref('base') }}\n",
    )
    result = project.cli("retry")
    assert result.exit_code == 0, result.output
    ids = run_ids(project)
    assert "model.proj.doubled" in ids and "model.proj.total" in ids
    assert "test.proj.accepted_values_doubled_v__20__40" in ids


def test_retry_repeats_the_whole_command_when_no_node_ran(make_project):
    project = make_project({**FILES, "models/broken.sql": "select {{ nope( }}\n"})
    assert project.cli("build", "-s", "+total").exit_code == 2
    project.write("models/broken.sql", "select 1 as fixed\n")
    result = project.cli("retry")
    assert result.exit_code == 0, result.output
    assert run_ids(project) == ["model.proj.base", "model.proj.doubled", "model.proj.total", "seed.proj.raw"]


def test_retry_without_an_earlier_run_is_a_user_error(make_project):
    result = make_project(FILES).cli("retry")
    assert result.exit_code == 2
    assert "nothing to retry" in result.output


def test_named_selectors_from_selectors_yml(built):
    built.write(
        "selectors.yml",
        """\
        selectors:
          - name: chain
            definition:
              union:
                - method: fqn
                  value: base
                  children: true
                - exclude:
                    - total
          - name: tables
            definition: "config.materialized:table"
        """,
    )
    assert names(built, "--selector", "chain", "--resource-type", "model") == ["base", "doubled"]
    assert names(built, "--selector", "tables", "--resource-type", "model") == ["doubled", "other", "total"]
    result = built.cli("run", "--selector", "chain")
    assert result.exit_code == 0, result.output
    assert run_ids(built) == ["model.proj.base", "model.proj.doubled"]
    bad = built.cli("ls", "--selector", "nightly")
    assert bad.exit_code == 2
    assert "no selector named 'nightly' (known: chain, tables)" in bad.output


@pytest.mark.parametrize("selector", ["state:changed", "result:broken"])
def test_unknown_state_and_result_values_are_user_errors(built, selector):
    result = built.cli("ls", "-s", selector)
    assert result.exit_code == 2
    assert "is not one of" in result.output


def test_result_selectors_work_in_run_after_a_failed_build(built):
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, cast('x' as integer) as v from {{ ref('base') }}\n",
    )
    assert built.cli("run").exit_code == 1
    built.write(
        "models/doubled.sql",
        "{{ config(materialized='table') }}\nselect id, v * 2 as v from {{ ref('base') }}\n",
    )
    result = built.cli("run", "-s", "result:error+")
    assert result.exit_code == 0, result.output
    assert run_ids(built) == ["model.proj.doubled", "model.proj.total"]
