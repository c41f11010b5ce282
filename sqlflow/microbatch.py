"""Time-range incrementals (`incremental_strategy='microbatch'`): batches, intervals and the plan.

A microbatch model is built one time window (batch) at a time. Which windows are done is kept as
merged ranges (`Intervals`), so planning costs the number of gaps, not the number of batches: a
model with years of hourly batches plans in microseconds. Everything here is pure; the warehouse
side (one transaction per batch, the interval table) lives in `materializations` and `state`.

Times are naive UTC `datetime`s, like `run_started_at`. A window is half-open: [start, end).
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .lazy import exp, sqlglot

BATCH_SIZES = ("hour", "day", "month", "year")
_BATCH_ID_FORMAT = {"hour": "%Y%m%d%H", "day": "%Y%m%d", "month": "%Y%m", "year": "%Y"}
CONFIG_KEYS = ("event_time", "batch_size", "begin", "lookback")


@dataclass(frozen=True)
class MicrobatchConfig:
    event_time: str  # a column (or expression) of the model's own rows
    batch_size: str
    begin: dt.datetime
    lookback: int = 1  # complete batches before the current one that every run redoes (late data)

    @classmethod
    def of(cls, config: dict[str, Any], path: Path | None = None) -> MicrobatchConfig:
        """Read and check a model's microbatch config; a missing or bad key is a UserError."""

        def fail(message: str, hint: str) -> UserError:
            return UserError(f"microbatch model: {message}", path=path, hint=hint)

        example = "config(incremental_strategy='microbatch', event_time='ordered_at', batch_size='day', begin='2024-01-01')"
        event_time = config.get("event_time")
        if not isinstance(event_time, str) or not event_time.strip():
            raise fail("`event_time` must name the column that holds each row's time", f"e.g. {example}")
        batch_size = config.get("batch_size")
        if batch_size not in BATCH_SIZES:
            raise fail(f"`batch_size` must be one of {', '.join(BATCH_SIZES)}, not {batch_size!r}", example)
        begin = config.get("begin")
        if begin is None:
            raise fail("`begin` (the time of the first batch) is required", f"e.g. {example}")
        try:
            begin_time = parse_time(begin)
        except ValueError:
            raise fail(
                f"`begin` must be a date or timestamp, not {begin!r}", "e.g. begin='2024-01-01'"
            ) from None
        lookback = config.get("lookback", 1)
        if isinstance(lookback, bool) or not isinstance(lookback, int) or lookback < 0:
            raise fail(
                f"`lookback` must be a whole number, zero or more, not {lookback!r}", "e.g. lookback=1"
            )
        return cls(event_time.strip(), batch_size, begin_time, lookback)


def parse_time(value: Any) -> dt.datetime:
    """A date, datetime or ISO string ('2024-03-01', '2024-03-01 06:00', '...Z') as naive UTC."""
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    else:
        raise ValueError(f"not a time: {value!r}")
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return moment


# --------------------------------------------------------------------------- batches


@dataclass(frozen=True, order=True)
class Batch:
    start: dt.datetime
    end: dt.datetime

    def id(self, batch_size: str) -> str:
        return self.start.strftime(_BATCH_ID_FORMAT[batch_size])

    def __str__(self) -> str:
        return f"[{_show(self.start)}, {_show(self.end)})"

    def as_json(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]

    @classmethod
    def from_json(cls, value: list[str]) -> Batch:
        return cls(parse_time(value[0]), parse_time(value[1]))


def _show(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d" if moment.time() == dt.time() else "%Y-%m-%d %H:%M")


def truncate(moment: dt.datetime, size: str) -> dt.datetime:
    """The start of the batch that holds `moment`."""
    moment = moment.replace(minute=0, second=0, microsecond=0)
    if size == "hour":
        return moment
    moment = moment.replace(hour=0)
    if size == "day":
        return moment
    moment = moment.replace(day=1)
    return moment if size == "month" else moment.replace(month=1)


def advance(moment: dt.datetime, size: str, count: int = 1) -> dt.datetime:
    """`moment` moved by `count` batches (negative: back); `moment` is a batch start."""
    if size == "hour":
        return moment + dt.timedelta(hours=count)
    if size == "day":
        return moment + dt.timedelta(days=count)
    months = count * (12 if size == "year" else 1)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def split(start: dt.datetime, end: dt.datetime, size: str) -> Iterator[Batch]:
    """The batches covering [start, end): start is truncated down and end rounded up to batches."""
    current = truncate(start, size)
    while current < end:
        following = advance(current, size)
        yield Batch(current, following)
        current = following


# --------------------------------------------------------------------------- intervals


class Intervals:
    """A set of time, kept as sorted, disjoint, non-touching [start, end) ranges."""

    def __init__(self, ranges: Iterable[tuple[dt.datetime, dt.datetime]] = ()) -> None:
        self.ranges: list[tuple[dt.datetime, dt.datetime]] = []
        for start, end in sorted(ranges):
            self._append(start, end)

    def _append(self, start: dt.datetime, end: dt.datetime) -> None:
        if start >= end:
            return
        if self.ranges and start <= self.ranges[-1][1]:
            last_start, last_end = self.ranges[-1]
            self.ranges[-1] = (last_start, max(last_end, end))
        else:
            self.ranges.append((start, end))

    def add(self, start: dt.datetime, end: dt.datetime) -> None:
        if start >= end:
            return
        # Ranges that overlap or touch [start, end) are replaced by their union.
        low = bisect.bisect_left(self.ranges, (start,), key=lambda r: (r[1],))
        high = bisect.bisect_right(self.ranges, (end,), key=lambda r: (r[0],))
        if low < high:
            start = min(start, self.ranges[low][0])
            end = max(end, self.ranges[high - 1][1])
        self.ranges[low:high] = [(start, end)]

    def missing(self, start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
        """The parts of [start, end) not in the set."""
        gaps, cursor = [], start
        low = bisect.bisect_right(self.ranges, (start,), key=lambda r: (r[1],))
        for range_start, range_end in self.ranges[low:]:
            if range_start >= end:
                break
            if range_start > cursor:
                gaps.append((cursor, range_start))
            cursor = max(cursor, range_end)
        if cursor < end:
            gaps.append((cursor, end))
        return gaps

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Intervals) and self.ranges == other.ranges

    def __repr__(self) -> str:
        return f"Intervals({self.ranges!r})"


@dataclass(frozen=True)
class Backfill:
    """A run's explicit windows: `--event-time-start/--event-time-end`, or the failed batches
    `retry` gives back per model."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    batches: dict[str, tuple[Batch, ...]] | None = None  # unique id -> the only batches to run

    @classmethod
    def from_options(cls, start: Any, end: Any) -> Backfill | None:
        if start is None and end is None:
            return None
        if start is None or end is None:
            raise UserError(
                "--event-time-start and --event-time-end go together",
                hint="give both, e.g. --event-time-start 2024-03-01 --event-time-end 2024-03-08",
            )
        try:
            start_time, end_time = parse_time(start), parse_time(end)
        except ValueError as exc:
            raise UserError(
                f"--event-time-start/--event-time-end: {exc}",
                hint="write dates or timestamps, e.g. 2024-03-01 or 2024-03-01T06:00",
            ) from None
        if start_time >= end_time:
            raise UserError(
                f"--event-time-start ({start}) must be before --event-time-end ({end})",
                hint="the window is [start, end): the end is not included",
            )
        return cls(start_time, end_time)


def plan(
    config: MicrobatchConfig,
    done: Intervals,
    now: dt.datetime,
    *,
    rebuild: bool = False,
    backfill: Backfill | None = None,
) -> list[Batch]:
    """The batches a run builds, oldest first.

    A backfill window builds every batch it touches. Otherwise: every batch from `begin` to the
    current one (which is never complete, so never recorded) that is not done, plus the `lookback`
    batches before the current one; `rebuild` (first build, --full-refresh) ignores what is done.
    """
    size = config.batch_size
    if backfill is not None and backfill.start is not None and backfill.end is not None:
        return list(split(backfill.start, backfill.end, size))
    current = truncate(now, size)
    horizon = advance(current, size)
    begin = truncate(config.begin, size)
    if rebuild:
        return list(split(begin, horizon, size))
    todo = Intervals(done.missing(begin, horizon))
    todo.add(max(begin, advance(current, size, -config.lookback)), horizon)
    return [batch for start, end in todo.ranges for batch in split(start, end, size)]


def batch_context(config: dict[str, Any], batch: Batch | None = None) -> dict[str, Any] | None:
    """`model.batch` in Jinja: the batch being built. Outside a batch run (loading, `compile`, the
    fingerprint), a microbatch model sees its first batch, so `model.batch.id` always renders and
    the compiled SQL does not change from one day to the next."""
    if batch is None:
        if config.get("incremental_strategy") != "microbatch":
            return None
        try:
            first = MicrobatchConfig.of(config)
        except UserError:
            return None  # reported with its file by the config check
        start = truncate(first.begin, first.batch_size)
        batch = Batch(start, advance(start, first.batch_size))
    size = str(config.get("batch_size"))
    return {"id": batch.id(size), "event_time_start": batch.start, "event_time_end": batch.end}


def complete(batch: Batch, now: dt.datetime) -> bool:
    """Whether no row can still arrive in `batch`: only complete batches are recorded as done."""
    return batch.end <= now


# --------------------------------------------------------------------------- SQL


def event_time_expression(event_time: str, dialect: str) -> exp.Expression:
    """`event_time` as written (a column, or an expression such as `cast(ts as date)`)."""
    try:
        return sqlglot.parse_one(event_time, dialect=dialect)
    except sqlglot.errors.SqlglotError as exc:
        raise UserError(f"event_time {event_time!r} is not a column or expression: {exc}") from None


def window_condition(event_time: exp.Expression, batch: Batch) -> exp.Expression:
    """`event_time >= start AND event_time < end`, with the bounds as timestamp literals."""

    def bound(moment: dt.datetime) -> exp.Expression:
        return exp.cast(exp.Literal.string(moment.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)

    return exp.and_(
        exp.GTE(this=event_time.copy(), expression=bound(batch.start)),
        exp.LT(this=event_time.copy(), expression=bound(batch.end)),
    )


def filter_upstream(
    query: exp.Query,
    event_times: dict[tuple[str, str], exp.Expression],
    batch: Batch,
    key: Callable[[str, str], tuple[str, str]],
) -> exp.Query:
    """Replace each read of a relation in `event_times` ((schema, identifier) -> its event_time)
    by that relation filtered to the batch, keeping the alias the query uses for it."""
    if not event_times:
        return query
    query = query.copy()
    for table in list(query.find_all(exp.Table)):
        if not table.db:
            continue  # a CTE or an unqualified name: not a ref()
        event_time = event_times.get(key(table.db, table.name))
        if event_time is None:
            continue
        alias = table.args.get("alias")
        bare = table.copy()
        bare.set("alias", None)
        filtered = exp.select("*").from_(bare).where(window_condition(event_time, batch))
        alias = alias.copy() if alias is not None else exp.TableAlias(this=exp.to_identifier(table.name))
        table.replace(exp.Subquery(this=filtered, alias=alias))
    return query
