"""dbt packages: `sqlflow deps` (local, git, hub), namespaced macros and tests, adapter.dispatch
and dbt's cross-database macros, on real DuckDB files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from package_support import FakeHub, commit, hub_package, publish_mini_utils, write_files
from test_user_errors import assert_user_error

PACKAGE_SETTINGS = "name: mini_utils\nversion: '1.0.0'\nconfig-version: 2\n"

# A package in dbt_utils' style: a dispatched public macro, a private helper that returns a list,
# and a generic test.
PACKAGE_MACROS = """\
{% macro surrogate_key(fields) -%}
{{ return(adapter.dispatch('surrogate_key', 'mini_utils')(fields)) }}
{%- endmacro %}

{% macro default__surrogate_key(fields) -%}
{{ dbt.hash(dbt.concat(_casted(fields))) }}
{%- endmacro %}

{% macro _casted(fields) -%}
{% set out = [] %}
{% for field in fields %}{% do out.append("coalesce(cast(" ~ field ~ " as " ~ dbt.type_string() ~ "), '')") %}{% endfor %}
{{ return(out) }}
{%- endmacro %}

{% macro greeting() %}{{ return(adapter.dispatch('greeting', 'mini_utils')()) }}{% endmacro %}
{% macro default__greeting() %}'hello from default'{% endmacro %}
{% macro duckdb__greeting() %}'hello from duckdb'{% endmacro %}
"""

PACKAGE_TEST = """\
{% test is_positive(model, column_name) %}
select * from {{ model }} where {{ column_name }} <= 0
{% endtest %}
"""

KEYED = """\
select {{ mini_utils.surrogate_key(['id', 'name']) }} as sk, id, name, {{ mini_utils.greeting() }} as greeting
from (select 1 as id, 'a' as name union all select 2, null)
"""

SCHEMA = """\
models:
  - name: keyed
    columns:
      - name: id
        data_tests: [mini_utils.is_positive, not_null]
"""


def write_package(root: Path, macros: str = PACKAGE_MACROS) -> Path:
    for relative, text in {
        "dbt_project.yml": PACKAGE_SETTINGS,
        "macros/keys.sql": macros,
        "tests/generic/is_positive.sql": PACKAGE_TEST,
    }.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def with_package(make_project, tmp_path):
    write_package(tmp_path / "mini_utils")
    return make_project(
        {
            "packages.yml": "packages:\n  - local: ../mini_utils\n",
            "models/keyed.sql": KEYED,
            "models/schema.yml": SCHEMA,
        }
    )


def test_deps_installs_a_local_package_whose_macros_and_tests_build(with_package, tmp_path):
    project = with_package
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    installed = project.root / "dbt_packages" / "mini_utils"
    assert installed.is_symlink() and installed.resolve() == (tmp_path / "mini_utils").resolve()

    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert "mini_utils_is_positive_keyed_id" in result.output
    rows = project.query(
        "select sk = md5(coalesce(cast(id as varchar), '') || coalesce(name, '')), greeting from keyed order by id"
    )
    # The adapter's own implementation wins over default__.
    assert rows == [(True, "hello from duckdb"), (True, "hello from duckdb")]
    macros = json.loads((project.root / "target" / "manifest.json").read_text())["macros"]
    assert macros["macro.mini_utils.surrogate_key"]["package_name"] == "mini_utils"
    assert macros["macro.mini_utils.surrogate_key"]["original_file_path"] == "macros/keys.sql"


def test_a_changed_package_macro_is_seen_by_the_next_run(with_package, tmp_path):
    project = with_package
    assert project.cli("deps").exit_code == 0
    assert project.cli("run").exit_code == 0
    changed = PACKAGE_MACROS.replace("'hello from duckdb'", "'changed'")
    (tmp_path / "mini_utils" / "macros" / "keys.sql").write_text(changed)
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.scalar("select any_value(greeting) from keyed") == "changed"


def test_dispatch_settings_let_the_project_shim_a_package(with_package):
    project = with_package
    project.write(
        "sqlflow.yml",
        """\
        name: proj
        profile: proj
        dispatch:
          - macro_namespace: mini_utils
            search_order: [proj, mini_utils]
        """,
    )
    project.write("macros/shim.sql", "{% macro default__greeting() %}'shimmed'{% endmacro %}")
    assert project.cli("deps").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    # The root project comes first in the search order, default__ or not.
    assert project.scalar("select any_value(greeting) from keyed") == "shimmed"


def test_a_root_macro_can_shim_a_dbt_cross_database_macro(make_project):
    project = make_project(
        {
            "macros/shim.sql": "{% macro duckdb__type_string() %}varchar(20){% endmacro %}",
            "models/m.sql": "select cast(1 as {{ dbt.type_string() }}) as x, {{ adapter.quote('Mixed Case') }} as y "
            'from (select 2 as "Mixed Case")',
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    compiled = (project.root / "target" / "compiled" / "proj" / "models" / "m.sql").read_text()
    assert "cast(1 as varchar(20))" in compiled and '"Mixed Case" as y' in compiled


CROSS_DB = """\
select
    {{ dbt.dateadd('day', 3, "date '2024-01-30'") }} as added,
    {{ dbt.datediff("date '2024-01-01'", "date '2024-03-01'", 'day') }} as days_between,
    {{ dbt.date_trunc('month', "timestamp '2024-05-17 10:00:00'") }} as month_start,
    {{ dbt.last_day("date '2024-02-10'", 'month') }} as month_end,
    {{ dbt.split_part("'a,b,c'", "','", 2) }} as second_part,
    {{ dbt.concat(["'x'", "'-'", "'y'"]) }} as joined,
    {{ dbt.hash("'abc'") }} as hashed,
    {{ dbt.safe_cast("'not a number'", dbt.type_int()) }} as bad_int,
    {{ dbt.cast("'7'", dbt.type_bigint()) }} as big,
    {{ dbt.position("'c'", "'abc'") }} as pos,
    {{ dbt.right("'abcdef'", 2) }} as tail,
    {{ dbt.replace("'a-b'", "'-'", "'+'") }} as replaced,
    {{ dbt.length("'abcd'") }} as len,
    {{ dbt.string_literal("it's") }} as literal,
    '{{ dbt.escape_single_quotes("it's") }}' as escaped,
    {{ dbt.equals('null', 'null') }} as nulls_equal,
    {{ dbt.cast_bool_to_text('true') }} as bool_text,
    {{ dbt.date(2024, 2, 29) }} as leap_day,
    {{ dbt.array_construct([1, 2, 3]) }} as arr
"""

AGGREGATES = """\
select
    {{ dbt.listagg('name', "', '", 'order by name desc') }} as names,
    {{ dbt.any_value('grp') }} as grp,
    {{ dbt.bool_or('flag') }} as any_flag
from (values ('a', 1, false), ('b', 1, true), ('c', 1, false)) as t(name, grp, flag)
{{ dbt.except() }}
select 'none', 0, false
"""


def test_dbt_cross_database_macros_compute_the_right_values_on_duckdb(make_project):
    project = make_project({"models/cross_db.sql": CROSS_DB, "models/aggregates.sql": AGGREGATES})
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    row = project.query(
        "select added::varchar, days_between, month_start::varchar, month_end::varchar, second_part, joined, "
        "hashed = md5('abc'), bad_int, big, pos, tail, replaced, len, literal, escaped, nulls_equal, bool_text, "
        "leap_day::varchar, arr from cross_db"
    )[0]
    assert row == (
        "2024-02-02 00:00:00",
        60,
        "2024-05-01 00:00:00",
        "2024-02-29",
        "b",
        "x-y",
        True,
        None,
        7,
        3,
        "ef",
        "a+b",
        4,
        "it's",
        "it's",
        True,
        "true",
        "2024-02-29",
        [1, 2, 3],
    )
    assert project.query("select names, grp, any_flag from aggregates") == [("c, b, a", 1, True)]


def test_macros_of_one_file_calling_each_other_keep_their_return_values(make_project):
    project = make_project(
        {
            "macros/lists.sql": """\
            {% macro columns() %}{{ return(['a', 'b']) }}{% endmacro %}
            {% macro select_list() %}{{ return(columns() | join(', ')) }}{% endmacro %}
            """,
            "models/m.sql": "select {{ select_list() }} from (select 1 as a, 2 as b)",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select a, b from m") == [(1, 2)]


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_deps_installs_a_git_package_at_a_revision_and_subdirectory(make_project, tmp_path):
    repo = tmp_path / "repo"
    write_package(repo / "packages" / "mini", PACKAGE_MACROS.replace("hello from duckdb", "tagged"))
    git("init", "-q", "-b", "main", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1", cwd=repo)
    git("tag", "v1", cwd=repo)
    write_package(repo / "packages" / "mini", PACKAGE_MACROS.replace("hello from duckdb", "later"))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "v2", cwd=repo)
    project = make_project(
        {
            "packages.yml": f"packages:\n  - git: {repo.as_uri()}\n    revision: v1\n    subdirectory: packages/mini\n",
            "models/keyed.sql": KEYED,
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    installed = project.root / "dbt_packages" / "mini_utils"
    assert installed.is_dir() and not installed.is_symlink() and not (installed / ".git").exists()
    assert project.cli("run").exit_code == 0
    assert project.scalar("select any_value(greeting) from keyed") == "tagged"


@pytest.fixture
def fake_hub():
    """A dbt Hub API on localhost serving mini_utils 0.9.0, 1.0.0, 1.1.0 and 2.0.0: its URL."""
    server = FakeHub()
    for version in ("0.9.0", "1.0.0", "1.1.0", "2.0.0"):
        server.publish(
            "acme/mini_utils",
            version,
            {
                "dbt_project.yml": PACKAGE_SETTINGS,
                "macros/keys.sql": PACKAGE_MACROS,
                "macros/version.sql": f"{{% macro version() %}}'{version}'{{% endmacro %}}",
                "tests/generic/is_positive.sql": PACKAGE_TEST,
            },
        )
    yield server.url
    server.close()


def test_deps_installs_the_newest_hub_version_in_range(make_project, fake_hub, monkeypatch):
    monkeypatch.delenv("SQLFLOW_HUB_URL", raising=False)
    monkeypatch.setenv("DBT_PACKAGE_HUB_URL", fake_hub)  # dbt's own setting is read too
    project = make_project(
        {
            "packages.yml": 'packages:\n  - package: acme/mini_utils\n    version: [">=1.0.0", "<2.0.0"]\n',
            "models/v.sql": "select {{ mini_utils.version() }} as v",
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert project.cli("run").exit_code == 0
    assert project.scalar("select v from v") == "1.1.0"

    project.write("packages.yml", 'packages:\n  - package: acme/mini_utils\n    version: ">=3.0.0"\n')
    output = assert_user_error(project.cli("deps"), "no version of acme/mini_utils matches", "packages.yml:2")
    assert "2.0.0" in output  # the versions there are
    # A failed deps leaves the installed packages as they were.
    assert project.cli("run").exit_code == 0


def test_package_errors_are_user_errors_with_file_and_hint(make_project, with_package, tmp_path):
    project = with_package
    assert_user_error(project.cli("build"), "mini_utils", "models/keyed.sql:1")  # not installed yet
    assert project.cli("deps").exit_code == 0

    project.write("models/keyed.sql", "select {{ mini_utils.nope() }} as x")
    assert_user_error(project.cli("compile"), "package 'mini_utils' has no macro 'nope'", "models/keyed.sql")

    project.write("models/keyed.sql", "select {{ adapter.dispatch('nothing', 'mini_utils')() }} as x")
    assert_user_error(
        project.cli("compile"), "adapter.dispatch found no macro for 'nothing'", "mini_utils.default__nothing"
    )

    project.write("models/keyed.sql", "select {{ adapter.dispatch('x', 'elsewhere')() }} as x")
    assert_user_error(project.cli("compile"), "no package 'elsewhere'", "sqlflow deps")

    project.write("models/keyed.sql", "select {{ dbt.no_such_thing() }} as x")
    assert_user_error(project.cli("compile"), "dbt.no_such_thing is not one of the dbt macros")

    project.write("models/keyed.sql", "select 1 as id")
    project.write("models/schema.yml", SCHEMA.replace("mini_utils.is_positive", "other_utils.is_positive"))
    assert_user_error(
        project.cli("compile"), "unknown test 'other_utils.is_positive'", "is package 'other_utils' installed"
    )

    project.write("packages.yml", "packages:\n  - local: ../missing\n")
    assert_user_error(project.cli("deps"), "has no dbt_project.yml", "packages.yml:2")
    project.write("packages.yml", "packages:\n  - version: 1\n")
    assert_user_error(project.cli("deps"), "needs `local:`, `git:` or `package:`", "packages.yml:2")
    project.remove("packages.yml")
    result = project.cli("deps")  # as dbt: nothing to install is no error, and nothing is removed
    assert result.exit_code == 0 and "no packages to install" in result.output
    assert (project.root / "dbt_packages" / "mini_utils").exists()


def test_dispatch_setting_must_be_well_formed(make_project):
    project = make_project(
        {"models/m.sql": "select 1 as x"},
        settings="name: proj\nprofile: proj\ndispatch:\n  - macro_namespace: x\n",
    )
    assert_user_error(project.cli("compile"), "`dispatch:` entry needs", "sqlflow.yml:4")


def test_package_macros_render_undefined_names_as_nothing_as_dbt_does(make_project, tmp_path):
    # dbt_utils sets a variable inside an `if` and prints it after: empty when the `if` is false.
    package = write_package(
        tmp_path / "mini_utils",
        PACKAGE_MACROS
        + "{% macro prefixed(cols) %}{% if cols %}{% set pre = cols | join(', ') ~ ', ' %}{% endif %}"
        "{{ pre }}1 as one{% endmacro %}",
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/m.sql": "select {{ mini_utils.prefixed([]) }}",
            "models/n.sql": "select {{ mini_utils.prefixed(['2 as two']) }}",
        }
    )
    assert project.cli("deps").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select * from m") == [(1,)]
    assert project.query("select * from n") == [(2, 1)]
    # The project's own templates stay strict.
    project.write("models/m.sql", "select {{ pre }}1 as one")
    assert_user_error(project.cli("compile"), "'pre' is undefined", "models/m.sql:1")


def test_a_package_test_that_fails_to_render_names_its_macro(make_project, tmp_path):
    package = write_package(tmp_path / "mini_utils")
    (package / "tests" / "generic" / "broken.sql").write_text(
        "{% test broken(model, column_name) %}\nselect {{ column_name.no_such_method() }}\n{% endtest %}\n"
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/m.sql": "select 1 as id",
            "models/schema.yml": "models:\n  - name: m\n    columns:\n      - name: id\n        data_tests: [mini_utils.broken]\n",
        }
    )
    assert project.cli("deps").exit_code == 0
    assert_user_error(
        project.cli("build"), "test broken cannot render", "models/schema.yml:5", "broken.sql:2"
    )


def test_config_set_inside_a_package_test_is_a_default_under_the_yaml_config(make_project, tmp_path):
    package = write_package(tmp_path / "mini_utils")
    # As dbt_utils.equal_rowcount: one row that holds the difference, counted by fail_calc.
    (package / "tests" / "generic" / "same_count.sql").write_text(
        "{% test same_count(model, compare_model) %}\n"
        "{{ config(fail_calc='sum(gap)') }}\n"
        "select abs((select count(*) from {{ model }}) - (select count(*) from {{ compare_model }})) as gap,"
        " {{ should_store_failures() }} as stored\n"
        "{% endtest %}\n"
    )
    schema = (
        "models:\n  - name: m\n    data_tests:\n"
        "      - mini_utils.same_count:\n          compare_model: ref('n')\n"
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/m.sql": "select 1 as id union all select 2",
            "models/n.sql": "select 1 as id union all select 2",
            "models/schema.yml": schema,
        }
    )
    assert project.cli("deps").exit_code == 0
    result = project.cli("build")
    assert result.exit_code == 0, result.output  # one row, but its gap is 0
    project.write("models/schema.yml", schema + "          config: {fail_calc: 'count(*)'}\n")
    result = project.cli("build")
    assert result.exit_code == 1, result.output  # the YAML's config wins: one row fails
    assert "Got 1 result" in result.output


def test_a_macro_package_with_a_model_folder_builds_its_model_too(make_project, tmp_path):
    package = write_package(tmp_path / "mini_utils")
    (package / "models").mkdir()
    (package / "models" / "calendar.sql").write_text("select 1 as day")
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/m.sql": "select * from {{ ref('calendar') }}",
        }
    )
    assert project.cli("deps").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert "does not build" not in result.output
    assert project.query("select day from m") == [(1,)]


@pytest.mark.parametrize("install_path", [".", "models", "..", "macros/.."])
def test_deps_never_replaces_the_projects_own_folders(make_project, tmp_path, install_path):
    write_package(tmp_path / "mini_utils")
    project = make_project(
        {"packages.yml": "packages:\n  - local: ../mini_utils\n", "models/m.sql": "select 1 as x"},
        settings=f"name: proj\nprofile: proj\npackages-install-path: '{install_path}'\n",
    )
    assert_user_error(project.cli("deps"), "is not a folder of its own inside the project")
    assert (project.root / "models" / "m.sql").exists()


def test_deps_refuses_what_would_destroy_files(make_project, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    repo = tmp_path / "repo"
    write_package(repo)
    git("init", "-q", "-b", "main", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1", cwd=repo)
    project = make_project(
        {
            "packages.yml": f"packages:\n  - git: {repo.as_uri()}\n    subdirectory: ../../../../../../{victim}\n"
        }
    )
    assert_user_error(project.cli("deps"), "leaves the repository")
    assert (victim / "keep.txt").read_text() == "precious"

    write_package(project.root / "dbt_packages" / "vendored")
    project.write("packages.yml", "packages:\n  - local: dbt_packages/vendored\n")
    assert_user_error(project.cli("deps"), "inside the install folder")
    assert (project.root / "dbt_packages" / "vendored" / "dbt_project.yml").exists()


def test_a_changed_dispatch_order_is_seen_by_the_next_run(with_package):
    project = with_package
    project.write("macros/shim.sql", "{% macro default__greeting() %}'shimmed'{% endmacro %}")
    settings = (
        "name: proj\nprofile: proj\ndispatch:\n  - macro_namespace: mini_utils\n    search_order: [{}]\n"
    )
    project.write("sqlflow.yml", settings.format("mini_utils, proj"))
    assert project.cli("deps").exit_code == 0
    assert project.cli("run").exit_code == 0
    assert project.scalar("select any_value(greeting) from keyed") == "hello from duckdb"
    project.write("sqlflow.yml", settings.format("proj, mini_utils"))
    assert project.cli("run").exit_code == 0
    assert project.scalar("select any_value(greeting) from keyed") == "shimmed"


def test_dbt_global_macros_answer_without_the_prefix(make_project, tmp_path):
    # dbt_date calls last_day() unprefixed: dbt's own macros are global.
    package = write_package(
        tmp_path / "mini_utils",
        PACKAGE_MACROS + "{% macro month_end(d) %}{{ last_day(d, 'month') }}{% endmacro %}",
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - local: {package}\n",
            "models/m.sql": "select {{ mini_utils.month_end(\"date '2024-02-10'\") }} as a, "
            "{{ dateadd('day', 1, \"date '2024-02-28'\") }} as b",
        }
    )
    assert project.cli("deps").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select a::varchar, b::date::varchar from m") == [("2024-02-29", "2024-02-29")]


def test_a_rendered_install_path_is_where_deps_installs_and_the_load_reads(with_package, monkeypatch):
    project = with_package
    monkeypatch.setenv("SQLFLOW_TEST_PKG_DIR", "vendor")
    project.write(
        "sqlflow.yml",
        "name: proj\nprofile: proj\npackages-install-path: \"{{ env_var('SQLFLOW_TEST_PKG_DIR') }}\"\n",
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert (project.root / "vendor" / "mini_utils").is_symlink()
    assert project.cli("build").exit_code == 0


# --------------------------------------------------------------------------- a package's own packages


def test_deps_installs_what_a_package_needs_and_the_project_builds_with_it(make_project, tmp_path, hub):
    publish_mini_utils(hub, "1.0.0", "1.1.0", "2.0.0")
    # A git package whose own packages.yml needs a Hub package, and whose macro calls it.
    outer = tmp_path / "outer"
    commit(
        outer,
        {
            "dbt_project.yml": "name: outer\nversion: '1.0.0'\nconfig-version: 2\n",
            "packages.yml": 'packages:\n  - package: acme/mini_utils\n    version: [">=1.0.0", "<2.0.0"]\n',
            "macros/tagged.sql": "{% macro tagged() %}{{ mini_utils.version() }} || '-outer'{% endmacro %}",
        },
        tag="v1",
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - git: {outer.as_uri()}\n    revision: v1\n",
            "models/m.sql": "select {{ outer.tagged() }} as tagged, {{ mini_utils.version() }} as direct",
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project.root / "dbt_packages").iterdir()) == ["mini_utils", "outer"]
    assert "installed mini_utils (hub: acme/mini_utils 1.1.0)" in result.output
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert project.query("select tagged, direct from m") == [("1.1.0-outer", "1.1.0")]


def test_a_packages_local_paths_are_relative_to_the_project_as_in_dbt_and_a_cycle_ends(
    make_project, tmp_path
):
    # libs/a needs ../libs/b and libs/b needs ../libs/a back: dbt reads both from the project's
    # folder, so they are written as the project would write them.
    for name, other in (("a", "b"), ("b", "a")):
        write_files(
            tmp_path / "libs" / name,
            {
                "dbt_project.yml": f"name: pkg_{name}\nconfig-version: 2\n",
                "packages.yml": f"packages:\n  - local: ../libs/{other}\n",
                "macros/m.sql": f"{{% macro which() %}}'{name}'{{% endmacro %}}",
            },
        )
    project = make_project(
        {
            "packages.yml": "packages:\n  - local: ../libs/a\n",
            "models/m.sql": "select {{ pkg_a.which() }} || {{ pkg_b.which() }} as ab",
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    installed = project.root / "dbt_packages"
    assert (installed / "pkg_b").resolve() == (tmp_path / "libs" / "b").resolve()
    assert (installed / "pkg_a").resolve() == (tmp_path / "libs" / "a").resolve()
    lock = (project.root / "package-lock.yml").read_text()
    assert "local: ../libs/a\n" in lock and "local: ../libs/b\n" in lock
    assert project.cli("run").exit_code == 0
    assert project.scalar("select ab from m") == "ab"


def test_the_version_chosen_satisfies_every_package_that_requires_it(make_project, tmp_path, hub):
    publish_mini_utils(hub, "1.0.0", "1.1.0", "2.0.0")
    write_files(
        tmp_path / "needs_old",
        {
            "dbt_project.yml": "name: needs_old\nconfig-version: 2\n",
            "packages.yml": 'packages:\n  - package: acme/mini_utils\n    version: "<1.1.0"\n',
        },
    )
    project = make_project(
        {
            "packages.yml": 'packages:\n  - package: acme/mini_utils\n    version: ">=1.0.0"\n'
            "  - local: ../needs_old\n",
            "models/v.sql": "select {{ mini_utils.version() }} as v",
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert project.cli("run").exit_code == 0
    assert project.scalar("select v from v") == "1.0.0"  # not 2.0.0, the newest the project allows


def test_a_version_given_up_takes_its_own_dependencies_with_it(make_project, tmp_path, hub):
    # widgets 2.0.0 needs a package the Hub does not have; once another package rules 2.0.0 out,
    # what 2.0.0 needed is not needed (dbt would still look for it).
    hub.publish("acme/widgets", "1.0.0", hub_package("widgets", "1.0.0"))
    hub.publish(
        "acme/widgets",
        "2.0.0",
        hub_package("widgets", "2.0.0", 'packages:\n  - package: acme/nowhere\n    version: "1.0.0"\n'),
    )
    write_files(
        tmp_path / "picky",
        {
            "dbt_project.yml": "name: picky\nconfig-version: 2\n",
            "packages.yml": 'packages:\n  - package: acme/widgets\n    version: "<2.0.0"\n',
        },
    )
    project = make_project(
        {
            "packages.yml": 'packages:\n  - package: acme/widgets\n    version: ">=1.0.0"\n  - local: ../picky\n'
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (project.root / "dbt_packages").iterdir()) == ["picky", "widgets"]
    assert "version: 1.0.0\n" in (project.root / "package-lock.yml").read_text()


def test_conflicting_requirements_name_who_requires_what(make_project, tmp_path, hub):
    publish_mini_utils(hub, "1.0.0", "2.0.0")
    repo = tmp_path / "repo"
    commit(repo, hub_package("mini_utils", "1.0.0"), tag="v1")
    commit(repo, hub_package("mini_utils", "1.5.0"), tag="v2")
    other = write_files(tmp_path / "other", {"dbt_project.yml": "name: other\nconfig-version: 2\n"})
    project = make_project({"packages.yml": "packages:\n  - local: ../other\n"})
    assert project.cli("deps").exit_code == 0
    before = (project.root / "package-lock.yml").read_text()

    def conflict(root_entry: str, other_entry: str, *fragments: str) -> None:
        project.write("packages.yml", f"packages:\n  - local: ../other\n{root_entry}")
        (other / "packages.yml").write_text(f"packages:\n{other_entry}")
        output = assert_user_error(project.cli("deps"), *fragments)
        assert "other/packages.yml:2" in output  # the package's line, the project's line
        # Nothing changed: the installed packages and the lock are as they were.
        assert [p.name for p in (project.root / "dbt_packages").iterdir()] == ["other"]
        assert (project.root / "package-lock.yml").read_text() == before

    conflict(
        '  - package: acme/mini_utils\n    version: ">=2.0.0"\n',
        '  - package: acme/mini_utils\n    version: "<2.0.0"\n',
        "no version of acme/mini_utils satisfies every package that requires it",
        "packages.yml:3 wants >=2.0.0",
        "package other (",
        "wants <2.0.0",
    )
    conflict(
        f"  - git: {repo.as_uri()}\n    revision: v1\n",
        f"  - git: {repo.as_uri()}.git\n    revision: v2\n",  # the same repository
        f"git package {repo.as_uri()} is required at different revisions",
        "packages.yml:3 wants 'v1'",
        "wants 'v2'",
    )
    conflict(
        '  - package: acme/mini_utils\n    version: "1.0.0"\n',
        f"  - git: {repo.as_uri()}\n",
        "two packages are named 'mini_utils'",
        "hub: acme/mini_utils 1.0.0, required by packages.yml:3",
        f"git: {repo.as_uri()} @",
    )


def test_a_git_package_required_with_and_without_a_revision_is_installed_at_it(make_project, tmp_path):
    repo = tmp_path / "repo"
    tagged = commit(repo, hub_package("mini_utils", "1.0.0"), tag="v1")
    commit(repo, hub_package("mini_utils", "2.0.0"))  # the default branch moves on
    write_files(
        tmp_path / "pinning",
        {
            "dbt_project.yml": "name: pinning\nconfig-version: 2\n",
            # The same repository spelled with `.git`: one package.
            "packages.yml": f"packages:\n  - git: {repo.as_uri()}.git\n    revision: v1\n",
        },
    )
    project = make_project(
        {
            "packages.yml": f"packages:\n  - git: {repo.as_uri()}\n  - local: ../pinning\n",
            "models/v.sql": "select {{ mini_utils.version() }} as v",
        }
    )
    result = project.cli("deps")
    assert result.exit_code == 0, result.output
    assert f"revision: {tagged}\n" in (project.root / "package-lock.yml").read_text()
    assert project.cli("run").exit_code == 0
    assert project.scalar("select v from v") == "1.0.0"


def test_deps_refuses_a_package_name_that_would_install_it_outside_the_install_folder(make_project, tmp_path):
    # The name is the folder the package is installed in: `../../x` escaped dbt_packages/.
    write_files(tmp_path / "evil", {"dbt_project.yml": "name: ../../outside\n"})
    project = make_project({"packages.yml": "packages:\n  - local: ../evil\n"})
    assert_user_error(
        project.cli("deps"), "package name '../../outside' is not a plain name", "dbt_project.yml"
    )
    assert not (tmp_path / "outside").exists() and not (project.root.parent.parent / "outside").exists()
