"""Recording build state in batches while a run goes on (state.WarehouseState.record/flush)."""

from __future__ import annotations

import json

import duckdb


def test_every_build_of_a_parallel_run_is_recorded_once(make_project):
    files = {f"models/m{i:02d}.sql": f"select {i} as x" for i in range(30)}
    files.update({f"models/c{i:02d}.sql": f"select * from {{{{ ref('m{i:02d}') }}}}" for i in range(30)})
    project = make_project(files)
    for _ in range(2):  # the second run replaces each row, it does not add one
        result = project.cli("run", "--threads", "4")
        assert result.exit_code == 0, result.output
    rows = project.query("select relation_name, count(*) from sqlflow_state.nodes group by 1")
    assert len(rows) == 60 and all(count == 1 for _, count in rows)
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    recorded = dict(project.query("select unique_id, fingerprint from sqlflow_state.nodes"))
    assert recorded == {uid: node["sqlflow_fingerprint"] for uid, node in manifest["nodes"].items()}
    assert project.cli("ls", "-s", "state:modified", "--output", "name").output.split() == []


def test_a_build_whose_state_cannot_be_recorded_fails_the_run(make_project):
    project = make_project({"models/a.sql": "select 1 as x", "models/b.sql": "select 2 as x"})
    connection = duckdb.connect(str(project.db_path))
    # A view where the state table belongs: every write of state fails.
    connection.execute("create schema sqlflow_state; create view sqlflow_state.nodes as select 1 as x")
    connection.close()
    result = project.cli("run")
    assert result.exit_code == 1
    assert result.output.count("built, but its state was not recorded") == 2
    results = json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    assert {r["status"] for r in results} == {"error"}
    assert project.scalar("select count(*) from main.a") == 1  # the builds themselves stand


def test_the_state_schema_exists_before_any_node_runs(make_project):
    # Created once before the threads start: the state writer and a microbatch model's intervals
    # creating it at once failed a build with a catalog write-write conflict in DuckDB.
    project = make_project(
        {
            "models/probe.sql": "{{ config(materialized='table') }}\n"
            "select count(*) as n from information_schema.schemata where schema_name = 'sqlflow_state'"
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.scalar("select n from main.probe") == 1
