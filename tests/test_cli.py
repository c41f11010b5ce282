"""The `sqlflow` command line as a user runs it: every command, its output and its exit code."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import duckdb
import pytest
from click.testing import CliRunner

from sqlflow import __version__
from sqlflow.cli import main

FILES = {
    "seeds/people.csv": "id,name\n1,ada\n2,grace\n3,edsger\n",
    "models/staging/stg_people.sql": "select id, upper(name) as name from {{ ref('people') }}\n",
    "models/marts/people_count.sql": (
        "{{ config(materialized='table', tags=['daily']) }}\nselect count(*) as n from {{ ref('stg_people') }}\n"
    ),
    "models/numbers.sql": "select range as i from range(10)\n",
    "models/sources.yml": """\
        version: 2
        sources:
          - name: raw
            tables:
              - name: events
        """,
}

COMMANDS = ["run", "build", "test", "seed", "compile", "ls", "show", "debug", "init", "clean"]


def invoke(*args: str):
    """The CLI without the fixture's --project-dir (for --version, --help and init)."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture
def project(make_project):
    return make_project(FILES)


def relations(project) -> set[str]:
    return {
        name
        for (name,) in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
    }


# --------------------------------------------------------------------------- version and help


def test_version():
    code, output = invoke("--version")
    assert code == 0
    assert output == f"sqlflow, version {__version__}\n"


def test_top_level_help_lists_every_command():
    code, output = invoke("--help")
    assert code == 0
    commands_section = output.split("Commands:", 1)[1]
    listed = {line.split()[0] for line in commands_section.splitlines() if line.strip()}
    assert set(COMMANDS) <= listed


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command(command):
    code, output = invoke(command, "--help")
    assert code == 0
    assert output.startswith(f"Usage: main {command} ")
    assert "--help" in output


@pytest.mark.parametrize("command", ["run", "build", "seed", "compile", "ls", "show"])
def test_selection_commands_document_select_and_exclude(command):
    _, output = invoke(command, "--help")
    assert "-s, -m, --select, --models TEXT" in output
    assert "--exclude TEXT" in output
    assert "--project-dir DIRECTORY" in output


# --------------------------------------------------------------------------- init


def test_init_creates_a_project_that_builds(tmp_path):
    folder = tmp_path / "newproj"
    code, output = invoke("init", str(folder))
    assert code == 0, output
    assert output == f"Created {folder}. Next: cd {folder} && sqlflow build\n"
    assert (folder / "sqlflow.yml").read_text().startswith("name: newproj\nprofile: newproj\n")
    assert (folder / "seeds" / "people.csv").is_file()
    assert (folder / "models" / "example" / "first_model.sql").is_file()

    code, output = invoke("build", "--project-dir", str(folder))
    assert code == 0, output
    assert "Done." in output
    assert (folder / "newproj.duckdb").is_file()
    con = duckdb.connect(str(folder / "newproj.duckdb"), read_only=True)
    try:
        assert con.execute("select id, name from main.first_model order by id").fetchall() == [
            (1, "ADA"),
            (2, "GRACE"),
            (3, "EDSGER"),
        ]
        assert con.execute("select people from main.second_model").fetchall() == [(3,)]
        kinds = dict(
            con.execute(
                "select table_name, table_type from information_schema.tables where table_schema = 'main'"
            ).fetchall()
        )
    finally:
        con.close()
    assert kinds == {"people": "BASE TABLE", "first_model": "BASE TABLE", "second_model": "VIEW"}


def test_init_with_a_relative_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, output = invoke("init", "rel_proj")
    assert code == 0, output
    assert (tmp_path / "rel_proj" / "profiles.yml").read_text().startswith("rel_proj:\n")
    assert "Next: cd rel_proj && sqlflow build" in output


def test_init_into_an_existing_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    code, output = invoke("init", str(tmp_path / "empty"))
    assert code == 0, output
    assert (tmp_path / "empty" / "sqlflow.yml").is_file()


def test_init_into_a_non_empty_folder_exits_2(tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    code, output = invoke("init", str(folder))
    assert code == 2
    assert f"Error: {folder} already exists and is not empty" in output
    assert "hint: choose another name or folder" in output
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("name", ["1project", "my-project", "has space", "dotted.name"])
def test_init_with_an_invalid_name_exits_2(tmp_path, name):
    code, output = invoke("init", str(tmp_path / name))
    assert code == 2
    assert f"Error: {name!r} is not a valid project name" in output
    assert "hint: use letters, digits and underscores" in output
    assert not (tmp_path / name).exists()
    assert "Traceback" not in output


# --------------------------------------------------------------------------- seed, run, build


def test_seed_loads_only_seeds(project):
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    assert re.search(r"^1/1 OK\s+seed\s+people 3 rows", result.output, re.M)
    assert "Done. OK=1" in result.output
    assert project.query("select id, name from main.people order by id") == [
        (1, "ada"),
        (2, "grace"),
        (3, "edsger"),
    ]
    assert relations(project) == {"people"}


def test_run_builds_models_after_seed(project):
    assert project.cli("seed").exit_code == 0
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Running 3 nodes on dev (duckdb ")
    assert re.search(r"OK\s+table\s+people_count 1 rows", result.output)
    assert "Done. OK=3" in result.output
    assert project.scalar("select n from main.people_count") == 3
    assert project.query("select name from main.stg_people order by id") == [
        ("ADA",),
        ("GRACE",),
        ("EDSGER",),
    ]


def test_run_without_seeds_fails_with_exit_1_and_skips_downstream(project):
    result = project.cli("run")
    assert result.exit_code == 1
    assert re.search(r"ERROR\s+view\s+stg_people", result.output)
    assert "Table with name people does not exist" in result.output
    assert re.search(r"SKIP\s+table\s+people_count", result.output)
    assert re.search(r"OK\s+view\s+numbers", result.output)
    assert "Finished with errors. OK=1 ERROR=1 SKIP=1" in result.output
    assert "Traceback" not in result.output
    assert relations(project) == {"numbers"}


def test_build_runs_seeds_and_models_in_one_dag(project):
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Running 4 nodes")
    assert "Done. OK=4" in result.output
    assert relations(project) == {"people", "stg_people", "people_count", "numbers"}
    assert project.scalar("select n from main.people_count") == 3


def test_run_with_a_selector_builds_only_the_selection(project):
    result = project.cli("run", "-s", "numbers")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Running 1 node on dev")
    assert relations(project) == {"numbers"}
    assert project.scalar("select sum(i) from main.numbers") == 45


def test_build_with_exclude(project):
    result = project.cli("build", "--exclude", "tag:daily")
    assert result.exit_code == 0, result.output
    assert relations(project) == {"people", "stg_people", "numbers"}


# --------------------------------------------------------------------------- compile


def test_compile_writes_rendered_sql_without_touching_the_warehouse(project):
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert "Compiled 3 models to target/compiled/" in result.output
    compiled = project.root / "target" / "compiled" / "proj" / "models"
    assert (compiled / "staging" / "stg_people.sql").read_text() == (
        'select id, upper(name) as name from "main"."people"\n'
    )
    assert (compiled / "marts" / "people_count.sql").read_text() == (
        'select count(*) as n from "main"."stg_people"\n'
    )
    assert (compiled / "numbers.sql").read_text() == "select range as i from range(10)\n"
    assert not project.db_path.exists()


def test_compile_one_model_prints_its_sql(project):
    result = project.cli("compile", "-s", "stg_people")
    assert result.exit_code == 0, result.output
    assert result.output == 'select id, upper(name) as name from "main"."people"\n'


def test_compile_with_a_sql_error_exits_2(project):
    project.write("models/broken.sql", "select from from where\n")
    result = project.cli("compile")
    assert result.exit_code == 2
    assert "SQL syntax error" in result.output
    assert "models/broken.sql" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- ls


def test_ls_default_output_is_selectors(project):
    result = project.cli("ls")
    assert result.exit_code == 0, result.output
    assert sorted(result.output.splitlines()) == [
        "proj.marts.people_count",
        "proj.numbers",
        "proj.people",
        "proj.staging.stg_people",
        "source:proj.raw.events",
    ]


def test_ls_output_name_and_path(project):
    names = project.cli("ls", "-s", "+people_count", "--output", "name")
    assert names.exit_code == 0
    assert names.output.splitlines() == ["people", "stg_people", "people_count"]
    paths = project.cli("ls", "-s", "+people_count source:raw", "-o", "path")
    assert paths.exit_code == 0
    assert sorted(paths.output.splitlines()) == [
        "models/marts/people_count.sql",
        "models/sources.yml",
        "models/staging/stg_people.sql",
        "seeds/people.csv",
    ]


def test_ls_output_json(project):
    result = project.cli("ls", "-o", "json")
    assert result.exit_code == 0, result.output
    rows = {row["unique_id"]: row for row in map(json.loads, result.output.splitlines())}
    assert set(rows) == {
        "model.proj.numbers",
        "model.proj.stg_people",
        "model.proj.people_count",
        "seed.proj.people",
        "source.proj.raw.events",
    }
    assert rows["model.proj.people_count"] == {
        "unique_id": "model.proj.people_count",
        "name": "people_count",
        "resource_type": "model",
        "path": "models/marts/people_count.sql",
        "materialized": "table",
        "tags": ["daily"],
    }
    assert rows["seed.proj.people"]["materialized"] == "seed"
    assert rows["source.proj.raw.events"] == {
        "unique_id": "source.proj.raw.events",
        "name": "events",
        "resource_type": "source",
        "path": "models/sources.yml",
        "materialized": None,
        "tags": [],
    }


def test_select_takes_several_values_like_dbt(project):
    result = project.cli("ls", "-s", "numbers", "people", "-o", "name")
    assert result.exit_code == 0, result.output
    assert sorted(result.output.splitlines()) == ["numbers", "people"]


def test_ls_resource_type(project):
    seeds = project.cli("ls", "--resource-type", "seed", "-o", "name")
    assert seeds.output.splitlines() == ["people"]
    sources = project.cli("ls", "--resource-type", "source")
    assert sources.output.splitlines() == ["source:proj.raw.events"]
    both = project.cli("ls", "--resource-type", "seed", "--resource-type", "model", "-o", "name")
    assert sorted(both.output.splitlines()) == ["numbers", "people", "people_count", "stg_people"]
    bad = project.cli("ls", "--resource-type", "metric")
    assert bad.exit_code == 2
    assert "Invalid value for '--resource-type'" in bad.output


def test_ls_does_not_create_the_warehouse(project):
    assert project.cli("ls").exit_code == 0
    assert not project.db_path.exists()


# --------------------------------------------------------------------------- show


def test_show_prints_a_limited_table_without_building(project):
    result = project.cli("show", "-s", "numbers", "--limit", "3")
    assert result.exit_code == 0, result.output
    cells = [line.strip("│ ") for line in result.output.splitlines() if line.startswith("│")]
    assert cells == ["0", "1", "2"]
    assert "┃ i ┃" in result.output
    assert "numbers" not in relations(project)


def test_show_json(project):
    result = project.cli("show", "-s", "numbers", "--limit", "3", "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"columns": ["i"], "rows": [[0], [1], [2]]}


def test_show_a_model_reading_a_seed(project):
    assert project.cli("seed").exit_code == 0
    result = project.cli("show", "-s", "stg_people", "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "columns": ["id", "name"],
        "rows": [[1, "ADA"], [2, "GRACE"], [3, "EDSGER"]],
    }


def test_show_needs_exactly_one_model(project):
    result = project.cli("show", "-s", "numbers stg_people")
    assert result.exit_code == 2
    assert "Error: --select must pick exactly one model for show; it picked 2" in result.output
    none = project.cli("show", "-s", "no_such_model")
    assert none.exit_code == 2
    assert "it picked 0" in none.output


# --------------------------------------------------------------------------- debug


SECRET_PROFILES = """\
proj:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
      threads: 2
      password: secret123
"""


def test_debug_masks_secrets_and_checks_the_connection(make_project):
    project = make_project(FILES, profiles=SECRET_PROFILES)
    result = project.cli("debug")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"project: {project.root}" in lines
    assert "profile: proj" in lines
    assert "target: dev" in lines
    assert "  type: duckdb" in lines
    assert f"  path: {project.db_path}" in lines
    assert "  threads: 2" in lines
    assert "  password: *****" in lines
    assert "models: 3" in lines
    assert "seeds: 1" in lines
    assert "sources: 1" in lines
    assert lines[-1].startswith("connection: OK (duckdb ")
    assert "secret123" not in result.output


def test_debug_reports_a_failed_connection_with_exit_2(make_project):
    project = make_project(FILES)
    (project.root / "warehouse.duckdb").mkdir()  # a folder where the database file should be
    result = project.cli("debug")
    assert result.exit_code == 2
    failed = [line for line in result.output.splitlines() if line.startswith("connection: FAILED: ")]
    assert len(failed) == 1
    assert "cannot open DuckDB database" in failed[0]
    assert "Is a directory" in failed[0]
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- clean


def test_clean_removes_target(project):
    assert project.cli("build").exit_code == 0
    assert (project.root / "target" / "manifest.json").is_file()
    result = project.cli("clean")
    assert result.exit_code == 0, result.output
    assert result.output == f"removed {project.root / 'target'}\n"
    assert not (project.root / "target").exists()
    assert project.db_path.is_file()
    again = project.cli("clean")
    assert again.exit_code == 0
    assert again.output == ""


def test_clean_removes_every_clean_target(make_project):
    project = make_project(FILES, settings="name: proj\nprofile: proj\nclean-targets: [target, logs]\n")
    project.write("target/x.txt", "x")
    project.write("logs/run.log", "y")
    result = project.cli("clean")
    assert result.exit_code == 0, result.output
    assert not (project.root / "target").exists()
    assert not (project.root / "logs").exists()
    assert (project.root / "models" / "numbers.sql").is_file()


@pytest.mark.parametrize("entry", ["../outside", ".", "/tmp"])
def test_clean_refuses_a_target_outside_the_project(make_project, tmp_path, entry):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    project = make_project(FILES, settings=f"name: proj\nprofile: proj\nclean-targets: ['{entry}']\n")
    result = project.cli("clean")
    assert result.exit_code == 2
    assert f"clean-targets entry {entry!r} is outside the project" in result.output
    assert (outside / "keep.txt").read_text() == "keep"
    assert (project.root / "sqlflow.yml").is_file()


# --------------------------------------------------------------------------- exit codes and tracebacks


@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (
            ("run",),
            {"models/bad.sql": "select * from {{ ref('nope') }}"},
            "refs 'nope', which does not exist",
        ),
        (("run", "-s", "a,,b"), {}, "invalid selector"),
        (("build", "--exclude", "foo:bar"), {}, "unknown method 'foo'"),
        (("run", "--vars", "[1, 2]"), {}, "--vars must be a mapping"),
        (("run", "--target", "prod"), {}, "target 'prod' not found in profile 'proj'"),
        (
            ("compile",),
            {"models/bad.sql": "{{ config(materialized='wrong') }} select 1"},
            "unknown materialization",
        ),
        (
            ("show", "-s", "bad"),
            {"models/bad.sql": "select {{ undefined_macro() }}"},
            "'undefined_macro' is undefined",
        ),
        (("run", "--bogus-option"), {}, "No such option"),
        (("run", "--threads", "0"), {}, "Invalid value for '--threads'"),
    ],
)
def test_user_errors_exit_2_without_traceback(make_project, args, files, message):
    project = make_project({**FILES, **files})
    result = project.cli(*args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert 'File "' not in result.output


def test_a_missing_project_exits_2(tmp_path):
    code, output = invoke("ls", "--project-dir", str(tmp_path))
    assert code == 2
    assert f"Error: no sqlflow.yml or dbt_project.yml in {tmp_path}" in output
    assert "Traceback" not in output
    code, output = invoke("run", "--project-dir", str(tmp_path / "missing"))
    assert code == 2
    assert "does not exist" in output


def test_a_failing_model_exits_1_in_a_real_process(project):
    project.write("models/boom.sql", "{{ config(materialized='table') }}\nselect cast('x' as integer) as v\n")
    completed = project.subprocess("run", "-s", "boom numbers")
    assert completed.returncode == 1
    assert re.search(r"ERROR\s+table\s+boom", completed.stdout)
    assert "Conversion Error" in completed.stdout
    assert re.search(r"OK\s+view\s+numbers", completed.stdout)
    assert "Traceback" not in completed.stdout + completed.stderr


def test_a_user_error_in_a_real_process_goes_to_stderr(project):
    completed = project.subprocess("ls", "-s", "a,,b")
    assert completed.returncode == 2
    assert completed.stdout == ""
    assert completed.stderr.startswith(
        "Error: invalid selector: ',' needs a selector on both sides\n  a,,b\n    ^\n"
    )
    assert "Traceback" not in completed.stderr


def test_debug_flag_shows_the_traceback(project):
    completed = project.subprocess("ls", "-s", "a,,b", "--debug")
    assert completed.returncode == 2
    assert "Traceback (most recent call last)" in completed.stderr
    assert "SelectorError" in completed.stderr


def test_output_piped_into_a_reader_that_leaves_does_not_hang(make_project):
    project = make_project({f"models/m{i}.sql": f"select {i} as x" for i in range(30)})
    proc = subprocess.run(
        f"{sys.executable} -m sqlflow.cli run --project-dir {project.root} --threads 2 | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.startswith("Running 30 nodes")
    assert project.scalar("select count(*) from information_schema.tables where table_schema = 'main'") == 30


def test_show_masks_secrets_in_warehouse_errors(make_project, monkeypatch):
    monkeypatch.setenv("MY_PASSWORD", "hunter2secret")
    project = make_project({"models/leak.sql": "select {{ env_var('MY_PASSWORD') }} as p\n"})
    result = project.cli("show", "-s", "leak")
    assert result.exit_code == 2
    assert "hunter2secret" not in result.output
    assert "*****" in result.output


def test_show_honours_exclude(make_project):
    project = make_project({"models/a.sql": "select 1 as x\n", "models/b.sql": "select 2 as y\n"})
    result = project.cli("show", "-s", "a", "b", "--exclude", "b", "--log-format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["columns"] == ["x"]


def _report(force_terminal: bool | None) -> str:
    import io

    from sqlflow.events import ConsoleReporter, Event

    stream = io.StringIO()
    reporter = ConsoleReporter(stream=stream, force_terminal=force_terminal)
    node = {"index": 1, "total": 1, "status": "error", "materialized": "table", "name": "[x]"}
    for event in (
        Event("run_started", "Running 1 node", data={"total": 1}),
        Event("node_finished", "boom [red]x[/] :smile:", data={**node, "execution_time": 0.5}),
        Event("run_finished", "Done.", level="error", data={"counts": {"error": 1}, "elapsed": 0.5}),
    ):
        reporter(event)
    return stream.getvalue()


def test_console_output_is_plain_text_off_a_terminal_and_coloured_on_one():
    assert _report(False) == (
        "Running 1 node\n1/1 ERROR table       [x] 0.50s\n      boom [red]x[/] :smile:\nDone. ERROR=1 in 0.50s\n"
    )
    coloured = _report(True)
    assert "\x1b[31mERROR\x1b[0m" in coloured  # red
    # Names and messages are shown as written: no markup or emoji codes read in them.
    assert "[x]" in coloured and "boom [red]x[/] :smile:" in coloured
    assert "Done." in coloured and "ERROR=1 in 0.50s" in coloured


def test_commands_off_a_terminal_do_not_import_rich(tmp_path):
    from shop_example import copy_example

    code = (
        "import sys; from sqlflow.cli import main\n"
        "try: main(['ls', '--project-dir', sys.argv[1]])\n"
        "except SystemExit: pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rich'))"
    )
    root = copy_example(tmp_path / "shop")
    result = subprocess.run(
        [sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
