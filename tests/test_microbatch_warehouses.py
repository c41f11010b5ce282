"""Microbatch models on PostgreSQL and SQLite: batches, recorded ranges, a failed batch keeping
its rows and `retry` building only it (see test_microbatch.py for the same on DuckDB)."""

from __future__ import annotations

import json
import sqlite3

from test_microbatch import Batch, day, events_csv, iso, six_days_of_events
from warehouses import Postgres, sqlite_profiles
from warehouses import postgres as postgres  # a fixture

MODEL = """\
{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts',
            batch_size='day', begin='{begin}', lookback=1) }}}}
select e.id, e.ts, {code} as code
from {{{{ ref('events') }}}} as e
"""
EVENTS = "{{ config(materialized='table', event_time='ts') }}\nselect * from {{ ref('raw_events') }}\n"


def files(code: str = "cast(e.code as integer)") -> dict[str, str]:
    return {
        "seeds/raw_events.csv": events_csv(six_days_of_events()),
        "models/events.sql": EVENTS,
        "models/daily.sql": MODEL.format(begin=iso(day(-5)), code=code),
    }


def batch_results(project) -> dict:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return next(r for r in data["results"] if r["unique_id"] == "model.proj.daily")["batch_results"]


def test_microbatch_on_postgres(make_project, postgres: Postgres):
    project = make_project(files(), profiles=postgres.profiles())
    relation = f'"{postgres.schema}"."daily"'
    outcome = project.cli("build")
    assert outcome.exit_code == 0, outcome.output
    assert postgres.scalar(f"select count(*) from {relation}") == 12
    ranges = postgres.query(
        "select start_at, end_at from sqlflow_state.intervals where relation_name = %s", relation
    )
    assert ranges == [(day(-5), day(0))]

    broken = [(i, ts, "x" if ts.date() == day(-3).date() else code) for i, ts, code in six_days_of_events()]
    project.write("seeds/raw_events.csv", events_csv(broken))
    assert project.cli("build", "-s", "raw_events", "events").exit_code == 0
    outcome = project.cli(
        "run", "-s", "daily", "--event-time-start", iso(day(-5)), "--event-time-end", iso(day(1))
    )
    assert outcome.exit_code == 1 and "1 of 6 batches failed" in outcome.output
    day_3 = f"select count(*) from {relation} where ts >= '{iso(day(-3))}' and ts < '{iso(day(-2))}'"
    assert postgres.scalar(day_3) == 2  # the failed batch rolled back: its old rows stay

    project.write(
        "models/daily.sql",
        MODEL.format(
            begin=iso(day(-5)), code="case when e.code = 'x' then -1 else cast(e.code as integer) end"
        ),
    )
    outcome = project.cli("retry")
    assert outcome.exit_code == 0, outcome.output
    assert batch_results(project)["successful"] == [Batch(day(-3), day(-2)).as_json()]
    assert postgres.scalar(f"select count(*) from {relation} where code = -1") == 2
    assert postgres.scalar(f"select count(*) from {relation}") == 12


def test_microbatch_on_sqlite(make_project):
    project = make_project(files(), profiles=sqlite_profiles())
    outcome = project.cli("build")
    assert outcome.exit_code == 0, outcome.output
    assert len(batch_results(project)["successful"]) == 6
    late = [*six_days_of_events(), (500, day(-4).replace(hour=20), "7")]
    project.write("seeds/raw_events.csv", events_csv(late))
    assert project.cli("build", "-s", "raw_events", "events").exit_code == 0
    outcome = project.cli(
        "run", "-s", "daily", "--event-time-start", iso(day(-4)), "--event-time-end", iso(day(-3))
    )
    assert outcome.exit_code == 0, outcome.output
    assert batch_results(project)["successful"] == [Batch(day(-4), day(-3)).as_json()]
    with sqlite3.connect(project.root / "warehouse.sqlite") as connection:
        assert connection.execute("select count(*) from daily").fetchone() == (13,)
        assert connection.execute("select count(*) from daily where id = 500").fetchone() == (1,)
