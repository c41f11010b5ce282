"""Build state: node fingerprints, the state table in the warehouse, and earlier runs' artifacts.

A fingerprint says whether a node would build differently: a hash of its compiled SQL
normalized by sqlglot (whitespace and comments do not count) and of the config that changes
what is built. After each successful build the fingerprint is recorded in a table of the
warehouse itself (schema `sqlflow_state`), so `state:modified` works on any checkout and
machine that points at the same target. `--state DIR` compares with another run's
manifest.json instead (dbt's way, e.g. production's artifacts in CI).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .adapters.base import Adapter
from .errors import UserError, WarehouseError
from .lazy import exp
from .microbatch import Intervals, parse_time
from .nodes import Node, Relation
from .runner import now_iso

STATE_RELATION = Relation(None, "sqlflow_state", "nodes")
# Config that does not change what is built: editing it does not make a node modified.
COSMETIC_CONFIG = frozenset(
    {
        "tags",
        "meta",
        "docs",
        "description",
        "persist_docs",
        "group",
        "enabled",
        "grants",
        "retries",
        "retry_delay",
    }
)
_COLUMNS = (
    ("relation_name", "VARCHAR"),
    ("unique_id", "VARCHAR"),
    ("fingerprint", "VARCHAR"),
    ("materialized", "VARCHAR"),
    ("built_at", "VARCHAR"),
    ("rows_affected", "BIGINT"),
    ("invocation_id", "VARCHAR"),
)


def fingerprint(node: Node, normalized_sql: str) -> str:
    """The fingerprint of a node from its normalized compiled SQL (seeds: their file's checksum)."""
    config = {k: v for k, v in node.config.items() if k not in COSMETIC_CONFIG}
    body = node.checksum if node.resource_type == "seed" else normalized_sql
    text = _ENCODER.encode([node.materialized, body, config])
    return hashlib.sha256(text.encode()).hexdigest()


# What json.dumps(sort_keys=True, default=str) builds on every call: a third of a fingerprint's cost.
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)


@dataclass
class Record:
    unique_id: str
    fingerprint: str
    materialized: str
    built_at: str
    rows: int | None


class WarehouseState:
    """The state table of one target: read once per run; builds are recorded while the run goes on.

    record() queues a node's row and returns; a writer thread commits what is queued, many rows per
    transaction, and flush() waits for it. One transaction per node, one at a time, cost a fifth of
    a 500-model run on DuckDB (docs/benchmarks.md). A row not yet committed when the process dies
    is lost: that node then counts as modified and is built again, never skipped wrongly.
    """

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self._ready = False
        self._changed = threading.Condition()  # guards the fields below
        self._queue: list[list[Any]] = []
        self._failed: list[list[Any]] = []  # rows whose write failed, tried once more by flush()
        self._writer: threading.Thread | None = None
        self._stopping = False

    def read(self, relations: dict[tuple[str, str], str] | None = None) -> dict[str, Record]:
        """relation name -> record; empty when nothing was ever recorded. `relations` is
        adapter.list_relations() when the caller has it already (listing 5,000 takes 30 ms)."""
        relation = STATE_RELATION
        relations = self.adapter.list_relations() if relations is None else relations
        kind = relations.get(self.adapter.key(relation.schema, relation.identifier))
        if kind is None:
            return {}
        query = exp.select(*[exp.column(name, quoted=True) for name, _ in _COLUMNS[:6]]).from_(
            relation.table()
        )
        try:
            rows = self.adapter.execute(query, fetch=True).rows
        except WarehouseError as exc:
            raise UserError(
                f"cannot read the build state in {relation.sql(self.adapter.dialect)}: {exc}",
                hint="drop that table to start over; every node then counts as new",
            ) from exc
        return {row[0]: Record(row[1], row[2], row[3], row[4], row[5]) for row in rows}

    def record(self, node: Node, fingerprint_: str, rows: int | None, invocation_id: str) -> None:
        """Queue the node's row; flush() says whether it was written."""
        assert node.relation is not None
        name = relation_name(node.relation, self.adapter.dialect)
        row = [name, node.unique_id, fingerprint_, node.materialized, now_iso(), rows, invocation_id]
        with self._changed:
            self._queue.append(row)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_queued, name="sqlflow-state", daemon=True)
                self._writer.start()
            self._changed.notify_all()

    def flush(self) -> dict[str, Exception]:
        """Wait until every queued row is committed; unique id -> error for the rows that were not.

        Rows whose write failed are tried once more here: Ctrl-C cancels every statement running
        on the warehouse, the state writer's too, and the nodes built before it must keep theirs.
        """
        with self._changed:
            writer, self._stopping = self._writer, True
            self._changed.notify_all()
        if writer is not None:
            writer.join()
        with self._changed:
            self._writer, self._stopping = None, False
            failed, self._failed = self._failed, []
        if not failed:
            return {}
        try:
            self._write(failed)
        except Exception as exc:
            return {row[1]: exc for row in failed}
        return {}

    def _write_queued(self) -> None:
        while True:
            with self._changed:
                while not self._queue and not self._stopping:
                    self._changed.wait()
                if not self._queue:
                    return
                batch, self._queue = self._queue, []
            try:
                self._write(batch)  # rows queued meanwhile make the next, larger batch
            except Exception:  # every row of the batch shares its fate; flush() tries them again
                with self._changed:
                    self._failed.extend(batch)

    def _write(self, rows: list[list[Any]]) -> None:
        """Replace the rows of these relations in one transaction (the table never holds two
        rows for a relation, or none)."""
        self._ensure()
        latest = {row[0]: row for row in rows}
        table = STATE_RELATION.table()
        names = [exp.Literal.string(name) for name in latest]
        with self.adapter.transaction():
            self.adapter.execute(
                exp.delete(table, where=exp.column("relation_name", quoted=True).isin(*names))
            )
            self.adapter.execute(
                exp.insert(
                    exp.values([tuple(exp.convert(v) for v in row) for row in latest.values()]),
                    table,
                    columns=[exp.to_identifier(c, quoted=True) for c, _ in _COLUMNS],
                )
            )

    def _ensure(self) -> None:
        if self._ready:
            return
        create_state_table(self.adapter, STATE_RELATION, _COLUMNS)
        self._ready = True


INTERVALS_RELATION = Relation(None, STATE_RELATION.schema, "intervals")
# Keyed by relation, like the nodes table: two targets in one database keep their own ranges.
_INTERVAL_COLUMNS = (
    ("relation_name", "VARCHAR"),
    ("unique_id", "VARCHAR"),
    ("start_at", "TIMESTAMP"),
    ("end_at", "TIMESTAMP"),
)


class IntervalStore:
    """The time ranges each microbatch model has built, merged: a few rows per model, however
    many batches. Written inside each batch's transaction, so a batch and its record commit
    together."""

    def __init__(self, adapter: Adapter) -> None:
        self.adapter = adapter
        self._lock = threading.Lock()
        self._ready = False

    def read(self, node: Node) -> Intervals:
        self._ensure()
        table = INTERVALS_RELATION.table()
        query = (
            exp.select(exp.column("start_at", quoted=True), exp.column("end_at", quoted=True))
            .from_(table)
            .where(self._is(node))
        )
        rows = self.adapter.execute(query, fetch=True).rows
        return Intervals((parse_time(start), parse_time(end)) for start, end in rows)

    def write(self, node: Node, intervals: Intervals) -> None:
        """Replace the model's ranges, in the caller's transaction."""
        table = INTERVALS_RELATION.table()
        self.adapter.execute(exp.delete(table, where=self._is(node)))
        if not intervals.ranges:
            return
        stamp = exp.DataType.Type.TIMESTAMP
        rows = [
            (
                exp.Literal.string(self._name(node)),
                exp.Literal.string(node.unique_id),
                exp.cast(exp.Literal.string(start.isoformat(sep=" ")), stamp),
                exp.cast(exp.Literal.string(end.isoformat(sep=" ")), stamp),
            )
            for start, end in intervals.ranges
        ]
        columns = [exp.to_identifier(name, quoted=True) for name, _ in _INTERVAL_COLUMNS]
        self.adapter.execute(exp.insert(exp.values(rows), table, columns=columns))

    def _name(self, node: Node) -> str:
        assert node.relation is not None
        return relation_name(node.relation, self.adapter.dialect)

    def _is(self, node: Node) -> exp.Expression:
        return exp.column("relation_name", quoted=True).eq(exp.Literal.string(self._name(node)))

    def _ensure(self) -> None:
        with self._lock:  # concurrent CREATE TABLE IF NOT EXISTS conflict in DuckDB's catalog
            if self._ready:
                return
            create_state_table(self.adapter, INTERVALS_RELATION, _INTERVAL_COLUMNS)
            self._ready = True


def create_state_table(adapter: Adapter, relation: Relation, columns: tuple[tuple[str, str], ...]) -> None:
    """CREATE SCHEMA and TABLE IF NOT EXISTS for one of sqlflow's own state tables."""
    adapter.create_schema(relation.schema)
    schema = exp.Schema(
        this=relation.table(),
        expressions=[
            exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=exp.DataType.build(kind))
            for name, kind in columns
        ],
    )
    adapter.execute(exp.Create(this=schema, kind="TABLE", exists=True))


def relation_name(relation: Relation, dialect: str) -> str:
    return relation.sql(dialect)


def read_manifest_state(state_dir: Path) -> dict[str, dict[str, Any]]:
    """unique id -> {"fingerprint", "checksum"} from another run's manifest.json (ours or dbt's)."""
    path = state_dir / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UserError(
            f"--state: no manifest.json in {state_dir}",
            hint="point --state at the target/ folder of the run to compare with",
        ) from exc
    except (OSError, ValueError) as exc:
        raise UserError(f"--state: cannot read {path}: {exc}") from exc
    nodes = data.get("nodes") or {}
    return {
        uid: {
            "fingerprint": node.get("sqlflow_fingerprint"),
            "checksum": (node.get("checksum") or {}).get("checksum"),
        }
        for uid, node in nodes.items()
        if isinstance(node, dict)
    }


def read_results(results_dir: Path) -> dict[str, str]:
    """unique id -> status from a run_results.json (missing file: no results)."""
    path = results_dir / "run_results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from exc
    return {r["unique_id"]: r.get("status") for r in data.get("results") or [] if "unique_id" in r}


@dataclass
class Comparison:
    """What `state:` selectors compare with: the warehouse's records, or another manifest."""

    fingerprint_of: Callable[[str], str | None]  # None for nodes that are never built (sources)
    recorded: dict[str, Record] | None = None  # by relation name (warehouse state)
    manifest: dict[str, dict[str, Any]] | None = None  # by unique id (--state)
    relation_of: Callable[[str], str | None] = lambda uid: None
    checksum_of: Callable[[str], str | None] = lambda uid: None
    _statuses: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def status(self, uid: str) -> str | None:
        """ "new", "modified", "unmodified", or None when the node has no state (sources)."""
        if uid not in self._statuses:  # each selector of a command asks again for every node
            self._statuses[uid] = self._status(uid)
        return self._statuses[uid]

    def _status(self, uid: str) -> str | None:
        current = self.fingerprint_of(uid)
        if current is None:
            return None
        if self.manifest is not None:
            old = self.manifest.get(uid)
            if old is None:
                return "new"
            if old.get("fingerprint"):
                return "unmodified" if old["fingerprint"] == current else "modified"
            # a dbt manifest: compare the files' checksums, as dbt does
            return "unmodified" if old.get("checksum") == self.checksum_of(uid) else "modified"
        name = self.relation_of(uid)
        record = (self.recorded or {}).get(name) if name else None
        if record is None:
            return "new"
        return "unmodified" if record.fingerprint == current else "modified"
