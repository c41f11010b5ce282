"""Microbatch incrementals: planning on merged intervals, batches on real DuckDB files, backfills,
failed batches and `retry`.

Dates are relative to today (UTC), because a run's batches end at the current one.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlflow.microbatch import Backfill, Batch, Intervals, MicrobatchConfig, advance, plan, split, truncate

TODAY = (
    dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).replace(hour=0, minute=0, second=0, microsecond=0)
)


def day(offset: int) -> dt.datetime:
    return TODAY + dt.timedelta(days=offset)


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d")


# --------------------------------------------------------------------------- intervals and the plan

hours = st.integers(min_value=0, max_value=200)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(hours, hours), max_size=12), hours, hours)
def test_intervals_match_a_set_of_hours(added, query_start, query_end):
    base = dt.datetime(2024, 1, 1)
    at = lambda h: base + dt.timedelta(hours=h)  # noqa: E731
    intervals, covered = Intervals(), set()
    for start, end in added:
        intervals.add(at(start), at(end))
        covered |= set(range(start, end))
    # Kept sorted, disjoint and not touching: one range per run of consecutive hours.
    for (_, end), (next_start, _) in zip(intervals.ranges, intervals.ranges[1:], strict=False):
        assert end < next_start
    assert {
        h
        for s, e in intervals.ranges
        for h in range((s - base) // dt.timedelta(hours=1), (e - base) // dt.timedelta(hours=1))
    } == covered
    gaps = intervals.missing(at(query_start), at(query_end))
    gap_hours = {
        h
        for s, e in gaps
        for h in range((s - base) // dt.timedelta(hours=1), (e - base) // dt.timedelta(hours=1))
    }
    assert gap_hours == set(range(query_start, query_end)) - covered
    assert Intervals(intervals.ranges) == intervals


def config(**overrides) -> MicrobatchConfig:
    values = {"event_time": "ts", "batch_size": "day", "begin": iso(day(-5)), "lookback": 1, **overrides}
    return MicrobatchConfig.of(values)


def test_first_build_plans_every_batch_from_begin_to_the_current_one():
    now = TODAY + dt.timedelta(hours=13)
    batches = plan(config(), Intervals(), now, rebuild=True)
    assert batches == [Batch(day(i), day(i + 1)) for i in range(-5, 1)]


def test_later_runs_plan_the_gaps_the_lookback_and_the_current_batch():
    now = TODAY + dt.timedelta(hours=13)
    done = Intervals([(day(-5), day(-3)), (day(-2), day(0))])  # day -3 failed earlier
    assert plan(config(), done, now) == [
        Batch(day(-3), day(-2)),
        Batch(day(-1), day(0)),
        Batch(day(0), day(1)),
    ]
    assert plan(config(lookback=0), Intervals([(day(-5), day(0))]), now) == [Batch(day(0), day(1))]


def test_a_backfill_plans_every_batch_it_touches_done_or_not():
    now = TODAY + dt.timedelta(hours=13)
    window = Backfill(day(-4) + dt.timedelta(hours=5), day(-2) + dt.timedelta(hours=1))
    batches = plan(config(), Intervals([(day(-5), day(0))]), now, backfill=window)
    assert batches == [Batch(day(-4), day(-3)), Batch(day(-3), day(-2)), Batch(day(-2), day(-1))]


def test_years_of_hourly_batches_plan_from_one_merged_range():
    now = dt.datetime(2026, 11, 21, 13, 30)
    cfg = config(batch_size="hour", begin="2020-01-01", lookback=2)
    done = Intervals()
    for batch in split(dt.datetime(2020, 1, 1), dt.datetime(2026, 11, 21, 13), "hour"):
        done.add(batch.start, batch.end)
    assert len(done.ranges) == 1
    assert plan(cfg, done, now) == [
        Batch(dt.datetime(2026, 11, 21, h), dt.datetime(2026, 11, 21, h + 1)) for h in (11, 12, 13)
    ]


def test_month_and_year_batches():
    assert truncate(dt.datetime(2024, 3, 31, 7), "month") == dt.datetime(2024, 3, 1)
    assert advance(dt.datetime(2024, 12, 1), "month") == dt.datetime(2025, 1, 1)
    assert advance(dt.datetime(2024, 1, 1), "year", -2) == dt.datetime(2022, 1, 1)
    assert [b.start.month for b in split(dt.datetime(2024, 11, 15), dt.datetime(2025, 2, 1), "month")] == [
        11,
        12,
        1,
    ]


# --------------------------------------------------------------------------- on DuckDB


def events_csv(rows: list[tuple[int, dt.datetime, str]]) -> str:
    return "id,ts,code\n" + "".join(f"{i},{ts:%Y-%m-%d %H:%M:%S},{code}\n" for i, ts, code in rows)


def six_days_of_events() -> list[tuple[int, dt.datetime, str]]:
    # Two events a day from day -5 to today, and one before `begin` that no batch reads.
    rows = [(100, day(-9) + dt.timedelta(hours=3), "1")]
    for offset in range(-5, 1):
        for hour in (1, 2):
            rows.append((len(rows), day(offset) + dt.timedelta(hours=hour), str(offset + 10)))
    return rows


MICROBATCH = """\
{{{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts',
            batch_size='day', begin='{begin}', lookback={lookback}) }}}}
select e.id, e.ts, cast(e.code as integer) as code,
       '{{{{ model.batch.id }}}}' as batch_id
from {{{{ ref('events') }}}} as e
"""


@pytest.fixture
def project(make_project):
    return make_project(
        {
            "seeds/raw_events.csv": events_csv(six_days_of_events()),
            "models/events.sql": "{{ config(materialized='table', event_time='ts') }}\n"
            "select * from {{ ref('raw_events') }}\n",
            "models/daily.sql": MICROBATCH.format(begin=iso(day(-5)), lookback=1),
        }
    )


def intervals(project) -> list[tuple[dt.datetime, dt.datetime]]:
    return project.query("select start_at, end_at from sqlflow_state.intervals order by start_at")


def result(project, name: str = "daily") -> dict:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    return next(r for r in data["results"] if r["unique_id"] == f"model.proj.{name}")


def test_first_build_fills_each_batch_and_records_one_merged_range(project):
    outcome = project.cli("build")
    assert outcome.exit_code == 0, outcome.output
    rows = project.query("select batch_id, count(*) from daily group by 1 order by 1")
    assert rows == [(iso(day(i)).replace("-", ""), 2) for i in range(-5, 1)]
    # Today's batch is not over, so it is not recorded: the next run builds it again.
    assert intervals(project) == [(day(-5), day(0))]
    assert len(result(project)["batch_results"]["successful"]) == 6


def test_a_later_run_builds_the_lookback_and_current_batches_only(project):
    assert project.cli("build").exit_code == 0
    project.write(
        "models/daily.sql",
        MICROBATCH.format(begin=iso(day(-5)), lookback=1).replace("e.id,", "e.id + 0 as id,"),
    )
    assert project.cli("run", "-s", "daily").exit_code == 0
    assert result(project)["batch_results"]["successful"] == [
        Batch(day(-1), day(0)).as_json(),
        Batch(day(0), day(1)).as_json(),
    ]
    assert project.scalar("select count(*) from daily") == 12  # rebuilt windows replaced, not duplicated
    assert intervals(project) == [(day(-5), day(0))]


def test_refs_with_event_time_are_filtered_to_the_batch(make_project):
    # Without the filter, each batch would see every event and keep only the one in its window.
    per_batch = """\
{{ config(materialized='incremental', incremental_strategy='microbatch', event_time='ts',
          batch_size='day', begin='BEGIN') }}
select max(e.ts) as ts, count(*) as events_in_batch
from {{ ref('events') }} e join {{ ref('events') }} as other on e.id = other.id
"""
    project = make_project(
        {
            "seeds/raw_events.csv": events_csv(six_days_of_events()),
            "models/events.sql": "{{ config(materialized='table', event_time='ts') }}\n"
            "select * from {{ ref('raw_events') }}\n",
            "models/per_batch.sql": per_batch.replace("BEGIN", iso(day(-5))),
        }
    )
    assert project.cli("build").exit_code == 0
    assert project.query("select events_in_batch from per_batch order by ts") == [(2,)] * 6


def test_a_backfill_rebuilds_its_window_and_picks_up_late_rows(project):
    assert project.cli("build").exit_code == 0
    late = [*six_days_of_events(), (500, day(-4) + dt.timedelta(hours=20), "7")]
    project.write("seeds/raw_events.csv", events_csv(late))
    assert project.cli("build", "-s", "raw_events", "events").exit_code == 0
    assert project.cli("run", "-s", "daily").exit_code == 0
    assert project.scalar("select count(*) from daily where id = 500") == 0  # outside the lookback
    start, end = iso(day(-4)), iso(day(-3))
    outcome = project.cli("run", "-s", "daily", "--event-time-start", start, "--event-time-end", end)
    assert outcome.exit_code == 0, outcome.output
    assert project.scalar("select count(*) from daily where id = 500") == 1
    assert result(project)["batch_results"]["successful"] == [Batch(day(-4), day(-3)).as_json()]
    assert project.scalar("select count(*) from daily") == 13


def test_a_failed_batch_keeps_its_old_rows_and_retry_builds_only_it(project):
    assert project.cli("build").exit_code == 0
    broken = [(i, ts, "x" if ts.date() == day(-3).date() else code) for i, ts, code in six_days_of_events()]
    project.write("seeds/raw_events.csv", events_csv(broken))
    assert project.cli("build", "-s", "raw_events", "events").exit_code == 0
    outcome = project.cli(
        "run", "-s", "daily", "--event-time-start", iso(day(-5)), "--event-time-end", iso(day(1))
    )
    assert outcome.exit_code == 1
    assert "1 of 6 batches failed" in outcome.output and str(Batch(day(-3), day(-2))) in outcome.output
    assert result(project)["batch_results"]["failed"] == [Batch(day(-3), day(-2)).as_json()]
    assert len(result(project)["batch_results"]["successful"]) == 5
    # The failed batch rolled back its DELETE: the day keeps the rows of the last good build.
    assert (
        project.scalar(f"select count(*) from daily where ts >= '{iso(day(-3))}' and ts < '{iso(day(-2))}'")
        == 2
    )

    # Fixed in the model (a new run of the seeds would make that the command retry repeats).
    fixed = MICROBATCH.format(begin=iso(day(-5)), lookback=1).replace("cast(e.code", "try_cast(e.code")
    project.write("models/daily.sql", fixed)
    outcome = project.cli("retry")
    assert outcome.exit_code == 0, outcome.output
    assert result(project)["batch_results"]["successful"] == [Batch(day(-3), day(-2)).as_json()]
    assert intervals(project) == [(day(-5), day(0))]


def test_a_failed_batch_leaves_a_gap_the_next_run_fills(project):
    broken = [(i, ts, "x" if ts.date() == day(-3).date() else code) for i, ts, code in six_days_of_events()]
    project.write("seeds/raw_events.csv", events_csv(broken))
    assert project.cli("seed").exit_code == 0
    assert project.cli("run", "-s", "events").exit_code == 0
    # First build: one transaction for every batch, so nothing is created when one fails.
    assert project.cli("run", "-s", "daily").exit_code == 1
    assert project.query("select count(*) from information_schema.tables where table_name = 'daily'") == [
        (0,)
    ]
    project.write("seeds/raw_events.csv", events_csv(six_days_of_events()))
    assert project.cli("build").exit_code == 0
    # Later runs: each batch on its own, the gap is recorded as a gap.
    project.write("seeds/raw_events.csv", events_csv(broken))
    assert project.cli("build", "-s", "raw_events", "events").exit_code == 0
    project.write("models/daily.sql", MICROBATCH.format(begin=iso(day(-5)), lookback=3))
    assert project.cli("run", "-s", "daily").exit_code == 1
    assert intervals(project) == [(day(-5), day(0))]  # -3 was already done; redoing it failed
    project.write("seeds/raw_events.csv", events_csv(six_days_of_events()))
    assert project.cli("build", "-s", "raw_events", "events").exit_code == 0
    assert project.cli("run", "-s", "daily").exit_code == 0
    assert project.scalar("select count(*) from daily") == 12


def test_full_refresh_rebuilds_from_begin_and_a_failure_keeps_the_table(project):
    assert project.cli("build").exit_code == 0
    project.write("models/daily.sql", MICROBATCH.format(begin=iso(day(-2)), lookback=1))
    assert project.cli("run", "-s", "daily", "--full-refresh").exit_code == 0
    assert project.scalar("select count(*) from daily") == 6
    assert intervals(project) == [(day(-2), day(0))]
    project.write(
        "models/daily.sql", MICROBATCH.format(begin=iso(day(-5)), lookback=1).replace("e.code", "'x'")
    )
    assert project.cli("run", "-s", "daily", "--full-refresh").exit_code == 1
    assert project.scalar("select count(*) from daily") == 6
    leftovers = project.query(
        "select table_name from information_schema.tables where table_name like '%\\_\\_sqlflow%' escape '\\'"
    )
    assert leftovers == []


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        ("batch_size='day', begin='2024-01-01'", "`event_time` must name the column"),
        ("event_time='ts', batch_size='week', begin='2024-01-01'", "`batch_size` must be one of hour, day"),
        ("event_time='ts', batch_size='day'", "`begin` (the time of the first batch) is required"),
        ("event_time='ts', batch_size='day', begin='soon'", "`begin` must be a date or timestamp"),
        ("event_time='ts', batch_size='day', begin='2024-01-01', lookback=-1", "`lookback` must be a whole"),
    ],
)
def test_bad_microbatch_config_is_exit_2_naming_the_file(make_project, config_text, message):
    project = make_project(
        {
            "models/m.sql": "{{ config(materialized='incremental', incremental_strategy='microbatch', "
            + config_text
            + ") }}\nselect 1 as id, now() as ts\n"
        }
    )
    outcome = project.cli("run")
    assert outcome.exit_code == 2
    assert message in outcome.output and "models/m.sql" in outcome.output
    assert "Traceback" not in outcome.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--event-time-start", "2024-03-01"], "--event-time-start and --event-time-end go together"),
        (["--event-time-start", "2024-03-08", "--event-time-end", "2024-03-01"], "must be before"),
        (["--event-time-start", "March", "--event-time-end", "2024-03-01"], "write dates or timestamps"),
    ],
)
def test_bad_event_time_options_are_exit_2(project, options, message):
    outcome = project.cli("run", *options)
    assert outcome.exit_code == 2
    assert message in outcome.output


def test_sources_with_event_time_are_filtered_too(make_project):
    project = make_project(
        {
            "seeds/raw_events.csv": events_csv(six_days_of_events()),
            "models/sources.yml": "version: 2\nsources:\n  - name: raw\n    schema: main\n    tables:\n"
            "      - name: raw_events\n        config: {event_time: ts}\n",
            "models/per_batch.sql": "{{ config(materialized='incremental', incremental_strategy='microbatch', "
            f"event_time='ts', batch_size='day', begin='{iso(day(-5))}') }}}}\n"
            "select max(ts) as ts, count(*) as events_in_batch from {{ source('raw', 'raw_events') }}\n",
        }
    )
    assert project.cli("seed").exit_code == 0
    assert project.cli("run").exit_code == 0
    assert project.query("select events_in_batch from per_batch order by ts") == [(2,)] * 6


def test_a_transient_error_retries_only_the_batch_that_hit_it(project):
    from sqlflow import commands
    from sqlflow.adapters.duckdb import DuckDBAdapter
    from sqlflow.errors import WarehouseError

    assert project.cli("build").exit_code == 0
    project.write(
        "models/daily.sql",
        MICROBATCH.format(begin=iso(day(-5)), lookback=2).replace(
            "lookback=2)", "lookback=2, retries=1, retry_delay=0)"
        ),
    )
    window = f"CAST('{day(-1):%Y-%m-%d %H:%M:%S}' AS TIMESTAMP)"

    class LockTimeoutOnce(DuckDBAdapter):
        statements: list[str] = []

        def _run(self, sql, params=None, *, fetch):
            self.statements.append(sql)
            deletes = [
                s for s in self.statements if s.startswith('DELETE FROM "main"."daily"') and window in s
            ]
            if len(deletes) == 1 and sql in deletes:
                raise WarehouseError("lock timeout while waiting for the table")
            return super()._run(sql, params, fetch=fetch)

    events = []
    with commands.open_session(project.root, on_event=events.append) as session:
        session._adapter = adapter = LockTimeoutOnce(session.project.target)
        outcome = commands.run(session, ["daily"])
    (built,) = outcome.results
    assert built.status == "success", built.message
    deletes = [s for s in adapter.statements if s.startswith('DELETE FROM "main"."daily"')]
    assert len(deletes) == 4  # batches -2, -1 (twice: the retry) and today
    assert next(e for e in events if e.name == "node_retry").message.startswith(
        "daily: attempt 1 of 2 failed: batch ["
    )
    assert built.extra["batch_results"]["failed"] == []
    assert project.scalar("select count(*) from daily") == 12
