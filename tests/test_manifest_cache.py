"""The caches that make an unchanged project fast: the whole-project load cache, manifest.json's
metadata-only rewrite, and remembered SQL digests for `state:`.

Each test loads a real project twice and checks both that the second load skipped the work
(the code that would do it is made to fail) and that what it returns is what a full load returns.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from sqlflow import artifacts, commands, manifest_cache
from sqlflow import graph as graph_module
from sqlflow import manifest as manifest_module
from sqlflow.manifest import load_manifest
from sqlflow.project import load_project


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture
def shop(make_project):
    return make_project(
        {
            "macros/cents.sql": "{% macro cents(x) %}({{ x }} * 100){% endmacro %}",
            "models/staging/stg_orders.sql": "select 1 as id, 2.5 as amount",
            "models/orders.sql": "{{ config(materialized='table') }}\n"
            "select id, {{ cents('amount') }} as cents from {{ ref('stg_orders') }}",
            "models/dynamic.sql": "{% for n in ['a', 'b'] %}select '{{ n }}' as n union all {% endfor %}"
            "select 'c' as n",
            "models/props.yml": "models:\n  - name: orders\n    description: All orders\n"
            "    columns:\n      - name: id\n        data_tests: [unique, not_null]\n"
            "  - name: ghost\n    description: no such model\n",
            "seeds/countries.csv": "code,name\nfr,France\n",
        }
    )


def load(project):
    manifest = load_manifest(load_project(project.root))
    manifest.save_caches()
    return manifest


def refuse_full_load(monkeypatch):
    def fail(self):
        raise AssertionError("the project was loaded again instead of from the whole-project cache")

    monkeypatch.setattr(manifest_module._Loader, "load", fail)


# --------------------------------------------------------------------------- whole-project cache


def test_an_unchanged_project_comes_back_whole_from_the_cache(shop, monkeypatch):
    first = load(shop)
    assert (shop.root / "target" / manifest_cache.FILE).exists()
    refuse_full_load(monkeypatch)
    second = load(shop)
    assert second.nodes == first.nodes
    assert second.sources == first.sources
    assert second.macros.keys() == first.macros.keys()
    assert second.inputs_key == first.inputs_key
    assert second.invocation_id != first.invocation_id  # a new invocation all the same
    # The warning about `ghost` is given again, although nothing was loaded.
    assert any("ghost" in warning for warning in second.warnings)
    assert second.warnings == first.warnings


@pytest.mark.parametrize(
    "relative, text",
    [
        ("models/orders.sql", "{{ config(materialized='view') }}select 1 as id, 1 as cents"),
        ("models/props.yml", "models:\n  - name: orders\n    description: Changed\n"),
        ("macros/cents.sql", "{% macro cents(x) %}({{ x }} * 1000){% endmacro %}"),
        ("seeds/countries.csv", "code,name\nde,Germany\n"),
        ("models/new.sql", "select 3 as id"),
    ],
)
def test_editing_or_adding_any_input_file_loads_again(shop, monkeypatch, relative, text):
    first = load(shop)
    shop.write(relative, text)
    second = load(shop)
    assert second.inputs_key != first.inputs_key
    # What the full load sees, the cache would have hidden:
    assert second.nodes == load_manifest(load_project(shop.root), use_cache=False).nodes


def test_deleting_a_file_loads_again(shop):
    assert "model.proj.dynamic" in load(shop).nodes
    shop.remove("models/dynamic.sql")
    assert "model.proj.dynamic" not in load(shop).nodes


def test_vars_and_target_are_part_of_the_key(shop):
    project = load_project(shop.root)
    key = manifest_cache.inputs_key(project)
    assert manifest_cache.inputs_key(load_project(shop.root, vars={"n": 1})) != key
    project.target.schema = "other"
    assert manifest_cache.inputs_key(project) != key


def test_an_environment_variable_read_while_loading_is_checked(make_project, monkeypatch):
    project = make_project(
        {
            "models/a.sql": "select 1 as x",
            "models/b.sql": "select 2 as x",
            # Not a SQLFLOW_ variable (those are in the key anyway): only the recorded read tells.
            "models/pick.sql": "select * from {{ ref(env_var('PICK_UPSTREAM', 'a')) }}",
        }
    )
    monkeypatch.delenv("PICK_UPSTREAM", raising=False)
    assert load(project).nodes["model.proj.pick"].depends_on == ["model.proj.a"]
    assert load(project).nodes["model.proj.pick"].depends_on == ["model.proj.a"]  # from the cache
    monkeypatch.setenv("PICK_UPSTREAM", "b")
    assert load(project).nodes["model.proj.pick"].depends_on == ["model.proj.b"]


def test_a_load_that_read_a_secret_is_not_cached(make_project, monkeypatch):
    monkeypatch.setenv("SHOP_DB_PASSWORD", "hunter2-secret")
    project = make_project({"models/a.sql": "{% if env_var('SHOP_DB_PASSWORD') %}select 1 as x{% endif %}"})
    load(project)
    assert not (project.root / "target" / manifest_cache.FILE).exists()


def test_a_damaged_cache_file_is_ignored(shop):
    first = load(shop)
    (shop.root / "target" / manifest_cache.FILE).write_bytes(b"not a pickle")
    assert load(shop).nodes == first.nodes


def test_no_cache_neither_reads_nor_writes_it(shop, monkeypatch):
    ok(shop.cli("compile", "--no-cache"))
    assert not (shop.root / "target" / manifest_cache.FILE).exists()
    ok(shop.cli("compile"))
    refuse_full_load(monkeypatch)
    assert "loaded again" in shop.cli("compile", "--no-cache").output


# --------------------------------------------------------------------------- manifest.json


def test_an_unchanged_manifest_gets_new_metadata_without_serializing_the_nodes(shop, monkeypatch):
    ok(shop.cli("compile"))
    path = shop.root / "target" / "manifest.json"
    first = json.loads(path.read_text())

    def fail(*args, **kwargs):
        raise AssertionError("manifest.json was serialized again")

    monkeypatch.setattr(artifacts, "node_json", fail)
    ok(shop.cli("compile"))
    second = json.loads(path.read_text())
    assert second["metadata"]["invocation_id"] != first["metadata"]["invocation_id"]
    assert {k: v for k, v in second.items() if k != "metadata"} == {
        k: v for k, v in first.items() if k != "metadata"
    }


def test_a_changed_project_writes_the_whole_manifest_again(shop):
    ok(shop.cli("compile"))
    shop.write("models/orders.sql", "select 7 as id")
    ok(shop.cli("compile"))
    manifest = json.loads((shop.root / "target" / "manifest.json").read_text())
    assert manifest["nodes"]["model.proj.orders"]["raw_code"] == "select 7 as id"


def test_the_rewritten_manifest_is_the_one_a_full_write_makes(shop):
    ok(shop.cli("run"))
    ok(shop.cli("run"))  # the body comes from the previous file
    spliced = json.loads((shop.root / "target" / "manifest.json").read_text())
    ok(shop.cli("run", "--no-cache"))
    full = json.loads((shop.root / "target" / "manifest.json").read_text())
    assert spliced.keys() == full.keys()
    for key in full:
        if key != "metadata":
            assert spliced[key] == full[key], key
    assert "sqlflow_body_key" not in full["metadata"]  # no key without the caches


def test_compiled_sql_is_part_of_the_manifest_key(shop):
    ok(shop.cli("compile"))  # no warehouse yet: orders compiles as a first build
    ok(shop.cli("run"))
    with commands.open_session(shop.root) as session:
        compiled = commands.compile(session)
    manifest = json.loads((shop.root / "target" / "manifest.json").read_text())
    for uid, node in compiled.items():
        assert manifest["nodes"][uid]["compiled_code"] == node.sql


# --------------------------------------------------------------------------- remembered SQL digests


def test_state_modified_follows_an_env_var_a_model_renders(make_project, monkeypatch):
    monkeypatch.setenv("SHOP_REGION", "eu")
    project = make_project(
        {
            "models/static.sql": "select 1 as x",
            "models/regional.sql": "select '{{ env_var(\"SHOP_REGION\") }}' as region",
        }
    )
    ok(project.cli("run"))
    assert ok(project.cli("ls", "-s", "state:modified", "--output", "name")).output.split() == []
    monkeypatch.setenv("SHOP_REGION", "us")
    assert ok(project.cli("ls", "-s", "state:modified", "--output", "name")).output.split() == ["regional"]


def test_static_models_digests_are_remembered_for_the_same_inputs(make_project):
    project = make_project({"models/a.sql": "select 1 as x", "models/b.sql": "select * from {{ ref('a') }}"})
    ok(project.cli("run"))
    with commands.open_session(project.root) as session:
        compiler = commands._compiler(session)
        remembered = compiler._checked.digests(session.manifest.inputs_key)
        assert set(remembered) == {"model.proj.a", "model.proj.b"}
        assert remembered["model.proj.b"] == compiler.sql_digest("model.proj.b")


def test_a_file_is_read_again_when_its_size_or_time_changes(shop):
    project = load_project(shop.root)
    key = manifest_cache.inputs_key(project)
    path = shop.root / "models" / "staging" / "stg_orders.sql"
    # Same size, same modification time, other content, moments after the digest was taken:
    # a timestamp cannot tell these apart, so a recent file is always read again.
    stat = path.stat()
    path.write_text(path.read_text().replace("2.5", "7.5"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert manifest_cache.inputs_key(project) != key
    # An older file is trusted by size and time (as git does) until either changes.
    old = stat.st_mtime_ns - 10_000_000_000
    os.utime(path, ns=(old, old))
    key = manifest_cache.inputs_key(project)
    manifest_cache.inputs_key(project)  # its digest is now taken long after its modification
    path.write_text(path.read_text() + "\n-- edited")
    assert manifest_cache.inputs_key(project) != key


def test_models_read_while_computing_the_key_are_not_read_again(shop, monkeypatch):
    # A Windows line ending and a non-ASCII character: what read_text() makes of them.
    (shop.root / "models" / "crlf.sql").write_bytes("select 'café' as x\r\nfrom (select 1)\r\n".encode())
    reads = []
    read = manifest_module._read
    monkeypatch.setattr(manifest_module, "_read", lambda path: reads.append(path) or read(path))
    manifest = load(shop)
    assert [p for p in reads if p.suffix == ".sql" and "models" in p.parts] == []
    crlf = manifest.nodes["model.proj.crlf"]
    assert crlf.raw_code == (shop.root / "models" / "crlf.sql").read_text(encoding="utf-8")
    assert crlf.raw_code == "select 'café' as x\nfrom (select 1)\n"
    assert manifest.nodes == load_manifest(load_project(shop.root), use_cache=False).nodes


def test_the_graph_comes_back_with_the_nodes(shop, monkeypatch):
    with commands.open_session(shop.root) as first:
        expected = first.graph.topological()
        parents = {uid: first.graph.parents(uid) for uid in first.graph}
    monkeypatch.setattr(graph_module.Graph, "_adjacency", lambda *a: pytest.fail("the graph was built again"))
    with commands.open_session(shop.root) as second:
        assert second.manifest.graph_lists is not None
        assert second.graph.topological() == expected
        assert {uid: second.graph.parents(uid) for uid in second.graph} == parents


def test_a_deleted_compiled_file_is_written_again(shop):
    ok(shop.cli("compile"))
    compiled = shop.root / "target" / "compiled" / "proj" / "models"
    (compiled / "orders.sql").unlink()
    shutil.rmtree(compiled / "staging")
    before = (compiled / "dynamic.sql").stat().st_mtime_ns
    ok(shop.cli("compile"))
    assert "cents" in (compiled / "orders.sql").read_text()
    assert (compiled / "staging" / "stg_orders.sql").exists()
    assert (compiled / "dynamic.sql").stat().st_mtime_ns == before  # unchanged: not rewritten


# --------------------------------------------------------------------------- sqlglot on first use


def test_sqlglot_stand_ins_are_the_real_modules_once_used():
    import sqlglot
    import sqlglot.expressions

    from sqlflow.lazy import exp
    from sqlflow.lazy import sqlglot as lazy_sqlglot

    assert exp.Select is sqlglot.expressions.Select
    assert lazy_sqlglot.errors.ParseError is sqlglot.errors.ParseError
    assert "Select" in vars(exp)  # taken over: later reads are plain module attribute reads


def test_an_unchanged_compile_of_static_models_never_imports_sqlglot(make_project):
    import subprocess
    import sys

    # Static models only: a model that calls a macro is rendered again, naming relations with sqlglot.
    project = make_project(
        {
            "models/stg_orders.sql": "select 1 as id, 2.5 as amount",
            "models/orders.sql": "{{ config(materialized='table') }}\n"
            "select id from {{ ref('stg_orders') }} {% if is_incremental() %}where id > 0{% endif %}",
            "models/props.yml": "models:\n  - name: orders\n    columns:\n      - name: id\n"
            "        data_tests: [unique]\n",
        }
    )
    script = (
        "import sys\n"
        "from sqlflow import commands\n"
        f"with commands.open_session({str(project.root)!r}) as session:\n"
        "    commands.compile(session)\n"
        "print('sqlglot imported' if 'sqlglot' in sys.modules else 'sqlglot not imported')\n"
    )
    run = [sys.executable, "-c", script]
    first = subprocess.run(run, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "sqlglot imported"  # a cold compile parses every model
    again = subprocess.run(run, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "sqlglot not imported"
    assert (project.root / "target" / "compiled").is_dir()
