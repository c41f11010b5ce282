"""Mistakes a user makes, as the CLI reports them: exit code, file:line, what is wrong, what to do.

Project and configuration errors exit 2 without a Python traceback (unless --debug); a model that
fails in the warehouse exits 1, skips its descendants and lets the other branches finish.
"""

from __future__ import annotations

import itertools
import re

import pytest

PROFILES_TWO_TARGETS = """\
proj:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
    prod:
      type: duckdb
      path: prod.duckdb
"""


def assert_user_error(result, *fragments: str, code: int = 2) -> str:
    """The command failed with `code`, its output has every fragment and no traceback."""
    output = result.output
    assert result.exit_code == code, output
    assert "Traceback" not in output, output
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} not in:\n{output}"
    return output


def built_relations(project) -> set[str]:
    if not project.db_path.exists():
        return set()
    return {
        name
        for (name,) in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
    }


# --------------------------------------------------------------------------- settings and profiles


def test_no_settings_file(make_project):
    project = make_project({"models/a.sql": "select 1 as x"})
    project.remove("sqlflow.yml")
    result = project.cli("run")
    assert_user_error(
        result,
        f"no sqlflow.yml or dbt_project.yml in {project.root}",
        "hint: run sqlflow from a project folder, pass --project-dir, or create one with `sqlflow init NAME`",
    )
    assert not project.db_path.exists()


def test_settings_without_name(make_project):
    project = make_project({"models/a.sql": "select 1 as x"}, settings="profile: proj\n")
    assert_user_error(
        project.cli("run"), "sqlflow.yml:1: the settings file has no `name`", "hint: add `name: my_project`"
    )


def test_dbt_project_without_name_names_that_file(make_project):
    project = make_project({"models/a.sql": "select 1 as x"})
    project.remove("sqlflow.yml")
    project.write("dbt_project.yml", "profile: proj\nversion: '1.0'\n")
    assert_user_error(project.cli("ls"), "dbt_project.yml:1: the settings file has no `name`")


INVALID_SETTINGS = """\
name: proj
profile: proj
models:
  proj:
    +materialized: table
   staging: {}
vars: {}
"""


def test_invalid_yaml_in_settings(make_project):
    project = make_project({"models/a.sql": "select 1 as x"}, settings=INVALID_SETTINGS)
    assert_user_error(
        project.cli("run"),
        "sqlflow.yml:6: invalid YAML:",
        "hint: check indentation and quoting near that line",
    )


def test_invalid_yaml_in_profiles(make_project):
    profiles = "proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n     path: x.duckdb\n"
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles)
    assert_user_error(
        project.cli("run"),
        "profiles.yml:6: invalid YAML:",
        "hint: check indentation and quoting near that line",
    )


def test_invalid_yaml_in_a_properties_file(make_project):
    project = make_project(
        {
            "models/a.sql": "select 1 as x",
            "models/staging/schema.yml": """\
                version: 2
                models:
                  - name: a
                    description: fine
                  - name: b
                   description: one space short
            """,
        }
    )
    assert_user_error(
        project.cli("ls"),
        "models/staging/schema.yml:6: invalid YAML:",
        "hint: check indentation and quoting near that line",
    )


def test_missing_profile(make_project):
    project = make_project({"models/a.sql": "select 1 as x"}, settings="name: proj\nprofile: analytics\n")
    assert_user_error(
        project.cli("run"),
        "profiles.yml: profile 'analytics' not found in profiles.yml",
        "hint: available profiles: proj;",
    )


def test_no_profiles_yml_anywhere(make_project, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SQLFLOW_PROFILES_DIR", raising=False)
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=None)
    assert_user_error(
        project.cli("run"),
        "no profiles.yml found (looked in",
        str(project.root),
        "hint: create profiles.yml in the project folder or pass --profiles-dir",
    )


def test_missing_target_lists_the_available_ones(make_project):
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=PROFILES_TWO_TARGETS)
    assert_user_error(
        project.cli("run", "--target", "nope"),
        "profiles.yml:3: target 'nope' not found in profile 'proj'",
        "hint: available targets: dev, prod",
    )
    assert not project.db_path.exists()


def test_profile_output_without_type(make_project):
    profiles = "proj:\n  target: dev\n  outputs:\n    dev:\n      path: warehouse.duckdb\n      threads: 1\n"
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles)
    assert_user_error(
        project.cli("run"), "profiles.yml:5: target 'dev' has no `type`", "hint: e.g. type: duckdb"
    )


# --------------------------------------------------------------------------- the graph


def test_two_models_with_the_same_name(make_project):
    project = make_project(
        {"models/staging/orders.sql": "select 1 as x", "models/marts/orders.sql": "select 2 as x"}
    )
    output = assert_user_error(
        project.cli("run"),
        "two nodes are named 'orders'",
        "models/marts/orders.sql",
        "models/staging/orders.sql",
        "hint: a model's name is its file name; rename one of the files",
    )
    assert "OK" not in output


def test_ref_to_a_missing_model_suggests_a_name(make_project):
    project = make_project(
        {
            "models/orders.sql": "select 1 as id",
            "models/report.sql": "select *\nfrom {{ ref('orders') }}\njoin {{ ref('ordres') }} using (id)",
        }
    )
    assert_user_error(
        project.cli("run"),
        "models/report.sql:3: report refs 'ordres', which does not exist",
        "hint: did you mean 'orders'?",
    )
    assert built_relations(project) == set()


def test_ref_to_a_missing_model_in_a_dynamic_ref(make_project):
    project = make_project(
        {
            "models/orders.sql": "select 1 as id",
            "models/report.sql": "{% set name = 'order' ~ 's_x' %}\nselect * from {{ ref(name) }}",
        }
    )
    assert_user_error(
        project.cli("ls"),
        "models/report.sql",
        "report refs 'orders_x', which does not exist",
        "hint: did you mean 'orders'?",
    )


def test_ref_to_a_disabled_model(make_project):
    project = make_project(
        {
            "models/old.sql": "{{ config(enabled=false) }}select 1 as x",
            "models/new.sql": "select 1 as y,\n  x from {{ ref('old') }}",
        }
    )
    assert_user_error(
        project.cli("run"),
        "models/new.sql:2: new refs 'old', which is disabled",
        "hint: enable old or remove the ref",
    )


def test_source_not_declared(make_project):
    project = make_project(
        {
            "models/sources.yml": "sources:\n  - name: raw\n    tables:\n      - name: events\n",
            "models/stg.sql": "select *\nfrom {{ source('raw', 'event') }}",
            "models/other.sql": "select * from {{ source('crm', 'users') }}",
        }
    )
    # Loading stops at the first offending file (files load in name order), even with --select.
    assert_user_error(
        project.cli("run", "-s", "stg"),
        "models/other.sql:1: other uses source 'crm'.'users', which is not declared",
        "hint: declare it under `sources:` in a YAML file in models/",
    )
    assert built_relations(project) == set()
    project.remove("models/other.sql")
    assert_user_error(
        project.cli("ls"),
        "models/stg.sql:2: stg uses source 'raw'.'event', which is not declared",
        "hint: did you mean 'raw.events'? declare it under `sources:`",
    )


def test_dependency_cycle_shows_the_path_and_the_files(make_project):
    project = make_project(
        {
            "models/a.sql": "select * from {{ ref('c') }}",
            "models/b.sql": "select 1 as one,\n  * from {{ ref('a') }}",
            "models/c.sql": "select 1 as one,\n\n  * from {{ ref('b') }}",
        }
    )
    output = assert_user_error(
        project.cli("run"),
        "dependency cycle: ",
        "models/a.sql",
        "models/b.sql",
        "models/c.sql",
        "hint: break the cycle: one of these models must not ref the next",
    )
    path = re.search(r"dependency cycle: ((?:\w+ -> )+\w+)", output).group(1).split(" -> ")
    assert path[0] == path[-1] and len(path) == 4
    # Parent -> child along the cycle: c feeds a, a feeds b, b feeds c (in some rotation).
    edges = set(itertools.pairwise(path))
    assert edges == {("c", "a"), ("a", "b"), ("b", "c")}
    # The location is the file of the second model, at its ref to the first.
    refs_line = {"a": 1, "b": 2, "c": 3}
    assert f"models/{path[1]}.sql:{refs_line[path[1]]}:" in output
    assert built_relations(project) == set()


# --------------------------------------------------------------------------- Jinja


def test_jinja_syntax_error_unclosed_braces(make_project):
    project = make_project(
        {
            "models/ok.sql": "select 1 as x",
            "models/broken.sql": "select 1 as x,\n  2 as y,\n  {{ var('z', 3) as z\nfrom t\n",
        }
    )
    assert_user_error(
        project.cli("run"),
        "models/broken.sql:3: Jinja syntax error:",
        "hint: check the {{ }} and {% %} tags near that line",
    )
    assert built_relations(project) == set()


def test_jinja_syntax_error_in_a_macro_file(make_project):
    project = make_project(
        {
            "macros/helpers.sql": "{% macro ok() %}1{% endmacro %}\n\n{% macro bad() %}\n  {% if %}\n{% endmacro %}",
            "models/a.sql": "select 1 as x",
        }
    )
    assert_user_error(
        project.cli("ls"),
        "macros/helpers.sql:4: Jinja syntax error:",
        "hint: check the {{ }} and {% %} tags near that line",
    )


def test_undefined_macro(make_project):
    project = make_project(
        {
            "macros/money.sql": "{% macro cents_to_dollars(c) %}{{ c }} / 100{% endmacro %}",
            "models/a.sql": "{% set n = 2 %}\nselect 1 as x,\n  {{ cents_to_dollar('x') }} as y",
        }
    )
    assert_user_error(
        project.cli("run"),
        "models/a.sql:3: cannot render: 'cents_to_dollar' is undefined",
        "hint: `cents_to_dollar` is not a variable, macro or function known here; check its spelling",
    )


def test_an_error_inside_a_macro_names_the_macro_line_too(make_project):
    project = make_project(
        {
            "macros/hash.sql": "{% macro hash_of(cols) %}\n  {% set n = cols | length %}\n  {{ helper_typo(cols) }}\n{% endmacro %}",
            "models/a.sql": "select 1 as x,\n  {{ hash_of(['x']) }} as h",
        }
    )
    assert_user_error(
        project.cli("compile"),
        "models/a.sql:2: cannot render: 'helper_typo' is undefined (in ",
        "macros/hash.sql:3)",
    )


def test_undefined_variable(make_project):
    project = make_project(
        {
            "models/a.sql": """\
                {% set columns = ['a', 'b'] %}
                select
                {% for c in columns %}
                  {{ c }}_value as {{ colum_prefix }}{{ c }},
                {% endfor %}
                  1 as one
            """,
        }
    )
    assert_user_error(
        project.cli("compile"),
        "models/a.sql:4: cannot render: 'colum_prefix' is undefined",
        "hint: `colum_prefix` is not a variable, macro or function known here",
    )


def test_undefined_var(make_project):
    project = make_project({"models/a.sql": "select 1 as x,\n  {{ var('start_date') }} as d"})
    assert_user_error(
        project.cli("run"),
        "models/a.sql:2: var 'start_date' is not defined",
        "hint: set it under `vars:` in sqlflow.yml or pass --vars '{start_date: ...}'",
    )


def test_macro_defined_twice(make_project):
    project = make_project(
        {
            "macros/a.sql": "{% macro twice() %}1{% endmacro %}",
            "macros/b.sql": "\n{% macro twice() %}2{% endmacro %}",
            "models/m.sql": "select {{ twice() }} as x",
        }
    )
    assert_user_error(
        project.cli("run"),
        "macros/b.sql:2: macro 'twice' is defined twice",
        "hint: also defined in",
        "a.sql:1",
    )


RECURSIVE = {
    "macros/loop.sql": "{% macro forever(n) %}{{ forever(n + 1) }}{% endmacro %}",
    "models/ok.sql": "select 1 as x",
    "models/a.sql": "select 1 as x,\n  {{ forever(1) }} as y",
}


def test_recursive_macro_is_an_error_not_a_hang(make_project):
    project = make_project(RECURSIVE)
    assert_user_error(
        project.cli("run"),
        "models/a.sql:2: cannot render: macro recursion too deep",
        "hint: a macro calls itself without end",
    )
    assert built_relations(project) == set()


def test_recursive_macro_in_a_real_process(make_project):
    project = make_project(RECURSIVE)
    completed = project.subprocess("compile", timeout=120)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 2, output
    assert "Traceback" not in output
    assert "models/a.sql:2: cannot render: macro recursion too deep" in output
    assert "hint: a macro calls itself without end" in output


# --------------------------------------------------------------------------- SQL


def test_sql_syntax_error_stops_before_the_warehouse(make_project):
    project = make_project(
        {
            "models/good.sql": "{{ config(materialized='table') }}select 1 as x",
            "models/bad.sql": "select 1 as x,\n  2 as y\nfrom where",
        }
    )
    assert_user_error(
        project.cli("run"),
        "models/bad.sql:3: SQL syntax error:",
        "hint: line 3 of the compiled SQL in target/compiled/proj/models/bad.sql",
    )
    assert "good" not in built_relations(project)
    assert built_relations(project) == set()


def test_sql_syntax_error_with_build_on_a_fresh_project(make_project):
    project = make_project({"models/good.sql": "select 1 as x", "models/bad.sql": "select from where"})
    assert_user_error(
        project.cli("build"), "models/bad.sql:1: SQL syntax error:", "hint: line 1 of the compiled SQL"
    )
    assert built_relations(project) == set()


@pytest.mark.parametrize("target_path", ["target", "build/out"])
def test_sql_syntax_error_points_at_the_compiled_file_it_names(make_project, target_path):
    project = make_project(
        {"models/bad.sql": "select 1 as x,\n  {{ 2 }} as y\nfrom where"},
        settings=f"name: proj\nprofile: proj\ntarget-path: {target_path}\n",
    )
    output = assert_user_error(
        project.cli("compile"),
        "models/bad.sql:3: SQL syntax error:",
        f"hint: line 3 of the compiled SQL in {target_path}/compiled/proj/models/bad.sql",
    )
    named = re.search(r"compiled SQL in (\S+)", output).group(1)
    assert (project.root / named).read_text().splitlines()[2] == "from where"


def test_model_that_is_not_a_select(make_project):
    project = make_project({"models/ok.sql": "select 1 as x", "models/purge.sql": "delete from ok"})
    assert_user_error(
        project.cli("run"),
        "models/purge.sql:1: a model must be a SELECT query, found DELETE",
        "hint: write the model as a SELECT; sqlflow creates the table or view",
    )
    assert built_relations(project) == set()


def test_model_with_two_statements(make_project):
    project = make_project({"models/two.sql": "select 1 as x;\nselect 2 as y;\n"})
    assert_user_error(
        project.cli("run"),
        "models/two.sql",
        "a model must be exactly one SELECT statement, found 2",
        "hint: remove the extra statements (and any trailing ';' followed by more SQL)",
    )
    assert built_relations(project) == set()


def test_trailing_semicolon_is_fine(make_project):
    project = make_project({"models/one.sql": "select 1 as x;\n"})
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.scalar("select x from one") == 1


def test_unknown_materialization(make_project):
    project = make_project({"models/a.sql": "{{ config(materialized='materialised_view') }}\nselect 1 as x"})
    assert_user_error(
        project.cli("run"),
        "models/a.sql",
        "unknown materialization 'materialised_view'",
        "hint: use one of: view, table, incremental, ephemeral",
    )


def test_unknown_materialization_in_folder_config(make_project):
    project = make_project(
        {"models/marts/a.sql": "select 1 as x"},
        settings="name: proj\nprofile: proj\nmodels:\n  proj:\n    marts:\n      +materialized: tabel\n",
    )
    assert_user_error(
        project.cli("ls"), "models/marts/a.sql", "unknown materialization 'tabel'", "hint: use one of:"
    )


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("text", ["[1,2]", "just a string", "42"])
def test_vars_not_a_mapping(make_project, text):
    project = make_project({"models/a.sql": "select 1 as x"})
    assert_user_error(
        project.cli("run", "--vars", text),
        "--vars must be a mapping, got",
        repr(text),
        "hint: example: --vars '{start_date: 2024-01-01, limit: 10}'",
    )
    assert not project.db_path.exists()


def test_vars_invalid_yaml(make_project):
    project = make_project({"models/a.sql": "select 1 as x"})
    assert_user_error(
        project.cli("run", "--vars", "{x: [1"),
        "--vars is not valid YAML or JSON",
        "hint: example: --vars '{start_date: 2024-01-01}'",
    )
    assert not project.db_path.exists()


def test_bare_table_name_of_a_model_is_a_warning(make_project):
    project = make_project(
        {"models/orders.sql": "select 1 as id", "models/report.sql": "select * from orders"}
    )
    warning = (
        "models/report.sql: reads the table 'orders' by name, which bypasses the DAG; "
        "write {{ ref('orders') }} so that it is built first"
    )
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert warning in result.output
    # Once orders exists, the run succeeds and still warns.
    assert project.cli("run", "-s", "orders").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert warning in result.output
    assert project.scalar("select id from report") == 1


def test_a_cte_or_a_real_table_with_another_name_is_not_warned(make_project):
    project = make_project(
        {
            "models/orders.sql": "select 1 as id",
            "models/report.sql": "with orders as (select 2 as id) select * from orders",
        }
    )
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert "bypasses the DAG" not in result.output


def test_debug_shows_the_traceback_of_a_user_error(make_project):
    project = make_project({"models/a.sql": "select * from {{ ref('nope') }}"})
    plain = project.cli("run")
    assert plain.exit_code == 2
    assert "Traceback" not in plain.output
    assert "models/a.sql:1: a refs 'nope', which does not exist" in plain.output

    debug = project.cli("run", "--debug")
    assert debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.output
    assert "sqlflow.errors.UserError" in debug.output
    assert "models/a.sql:1: a refs 'nope', which does not exist" in debug.output


def test_debug_in_a_real_process(make_project):
    project = make_project({"models/a.sql": "select * from {{ ref('nope') }}"}, settings="profile: proj\n")
    plain = project.subprocess("ls")
    assert plain.returncode == 2
    assert "Traceback" not in plain.stdout + plain.stderr
    assert "sqlflow.yml:1: the settings file has no `name`" in plain.stderr
    debug = project.subprocess("ls", "--debug")
    assert debug.returncode == 2
    assert "Traceback (most recent call last)" in debug.stderr


# --------------------------------------------------------------------------- failures at run time


def test_failing_model_skips_descendants_and_builds_other_branches(make_project):
    project = make_project(
        {
            "models/ok.sql": "{{ config(materialized='table') }}select 1 as x",
            "models/other.sql": "{{ config(materialized='table') }}select x + 1 as x from {{ ref('ok') }}",
            "models/bad.sql": "{{ config(materialized='table') }}select 'x'::int as x",
            "models/child.sql": "select * from {{ ref('bad') }}",
            "models/grandchild.sql": "{{ config(materialized='table') }}select * from {{ ref('child') }}",
            "models/boom.sql": "{{ config(materialized='table') }}select error('boom') as x",
        }
    )
    result = project.cli("run")
    output = assert_user_error(result, "Could not convert string 'x' to INT32", "boom", code=1)
    lines = {line.split()[3]: line.split()[1] for line in output.splitlines() if re.match(r"\s*\d+/6 ", line)}
    assert lines == {
        "ok": "OK",
        "other": "OK",
        "bad": "ERROR",
        "boom": "ERROR",
        "child": "SKIP",
        "grandchild": "SKIP",
    }
    assert "Finished with errors. ERROR=2 SKIP=2 OK=2" in output
    assert built_relations(project) == {"ok", "other"}
    assert project.scalar("select x from other") == 2


def test_failing_model_keeps_the_previous_table(make_project):
    project = make_project({"models/t.sql": "{{ config(materialized='table') }}select {{ var('v') }} as x"})
    assert project.cli("run", "--vars", "{v: 1}").exit_code == 0
    result = project.cli("run", "--vars", "{v: \"'x'::int\"}")
    assert_user_error(result, "Could not convert string 'x'", code=1)
    assert project.scalar("select x from t") == 1
    assert built_relations(project) == {"t"}


def test_fail_fast_stops_at_the_first_failure(make_project):
    project = make_project(
        {
            "models/bad.sql": "{{ config(materialized='table') }}select error('boom') as x",
            "models/after.sql": "select * from {{ ref('bad') }}",
        }
    )
    output = assert_user_error(project.cli("run", "--fail-fast"), "boom", code=1)
    assert "ERROR=1" in output
    assert built_relations(project) == set()


# --------------------------------------------------------------------------- YAML pitfalls


def test_folder_named_off_in_settings_is_not_an_internal_error(make_project):
    project = make_project(
        {"models/off/a.sql": "select 1 as x"},
        settings="name: proj\nprofile: proj\nmodels:\n  proj:\n    off:\n      +materialized: table\n",
    )
    result = project.cli("ls")
    assert "Internal error" not in result.output
    assert result.exit_code in (0, 2), result.output


def test_a_ref_hidden_from_loading_is_an_error_with_the_depends_on_remedy(make_project):
    project = make_project(
        {
            "models/a.sql": "select 1 as x\n",
            "models/b.sql": "{% if execute %}{% set n = 'a' %}select * from {{ ref(n) }}"
            "{% else %}select 1 as x{% endif %}\n",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 2
    assert "models/b.sql" in result.output
    assert "-- depends_on: {{ ref('a') }}" in result.output
    assert "Traceback" not in result.output
    project.write(
        "models/b.sql", "-- depends_on: {{ ref('a') }}\n" + (project.root / "models/b.sql").read_text()
    )
    assert project.cli("run").exit_code == 0


def test_unknown_dialect_is_a_user_error(make_project):
    project = make_project(
        {"models/a.sql": "select 1 as x\n"}, settings="name: proj\nprofile: proj\ndialect: nonsense\n"
    )
    result = project.cli("compile")
    assert result.exit_code == 2
    assert "sqlflow.yml:3" in result.output
    assert "unknown dialect 'nonsense'" in result.output


def test_sql_syntax_errors_do_not_show_parser_internals(make_project):
    project = make_project({"models/a.sql": "select\n  1 as x,\n  from from\n"})
    result = project.cli("compile")
    assert result.exit_code == 2
    assert "models/a.sql:3" in result.output
    assert "<Token" not in result.output
    assert "TokenType" not in result.output


def test_a_model_file_that_is_not_utf8_names_the_file(make_project):
    project = make_project({"models/a.sql": "select 1 as x"})
    (project.root / "models" / "latin.sql").write_bytes("select 'caf\xe9' as x".encode("latin-1"))
    for args in (["compile"], ["compile", "--no-cache"]):
        assert_user_error(project.cli(*args), "models/latin.sql", "not UTF-8", "save it as UTF-8")


def test_every_model_that_fails_to_compile_is_reported(make_project):
    project = make_project(
        {
            "models/ok.sql": "select 1 as x",
            "models/a.sql": "select {{ var('missing') }} as x",
            "models/b.sql": "select from where",
            "models/c.sql": "select {{ ref('a') }}.x from {{ ref('a') }}",
        }
    )
    for command in ("compile", "run"):
        output = assert_user_error(
            project.cli(command),
            "2 nodes failed to compile:",
            "models/a.sql:1: var 'missing' is not defined",
            "models/b.sql:1: SQL syntax error",
        )
        assert "models/c.sql" not in output  # it compiles: only its parent is broken
    assert not project.db_path.exists()  # nothing ran


def test_many_failures_are_cut_short(make_project):
    project = make_project({f"models/m{i:02}.sql": "select from where" for i in range(25)})
    output = assert_user_error(project.cli("compile"), "25 nodes failed to compile:", "... and 5 more")
    assert output.count("SQL syntax error") == 20


def test_every_model_that_fails_to_load_is_reported(make_project):
    project = make_project(
        {
            "models/a.sql": "select {{ nope }} as x",
            "models/b.sql": "{% set x = undefined_macro() %}select 1 as x",
        }
    )
    assert_user_error(
        project.cli("compile"), "2 nodes failed to compile:", "models/a.sql:1", "models/b.sql:1"
    )
