"""`sqlflow source freshness`: thresholds, statuses, sources.json and exit codes on real DuckDB files.

Each test writes its source tables into the project's DuckDB file with load times relative to now,
then runs the CLI (or `commands.source_freshness`) as a user would.
"""

from __future__ import annotations

import json
import textwrap
import threading
from datetime import date, datetime, timedelta, timezone

import duckdb
import pytest

from sqlflow import commands
from sqlflow.errors import WarehouseError
from sqlflow.freshness import Criteria, Threshold, evaluate

SOURCES = """\
version: 2
sources:
  - name: raw
    loaded_at_field: loaded_at
    freshness:
      warn_after: {count: 1, period: hour}
      error_after: {count: 3, period: hour}
    tables:
      - name: fresh
      - name: late
      - name: stale
"""


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def load(project, tables: dict[str, list[datetime | None]], column: str = "loaded_at") -> None:
    """Create raw.<name>(<column> timestamp) with the given load times in the project's DuckDB file."""
    con = duckdb.connect(str(project.db_path))
    try:
        con.execute("create schema if not exists raw")
        for name, times in tables.items():
            con.execute(f"create or replace table raw.{name} ({column} timestamp)")
            for value in times:
                con.execute(f"insert into raw.{name} values (?)", [value])
    finally:
        con.close()


def sources_json(project, path=None) -> dict:
    return json.loads((path or project.root / "target" / "sources.json").read_text())


def by_id(data: dict) -> dict[str, dict]:
    return {r["unique_id"]: r for r in data["results"]}


def line_with(text: str, needle: str) -> int:
    """1-based line of the first line containing `needle` in (dedented) YAML text."""
    lines = textwrap.dedent(text).splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in result.output, f"{fragment!r} not in:\n{result.output}"


@pytest.fixture
def shop(make_project):
    project = make_project({"models/sources.yml": SOURCES})
    now = utc_now()
    load(
        project,
        {
            "fresh": [now - timedelta(hours=5), now - timedelta(minutes=20)],
            "late": [now - timedelta(hours=2)],
            "stale": [now - timedelta(hours=5)],
        },
    )
    return project


# --------------------------------------------------------------------------- statuses and sources.json


def test_pass_warn_and_error_in_one_run(shop):
    before = datetime.now(timezone.utc)
    result = shop.cli("source", "freshness")
    after = datetime.now(timezone.utc)
    assert result.exit_code == 1, result.output

    data = sources_json(shop)
    assert data["metadata"]["dbt_schema_version"] == "https://schemas.getdbt.com/dbt/sources/v3.json"
    assert data["metadata"]["invocation_id"]
    assert data["metadata"]["generated_at"].endswith("Z")
    assert isinstance(data["elapsed_time"], float)
    results = by_id(data)
    assert set(results) == {"source.proj.raw.fresh", "source.proj.raw.late", "source.proj.raw.stale"}
    assert {uid: r["status"] for uid, r in results.items()} == {
        "source.proj.raw.fresh": "pass",
        "source.proj.raw.late": "warn",
        "source.proj.raw.stale": "error",
    }

    late = results["source.proj.raw.late"]
    assert set(late) == {
        "unique_id",
        "max_loaded_at",
        "snapshotted_at",
        "max_loaded_at_time_ago_in_s",
        "status",
        "criteria",
        "adapter_response",
        "timing",
        "thread_id",
        "execution_time",
    }
    assert late["criteria"] == {
        "warn_after": {"count": 1, "period": "hour"},
        "error_after": {"count": 3, "period": "hour"},
        "filter": None,
    }
    assert late["adapter_response"] == {}
    assert late["thread_id"].startswith("sqlflow")
    assert late["execution_time"] >= 0
    assert [t["name"] for t in late["timing"]] == ["execute"]
    # max(loaded_at) is the naive timestamp read as UTC; the age is measured against the warehouse clock.
    assert 2 * 3600 - 5 < late["max_loaded_at_time_ago_in_s"] < 2 * 3600 + 60
    loaded = datetime.fromisoformat(late["max_loaded_at"].replace("Z", "+00:00"))
    assert before - timedelta(hours=2, minutes=1) < loaded < after - timedelta(hours=2) + timedelta(seconds=1)
    snapshot = datetime.fromisoformat(late["snapshotted_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=5) < snapshot < after + timedelta(seconds=5)
    # The newest row counts, not the oldest.
    assert results["source.proj.raw.fresh"]["max_loaded_at_time_ago_in_s"] < 30 * 60
    assert 5 * 3600 - 5 < results["source.proj.raw.stale"]["max_loaded_at_time_ago_in_s"] < 5 * 3600 + 60

    out = result.output
    assert "Checking freshness of 3 sources on dev" in out
    assert "PASS  freshness   raw.fresh" in out
    assert "WARN  freshness   raw.late" in out
    assert "ERROR freshness   raw.stale" in out
    assert "more than warn_after 1 hour" in out
    assert "more than error_after 3 hours" in out
    assert "Finished with errors." in out
    for part in ("PASS=1", "WARN=1", "ERROR=1"):
        assert part in out


def test_warn_alone_exits_0(shop):
    result = shop.cli("source", "freshness", "-s", "source:raw.fresh", "source:raw.late")
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in sources_json(shop)["results"]} == {"pass", "warn"}
    assert "Done." in result.output


def test_select_one_table(shop):
    result = shop.cli("source", "freshness", "-s", "source:raw.late")
    assert result.exit_code == 0, result.output
    assert [r["unique_id"] for r in sources_json(shop)["results"]] == ["source.proj.raw.late"]
    assert "Checking freshness of 1 source " in result.output


def test_exclude(shop):
    result = shop.cli("source", "freshness", "--exclude", "source:raw.stale")
    assert result.exit_code == 0, result.output
    assert set(by_id(sources_json(shop))) == {"source.proj.raw.fresh", "source.proj.raw.late"}


def test_output_option(shop):
    target = shop.root / "out" / "freshness.json"
    result = shop.cli("source", "freshness", "-s", "source:raw.fresh", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in sources_json(shop, target)["results"]] == ["pass"]
    assert not (shop.root / "target" / "sources.json").exists()


def test_missing_table_is_a_runtime_error(make_project):
    project = make_project(
        {
            "models/sources.yml": SOURCES.replace("      - name: stale\n", "      - name: gone\n"),
        }
    )
    now = utc_now()
    load(project, {"fresh": [now], "late": [now - timedelta(minutes=90)]})
    result = project.cli("source", "freshness")
    assert result.exit_code == 1, result.output
    results = by_id(sources_json(project))
    gone = results["source.proj.raw.gone"]
    assert gone["status"] == "runtime error"
    assert set(gone) == {"unique_id", "error", "status"}
    assert "gone" in gone["error"] and "does not exist" in gone["error"]
    # The other sources are still checked.
    assert results["source.proj.raw.fresh"]["status"] == "pass"
    assert results["source.proj.raw.late"]["status"] == "warn"
    assert "ERROR freshness   raw.gone" in result.output
    assert "Traceback" not in result.output


def test_missing_column_is_a_runtime_error(make_project):
    project = make_project({"models/sources.yml": SOURCES})
    now = utc_now()
    load(project, {"fresh": [now], "late": [now], "stale": [now]}, column="other")
    result = project.cli("source", "freshness", "-s", "source:raw.fresh")
    assert result.exit_code == 1, result.output
    entry = sources_json(project)["results"][0]
    assert entry["status"] == "runtime error"
    assert "loaded_at" in entry["error"]


def test_empty_table_is_an_error(make_project):
    project = make_project({"models/sources.yml": SOURCES})
    load(project, {"fresh": [], "late": [None]})
    result = project.cli("source", "freshness", "-s", "source:raw.fresh", "source:raw.late")
    assert result.exit_code == 1, result.output
    for entry in sources_json(project)["results"]:
        assert entry["status"] == "error"
        assert entry["max_loaded_at"] is None
        assert entry["max_loaded_at_time_ago_in_s"] is None
        assert entry["snapshotted_at"] is not None
    assert "max(loaded_at) is null" in result.output


# --------------------------------------------------------------------------- configuration


def test_table_freshness_null_is_skipped_and_table_thresholds_replace_the_source(make_project):
    project = make_project(
        {
            "models/sources.yml": """\
            version: 2
            sources:
              - name: raw
                loaded_at_field: loaded_at
                freshness:
                  warn_after: {count: 1, period: hour}
                  error_after: {count: 3, period: hour}
                tables:
                  - name: fresh
                  - name: disabled
                    freshness: null
                  - name: strict
                    freshness:
                      error_after: {count: 10, period: minute}
                  - name: no_thresholds
                    loaded_at_field: null
                    freshness: {}
            """
        }
    )
    now = utc_now()
    load(
        project,
        {
            "fresh": [now - timedelta(minutes=20)],
            "disabled": [now - timedelta(days=30)],
            "strict": [now - timedelta(minutes=20)],
            "no_thresholds": [now - timedelta(days=30)],
        },
    )
    result = project.cli("source", "freshness")
    assert result.exit_code == 1, result.output
    results = by_id(sources_json(project))
    assert set(results) == {"source.proj.raw.fresh", "source.proj.raw.strict"}
    assert results["source.proj.raw.fresh"]["status"] == "pass"
    strict = results["source.proj.raw.strict"]
    assert strict["status"] == "error"
    assert strict["criteria"] == {
        "warn_after": {"count": None, "period": None},
        "error_after": {"count": 10, "period": "minute"},
        "filter": None,
    }
    assert "raw.disabled" not in result.output

    # Selecting only the disabled one checks nothing: a warning, exit 0, an empty sources.json.
    result = project.cli("source", "freshness", "-s", "source:raw.disabled")
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
    assert sources_json(project)["results"] == []


def test_filter_and_expression_loaded_at_field(make_project):
    project = make_project(
        {
            "models/sources.yml": """\
            version: 2
            sources:
              - name: raw
                tables:
                  - name: events
                    loaded_at_field: "cast(loaded_text as timestamp)"
                    freshness:
                      warn_after: {count: 1, period: hour}
                      error_after: {count: 1, period: day}
                      filter: "kind = 'real'"
                  - name: events_all
                    identifier: events
                    loaded_at_field: "cast(loaded_text as timestamp)"
                    freshness:
                      warn_after: {count: 1, period: hour}
            """
        }
    )
    now = utc_now()
    con = duckdb.connect(str(project.db_path))
    con.execute("create schema raw")
    con.execute("create table raw.events (kind varchar, loaded_text varchar)")
    con.execute(
        "insert into raw.events values ('real', ?), ('test', ?)",
        [str(now - timedelta(hours=2)), str(now - timedelta(minutes=5))],
    )
    con.close()
    result = project.cli("source", "freshness")
    assert result.exit_code == 0, result.output
    results = by_id(sources_json(project))
    assert results["source.proj.raw.events"]["status"] == "warn"
    assert results["source.proj.raw.events"]["criteria"]["filter"] == "kind = 'real'"
    assert results["source.proj.raw.events_all"]["status"] == "pass"


def test_timezone_aware_loaded_at(make_project):
    project = make_project({"models/sources.yml": SOURCES})
    # 30 minutes ago, written in UTC+02:00: read as naive it would look 2 hours in the future or past.
    loaded = datetime.now(timezone(timedelta(hours=2))) - timedelta(minutes=30)
    con = duckdb.connect(str(project.db_path))
    con.execute("create schema raw")
    con.execute(f"create table raw.fresh as select timestamptz '{loaded.isoformat()}' as loaded_at")
    con.close()
    result = project.cli("source", "freshness", "-s", "source:raw.fresh")
    assert result.exit_code == 0, result.output
    entry = sources_json(project)["results"][0]
    assert entry["status"] == "pass"
    assert 30 * 60 - 5 < entry["max_loaded_at_time_ago_in_s"] < 31 * 60
    assert entry["max_loaded_at"].endswith("Z")


def test_warehouse_time_zone_does_not_change_the_age(make_project):
    # The warehouse returns current_timestamp and timestamptz values in its own zone (+05:30 here).
    project = make_project({"models/sources.yml": SOURCES})
    now = utc_now()
    load(project, {"fresh": [now - timedelta(minutes=30)]})
    con = duckdb.connect(str(project.db_path))
    loaded = datetime.now(timezone(timedelta(hours=-7))) - timedelta(hours=2)
    con.execute(f"create table raw.late as select timestamptz '{loaded.isoformat()}' as loaded_at")
    con.close()
    with commands.open_session(project.root) as session:
        session.adapter.execute("SET GLOBAL TimeZone = 'Asia/Kolkata'")
        outcome = commands.source_freshness(session, ["source:raw.fresh", "source:raw.late"])
    results = {r.unique_id: r for r in outcome.results}
    fresh, late = results["source.proj.raw.fresh"], results["source.proj.raw.late"]
    assert (fresh.status, late.status) == ("pass", "warn")
    assert 30 * 60 - 5 < fresh.age < 31 * 60
    assert 2 * 3600 - 5 < late.age < 2 * 3600 + 60
    assert fresh.snapshotted_at.endswith("Z") and late.max_loaded_at.endswith("Z")


@pytest.mark.parametrize(
    ("freshness", "needle", "message"),
    [
        (
            "warn_after: {count: 1, period: fortnight}",
            "fortnight",
            "freshness warn_after: unknown period 'fortnight'",
        ),
        ("error_after: {count: 0, period: hour}", "count: 0", "count must be a positive whole number"),
        ("error_after: {count: 'x', period: hour}", "count: 'x'", "count must be a positive whole number"),
        ("error_after: {count: 2}", "count: 2", "freshness error_after: period is missing"),
        ("warn_after: {period: day}", "period: day", "freshness warn_after: count is missing"),
        ("warn_after: 12", "warn_after: 12", "freshness warn_after must be a mapping"),
        ("warn_afer: {count: 1, period: hour}", "warn_afer", "unknown freshness key 'warn_afer'"),
    ],
)
def test_invalid_threshold_names_the_yaml_line(make_project, freshness, needle, message):
    text = f"""\
    version: 2
    sources:
      - name: raw
        loaded_at_field: loaded_at
        tables:
          - name: fresh
            freshness:
              {freshness}
    """
    project = make_project({"models/sources.yml": text})
    load(project, {"fresh": [utc_now()]})
    line = line_with(text, needle)
    for _ in range(2):  # the second run reads the properties from the parse cache
        result = project.cli("source", "freshness")
        assert_user_error(result, f"models/sources.yml:{line}: source raw.fresh: ", message)
    assert not (project.root / "target" / "sources.json").exists()


def test_thresholds_without_loaded_at_field(make_project):
    text = """\
    version: 2
    sources:
      - name: raw
        freshness:
          warn_after: {count: 1, period: hour}
        tables:
          - name: fresh
    """
    project = make_project({"models/sources.yml": text})
    result = project.cli("source", "freshness")
    assert_user_error(
        result,
        f"models/sources.yml:{line_with(text, 'name: fresh')}: source raw.fresh has freshness "
        "thresholds but no loaded_at_field",
        "hint: add `loaded_at_field",
    )


def test_unparseable_sql_names_the_yaml_line(make_project):
    text = """\
    version: 2
    sources:
      - name: raw
        tables:
          - name: bad_field
            loaded_at_field: "cast(loaded_at as"
            freshness:
              warn_after: {count: 1, period: hour}
          - name: bad_filter
            loaded_at_field: loaded_at
            freshness:
              warn_after: {count: 1, period: hour}
              filter: "kind = = 'x'"
          - name: statement
            loaded_at_field: "select 1"
            freshness:
              warn_after: {count: 1, period: hour}
    """
    project = make_project({"models/sources.yml": text})
    result = project.cli("source", "freshness", "-s", "source:raw.bad_field")
    assert_user_error(
        result,
        f"models/sources.yml:{line_with(text, 'name: bad_field')}: source raw.bad_field: loaded_at_field "
        "'cast(loaded_at as' is not valid SQL",
    )
    result = project.cli("source", "freshness", "-s", "source:raw.bad_filter")
    assert_user_error(
        result,
        f"models/sources.yml:{line_with(text, 'filter:')}: source raw.bad_filter: filter",
        "is not valid SQL",
    )
    result = project.cli("source", "freshness", "-s", "source:raw.statement")
    assert_user_error(result, "loaded_at_field 'select 1' must be one SQL expression")
    assert not project.db_path.exists()  # nothing ran: the warehouse was not even opened


def test_project_dir_elsewhere_still_points_at_the_file(make_project, tmp_path, monkeypatch):
    text = SOURCES.replace("period: hour}\n      error_after", "period: hours}\n      error_after")
    project = make_project({"models/sources.yml": text})
    monkeypatch.chdir(tmp_path.parent)  # not the project, not its parent
    result = project.cli("source", "freshness")
    assert_user_error(
        result, f"proj/models/sources.yml:{line_with(text, 'hours')}:", "unknown period 'hours'"
    )


# --------------------------------------------------------------------------- Python API


def test_python_api(shop):
    with commands.open_session(shop.root) as session:
        outcome = commands.source_freshness(session, ["source:raw"], exclude=["source:raw.stale"])
    assert {r.unique_id: r.status for r in outcome.results} == {
        "source.proj.raw.fresh": "pass",
        "source.proj.raw.late": "warn",
    }
    assert not outcome.failed
    late = next(r for r in outcome.results if r.status == "warn")
    assert late.criteria["warn_after"] == {"count": 1, "period": "hour"}
    assert 2 * 3600 - 5 < late.age < 2 * 3600 + 60


def test_runtime_error_message_is_masked(shop):
    events = []
    with commands.open_session(shop.root, on_event=events.append) as session:
        session.project.secrets.add("hunter2")

        def failing(statement, *, fetch=False):
            raise WarehouseError("login hunter2 refused")

        session.adapter.execute = failing
        outcome = commands.source_freshness(session, ["source:raw.fresh"])
    assert [(r.status, r.message) for r in outcome.results] == [("runtime error", "login ***** refused")]
    assert outcome.failed
    assert "hunter2" not in (shop.root / "target" / "sources.json").read_text()
    finished = [e for e in events if e.name == "node_finished"]
    assert finished[0].level == "error" and "hunter2" not in finished[0].message


def test_cancelled_before_start(shop):
    cancel = threading.Event()
    cancel.set()
    with commands.open_session(shop.root) as session:
        outcome = commands.source_freshness(session, cancel=cancel)
    assert outcome.interrupted
    assert {r.status for r in outcome.results} == {"skipped"}
    assert sources_json(shop)["results"] == []


# --------------------------------------------------------------------------- the age rule


def test_evaluate_thresholds_and_timezones():
    criteria = Criteria(Threshold(1, "hour"), Threshold(2, "day"))
    snapshot = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    # Exactly at the threshold is still fresh (dbt: age > threshold).
    assert evaluate(criteria, datetime(2024, 5, 1, 11, 0), snapshot)[:2] == ("pass", 3600.0)
    assert evaluate(criteria, datetime(2024, 5, 1, 10, 59, 59), snapshot)[:2] == ("warn", 3601.0)
    assert evaluate(criteria, datetime(2024, 4, 29, 11, 0), snapshot)[0] == "error"
    # An aware value in another zone is converted, a naive one is UTC.
    plus_two = timezone(timedelta(hours=2))
    assert evaluate(criteria, datetime(2024, 5, 1, 13, 30, tzinfo=plus_two), snapshot)[1] == 1800.0
    snapshot_plus_two = datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)
    assert evaluate(criteria, datetime(2024, 5, 1, 11, 30), snapshot_plus_two)[1] == 1800.0
    # A date is its midnight, UTC; a load time in the future is fresh.
    assert evaluate(criteria, date(2024, 5, 1), snapshot)[:2] == ("warn", 43200.0)
    assert evaluate(criteria, datetime(2024, 5, 1, 13, 0), snapshot)[0] == "pass"
    status, age, message, loaded, _ = evaluate(criteria, None, snapshot)
    assert (status, age, loaded) == ("error", None, None)
    assert "is null" in message
