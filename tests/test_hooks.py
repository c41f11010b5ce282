"""Model hooks (`pre-hook`/`post-hook`, dbt's spellings and levels), on real DuckDB files."""

from __future__ import annotations

import json

from test_user_errors import assert_user_error

SETTINGS = """\
name: proj
profile: proj
models:
  proj:
    +pre-hook: "create table if not exists audit (model varchar, step varchar, n integer)"
    marts:
      +post-hook: "insert into audit values ('{{ this.identifier }}', 'folder post', 3)"
"""

SCHEMA = """\
models:
  - name: orders
    config:
      pre_hook: "insert into audit values ('{{ model.name }}', 'yaml pre', 1)"
"""

ORDERS = """\
{{ config(materialized='table', post_hook=[
    "insert into audit values ('{{ this.identifier }}', 'file post', 4)",
    "insert into audit select '{{ this.identifier }}', 'rows seen', count(*)::int from {{ this }}",
]) }}
select 1 as id union all select 2
"""


def hooked(make_project, **files: str):
    return make_project(
        {"models/marts/orders.sql": ORDERS, "models/schema.yml": SCHEMA, **files}, settings=SETTINGS
    )


def audit(project) -> list[tuple]:
    return project.query("select model, step, n from audit")


def test_hooks_of_every_level_run_in_order_around_the_build(make_project):
    project = hooked(make_project, **{"models/plain.sql": "select 1 as x"})
    # One thread: both models run the project's `create table` hook, which two DuckDB
    # transactions at once would conflict on (as under dbt).
    result = project.cli("run", "--threads", "1")
    assert result.exit_code == 0, result.output
    # Project, then YAML pre-hooks; the build; folder, then file post-hooks (which see the table).
    rows = audit(project)
    assert rows == [
        ("orders", "yaml pre", 1),
        ("orders", "folder post", 3),
        ("orders", "file post", 4),
        ("orders", "rows seen", 2),
    ]
    config = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"][
        "model.proj.orders"
    ]["config"]
    assert [hook["sql"] for hook in config["pre-hook"]] == [
        "create table if not exists audit (model varchar, step varchar, n integer)",
        "insert into audit values ('{{ model.name }}', 'yaml pre', 1)",
    ]
    assert len(config["post-hook"]) == 3 and config["post-hook"][0]["transaction"] is True


def test_a_failing_pre_hook_fails_the_model_before_its_build(make_project):
    project = hooked(make_project)
    assert project.cli("run").exit_code == 0
    project.write(
        "models/schema.yml",
        """\
        models:
          - name: orders
            config:
              pre_hook: "insert into no_such_table values (1)"
        """,
    )
    project.write("models/marts/orders.sql", ORDERS.replace("union all select 2", "union all select 3"))
    result = project.cli("run")
    assert result.exit_code == 1, result.output
    assert "pre-hook 2 of 2 failed" in result.output
    assert "no_such_table" in result.output
    # Not rebuilt: the old rows stay.
    assert project.query("select id from orders order by id") == [(1,), (2,)]


def test_a_failing_post_hook_fails_the_model(make_project):
    project = hooked(make_project)
    project.write(
        "models/marts/orders.sql",
        "{{ config(materialized='table', post_hook='select * from missing_relation') }}\nselect 1 as id",
    )
    result = project.cli("run")
    assert result.exit_code == 1, result.output
    assert "post-hook 2 of 2 failed" in result.output
    assert "missing_relation" in result.output


def test_a_hook_that_cannot_render_is_a_compile_error(make_project):
    project = hooked(make_project)
    project.write(
        "models/marts/orders.sql",
        "{{ config(materialized='table', post_hook='{{ no_such_macro() }}') }}\nselect 1 as id",
    )
    result = project.cli("run")
    assert_user_error(result, "models/marts/orders.sql", "orders: cannot render its post-hook")
    assert not project.db_path.exists() or "orders" not in {
        name for (name,) in project.query("select table_name from information_schema.tables")
    }


RUN_HOOKS = """\
name: proj
profile: proj
on-run-start:
  - "create table if not exists runs (step varchar, detail varchar)"
  - "insert into runs values ('start', '{{ target.name }}')"
on-run-end: >-
  insert into runs select 'end', '{% for r in results %}{{ r.node.name }}={{ r.status }};{% endfor %}{{ schemas | join(',') }}'
"""


def test_on_run_start_and_end_run_around_the_nodes(make_project):
    project = make_project(
        {"models/ok.sql": "select 1 as x", "models/bad.sql": "select * from missing_table"},
        settings=RUN_HOOKS,
    )
    result = project.cli("run", "--threads", "1")
    assert result.exit_code == 1, result.output  # bad failed; on-run-end still ran
    assert project.query("select * from runs") == [("start", "dev"), ("end", "bad=error;ok=success;main")]


def test_a_failing_on_run_start_stops_the_run(make_project):
    settings = "name: proj\nprofile: proj\non-run-start: 'insert into nowhere values (1)'\n"
    project = make_project({"models/ok.sql": "select 1 as x"}, settings=settings)
    result = project.cli("run")
    assert_user_error(
        result,
        "sqlflow.yml:3: `on-run-start` statement 1 of 1 failed",
        "nowhere",
        "the run stopped before",
        code=1,
    )
    assert "ok" not in {name for (name,) in project.query("select table_name from information_schema.tables")}


def test_an_on_run_end_that_cannot_render_is_exit_2(make_project):
    settings = "name: proj\nprofile: proj\non-run-end: '{{ no_such_macro() }}'\n"
    project = make_project({"models/ok.sql": "select 1 as x"}, settings=settings)
    assert_user_error(project.cli("run"), "sqlflow.yml:3: cannot render `on-run-end`")


def test_hooks_of_every_config_call_in_a_file_run(make_project):
    # dbt appends the hooks (and tags) of each config() call in a file; the last one does not win.
    project = make_project(
        {
            "models/static.sql": (
                "{{ config(post_hook=\"insert into audit values ('static', 'first', 1)\", tags=['a']) }}\n"
                "{{ config(post_hook=\"insert into audit values ('static', 'second', 2)\", tags=['b']) }}\n"
                "select 1 as x"
            ),
            "models/dynamic.sql": (
                "{% set step = 'first' %}"
                "{{ config(post_hook=\"insert into audit values ('dynamic', '\" ~ step ~ \"', 1)\") }}\n"
                "{{ config(post_hook=\"insert into audit values ('dynamic', 'second', 2)\") }}\n"
                "select 1 as x"
            ),
        },
        settings='name: proj\nprofile: proj\non-run-start: "create table if not exists audit (model varchar, step varchar, n integer)"\n',
    )
    result = project.cli("run", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert sorted(audit(project)) == [
        ("dynamic", "first", 1),
        ("dynamic", "second", 2),
        ("static", "first", 1),
        ("static", "second", 2),
    ]
    result = project.cli("ls", "-s", "tag:a,tag:b", "-o", "name")
    assert result.output.split() == ["static"]
