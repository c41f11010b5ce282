"""Parsing many models on every core (parse_pool): the same results as parsing them one by one."""

from __future__ import annotations

import json
import os
import time

import duckdb
import pytest

from sqlflow import commands, manifest, parse_pool, sql

pytestmark = pytest.mark.skipif(not parse_pool.available(), reason="needs fork() and several cores")

MODELS = parse_pool.MIN_QUERIES + 20  # enough for the compiler to use the pool


def test_workers_return_what_a_parse_in_this_process_gives():
    queries = [
        ("select a.x from raw_orders as a join {s} as b on a.id = b.id -- note".format(s="main.b"), "duckdb"),
        ("with t as (select 1 as x) select * from t, customers", "duckdb"),
        ("select from where", "duckdb"),  # a syntax error: None, left to the compiler
        ("select 1; select 2", "duckdb"),  # two statements: None too
    ]
    parsed = parse_pool.parse_many(queries, digests=True)
    assert parsed[2] is None and parsed[3] is None
    for (text, dialect), result in zip(queries[:2], parsed[:2], strict=True):
        query = sql.parse(text, dialect)
        tables = [t.name for t in sql.referenced_tables(query) if not t.db]
        assert result == (tables, sql.normalized_digest(query, dialect))
    assert parse_pool.parse_many(queries[:1]) == [(["raw_orders"], None)]


def many_models(make_project):
    files = {"models/base.sql": "select 1 as id, 'a' as name"}
    for i in range(MODELS):
        files[f"models/m{i:03d}.sql"] = (
            f"{{{{ config(materialized='{'table' if i % 3 == 0 else 'view'}') }}}}\n"
            f"select id, name, {i} as n -- model {i}\nfrom {{{{ ref('base') }}}}\nwhere id > {i % 5}\n"
        )
    return make_project(files)


def create_events(project) -> None:
    connection = duckdb.connect(str(project.db_path))
    connection.execute("create table events as select 1 as id")
    connection.close()


def test_a_cold_run_through_the_pool_matches_one_without_it(make_project, monkeypatch):
    project = many_models(make_project)
    # Relations of every shape the placeholders stand for: a source, `this`, a ref used as a
    # column qualifier, a custom schema and alias.
    project.write(
        "models/sources.yml", "sources:\n  - name: raw\n    schema: main\n    tables: [{name: events}]\n"
    )
    project.write(
        "models/m001.sql",
        "{{ config(schema='other', alias='Renamed One') }}\n"
        "select {{ ref('base') }}.id, '{{ this }}' as me from {{ ref('base') }} "
        "where {{ ref('base') }}.id > 0 and exists (select 1 from {{ source('raw', 'events') }})",
    )
    project.write("models/m002.sql", "select id from {{ ref('m001') }} -- the odd one's reader")
    create_events(project)
    calls = []
    parse_many = parse_pool.parse_many
    monkeypatch.setattr(parse_pool, "parse_many", lambda *a, **k: calls.append(1) or parse_many(*a, **k))
    assert project.cli("run").exit_code == 0
    assert calls == [], "the digests were not taken from the early parse"
    with_pool = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"]

    monkeypatch.setattr(parse_pool, "available", lambda: False)
    assert project.cli("clean").exit_code == 0
    project.db_path.unlink()
    create_events(project)
    assert project.cli("run").exit_code == 0
    without = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"]
    for uid, node in without.items():
        assert with_pool[uid]["compiled_code"] == node["compiled_code"]
        assert with_pool[uid]["sqlflow_fingerprint"] == node["sqlflow_fingerprint"]


def test_a_syntax_error_found_in_a_worker_is_reported_with_its_file(make_project):
    project = many_models(make_project)
    project.write("models/m100.sql", "select (id, name from {{ ref('base') }}")
    result = project.cli("compile")
    assert result.exit_code == 2
    assert "models/m100.sql" in result.output and "SQL syntax error" in result.output


def test_digests_from_the_pool_are_the_ones_fingerprints_use(make_project):
    project = many_models(make_project)
    assert project.cli("run").exit_code == 0
    with commands.open_session(project.root, use_cache=False) as session:
        compiler = commands._compiler(session)
        uid = "model.proj.m007"
        node = session.manifest.nodes[uid]
        rendered = compiler._render(node, [], incremental=False)
        expected = sql.normalized_digest(sql.parse(rendered, "duckdb"), "duckdb")
        assert compiler.sql_digest(uid) == expected


def test_early_parse_returns_each_keys_parse_and_starts_nothing_for_a_few():
    early = parse_pool.EarlyParse("duckdb")
    for i in range(parse_pool.MIN_QUERIES + 50):
        early.add(f"m{i}", f'select x from "__sqlflow_ref__"."a" join raw_{i} using (x)')
    early.add("broken", "select (x from t")
    results = early.results()
    assert len(results) == parse_pool.MIN_QUERIES + 51
    assert results["broken"] is None
    assert results["m7"] == (["raw_7"], None)
    assert early.results() is results  # asked again, the same answer, no new work

    few = parse_pool.EarlyParse("duckdb")
    few.add("m", "select 1")
    assert few.results() == {} and few._pool is None


_PARENT: list[int] = []
_IN_PARENT: list[int] = []
_parse_chunk = parse_pool._parse_chunk


def _slow_in_workers(chunk, digests):
    if os.getpid() in _PARENT:
        _IN_PARENT.append(len(chunk))
    else:
        time.sleep(0.05)  # the forked workers inherit this: they fall behind
    return _parse_chunk(chunk, digests)


def test_early_parse_results_take_the_chunks_no_worker_started(monkeypatch):
    _PARENT[:] = [os.getpid()]
    _IN_PARENT.clear()
    monkeypatch.setattr(parse_pool, "_parse_chunk", _slow_in_workers)
    early = parse_pool.EarlyParse("duckdb")
    count = parse_pool.EarlyParse.CHUNK * 20
    for i in range(count):
        early.add(f"m{i}", f"select x from raw_{i}")
    results = early.results()
    assert _IN_PARENT, "the caller parsed no chunk itself"
    assert sum(_IN_PARENT) < count, "the workers parsed no chunk"
    assert results == {f"m{i}": ([f"raw_{i}"], None) for i in range(count)}


def test_a_cold_compile_validates_while_loading(make_project, monkeypatch):
    project = many_models(make_project)
    # A model reading another model by its bare name: the warning must survive the early parse.
    project.write("models/m050.sql", "select id from m001")
    calls = []
    parse_many = parse_pool.parse_many
    monkeypatch.setattr(parse_pool, "parse_many", lambda *a, **k: calls.append(1) or parse_many(*a, **k))
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
    assert calls == [], "everything new was parsed while loading"
    assert "m050" in result.output and "m001" in result.output  # the bare-name warning
    early = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"]

    monkeypatch.setattr(parse_pool, "available", lambda: False)
    assert project.cli("clean").exit_code == 0
    assert project.cli("compile").exit_code == 0
    late = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"]
    assert {uid: n["compiled_code"] for uid, n in early.items()} == {
        uid: n["compiled_code"] for uid, n in late.items()
    }
    compiled = project.root / "target" / "compiled" / "proj" / "models" / "m007.sql"
    assert 'from "main"."base"' in compiled.read_text()


def test_the_caches_written_beside_the_compiled_files_serve_the_next_command(make_project, monkeypatch):
    project = many_models(make_project)
    assert project.cli("compile").exit_code == 0
    target = project.root / "target"
    assert len(list((target / "compiled" / "proj" / "models").glob("*.sql"))) == MODELS + 1
    monkeypatch.setattr(
        manifest._Loader, "load", lambda self: pytest.fail("loaded again, not from the cache")
    )
    result = project.cli("compile")
    assert result.exit_code == 0, result.output
