"""Data tests on real DuckDB files: generic and singular tests, their config, `test` and `build`."""

from __future__ import annotations

import json

import pytest

MODELS = {
    "seeds/raw_people.csv": "id,name,team_id,status\n1,ada,10,active\n2,grace,10,active\n3,edsger,20,retired\n",
    "seeds/raw_teams.csv": "team_id,team\n10,compilers\n20,algorithms\n",
    "models/people.sql": "select * from {{ ref('raw_people') }}\n",
    "models/teams.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('raw_teams') }}\n",
    "models/people_report.sql": (
        "{{ config(materialized='table') }}\nselect p.name, t.team from {{ ref('people') }} p "
        "join {{ ref('teams') }} t using (team_id)\n"
    ),
    "models/people_count.sql": "{{ config(materialized='table') }}\nselect count(*) as n from {{ ref('people') }}\n",
}

PROPERTIES = """\
models:
  - name: people
    columns:
      - name: id
        data_tests: [unique, not_null]
      - name: status
        data_tests:
          - accepted_values:
              values: [active, retired]
      - name: team_id
        data_tests:
          - relationships:
              to: ref('teams')
              field: team_id
"""


def results(project) -> dict[str, dict]:
    data = json.loads((project.root / "target/run_results.json").read_text())
    return {r["unique_id"]: r for r in data["results"]}


@pytest.fixture
def people(make_project):
    return make_project({**MODELS, "models/schema.yml": PROPERTIES})


def test_build_runs_each_test_after_its_model_and_records_results(people):
    result = people.cli("build")
    assert result.exit_code == 0, result.output
    by_id = results(people)
    tests = {uid: r for uid, r in by_id.items() if uid.startswith("test.")}
    assert set(tests) == {
        "test.proj.unique_people_id",
        "test.proj.not_null_people_id",
        "test.proj.accepted_values_people_status__active__retired",
        "test.proj.relationships_people_team_id__team_id__ref_teams_",
    }
    assert {r["status"] for r in tests.values()} == {"pass"}
    assert {r["failures"] for r in tests.values()} == {0}
    order = list(by_id)
    assert order.index("model.proj.people") < order.index("test.proj.unique_people_id")
    assert "PASS" in result.output
    compiled = people.root / "target/compiled/proj/models/schema.yml/unique_people_id.sql"
    assert "GROUP BY" in compiled.read_text()


def test_failing_test_skips_descendants_but_warning_does_not(make_project):
    project = make_project(
        {
            **MODELS,
            "seeds/raw_people.csv": "id,name,team_id,status\n1,ada,10,active\n1,grace,10,active\n3,e,20,x\n",
            "models/schema.yml": """\
                models:
                  - name: people
                    columns:
                      - name: id
                        data_tests: [unique]
                  - name: teams
                    columns:
                      - name: team
                        data_tests:
                          - not_null
                          - accepted_values: {values: [compilers], severity: warn}
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 1
    by_id = results(project)
    assert by_id["test.proj.unique_people_id"]["status"] == "fail"
    assert by_id["test.proj.unique_people_id"]["failures"] == 1
    assert "Got 1 result, configured to fail if != 0" in by_id["test.proj.unique_people_id"]["message"]
    assert by_id["model.proj.people_count"]["status"] == "skipped"
    assert by_id["model.proj.people_report"]["status"] == "skipped"  # reads people and teams
    assert by_id["test.proj.accepted_values_teams_team__compilers"]["status"] == "warn"
    assert by_id["model.proj.teams"]["status"] == "success"
    # the failure shows how to see the failing rows
    assert "target/compiled/proj/models/schema.yml/unique_people_id.sql" in result.output
    assert "HAVING" in result.output
    assert (
        project.query("select table_name from information_schema.tables where table_name = 'people_count'")
        == []
    )


def test_relationships_test_blocks_only_nodes_downstream_of_both_parents(make_project):
    project = make_project(
        {
            **MODELS,
            "seeds/raw_people.csv": "id,name,team_id,status\n1,ada,10,active\n2,grace,99,active\n",
            "models/schema.yml": """\
                models:
                  - name: people
                    columns:
                      - name: team_id
                        data_tests:
                          - relationships: {to: "ref('teams')", field: team_id}
                """,
        }
    )
    assert project.cli("build").exit_code == 1
    by_id = results(project)
    assert by_id["test.proj.relationships_people_team_id__team_id__ref_teams_"]["status"] == "fail"
    assert by_id["model.proj.people_report"]["status"] == "skipped"  # reads both people and teams
    assert by_id["model.proj.people_count"]["status"] == "success"  # reads people only


def test_test_command_runs_tests_on_built_relations_and_selects_by_model(people):
    assert people.cli("seed").exit_code == 0
    assert people.cli("run").exit_code == 0
    result = people.cli("test", "-s", "teams")
    assert result.exit_code == 0, result.output
    # only the relationships test reads teams
    assert list(results(people)) == ["test.proj.relationships_people_team_id__team_id__ref_teams_"]
    result = people.cli("test", "-s", "people", "--exclude", "teams")
    assert result.exit_code == 0
    assert set(results(people)) == {
        "test.proj.unique_people_id",
        "test.proj.not_null_people_id",
        "test.proj.accepted_values_people_status__active__retired",
    }


def test_test_on_a_relation_that_was_never_built_is_an_error(people):
    result = people.cli("test", "-s", "test_name:unique")
    assert result.exit_code == 1
    assert results(people)["test.proj.unique_people_id"]["status"] == "error"
    assert "ERROR" in result.output


def test_selectors_for_tests(make_project):
    project = make_project(
        {
            **MODELS,
            "models/schema.yml": PROPERTIES,
            "data_tests/no_empty_names.sql": "select * from {{ ref('people') }} where name = ''\n",
        }
    )

    def names(*selector: str) -> list[str]:
        result = project.cli("ls", "-o", "name", "--resource-type", "test", *selector)
        assert result.exit_code == 0, result.output
        return sorted(result.output.splitlines())

    assert names("-s", "test_type:singular") == ["no_empty_names"]
    assert names("-s", "test_type:generic") == [
        "accepted_values_people_status__active__retired",
        "not_null_people_id",
        "relationships_people_team_id__team_id__ref_teams_",
        "unique_people_id",
    ]
    assert names("-s", "test_name:not_null") == ["not_null_people_id"]
    assert len(names("-s", "test_type:data")) == 5
    assert names("-s", "teams") == ["relationships_people_team_id__team_id__ref_teams_"]
    # `@people` is people, its descendants and their parents; a test's other parent is not pulled in
    models = project.cli("ls", "-o", "name", "--resource-type", "model", "-s", "@people_count")
    assert sorted(models.output.splitlines()) == ["people", "people_count"]


def test_thresholds_where_limit_and_severity(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select range as n from range(10)\n",
            "models/schema.yml": """\
                models:
                  - name: numbers
                    columns:
                      - name: n
                        data_tests:
                          - accepted_values:
                              name: few_bad_values
                              values: [0, 1, 2, 3, 4, 5, 6]
                              config: {warn_if: ">1", error_if: ">5"}
                          - accepted_values:
                              name: bad_values_over_5
                              values: [0, 1, 2, 3, 4, 5, 6]
                              config: {error_if: ">=3"}
                          - accepted_values:
                              name: bad_values_where
                              values: [0, 1, 2, 3, 4, 5, 6]
                              config: {where: "n < 7"}
                          - accepted_values:
                              name: bad_values_limited
                              values: [0]
                              config: {limit: 4, severity: warn}
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 1
    by_id = results(project)
    assert by_id["test.proj.few_bad_values"]["status"] == "warn"  # 3 failures: > 1, not > 5
    assert by_id["test.proj.few_bad_values"]["failures"] == 3
    assert by_id["test.proj.bad_values_over_5"]["status"] == "fail"
    assert "configured to fail if >= 3" in by_id["test.proj.bad_values_over_5"]["message"]
    assert by_id["test.proj.bad_values_where"]["status"] == "pass"
    assert by_id["test.proj.bad_values_limited"]["failures"] == 4
    assert by_id["test.proj.bad_values_limited"]["status"] == "warn"


def test_store_failures_saves_the_failing_rows_in_the_audit_schema(make_project):
    project = make_project(
        {
            "models/codes.sql": "select * from (values ('a'), ('b'), ('zz'), ('zz')) t(code)\n",
            "models/schema.yml": """\
                models:
                  - name: codes
                    columns:
                      - name: code
                        data_tests:
                          - accepted_values: {values: [a, b], config: {store_failures: true}}
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 1
    table = '"main_dbt_test__audit"."accepted_values_codes_code__a__b"'
    assert f"failing rows stored in {table}" in result.output
    assert project.query(f"select value_field, n_records from {table}") == [("zz", 2)]
    # a second run replaces the stored rows
    project.write("models/codes.sql", "select * from (values ('a'), ('q')) t(code)\n")
    assert project.cli("build").exit_code == 1
    assert project.query(f"select value_field, n_records from {table}") == [("q", 1)]


def test_custom_generic_tests_from_macros_and_the_generic_folder(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select range as n from range(5)\n",
            "macros/tests.sql": """\
                {% test at_most(model, column_name, value) %}
                select * from {{ model }} where {{ column_name }} > {{ value }}
                {% endtest %}
                """,
            "data_tests/generic/has_rows.sql": """\
                {% test has_rows(model) %}
                select 1 as missing where not exists (select 1 from {{ model }})
                {% endtest %}
                """,
            "models/schema.yml": """\
                models:
                  - name: numbers
                    data_tests:
                      - has_rows
                    columns:
                      - name: n
                        data_tests:
                          - at_most: {value: 4}
                          - at_most: {value: 2, name: at_most_two, config: {severity: warn}}
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    by_id = results(project)
    assert by_id["test.proj.has_rows_numbers"]["status"] == "pass"
    assert by_id["test.proj.at_most_numbers_n__4"]["status"] == "pass"
    assert by_id["test.proj.at_most_two"]["status"] == "warn"
    assert by_id["test.proj.at_most_two"]["failures"] == 2


def test_singular_tests_with_config_in_the_file(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select range as n from range(5)\n",
            "data_tests/no_negatives.sql": "select * from {{ ref('numbers') }} where n < 0\n",
            "data_tests/checks/big_numbers.sql": (
                "{{ config(severity='warn') }}\nselect * from {{ ref('numbers') }} where n > 2\n"
            ),
        }
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    by_id = results(project)
    assert by_id["test.proj.no_negatives"]["status"] == "pass"
    assert by_id["test.proj.big_numbers"]["status"] == "warn"
    assert by_id["test.proj.big_numbers"]["failures"] == 2
    assert (project.root / "target/compiled/proj/data_tests/checks/big_numbers.sql").exists()


def test_tests_on_seeds_sources_and_ephemeral_models(make_project):
    project = make_project(
        {
            "seeds/raw.csv": "id\n1\n2\n2\n",
            "models/eph.sql": "{{ config(materialized='ephemeral') }}\nselect id from {{ ref('raw') }}\n",
            "models/uses_eph.sql": "select * from {{ ref('eph') }}\n",
            "models/schema.yml": """\
                sources:
                  - name: landing
                    schema: main
                    tables:
                      - name: raw
                        columns:
                          - name: id
                            data_tests: [not_null]
                seeds:
                  - name: raw
                    columns:
                      - name: id
                        data_tests: [not_null]
                models:
                  - name: eph
                    columns:
                      - name: id
                        data_tests: [unique]
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 1
    by_id = results(project)
    assert by_id["test.proj.not_null_raw_id"]["status"] == "pass"
    assert by_id["test.proj.unique_eph_id"]["status"] == "fail"  # the ephemeral query is inlined
    assert by_id["test.proj.unique_eph_id"]["failures"] == 1
    assert by_id["model.proj.uses_eph"]["status"] == "skipped"
    assert project.cli("test", "-s", "source:landing").exit_code == 0
    assert set(results(project)) == {"test.proj.not_null_source_landing_raw_id"}


def test_dbt_projects_read_tests_from_the_tests_folder(make_project):
    project = make_project(
        {
            "dbt_project.yml": "name: proj\nprofile: proj\n",
            "models/numbers.sql": "select range as n from range(3)\n",
            "tests/assert_small.sql": "select * from {{ ref('numbers') }} where n > 10\n",
        }
    )
    project.remove("sqlflow.yml")
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert results(project)["test.proj.assert_small"]["status"] == "pass"


def test_disabled_tests_and_tests_of_disabled_models_are_dropped(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select range as n from range(3)\n",
            "models/retired.sql": "{{ config(enabled=false) }}\nselect 1 as n\n",
            "models/schema.yml": """\
                models:
                  - name: numbers
                    columns:
                      - name: n
                        data_tests:
                          - unique: {config: {enabled: false}}
                          - not_null
                  - name: retired
                    columns:
                      - name: n
                        data_tests: [unique]
                """,
        }
    )
    result = project.cli("ls", "-o", "name", "--resource-type", "test")
    assert result.output.splitlines() == ["not_null_numbers_n"]


def test_folder_config_for_tests_in_the_settings_file(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select 1 as n union all select 1\n",
            "models/schema.yml": "models:\n  - name: numbers\n    columns:\n      - name: n\n        data_tests: [unique]\n",
        },
        settings="name: proj\nprofile: proj\ndata_tests:\n  +severity: warn\n",
    )
    assert project.cli("build").exit_code == 0
    assert results(project)["test.proj.unique_numbers_n"]["status"] == "warn"


def test_accepted_values_unquoted_numbers(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select range as n from range(3)\n",
            "models/schema.yml": """\
                models:
                  - name: numbers
                    columns:
                      - name: n
                        data_tests:
                          - accepted_values: {values: [0, 1], quote: false}
                """,
        }
    )
    assert project.cli("build").exit_code == 1
    assert results(project)["test.proj.accepted_values_numbers_n__0__1"]["failures"] == 1
    compiled = project.root / "target/compiled/proj/models/schema.yml/accepted_values_numbers_n__0__1.sql"
    assert "IN (0, 1)" in compiled.read_text()


@pytest.mark.parametrize(
    ("tests_yaml", "message", "line"),
    [
        ("[no_such_test]", "unknown test 'no_such_test'", 6),
        ("[dbt_utils.at_least_one]", "unknown test 'dbt_utils.at_least_one'", 6),
        ("\n          - unique: {severity: fatal}", "severity must be error or warn", 7),
        ("\n          - unique: {config: {warn_if: 'lots'}}", "warn_if 'lots' is not a condition", 7),
        ("\n          - unique: {config: {limit: -1}}", "limit must be a non-negative integer", 7),
        ("\n          - unique: [1, 2]", "arguments of test 'unique' must be a mapping", 7),
        ("\n          - {unique: {}, not_null: {}}", "a test entry must be a test name", 7),
        ("unique", "`data_tests` must be a list", 6),
    ],
)
def test_bad_test_declarations_are_user_errors_with_file_and_line(make_project, tests_yaml, message, line):
    project = make_project(
        {
            "models/numbers.sql": "select 1 as n\n",
            "models/schema.yml": (
                "models:\n  - name: numbers\n    columns:\n      - name: n\n        description: x\n"
                f"        data_tests: {tests_yaml}\n"
            ),
        }
    )
    result = project.cli("build")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert f"models/schema.yml:{line}" in result.output
    assert "Traceback" not in result.output
    assert not project.db_path.exists() or project.query(
        "select count(*) from information_schema.tables where table_name = 'numbers'"
    ) == [(0,)]


def test_duplicate_test_names_are_a_user_error(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select 1 as n\n",
            "models/schema.yml": (
                "models:\n  - name: numbers\n    columns:\n      - name: n\n        data_tests:\n"
                "          - unique\n          - unique\n"
            ),
        }
    )
    result = project.cli("build")
    assert result.exit_code == 2
    assert "two tests are named 'unique_numbers_n'" in result.output
    assert "give one a `name:`" in result.output


def test_custom_test_called_with_an_argument_it_does_not_take(make_project):
    project = make_project(
        {
            "models/numbers.sql": "select 1 as n\n",
            "macros/t.sql": "{% test positive(model) %}select 1 where false{% endtest %}\n",
            "models/schema.yml": (
                "models:\n  - name: numbers\n    columns:\n      - name: n\n        data_tests: [positive]\n"
            ),
        }
    )
    result = project.cli("build")
    assert result.exit_code == 2, result.output
    assert "models/schema.yml:5" in result.output
    assert "column_name" in result.output
    assert "Traceback" not in result.output
