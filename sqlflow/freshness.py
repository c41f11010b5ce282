"""`sqlflow source freshness`: how long ago each source table was last loaded, as dbt checks it.

A source is checked when it has a `loaded_at_field` and at least one of `warn_after`/`error_after`
in its `freshness` (the table's `freshness` replaces the source's; `freshness: null` on a table
turns the check off). For each, one query runs on the thread pool:

    select max(<loaded_at_field>) as max_loaded_at, current_timestamp as snapshotted_at
    from <relation> [where <filter>]

and the age (snapshotted_at - max_loaded_at, naive timestamps read as UTC) is compared with the
thresholds: `pass`, `warn`, `error`, or `runtime error` when the query fails. Every source's
config is validated, and its SQL parsed, before the first query runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import artifacts, sql
from .errors import UserError, WarehouseError
from .events import node_finished, node_started
from .lazy import exp, sqlglot
from .nodes import Source
from .plan import Plan
from .runner import NodeResult, RunOutcome, now_iso, run_dag
from .yaml_lines import line_of

if TYPE_CHECKING:
    from .commands import Session

PERIODS = {"minute": 60, "hour": 3600, "day": 86400}
FRESHNESS_KEYS = ("warn_after", "error_after", "filter")
KIND = "freshness"  # what the console shows in the materialization column


@dataclass(frozen=True)
class Threshold:
    count: int
    period: str

    @property
    def seconds(self) -> int:
        return self.count * PERIODS[self.period]

    def __str__(self) -> str:
        return f"{self.count} {self.period}{'s' if self.count != 1 else ''}"


@dataclass(frozen=True)
class Criteria:
    warn_after: Threshold | None
    error_after: Threshold | None
    filter: str | None = None

    def status(self, age: float) -> tuple[str, Threshold | None]:
        """dbt's rule: `error` past error_after, else `warn` past warn_after, else `pass`."""
        if self.error_after is not None and age > self.error_after.seconds:
            return "error", self.error_after
        if self.warn_after is not None and age > self.warn_after.seconds:
            return "warn", self.warn_after
        return "pass", None

    def json(self) -> dict[str, Any]:
        def threshold(t: Threshold | None) -> dict[str, Any]:
            return {"count": t.count, "period": t.period} if t else {"count": None, "period": None}

        return {
            "warn_after": threshold(self.warn_after),
            "error_after": threshold(self.error_after),
            "filter": self.filter,
        }


@dataclass
class Check:
    """One source to check: its thresholds and the query that reads its newest load time."""

    source: Source
    criteria: Criteria
    query: exp.Select

    @property
    def name(self) -> str:
        return f"{self.source.source_name}.{self.source.name}"


@dataclass
class FreshnessResult(NodeResult):
    max_loaded_at: str | None = None
    snapshotted_at: str | None = None
    age: float | None = None  # seconds; max_loaded_at_time_ago_in_s
    criteria: dict[str, Any] | None = None

    @property
    def failed(self) -> bool:
        return self.status in ("error", "runtime error")


# --------------------------------------------------------------------------- configuration


def criteria_for(source: Source, root: Path) -> Criteria | None:
    """The source's validated thresholds, or None when it is not checked."""
    path = root / source.path  # Source.path is relative to the project root
    freshness = source.freshness
    if freshness is None:
        return None
    if not isinstance(freshness, dict):
        raise UserError(
            f"source {source.source_name}.{source.name}: `freshness` must be a mapping, "
            f"not {type(freshness).__name__}",
            path=path,
            line=source.line,
            hint="write e.g. `freshness: {warn_after: {count: 12, period: hour}}`, or `freshness: null`",
        )
    for key in freshness:
        if key not in FRESHNESS_KEYS:
            raise UserError(
                f"source {source.source_name}.{source.name}: unknown freshness key {key!r}",
                path=path,
                line=line_of(freshness, key),
                hint="a freshness block takes warn_after, error_after and filter",
            )
    warn_after = _threshold(source, freshness, "warn_after", path)
    error_after = _threshold(source, freshness, "error_after", path)
    filter_ = freshness.get("filter")
    if filter_ is not None and (not isinstance(filter_, str) or not filter_.strip()):
        raise UserError(
            f"source {source.source_name}.{source.name}: freshness `filter` must be a SQL condition",
            path=path,
            line=line_of(freshness, "filter"),
            hint="e.g. `filter: _etl_loaded_at >= current_date - 3`",
        )
    if warn_after is None and error_after is None:
        return None
    if not source.loaded_at_field:
        raise UserError(
            f"source {source.source_name}.{source.name} has freshness thresholds but no loaded_at_field",
            path=path,
            line=source.line,
            hint="add `loaded_at_field: <timestamp column>` to the table or its source, "
            "or set `freshness: null` on the table to skip it",
        )
    return Criteria(warn_after, error_after, filter_)


def _threshold(source: Source, freshness: dict[str, Any], key: str, path: Path) -> Threshold | None:
    value = freshness.get(key)
    if value is None:
        return None
    what = f"source {source.source_name}.{source.name}: freshness {key}"
    example = f"write e.g. `{key}: {{count: 12, period: hour}}`"
    if not isinstance(value, dict):
        raise UserError(f"{what} must be a mapping", path=path, line=line_of(freshness, key), hint=example)
    for name in value:
        if name not in ("count", "period"):
            raise UserError(
                f"{what}: unknown key {name!r}", path=path, line=line_of(value, name), hint=example
            )
    count, period = value.get("count"), value.get("period")
    if count is None and period is None:
        return None  # dbt's way to turn off one threshold inherited from the source
    if count is None or period is None:
        missing = "count" if count is None else "period"
        raise UserError(
            f"{what}: {missing} is missing",
            path=path,
            line=line_of(freshness, key),
            hint=example if count is None else f"add a period: one of {', '.join(PERIODS)}",
        )
    if isinstance(count, bool) or not isinstance(count, int) or count <= 0:
        raise UserError(
            f"{what}: count must be a positive whole number, not {count!r}",
            path=path,
            line=line_of(value, "count"),
            hint=example,
        )
    if period not in PERIODS:
        raise UserError(
            f"{what}: unknown period {period!r}",
            path=path,
            line=line_of(value, "period"),
            hint=f"period must be one of {', '.join(PERIODS)}",
        )
    return Threshold(count, period)


def plan(session: Session, uids: Sequence[str]) -> list[Check]:
    """Validate every selected source and build its query; sources without freshness are left out."""
    project = session.project
    checks = []
    for uid in uids:
        source = session.manifest.sources[uid]
        criteria = criteria_for(source, project.root)
        if criteria is None:
            continue
        path = project.root / source.path
        assert source.loaded_at_field is not None
        loaded_at = _parse_expression(
            source, str(source.loaded_at_field), "loaded_at_field", project.dialect, path, source.line
        )
        condition = None
        if criteria.filter is not None:
            line = line_of(source.freshness, "filter")
            condition = _parse_expression(source, criteria.filter, "filter", project.dialect, path, line)
        checks.append(Check(source, criteria, freshness_query(source, loaded_at, condition)))
    return checks


def _parse_expression(
    source: Source, text: str, what: str, dialect: str, path: Path, line: int | None
) -> exp.Expression:
    where = f"source {source.source_name}.{source.name}: {what} {text!r}"
    try:
        parsed = [e for e in sql.dialect(dialect).parse(text) if e is not None]
    except sqlglot.errors.ParseError as exc:
        info = exc.errors[0] if exc.errors else {}
        reason = sql._readable(info.get("description") or str(exc))
        raise UserError(
            f"{where} is not valid SQL: {reason}",
            path=path,
            line=line,
            hint=f"write one {dialect} SQL expression",
        ) from exc
    except sqlglot.errors.TokenError as exc:
        raise UserError(f"{where} is not valid SQL: {exc}", path=path, line=line) from exc
    if len(parsed) != 1 or not isinstance(parsed[0], (exp.Condition, exp.Subquery)):
        raise UserError(
            f"{where} must be one SQL expression",
            path=path,
            line=line,
            hint="a column name or an expression such as `cast(loaded_at as timestamp)`, not a statement",
        )
    return parsed[0]


def freshness_query(
    source: Source, loaded_at: exp.Expression, condition: exp.Expression | None
) -> exp.Select:
    query = exp.select(
        exp.alias_(exp.Max(this=loaded_at), "max_loaded_at"),
        exp.alias_(exp.CurrentTimestamp(), "snapshotted_at"),
    ).from_(source.relation.table())
    return query.where(condition) if condition is not None else query


# --------------------------------------------------------------------------- checking


def evaluate(
    criteria: Criteria, max_loaded_at: Any, snapshotted_at: Any, field: str = "loaded_at_field"
) -> tuple[str, float | None, str, datetime | None, datetime | None]:
    """(status, age in seconds, message, max_loaded_at, snapshotted_at) from the query's row."""
    snapshot = _utc(snapshotted_at, "current_timestamp")
    loaded = _utc(max_loaded_at, f"max({field})")
    if loaded is None or snapshot is None:
        rows = "no rows matching the filter" if criteria.filter else "no rows"
        message = f"max({field}) is null: the table has {rows} with a {field} value"
        return "error", None, message, None, snapshot
    age = (snapshot - loaded).total_seconds()
    status, threshold = criteria.status(age)
    if age >= 0:
        message = f"last loaded {_duration(age)} ago"
    else:
        message = f"max(loaded_at_field) is {_duration(-age)} in the future"
    if threshold is not None:
        message += f", more than {'error_after' if status == 'error' else 'warn_after'} {threshold}"
    return status, age, message, loaded, snapshot


class NotATimestamp(Exception):
    """The query returned something that is not a date or timestamp."""


def _utc(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise NotATimestamp(f"{what} returned {value!r}, not a timestamp") from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    raise NotATimestamp(f"{what} returned a {type(value).__name__} ({value!r}), not a timestamp")


def _duration(seconds: float) -> str:
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def check(session: Session, item: Check) -> FreshnessResult:
    """Run one source's query; a failing query is a `runtime error` result, never an exception."""
    uid = item.source.unique_id
    started_at, clock = now_iso(), time.perf_counter()
    thread = threading.current_thread().name
    criteria = item.criteria.json()
    try:
        rows = session.adapter.execute(item.query, fetch=True).rows
        if len(rows) != 1 or len(rows[0]) != 2:
            raise NotATimestamp(f"the freshness query returned {len(rows)} rows, expected one")
        field = str(item.source.loaded_at_field)
        status, age, message, loaded, snapshot = evaluate(item.criteria, rows[0][0], rows[0][1], field)
    except (WarehouseError, NotATimestamp) as exc:
        message = session.project.secrets.mask(str(exc) or type(exc).__name__)
        return FreshnessResult(
            uid,
            "runtime error",
            message,
            execution_time=time.perf_counter() - clock,
            started_at=started_at,
            completed_at=now_iso(),
            thread_id=thread,
            criteria=criteria,
        )
    return FreshnessResult(
        uid,
        status,
        message,
        execution_time=time.perf_counter() - clock,
        started_at=started_at,
        completed_at=now_iso(),
        thread_id=thread,
        max_loaded_at=_iso(loaded),
        snapshotted_at=_iso(snapshot),
        age=age,
        criteria=criteria,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def run(
    session: Session,
    uids: Sequence[str],
    *,
    select: Sequence[str] = (),
    output: str | Path | None = None,
    cancel: threading.Event | None = None,
) -> RunOutcome:
    """Check the sources `uids` that have freshness configured; write sources.json."""
    started = time.perf_counter()
    checks = plan(session, uids)  # every config error is raised before the first query
    by_uid = {c.source.unique_id: c for c in checks}
    total = len(checks)
    if not checks:
        picked = f"--select {' '.join(select)} matches" if select else "the project has"
        session.emit(
            "warning",
            f"nothing to do: {picked} no source with a loaded_at_field and a freshness threshold",
            "warning",
        )
        outcome = RunOutcome([], 0.0)
    else:
        adapter = session.adapter
        session.emit(
            "run_started",
            f"Checking freshness of {total} source{'s' if total != 1 else ''} on "
            f"{session.project.target.name} ({adapter.describe()}) "
            f"with {session.project.target.threads} threads",
            total=total,
        )
        lock, done = threading.Lock(), [0]

        def report(result: NodeResult) -> None:
            with lock:
                done[0] += 1
                index = done[0]
            session.on_event(node_finished(index, total, by_uid[result.unique_id].name, KIND, result))

        def work(uid: str) -> NodeResult:
            item = by_uid[uid]
            session.on_event(node_started(0, total, uid, item.name, KIND))
            result = check(session, item)
            report(result)
            return result

        outcome = run_dag(
            Plan(by_uid),  # no edges: every check is independent
            work,
            threads=session.project.target.threads,
            on_skip=report,
            on_interrupt=adapter.cancel,
            cancel=cancel,
        )
    outcome.elapsed = time.perf_counter() - started
    path = Path(output) if output is not None else None
    artifacts.write_sources(session.manifest, outcome, path)
    return outcome
