"""target/manifest.json, target/run_results.json and compiled SQL: dbt's formats, no secrets, whole files."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from pathlib import Path

import duckdb
import pytest

SCHEMA_YML = """\
version: 2

models:
  - name: stg_people
    description: People, with names in capitals.
    columns:
      - name: id
        description: The person's id.
      - name: name
        description: Upper-cased name.
        data_type: varchar
  - name: people_count
    description: How many people there are.

seeds:
  - name: people
    description: Raw people.

sources:
  - name: raw
    description: Loaded by the ingestion job.
    tables:
      - name: events
        description: One row per event.
        columns:
          - name: id
            description: Event id.
"""

FILES = {
    "seeds/people.csv": "id,name\n1,ada\n2,grace\n3,edsger\n",
    "models/schema.yml": SCHEMA_YML,
    "models/staging/stg_people.sql": "select id, upper(name) as name from {{ ref('people') }}\n",
    "models/marts/people_count.sql": (
        "{{ config(materialized='table') }}\nselect count(*) as n from {{ ref('stg_people') }}\n"
    ),
    "models/events_view.sql": "select id from {{ source('raw', 'events') }}\n",
}

MODEL_IDS = {"model.proj.stg_people", "model.proj.people_count", "model.proj.events_view"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(project, name: str) -> dict:
    return json.loads((project.root / "target" / name).read_text(encoding="utf-8"))


def create_raw_events(project) -> None:
    con = duckdb.connect(str(project.db_path))
    try:
        con.execute("create schema raw; create table raw.events as select * from range(5) as t(id)")
    finally:
        con.close()


@pytest.fixture
def project(make_project):
    project = make_project(FILES)
    create_raw_events(project)
    return project


@pytest.fixture
def built(project):
    seeded = project.cli("seed")
    assert seeded.exit_code == 0, seeded.output
    ran = project.cli("run")
    assert ran.exit_code == 0, ran.output
    return project


# --------------------------------------------------------------------------- manifest.json


def test_manifest_metadata(built):
    metadata = load(built, "manifest.json")["metadata"]
    assert metadata["dbt_schema_version"] == "https://schemas.getdbt.com/dbt/manifest/v12.json"
    assert metadata["project_name"] == "proj"
    assert metadata["adapter_type"] == "duckdb"
    assert str(uuid.UUID(metadata["invocation_id"])) == metadata["invocation_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", metadata["generated_at"])


def test_manifest_nodes(built):
    manifest = load(built, "manifest.json")
    nodes = manifest["nodes"]
    assert set(nodes) == MODEL_IDS | {"seed.proj.people"}

    stg = nodes["model.proj.stg_people"]
    assert stg["unique_id"] == "model.proj.stg_people"
    assert stg["resource_type"] == "model"
    assert stg["name"] == "stg_people"
    assert stg["package_name"] == "proj"
    assert stg["original_file_path"] == "models/staging/stg_people.sql"
    assert stg["path"] == "staging/stg_people.sql"
    assert stg["fqn"] == ["proj", "staging", "stg_people"]
    assert stg["checksum"] == {
        "name": "sha256",
        "checksum": sha256(built.root / "models/staging/stg_people.sql"),
    }
    assert stg["raw_code"] == FILES["models/staging/stg_people.sql"]
    assert stg["compiled_code"] == 'select id, upper(name) as name from "main"."people"'
    assert stg["depends_on"]["nodes"] == ["seed.proj.people"]
    assert stg["config"]["materialized"] == "view"
    assert stg["description"] == "People, with names in capitals."
    assert stg["patch_path"] == "models/schema.yml"
    assert stg["columns"] == {
        "id": {
            "name": "id",
            "description": "The person's id.",
            "data_type": None,
            "meta": {},
            "tags": [],
            "constraints": [],
        },
        "name": {
            "name": "name",
            "description": "Upper-cased name.",
            "data_type": "varchar",
            "meta": {},
            "tags": [],
            "constraints": [],
        },
    }
    assert stg["relation_name"] == '"main"."stg_people"'
    assert (stg["database"], stg["schema"], stg["alias"]) == (None, "main", "stg_people")
    assert stg["refs"] == [{"name": "people", "package": None, "version": None}]

    count = nodes["model.proj.people_count"]
    assert count["config"]["materialized"] == "table"
    assert count["compiled_code"] == 'select count(*) as n from "main"."stg_people"'
    assert count["depends_on"]["nodes"] == ["model.proj.stg_people"]
    assert count["description"] == "How many people there are."
    assert count["columns"] == {}
    assert count["checksum"]["checksum"] == sha256(built.root / "models/marts/people_count.sql")

    events = nodes["model.proj.events_view"]
    assert events["depends_on"]["nodes"] == ["source.proj.raw.events"]
    assert events["sources"] == [["raw", "events"]]
    assert events["compiled_code"] == 'select id from "raw"."events"'

    seed = nodes["seed.proj.people"]
    assert seed["resource_type"] == "seed"
    assert seed["name"] == "people"
    assert seed["original_file_path"] == "seeds/people.csv"
    assert seed["checksum"]["checksum"] == sha256(built.root / "seeds/people.csv")
    assert seed["config"]["materialized"] == "seed"
    assert seed["description"] == "Raw people."
    assert seed["depends_on"]["nodes"] == []
    assert seed["relation_name"] == '"main"."people"'


def test_manifest_sources(built):
    sources = load(built, "manifest.json")["sources"]
    assert set(sources) == {"source.proj.raw.events"}
    events = sources["source.proj.raw.events"]
    assert events["resource_type"] == "source"
    assert events["source_name"] == "raw"
    assert events["name"] == "events"
    assert events["identifier"] == "events"
    assert events["schema"] == "raw"
    assert events["relation_name"] == '"raw"."events"'
    assert events["original_file_path"] == "models/schema.yml"
    assert events["fqn"] == ["proj", "raw", "events"]
    assert events["description"] == "One row per event."
    assert events["columns"]["id"]["description"] == "Event id."


def test_parent_and_child_maps_match_depends_on(built):
    manifest = load(built, "manifest.json")
    everything = set(manifest["nodes"]) | set(manifest["sources"])
    assert set(manifest["parent_map"]) == everything
    assert set(manifest["child_map"]) == everything
    for uid, node in manifest["nodes"].items():
        assert manifest["parent_map"][uid] == sorted(node["depends_on"]["nodes"])
    for uid in manifest["sources"]:
        assert manifest["parent_map"][uid] == []
    for uid in everything:
        expected_children = sorted(c for c, parents in manifest["parent_map"].items() if uid in parents)
        assert manifest["child_map"][uid] == expected_children
    assert manifest["child_map"]["seed.proj.people"] == ["model.proj.stg_people"]
    assert manifest["child_map"]["source.proj.raw.events"] == ["model.proj.events_view"]
    assert manifest["child_map"]["model.proj.people_count"] == []


def test_manifest_has_compiled_code_only_for_compiled_nodes(project):
    result = project.cli("compile", "-s", "people_count")
    assert result.exit_code == 0, result.output
    nodes = load(project, "manifest.json")["nodes"]
    assert set(nodes) == MODEL_IDS | {"seed.proj.people"}
    assert nodes["model.proj.people_count"]["compiled"] is True
    assert "compiled_code" not in nodes["model.proj.stg_people"]
    compiled = project.root / "target/compiled/proj/models/marts/people_count.sql"
    assert compiled.read_text() == 'select count(*) as n from "main"."stg_people"\n'
    assert (
        nodes["model.proj.people_count"]["compiled_checksum"]["checksum"]
        == hashlib.sha256(b'select count(*) as n from "main"."stg_people"').hexdigest()
    )


# --------------------------------------------------------------------------- run_results.json


def test_run_results_after_run(built):
    results = load(built, "run_results.json")
    assert results["metadata"]["dbt_schema_version"] == "https://schemas.getdbt.com/dbt/run-results/v6.json"
    by_id = {r["unique_id"]: r for r in results["results"]}
    assert set(by_id) == MODEL_IDS
    for result in by_id.values():
        assert result["status"] == "success"
        assert isinstance(result["execution_time"], float)
        assert result["execution_time"] >= 0
        [timing] = result["timing"]
        assert timing["name"] == "execute"
        assert timing["started_at"].endswith("Z")
        assert timing["started_at"] <= timing["completed_at"]
        assert result["thread_id"].startswith("sqlflow")
    assert by_id["model.proj.people_count"]["adapter_response"] == {"rows_affected": 1}
    assert by_id["model.proj.people_count"]["message"] == "CREATE TABLE"
    assert by_id["model.proj.people_count"]["relation_name"] == '"main"."people_count"'
    assert by_id["model.proj.stg_people"]["message"] == "CREATE VIEW"
    assert isinstance(results["elapsed_time"], float)
    assert results["elapsed_time"] >= 0
    assert results["args"]["which"] == "run"
    assert results["args"]["select"] == []
    assert results["args"]["target"] == "dev"
    # Dependency order: a parent's result comes before its child's.
    order = [r["unique_id"] for r in results["results"]]
    assert order.index("model.proj.stg_people") < order.index("model.proj.people_count")


def test_run_results_records_the_command_and_selection(project):
    assert project.cli("seed").exit_code == 0
    seeded = load(project, "run_results.json")
    assert seeded["args"]["which"] == "seed"
    [seed] = seeded["results"]
    assert seed["unique_id"] == "seed.proj.people"
    assert seed["adapter_response"] == {"rows_affected": 3}

    assert (
        project.cli("build", "-s", "+people_count", "--exclude", "people", "--vars", "{x: 1}").exit_code == 0
    )
    built = load(project, "run_results.json")
    assert built["args"]["which"] == "build"
    assert built["args"]["select"] == ["+people_count"]
    assert built["args"]["exclude"] == ["people"]
    assert built["args"]["vars"] == {"x": 1}
    assert [r["unique_id"] for r in built["results"]] == ["model.proj.stg_people", "model.proj.people_count"]


def test_run_results_error_and_skipped(project):
    project.write(
        "models/staging/stg_people.sql",
        "{{ config(materialized='table') }}\nselect cast('x' as integer) as id, 'a' as name\n",
    )
    result = project.cli("build")
    assert result.exit_code == 1
    by_id = {r["unique_id"]: r for r in load(project, "run_results.json")["results"]}
    assert by_id["seed.proj.people"]["status"] == "success"
    assert by_id["model.proj.events_view"]["status"] == "success"
    failed = by_id["model.proj.stg_people"]
    assert failed["status"] == "error"
    assert "Conversion Error" in failed["message"]
    assert failed["adapter_response"] == {}
    skipped = by_id["model.proj.people_count"]
    assert skipped["status"] == "skipped"
    assert skipped["message"] == "skipped: upstream model.proj.stg_people failed"
    assert skipped["timing"] == []
    assert skipped["execution_time"] == 0.0


# --------------------------------------------------------------------------- secrets


SECRET_PROFILES = """\
proj:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
      threads: 2
      password: s3cr3t-value
"""

TOKEN = "tok-very-secret-42"
SECRETS = (b"s3cr3t-value", TOKEN.encode())


def files_holding_secrets(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "target").rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}: {s.decode()}" for s in SECRETS if s in data]
    return found


@pytest.fixture
def secret_project(make_project, monkeypatch):
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    files = {
        **FILES,
        "models/token_model.sql": "select '{{ env_var(\"MY_TOKEN\") }}' as t\n",
        "models/target_model.sql": "select '{{ target.password }}' as p, '{{ target.name }}' as n\n",
        # A warehouse error that quotes the secret back.
        "models/failing.sql": "{{ config(materialized='table') }}\nselect * from \"{{ env_var('MY_TOKEN') }}\"\n",
    }
    project = make_project(files, profiles=SECRET_PROFILES)
    create_raw_events(project)
    return project


def test_secrets_never_reach_target_or_output(secret_project):
    project = secret_project
    outputs = []
    for args in (
        ("build",),
        ("build", "--log-format", "json"),
        ("run", "-s", "token_model target_model"),
        ("debug",),
        ("ls", "-o", "json"),
    ):
        result = project.cli(*args)
        outputs.append(result.output)
    compiled = project.cli("compile", "-s", "token_model")
    assert compiled.exit_code == 0, compiled.output
    assert compiled.output == "select '*****' as t\n"
    outputs.append(compiled.output)

    joined = "\n".join(outputs)
    assert "s3cr3t-value" not in joined
    assert TOKEN not in joined
    assert "Table with name ***** does not exist" in joined
    assert "password: *****" in joined
    assert files_holding_secrets(project.root) == []

    target = project.root / "target"
    assert (target / "compiled/proj/models/token_model.sql").read_text() == "select '*****' as t\n"
    assert (
        target / "compiled/proj/models/target_model.sql"
    ).read_text() == "select '*****' as p, 'dev' as n\n"
    results = {r["unique_id"]: r for r in json.loads((target / "run_results.json").read_text())["results"]}
    assert set(results) == {"model.proj.token_model", "model.proj.target_model"}
    # The warehouse holds the real value; only what sqlflow shows and writes is masked.
    assert project.scalar("select t from main.token_model") == TOKEN


def test_a_secret_read_in_config_stays_out_of_target(secret_project):
    """env_var() read while loading (inside config()) must not be cached or written in clear."""
    project = secret_project
    project.write(
        "models/meta_model.sql",
        "{{ config(materialized='table', meta={'token': env_var('MY_TOKEN')}) }}\nselect 1 as x\n",
    )
    for args in (("run", "-s", "meta_model"), ("run", "-s", "meta_model"), ("compile", "-s", "people_count")):
        result = project.cli(*args)
        assert result.exit_code == 0, result.output
        assert TOKEN not in result.output
        assert files_holding_secrets(project.root) == []
    meta = load(project, "manifest.json")["nodes"]["model.proj.meta_model"]["config"]["meta"]
    assert meta == {"token": "*****"}


# --------------------------------------------------------------------------- whole-file writes


def test_artifacts_are_whole_files_while_being_rewritten(built):
    target = built.root / "target"
    stop = threading.Event()
    reads: list[str] = []
    problems: list[str] = []

    def reader() -> None:
        while True:
            finished = stop.is_set()
            for name in ("manifest.json", "run_results.json"):
                try:
                    text = (target / name).read_text(encoding="utf-8")
                except FileNotFoundError:
                    problems.append(f"{name} missing")
                    continue
                try:
                    json.loads(text)
                    reads.append(name)
                except ValueError as exc:
                    problems.append(f"{name}: {exc}")
            if finished:
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(3):
            assert built.cli("run").exit_code == 0
            assert built.cli("compile").exit_code == 0
    finally:
        stop.set()
        thread.join()
    assert problems == []
    assert len(reads) >= 2
    leftovers = [p.name for p in target.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_artifacts_parse_after_a_failed_run(project):
    project.write(
        "models/broken.sql", "{{ config(materialized='table') }}\nselect cast('x' as integer) as v\n"
    )
    assert project.cli("build").exit_code == 1
    manifest = load(project, "manifest.json")
    results = load(project, "run_results.json")
    assert "model.proj.broken" in manifest["nodes"]
    statuses = {r["unique_id"]: r["status"] for r in results["results"]}
    assert statuses["model.proj.broken"] == "error"
    assert set(statuses.values()) <= {"success", "error", "skipped"}


def test_json_artifacts_are_written_as_json_with_default_str_would_write_them():
    import dataclasses
    import datetime

    from sqlflow.artifacts import dumps

    @dataclasses.dataclass
    class Point:
        x: int

    value = {
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5),
        "day": datetime.date(2024, 1, 2),
        "point": Point(1),
        "path": Path("models/a.sql"),
        1: "an integer key",
        "text": 'é "quoted" \u2028',
    }
    expected = json.loads(json.dumps(value, default=str))
    assert json.loads(dumps(value)) == expected
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'  # compact, as manifest.json's metadata rewrite expects
    # Beyond what orjson takes: the standard library writes it, in the same layout.
    assert dumps({"big": 2**70}) == f'{{"big":{2**70}}}'
    assert json.loads(dumps({"lone": "\ud800"})) == {"lone": "\ud800"}


def test_a_test_has_a_relation_name_only_when_it_stores_failures(make_project):
    project = make_project(
        {
            "models/m.sql": "select 1 as id",
            "models/schema.yml": """\
            models:
              - name: m
                columns:
                  - name: id
                    data_tests:
                      - unique
                      - not_null: {config: {store_failures: true}}
            """,
        }
    )
    assert project.cli("compile").exit_code == 0
    nodes = json.loads((project.root / "target" / "manifest.json").read_text())["nodes"]
    assert nodes["test.proj.unique_m_id"]["relation_name"] is None
    assert nodes["test.proj.not_null_m_id"]["relation_name"] == '"main_dbt_test__audit"."not_null_m_id"'


def test_masking_json_hides_secrets_as_json_escapes_them():
    from sqlflow.artifacts import dump_bytes, mask_json
    from sqlflow.project import Secrets

    secrets = Secrets({'pa"ss\\wörd', "pässwörd-long", "tok"})
    data = {"a": "x pässwörd-long y", "b": ["tok", 'pa"ss\\wörd!'], "c": "café"}
    masked = mask_json(dump_bytes(data), secrets)
    assert json.loads(masked) == {"a": "x ***** y", "b": ["*****", "*****!"], "c": "café"}
    # json's own layout (what orjson refuses is written by json, non-ASCII escaped) is masked too.
    ascii_json = json.dumps(data).encode()
    assert json.loads(mask_json(ascii_json, secrets))["b"] == ["*****", "*****!"]
