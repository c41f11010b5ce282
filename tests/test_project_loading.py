"""Loading a project: settings, profiles, vars, config precedence, refs, macros, sources, naming, cache.

Every test builds a throwaway project in tmp_path and runs the real CLI against a real DuckDB file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

DBT_PROFILES = """\
proj:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
"""


def relation_type(project, name: str, schema: str = "main") -> str | None:
    """'BASE TABLE' or 'VIEW' as DuckDB reports it, None when the relation does not exist."""
    rows = project.query(
        "select table_type from information_schema.tables "
        f"where table_schema = '{schema}' and table_name = '{name}'"
    )
    return rows[0][0] if rows else None


def relations(project) -> set[tuple[str, str]]:
    return set(project.query("select table_schema, table_name from information_schema.tables"))


def ok(result) -> None:
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def names(result) -> list[str]:
    ok(result)
    return [line for line in result.output.splitlines() if line.strip()]


def compiled(project, model: str, folder: str = "models") -> str:
    return (project.root / "target" / "compiled" / "proj" / folder / f"{model}.sql").read_text()


# --------------------------------------------------------------------------- settings files


def test_sqlflow_yml_project_builds_models_as_views_by_default(make_project):
    project = make_project(
        {
            "models/orders.sql": "select 1 as id, 10 as amount union all select 2, 20",
            "models/total.sql": "select sum(amount) as total from {{ ref('orders') }}",
        }
    )
    ok(project.cli("run"))
    assert relation_type(project, "orders") == "VIEW"
    assert relation_type(project, "total") == "VIEW"
    assert project.scalar("select total from total") == 30


def test_dbt_project_is_read_the_same_way_with_folder_config(make_project, tmp_path):
    project = make_project(
        {
            "models/staging/stg_orders.sql": "select 1 as id",
            "models/marts/orders.sql": "select * from {{ ref('stg_orders') }}",
        },
        profiles=DBT_PROFILES,
    )
    project.remove("sqlflow.yml")
    project.write(
        "dbt_project.yml",
        """\
        name: proj
        version: '1.0.0'
        config-version: 2
        profile: proj
        models:
          proj:
            staging:
              +materialized: table
        """,
    )
    ok(project.cli("run"))
    assert relation_type(project, "stg_orders") == "BASE TABLE"
    assert relation_type(project, "orders") == "VIEW"
    assert project.scalar("select id from orders") == 1


def test_sqlflow_yml_wins_when_both_settings_files_exist(make_project):
    project = make_project({"models/a.sql": "select 1 as x"})
    project.write("dbt_project.yml", "name: other\nprofile: proj\n")
    assert names(project.cli("ls", "--output", "selector")) == ["proj.a"]


def test_model_paths_override(make_project):
    project = make_project(
        {
            "transformations/core/a.sql": "select 7 as x",
            "models/ignored.sql": "select 1 as x",
        },
        settings="name: proj\nprofile: proj\nmodel-paths: ['transformations']\n",
    )
    assert names(project.cli("ls", "--output", "path")) == ["transformations/core/a.sql"]
    ok(project.cli("run"))
    assert project.scalar("select x from a") == 7
    assert relation_type(project, "ignored") is None


# --------------------------------------------------------------------------- profiles.yml lookup


def profiles_for(db_name: str) -> str:
    return f"proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: {db_name}\n"


@pytest.fixture
def isolated_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SQLFLOW_PROFILES_DIR", raising=False)
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    return home


def debug_profiles_path(result) -> str:
    ok(result)
    line = next(line for line in result.output.splitlines() if line.startswith("profiles:"))
    return line.split(":", 1)[1].strip()


def test_profiles_lookup_order(make_project, tmp_path, monkeypatch, isolated_home):
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles_for("from_project.duckdb"))
    flag_dir = tmp_path / "flag_profiles"
    env_dir = tmp_path / "env_profiles"
    for folder, db in ((flag_dir, "from_flag.duckdb"), (env_dir, "from_env.duckdb")):
        folder.mkdir()
        (folder / "profiles.yml").write_text(profiles_for(str(tmp_path / db)))
    (isolated_home / ".sqlflow").mkdir()
    (isolated_home / ".sqlflow" / "profiles.yml").write_text(profiles_for(str(tmp_path / "from_home.duckdb")))
    monkeypatch.setenv("SQLFLOW_PROFILES_DIR", str(env_dir))

    # --profiles-dir beats the environment variable.
    assert debug_profiles_path(project.cli("debug", "--profiles-dir", str(flag_dir))) == str(
        flag_dir / "profiles.yml"
    )
    ok(project.cli("run", "--profiles-dir", str(flag_dir)))
    assert (tmp_path / "from_flag.duckdb").exists()
    assert not (tmp_path / "from_env.duckdb").exists()

    # SQLFLOW_PROFILES_DIR beats the project folder.
    ok(project.cli("run"))
    assert (tmp_path / "from_env.duckdb").exists()
    assert not (project.root / "from_project.duckdb").exists()

    # Then the project folder (a relative duckdb path is relative to the project) ...
    monkeypatch.delenv("SQLFLOW_PROFILES_DIR")
    ok(project.cli("run"))
    assert (project.root / "from_project.duckdb").exists()

    # ... and last ~/.sqlflow.
    project.remove("profiles.yml")
    assert debug_profiles_path(project.cli("debug")) == str(isolated_home / ".sqlflow" / "profiles.yml")
    ok(project.cli("run"))
    assert (tmp_path / "from_home.duckdb").exists()


def test_dbt_project_also_finds_profiles_in_home_dbt(make_project, tmp_path, isolated_home):
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=None)
    project.remove("sqlflow.yml")
    project.write("dbt_project.yml", "name: proj\nprofile: proj\n")
    (isolated_home / ".dbt").mkdir()
    (isolated_home / ".dbt" / "profiles.yml").write_text(profiles_for(str(tmp_path / "dbt_home.duckdb")))
    ok(project.cli("run"))
    assert (tmp_path / "dbt_home.duckdb").exists()


# --------------------------------------------------------------------------- env_var


def test_env_var_in_profiles_yml(make_project, tmp_path, monkeypatch):
    profiles = (
        "proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('SQLFLOW_TEST_DB', 'default.duckdb') }}\"\n"
    )
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles)
    monkeypatch.delenv("SQLFLOW_TEST_DB", raising=False)
    ok(project.cli("run"))
    assert (project.root / "default.duckdb").exists()

    custom = tmp_path / "custom.duckdb"
    monkeypatch.setenv("SQLFLOW_TEST_DB", str(custom))
    ok(project.cli("run"))
    con = duckdb.connect(str(custom), read_only=True)
    try:
        assert con.execute("select x from a").fetchone() == (1,)
    finally:
        con.close()


def test_env_var_in_settings_and_in_a_model(make_project, monkeypatch):
    project = make_project(
        {
            "models/a.sql": 'select \'{{ var("region") }}\' as region, \'{{ env_var("TEAM_X", "none") }}\' as team',
        },
        settings=(
            "name: proj\nprofile: proj\n"
            "target-path: \"{{ env_var('TARGET_DIR_X', 'target') }}\"\n"
            "vars:\n  region: \"{{ env_var('REGION_X', 'eu') }}\"\n"
        ),
    )
    monkeypatch.delenv("REGION_X", raising=False)
    monkeypatch.delenv("TEAM_X", raising=False)
    monkeypatch.setenv("TARGET_DIR_X", "out")
    ok(project.cli("run"))
    assert project.query("select region, team from a") == [("eu", "none")]
    assert (project.root / "out" / "manifest.json").exists()

    monkeypatch.setenv("REGION_X", "us")
    monkeypatch.setenv("TEAM_X", "data")
    ok(project.cli("run"))
    assert project.query("select region, team from a") == [("us", "data")]


def test_env_var_without_default_and_unset_in_a_model(make_project, monkeypatch):
    monkeypatch.delenv("SQLFLOW_MISSING_VAR", raising=False)
    project = make_project(
        {
            "models/a.sql": "select 1 as x,\n  '{{ env_var('SQLFLOW_MISSING_VAR') }}' as y",
            "models/valid.sql": "select 1 as x",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 2
    assert "environment variable 'SQLFLOW_MISSING_VAR' is not set" in result.output
    assert "a.sql:2" in result.output
    assert "hint: export SQLFLOW_MISSING_VAR=" in result.output
    assert "Traceback" not in result.output
    assert not project.db_path.exists() or relations(project) == set()


def test_env_var_without_default_and_unset_in_profiles(make_project, monkeypatch):
    monkeypatch.delenv("SQLFLOW_MISSING_PATH", raising=False)
    profiles = (
        "proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: \"{{ env_var('SQLFLOW_MISSING_PATH') }}\"\n"
    )
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles)
    result = project.cli("run")
    assert result.exit_code == 2
    assert "SQLFLOW_MISSING_PATH" in result.output
    assert "profiles.yml" in result.output
    assert "hint: export SQLFLOW_MISSING_PATH=" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- vars


VARS_MODEL = "select {{ var('x') }} as x, '{{ var('y', 'fallback') }}' as y"


@pytest.mark.parametrize("text", ["{x: 1}", '{"x": 1}'])
def test_cli_vars_yaml_and_json(make_project, text):
    project = make_project({"models/a.sql": VARS_MODEL})
    ok(project.cli("run", "--vars", text))
    assert project.query("select x, y from a") == [(1, "fallback")]


def test_project_vars_and_cli_override(make_project):
    project = make_project(
        {"models/a.sql": VARS_MODEL + ", {{ var('z') }} as z"},
        settings="name: proj\nprofile: proj\nvars:\n  x: 5\n  y: from_settings\n  proj:\n    z: 9\n",
    )
    ok(project.cli("run"))
    assert project.query("select x, y, z from a") == [(5, "from_settings", 9)]
    ok(project.cli("run", "--vars", "{x: 6, z: 10}"))
    assert project.query("select x, y, z from a") == [(6, "from_settings", 10)]


def test_var_in_ref_is_resolved_at_load_time(make_project):
    project = make_project(
        {
            "models/a.sql": "select 'a' as src",
            "models/b.sql": "select 'b' as src",
            "models/pick.sql": "select * from {{ ref(var('upstream', 'a')) }}",
        }
    )
    assert names(project.cli("ls", "-s", "+pick", "--output", "name")) == ["a", "pick"]
    assert names(project.cli("ls", "-s", "+pick", "--output", "name", "--vars", "{upstream: b}")) == [
        "b",
        "pick",
    ]
    ok(project.cli("run", "--vars", "{upstream: b}"))
    assert project.scalar("select src from pick") == "b"


def test_a_var_holding_jinja_is_rendered_where_it_is_used_and_its_refs_are_dependencies(make_project):
    # As dbt renders vars (Fivetran's packages point their models at sources this way).
    settings = (
        "name: proj\nprofile: proj\nvars:\n"
        "  events_relation: \"{{ source('raw', 'events') }}\"\n"
        "  upstream: \"{{ ref('late') }}\"\n"
        "  label: \"{{ 'ev' ~ 'ents' }}\"\n"
        "  literal: 3\n"
    )
    project = make_project(
        {
            "models/raw.yml": "sources:\n  - name: raw\n    schema: main\n    tables: [{name: events}]\n",
            "models/late.sql": "select 2 as n",
            "models/uses.sql": "select '{{ var(\"label\") }}' as label, n + {{ var('literal') }} as n "
            "from {{ var('upstream') }}, {{ var('events_relation') }}",
        },
        settings=settings,
    )
    duckdb.connect(str(project.db_path)).execute("create table main.events as select 1 as id").close()
    assert sorted(names(project.cli("ls", "-s", "+uses", "--output", "name"))) == [
        "late",
        "raw.events",
        "uses",
    ]
    ok(project.cli("run"))
    assert project.query("select label, n from uses") == [("events", 5)]
    compiled = (project.root / "target" / "compiled" / "proj" / "models" / "uses.sql").read_text()
    assert '"main"."late"' in compiled and '"main"."events"' in compiled
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    assert sorted(manifest["nodes"]["model.proj.uses"]["depends_on"]["nodes"]) == [
        "model.proj.late",
        "source.proj.raw.events",
    ]
    # A default is used as given, never rendered (as in dbt).
    project.write("models/uses.sql", 'select \'{{ var("missing", "{{ not rendered }}") }}\' as d')
    ok(project.cli("run", "-s", "uses"))
    assert project.scalar("select d from uses") == "{{ not rendered }}"


# --------------------------------------------------------------------------- config precedence


PRECEDENCE_SETTINGS = """\
name: proj
profile: proj
models:
  proj:
    +tags: ['project']
    marts:
      +materialized: table
      +tags: ['folder']
"""

PRECEDENCE_PROPERTIES = """\
version: 2
models:
  - name: from_yaml
    config:
      materialized: view
  - name: from_file
    config:
      materialized: view
      tags: ['yaml']
"""


def test_config_precedence_file_over_yaml_over_folder(make_project):
    project = make_project(
        {
            "models/marts/from_folder.sql": "select 1 as x",
            "models/marts/from_yaml.sql": "select 2 as x",
            "models/marts/from_file.sql": "{{ config(materialized='table', tags=['file']) }}\nselect 3 as x",
            "models/marts/_properties.yml": PRECEDENCE_PROPERTIES,
            "models/other.sql": "select 4 as x",
        },
        settings=PRECEDENCE_SETTINGS,
    )
    ok(project.cli("run"))
    assert relation_type(project, "from_folder") == "BASE TABLE"  # folder config
    assert relation_type(project, "from_yaml") == "VIEW"  # YAML beats folder
    assert relation_type(project, "from_file") == "BASE TABLE"  # config() beats YAML
    assert relation_type(project, "other") == "VIEW"  # outside the folder: default


def test_tags_accumulate_across_levels(make_project):
    project = make_project(
        {
            "models/marts/from_file.sql": "{{ config(tags=['file']) }}\nselect 3 as x",
            "models/marts/_properties.yml": "models:\n  - name: from_file\n    config:\n      tags: ['yaml']\n",
            "models/other.sql": "select 4 as x",
        },
        settings=PRECEDENCE_SETTINGS,
    )
    result = project.cli("ls", "--output", "json", "--resource-type", "model")
    rows = {row["name"]: row for row in map(json.loads, names(result))}
    assert rows["from_file"]["tags"] == ["project", "folder", "yaml", "file"]
    assert rows["other"]["tags"] == ["project"]
    assert names(project.cli("ls", "-s", "tag:yaml", "--output", "name")) == ["from_file"]
    assert names(project.cli("ls", "-s", "tag:project", "--output", "name")) == ["from_file", "other"]


@pytest.mark.parametrize(
    "where",
    ["properties", "file", "folder"],
)
def test_enabled_false_excludes_a_model(make_project, where):
    files = {"models/kept.sql": "select 1 as x", "models/disabled/gone.sql": "select 2 as x"}
    settings = "name: proj\nprofile: proj\n"
    if where == "properties":
        files["models/disabled/props.yml"] = "models:\n  - name: gone\n    config:\n      enabled: false\n"
    elif where == "file":
        files["models/disabled/gone.sql"] = "{{ config(enabled=false) }}select 2 as x"
    else:
        settings += "models:\n  proj:\n    disabled:\n      +enabled: false\n"
    project = make_project(files, settings=settings)
    assert names(project.cli("ls", "--output", "name")) == ["kept"]
    ok(project.cli("run"))
    assert relation_type(project, "kept") == "VIEW"
    assert relation_type(project, "gone") is None


# --------------------------------------------------------------------------- refs


def test_static_refs_give_edges(make_project):
    project = make_project(
        {
            "models/a.sql": "select 1 as x",
            "models/b.sql": "select * from {{ ref('a') }}",
            "models/c.sql": "select * from {{ ref('b') }} join {{ ref('proj', 'a') }} using (x)",
            "models/unrelated.sql": "select 1 as y",
        }
    )
    assert names(project.cli("ls", "-s", "+c", "--output", "name")) == ["a", "b", "c"]
    assert names(project.cli("ls", "-s", "a+", "--output", "name")) == ["a", "b", "c"]


def test_dynamic_ref_in_a_loop_gets_its_edges(make_project):
    project = make_project(
        {
            "models/a.sql": "select 1 as x",
            "models/b.sql": "select 2 as x",
            "models/c.sql": "select 3 as x",
            "models/unioned.sql": (
                "{% for t in ['a','b'] %}select * from {{ ref(t) }}"
                "{% if not loop.last %} union all {% endif %}{% endfor %}"
            ),
        }
    )
    assert names(project.cli("ls", "-s", "+unioned", "--output", "name")) == ["a", "b", "unioned"]
    result = project.cli("run", "--threads", "1")
    ok(result)
    order = [line.split()[3] for line in result.output.splitlines() if " OK " in line]
    assert order.index("a") < order.index("unioned")
    assert order.index("b") < order.index("unioned")
    assert project.query("select x from unioned order by x") == [(1,), (2,)]


# --------------------------------------------------------------------------- macros and Jinja context


MACROS = """\
{% macro cents_to_dollars(column, scale=2) -%}
  round({{ column }} / 100.0, {{ scale }})
{%- endmacro %}

{% macro doubled(column) -%}
  {{ cents_to_dollars(column) }} * 2
{%- endmacro %}

{% macro pick_label(n) %}
  {% if n > 1 %}{{ return('many') }}{% else %}{{ return('one') }}{% endif %}
{% endmacro %}

{% macro from_base() -%}
  {{ ref('base') }}
{%- endmacro %}
"""


def test_macros_with_arguments_nesting_return_and_ref(make_project):
    project = make_project(
        {
            "macros/helpers.sql": MACROS,
            "models/base.sql": "select 1234 as cents",
            "models/uses_macros.sql": (
                "select {{ cents_to_dollars('cents') }} as dollars,\n"
                "       {{ cents_to_dollars('cents', scale=0) }} as whole,\n"
                "       {{ doubled('cents') }} as twice,\n"
                "       '{{ pick_label(3) }}' as label\n"
                "from {{ from_base() }}"
            ),
        }
    )
    # The ref inside the macro is found at load time: base is a parent.
    assert names(project.cli("ls", "-s", "+uses_macros", "--output", "name")) == ["base", "uses_macros"]
    ok(project.cli("run"))
    row = project.query("select dollars, whole, twice, label from uses_macros")[0]
    assert (float(row[0]), float(row[1]), float(row[2]), row[3]) == (12.34, 12.0, 24.68, "many")


def test_jinja_context_this_target_set_do_and_loops(make_project):
    project = make_project(
        {
            "models/ctx.sql": """\
                {% set cols = ['a', 'b'] %}
                {% set extra = [] %}
                {% do extra.append('c') %}
                select '{{ this }}' as this_rel,
                       '{{ target.name }}' as target_name,
                       '{{ target.schema }}' as target_schema,
                       '{{ target.type }}' as target_type,
                       {% for c in cols + extra %}'{{ c }}' as col_{{ c }},
                       {% endfor %}
                       {% set ns = namespace(total=0) %}
                       {% for i in range(1, 4) %}{% set ns.total = ns.total + i %}{% endfor %}
                       {{ ns.total }} as total,
                       {{ dict(k=1)['k'] }} as one
            """,
        }
    )
    ok(project.cli("run"))
    assert project.query("select * from ctx") == [
        ('"main"."ctx"', "dev", "main", "duckdb", "a", "b", "c", 6, 1)
    ]


def test_this_ref_and_source_are_relations_with_dbt_attributes(make_project):
    # dbt projects read `this.schema`, `ref('x').identifier`, `this.include(database=false)`...
    # both while loading (a macro choosing what to ref) and at run time.
    project = make_project(
        {
            "models/sources.yml": "sources:\n  - name: raw\n    schema: landing\n    tables: [{name: events}]\n",
            "models/base.sql": "select 1 as id",
            "models/rel.sql": """\
                {{ config(alias='rel_alias') }}
                {% set parent = ref('base') %}
                {% if this.name == 'rel_alias' and model.alias == 'rel_alias' %}
                select id,
                       '{{ this.schema }}' as this_schema,
                       '{{ this.identifier }}' as this_identifier,
                       '{{ this.include(schema=false) }}' as this_bare,
                       '{{ parent.identifier }}' as parent_identifier,
                       '{{ parent.table }}' as parent_table,
                       '{{ source('raw', 'events').schema }}' as source_schema,
                       '{{ source('raw', 'events').render() }}' as source_text
                from {{ parent }}
                {% endif %}
            """,
        }
    )
    ok(project.cli("run", "-s", "rel", "+rel"))
    assert project.query("select * from rel_alias") == [
        (1, "main", "rel_alias", '"rel_alias"', "base", "base", "landing", '"landing"."events"')
    ]
    compiled = (project.root / "target" / "compiled" / "proj" / "models" / "rel.sql").read_text()
    assert 'from "main"."base"' in compiled


def test_target_name_and_schema_follow_the_chosen_target(make_project):
    profiles = (
        DBT_PROFILES
        + "    prod:\n      type: duckdb\n      path: warehouse.duckdb\n      schema: analytics\n"
    )
    project = make_project(
        {"models/ctx.sql": "select '{{ target.name }}' as t, '{{ target.schema }}' as s, '{{ this }}' as r"},
        profiles=profiles,
    )
    ok(project.cli("run", "--target", "prod"))
    assert relation_type(project, "ctx", schema="analytics") == "VIEW"
    assert project.query("select * from analytics.ctx") == [("prod", "analytics", '"analytics"."ctx"')]


def test_run_started_at_is_one_utc_timestamp_per_run(make_project):
    model = "select '{{ run_started_at.isoformat() }}' as ts, '{{ invocation_id }}' as inv"
    project = make_project({"models/one.sql": model, "models/two.sql": model})
    ok(project.cli("run"))
    (ts1, inv1), (ts2, inv2) = project.query("select * from one union all select * from two")
    assert ts1 == ts2 and inv1 == inv2
    parsed = datetime.fromisoformat(ts1)
    assert parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0
    assert parsed.year >= 2024


def test_is_incremental_is_false_then_true(make_project):
    project = make_project(
        {
            "models/events.sql": """\
                {{ config(materialized='incremental') }}
                select {{ var('n') }} as n, {{ 'true' if is_incremental() else 'false' }} as was_incremental
                {% if is_incremental() %}
                where {{ var('n') }} > (select max(n) from {{ this }})
                {% endif %}
            """
        }
    )
    ok(project.cli("run", "--vars", "{n: 1}"))
    ok(project.cli("run", "--vars", "{n: 2}"))
    ok(project.cli("run", "--vars", "{n: 2}"))
    assert relation_type(project, "events") == "BASE TABLE"
    assert project.query("select n, was_incremental from events order by n") == [(1, False), (2, True)]


# --------------------------------------------------------------------------- sources


def test_sources_declared_in_yaml_resolve(make_project):
    project = make_project(
        {
            "models/sources.yml": """\
                version: 2
                sources:
                  - name: raw
                    tables:
                      - name: events
                      - name: users
                        identifier: app_users
                  - name: legacy
                    schema: raw
                    tables:
                      - name: events
            """,
            "models/stg_events.sql": "select count(*) as n from {{ source('raw', 'events') }}",
            "models/stg_users.sql": "select name from {{ source('raw', 'users') }}",
            "models/legacy.sql": "select count(*) as n from {{ source('legacy', 'events') }}",
        }
    )
    con = duckdb.connect(str(project.db_path))
    con.execute("create schema raw")
    con.execute("create table raw.events as select * from range(3) t(id)")
    con.execute("create table raw.app_users as select 'ann' as name")
    con.close()
    assert names(project.cli("ls", "-s", "+stg_events", "--output", "name")) == ["raw.events", "stg_events"]
    ok(project.cli("run"))
    assert project.scalar("select n from stg_events") == 3
    assert project.scalar("select name from stg_users") == "ann"
    assert project.scalar("select n from legacy") == 3
    assert 'from "raw"."events"' in compiled(project, "stg_events")


# --------------------------------------------------------------------------- schema and alias naming


def test_custom_schema_and_alias(make_project):
    project = make_project(
        {
            "models/marts/orders.sql": "{{ config(schema='marts') }}select 1 as id",
            "models/renamed.sql": "{{ config(alias='orders_v2', materialized='table') }}select 2 as id",
            "models/reader.sql": "select * from {{ ref('orders') }} union all select * from {{ ref('renamed') }}",
        }
    )
    ok(project.cli("run"))
    built = relations(project)
    assert ("main_marts", "orders") in built
    assert ("main", "orders_v2") in built
    assert ("main", "renamed") not in built
    assert ("main", "orders") not in built
    assert relation_type(project, "orders_v2") == "BASE TABLE"
    assert project.query("select id from reader order by id") == [(1,), (2,)]
    assert '"main_marts"."orders"' in compiled(project, "reader")


def test_custom_schema_from_folder_config(make_project):
    project = make_project(
        {"models/finance/revenue.sql": "select 1 as x"},
        settings="name: proj\nprofile: proj\nmodels:\n  proj:\n    finance:\n      +schema: finance\n",
    )
    ok(project.cli("run"))
    assert relation_type(project, "revenue", schema="main_finance") == "VIEW"


def test_generate_schema_name_macro_is_honoured(make_project):
    project = make_project(
        {
            "macros/naming.sql": """\
                {% macro generate_schema_name(custom_schema_name, node) -%}
                  {%- if custom_schema_name is none -%}{{ target.schema }}
                  {%- else -%}{{ custom_schema_name | trim }}_{{ node.name }}{%- endif -%}
                {%- endmacro %}
            """,
            "models/orders.sql": "{{ config(schema='marts') }}select 1 as id",
            "models/plain.sql": "select * from {{ ref('orders') }}",
        }
    )
    ok(project.cli("run"))
    built = relations(project)
    assert ("marts_orders", "orders") in built
    assert ("main", "plain") in built
    assert ("main_marts", "orders") not in built
    assert project.scalar("select id from plain") == 1


# --------------------------------------------------------------------------- parse cache


def compile_all(project, *args: str) -> dict[str, str]:
    ok(project.cli("compile", *args))
    folder = project.root / "target" / "compiled" / "proj"
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*.sql"))}


def test_parse_cache_reuse_and_invalidation(make_project):
    project = make_project(
        {
            "macros/m.sql": "{% macro pick(x) %}{{ x }}{% endmacro %}",
            "models/a.sql": "select 1 as x",
            "models/b.sql": "select 2 as x",
            "models/c.sql": "select {{ var('n', 0) }} as n, {{ pick(5) }} as p, * from {{ ref('a') }}",
        }
    )
    first = compile_all(project)
    assert (project.root / "target" / "sqlflow_parse_cache.pickle").exists()
    assert first["models/c.sql"].strip() == 'select 0 as n, 5 as p, * from "main"."a"'

    # Nothing changed: identical output.
    assert compile_all(project) == first
    assert names(project.cli("ls", "-s", "+c", "--output", "name")) == ["a", "c"]

    # A changed ref is picked up, in the compiled SQL and in the graph.
    project.write("models/c.sql", "select {{ var('n', 0) }} as n, {{ pick(5) }} as p, * from {{ ref('b') }}")
    second = compile_all(project)
    assert second["models/c.sql"].strip() == 'select 0 as n, 5 as p, * from "main"."b"'
    assert names(project.cli("ls", "-s", "+c", "--output", "name")) == ["b", "c"]

    # Changed --vars change the rendered SQL.
    third = compile_all(project, "--vars", "{n: 42}")
    assert third["models/c.sql"].strip() == 'select 42 as n, 5 as p, * from "main"."b"'

    # A changed macro is picked up too.
    project.write("macros/m.sql", "{% macro pick(x) %}{{ x * 10 }}{% endmacro %}")
    fourth = compile_all(project, "--vars", "{n: 42}")
    assert fourth["models/c.sql"].strip() == 'select 42 as n, 50 as p, * from "main"."b"'


def test_parse_cache_picks_up_properties_and_settings_changes(make_project):
    project = make_project(
        {
            "models/a.sql": "select 1 as x",
            "models/props.yml": "models:\n  - name: a\n    config:\n      materialized: table\n",
        }
    )
    ok(project.cli("run"))
    assert relation_type(project, "a") == "BASE TABLE"
    project.write("models/props.yml", "models:\n  - name: a\n    config:\n      materialized: view\n")
    ok(project.cli("run"))
    assert relation_type(project, "a") == "VIEW"
    project.write(
        "sqlflow.yml",
        "name: proj\nprofile: proj\nmodels:\n  proj:\n    +materialized: table\n    +tags: [t]\n",
    )
    project.remove("models/props.yml")
    ok(project.cli("run"))
    assert relation_type(project, "a") == "BASE TABLE"


def test_parse_cache_sees_env_var_used_in_config(make_project, monkeypatch):
    project = make_project(
        {"models/a.sql": "{{ config(materialized=env_var('MATERIALIZE_AS_X', 'view')) }}select 1 as x"}
    )
    monkeypatch.delenv("MATERIALIZE_AS_X", raising=False)
    ok(project.cli("run"))
    assert relation_type(project, "a") == "VIEW"
    monkeypatch.setenv("MATERIALIZE_AS_X", "table")
    ok(project.cli("run"))
    assert relation_type(project, "a") == "BASE TABLE"


def test_editing_a_macro_body_refreshes_cached_dependencies(make_project):
    project = make_project(
        {
            "models/e1.sql": "select 1 as x\n",
            "models/e2.sql": "select 2 as x\n",
            "macros/pick.sql": "{% macro pick() %}{{ ref('e1') }}{% endmacro %}\n",
            "models/uses.sql": "select * from {{ pick() }}\n",
        }
    )
    first = project.cli("ls", "-s", "+uses", "--output", "name")
    assert first.output.split() == ["e1", "uses"]
    project.write("macros/pick.sql", "{% macro pick() %}{{ ref('e2') }}{% endmacro %}\n")
    second = project.cli("ls", "-s", "+uses", "--output", "name")
    assert second.output.split() == ["e2", "uses"]


def test_schema_and_model_are_known_when_a_dynamic_model_loads(make_project):
    project = make_project(
        {"models/a.sql": "{% set s = schema %}select '{{ s }}' as s, '{{ model.unique_id }}' as u\n"}
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select s, u from a") == [("main", "model.proj.a")]


def test_dbt_duckdb_external_location_sources_read_files_in_place(make_project, tmp_path):
    # Relative paths are the working directory's, as under dbt-duckdb: the test writes absolute ones.
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.csv").write_text("id,kind\n1,click\n2,view\n")
    (data / "users.csv").write_text("id\n7\n")
    project = make_project(
        {
            "models/sources.yml": f"""\
                sources:
                  - name: files
                    meta: {{external_location: "{data}/{{name}}.csv"}}
                    tables:
                      - name: events
                      - name: users
                        meta: {{external_location: "read_csv('{data}/{{identifier}}.csv', header=true)"}}
                        identifier: users
            """,
            "models/joined.sql": """\
                select e.id, e.kind, u.id as user_id, '{{ source('files', 'events').identifier }}' as named
                from {{ source('files', 'events') }} as e cross join {{ source('files', 'users') }} as u
            """,
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select * from joined order by id") == [
        (1, "click", 7, "events"),
        (2, "view", 7, "events"),
    ]
    compiled = (project.root / "target" / "compiled" / "proj" / "models" / "joined.sql").read_text()
    assert (
        f"from '{data}/events.csv' as e cross join read_csv('{data}/users.csv', header=true) as u" in compiled
    )


def test_external_location_with_an_unknown_field_is_exit_2(make_project):
    project = make_project(
        {
            "models/sources.yml": "sources:\n  - name: files\n    tables:\n      - name: events\n"
            "        meta: {external_location: 'data/{table}.csv'}\n",
            "models/a.sql": "select * from {{ source('files', 'events') }}",
        }
    )
    result = project.cli("compile")
    assert result.exit_code == 2, result.output
    assert (
        "models/sources.yml:4: source table 'events': external_location 'data/{table}.csv' cannot be filled in"
        in result.output
    )


def test_a_duckdb_targets_database_is_its_files_stem_as_in_dbt_duckdb(make_project):
    project = make_project(
        {
            "models/m.sql": "-- depends_on: {{ ref('other') }}\n"
            "select '{{ target.database }}' as db, count(*) as n from {{ target.database }}.main.other",
            "models/other.sql": "select 1 as x",
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select db, n from m") == [("warehouse", 1)]
