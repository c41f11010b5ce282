"""Column lineage of a whole project: every model traced (lineage.py), in waves, on worker
processes when there are many, with results cached in target/ between runs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import pickle
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from sqlglot import exp

from . import __version__, artifacts
from .catalog import SEED_FILE, WAREHOUSE, CatalogEntry
from .compiler import CTE_PREFIX, CompiledNode
from .lineage import ModelLineage, trace_query
from .manifest import Manifest
from .nodes import Relation


@dataclass(frozen=True)
class RelationIndex:
    """Which unique id builds each relation, by the schema and name (and database) a query writes."""

    owners: dict[tuple[str, ...], str]
    case_insensitive: bool = False

    @classmethod
    def build(cls, relations: Iterable[tuple[str, Relation]], *, case_insensitive: bool) -> RelationIndex:
        owners: dict[tuple[str, ...], str] = {}
        fold = str.lower if case_insensitive else str
        for uid, relation in relations:
            owners.setdefault((fold(relation.schema), fold(relation.identifier)), uid)
            if relation.database:
                owners[(fold(relation.database), fold(relation.schema), fold(relation.identifier))] = uid
        return cls(owners, case_insensitive)

    def owner(self, table: exp.Table) -> str | None:
        if not table.db:
            return None  # a bare name is a CTE or a table outside the project's relations
        fold = str.lower if self.case_insensitive else str
        if table.catalog:
            found = self.owners.get((fold(table.catalog), fold(table.db), fold(table.name)))
            if found is not None:
                return found
        return self.owners.get((fold(table.db), fold(table.name)))


@dataclass
class LineageInput:
    """One model to trace: its compiled SQL, the ephemeral CTEs inlined in it, what it reads."""

    unique_id: str
    sql: str
    ephemeral_ctes: dict[str, str] = field(default_factory=dict)  # CTE name -> unique id
    warehouse_columns: list[str] | None = None  # the built relation's columns, if any
    reads: list[str] = field(default_factory=list)  # unique ids of the relations the SQL reads


# Below this many models to trace, starting worker processes costs more than it saves.
PARALLEL_THRESHOLD = 400


def trace_models(
    inputs: list[LineageInput],
    dialect: str,
    *,
    relations: RelationIndex,
    known_columns: Mapping[str, list[str]],
    cache_path: Path | None = None,
    workers: int | None = None,
) -> dict[str, ModelLineage]:
    """Trace every model in `inputs` (given parents before children).

    `known_columns` holds the columns of the relations read as they are built (the warehouse's
    catalog, seed headers): what the SQL reads when it runs. A relation not built yet takes the
    columns traced from its own SQL, so `select *` through refs resolves before anything is
    built. Models are traced in waves (a model waits only for parents whose columns are not known
    yet), on `workers` processes when there are many; results are cached in `cache_path`.
    """
    cache = _LineageCache(cache_path)
    columns: dict[str, list[str]] = {uid: list(cols) for uid, cols in known_columns.items()}
    results: dict[str, ModelLineage] = {}
    pending = list(inputs)
    pool = _Workers(workers if workers is not None else min(os.cpu_count() or 1, 8), dialect, relations)
    try:
        while pending:
            unfinished = {item.unique_id for item in pending}
            wave = [i for i in pending if not any(r in unfinished and r not in columns for r in i.reads)]
            if not wave:  # a cycle cannot happen in a DAG; trace the rest without waiting
                wave = pending
            done = {item.unique_id for item in wave}
            pending = [item for item in pending if item.unique_id not in done]
            jobs: list[tuple[LineageInput, dict[str, list[str]]]] = []
            keys: dict[str, str] = {}
            for item in wave:
                read = {uid: columns[uid] for uid in item.reads if uid in columns}
                key = cache.key(item, dialect, read) if cache.enabled else None
                cached = cache.get(key) if key else None
                if cached is not None:
                    results[item.unique_id] = cached
                    continue
                if key:
                    keys[item.unique_id] = key
                jobs.append((item, read))
            for lineage in pool.trace(jobs):
                results[lineage.unique_id] = lineage
                if lineage.unique_id in keys:
                    cache.put(keys[lineage.unique_id], lineage)
            for item in wave:
                if item.unique_id not in columns:
                    traced_columns = results[item.unique_id].resolved_columns or item.warehouse_columns
                    if traced_columns:
                        columns[item.unique_id] = traced_columns
    finally:
        pool.close()
    cache.save()
    return {item.unique_id: results[item.unique_id] for item in inputs}


def _trace(
    item: LineageInput, read: dict[str, list[str]], dialect: str, relations: RelationIndex
) -> ModelLineage:
    return trace_query(
        item.sql,
        dialect,
        table_owner=relations.owner,
        columns_of=read,
        ephemeral_ctes=item.ephemeral_ctes,
        unique_id=item.unique_id,
        output_columns=item.warehouse_columns,
    )


class _Workers:
    """Worker processes for big waves, started on first use.

    Processes are spawned, not forked: the parent holds a warehouse connection and threads. When
    they cannot start (a script without an `if __name__ == "__main__":` guard runs itself again
    in each), tracing goes on in this process.
    """

    def __init__(self, count: int, dialect: str, relations: RelationIndex) -> None:
        self.count, self.dialect, self.relations = count, dialect, relations
        self.pool: ProcessPoolExecutor | None = None

    def trace(self, jobs: list[tuple[LineageInput, dict[str, list[str]]]]) -> list[ModelLineage]:
        if self.count > 1 and len(jobs) >= PARALLEL_THRESHOLD:
            try:
                if self.pool is None:
                    self.pool = ProcessPoolExecutor(
                        max_workers=self.count,
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start_worker,
                        initargs=(self.dialect, self.relations),
                    )
                size = max(1, len(jobs) // (self.count * 4))
                chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
                return [lineage for part in self.pool.map(_trace_in_worker, chunks) for lineage in part]
            except (BrokenProcessPool, OSError):
                self.close()
                self.count = 1
        return [_trace(item, read, self.dialect, self.relations) for item, read in jobs]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


_worker_state: dict[str, object] = {}


def _start_worker(dialect: str, relations: RelationIndex) -> None:
    _worker_state.update(dialect=dialect, relations=relations)


def _trace_in_worker(jobs: list[tuple[LineageInput, dict[str, list[str]]]]) -> list[ModelLineage]:
    dialect, relations = _worker_state["dialect"], _worker_state["relations"]
    return [_trace(item, read, dialect, relations) for item, read in jobs]  # type: ignore[arg-type]


class _LineageCache:
    """Traced models by (SQL, dialect, columns of what they read), kept in target/ between runs."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.enabled = path is not None
        self.entries: dict[str, ModelLineage] = {}
        self.dirty = False
        if path is None:
            return
        try:
            with path.open("rb") as handle:
                stored = pickle.load(handle)
            if stored.get("version") == __version__:
                self.entries = stored["entries"]
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError):
            self.entries = {}

    @staticmethod
    def key(item: LineageInput, dialect: str, read_columns: dict[str, list[str] | None]) -> str:
        payload = json.dumps(
            [item.unique_id, item.sql, dialect, item.ephemeral_ctes, item.warehouse_columns, read_columns],
            sort_keys=True,
        )
        return hashlib.blake2b(payload.encode(), digest_size=16).hexdigest()

    def get(self, key: str) -> ModelLineage | None:
        return self.entries.get(key)

    def put(self, key: str, lineage: ModelLineage) -> None:
        self.entries[key] = lineage
        self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            artifacts.write_pickle(self.path, {"version": __version__, "entries": self.entries})


def trace_project(
    manifest: Manifest,
    compiled: Mapping[str, CompiledNode],
    catalog: Mapping[str, CatalogEntry],
    *,
    dialect: str,
    case_insensitive: bool,
    cache_path: Path | None = None,
) -> dict[str, ModelLineage]:
    """Column lineage of every compiled model and snapshot, from the compiler's SQL (ephemeral
    models inlined as CTEs) and the catalog's columns (warehouse and seed files; YAML is
    documentation, not proof of what a relation holds, so it is not used)."""
    relations = RelationIndex.build(
        [
            *((uid, s.relation) for uid, s in manifest.sources.items()),
            *(
                (uid, n.relation)
                for uid, n in manifest.nodes.items()
                if n.relation is not None
                and n.resource_type in ("model", "seed", "snapshot")
                and not n.is_ephemeral
            ),
        ],
        case_insensitive=case_insensitive,
    )
    known = {uid: entry.names for uid, entry in catalog.items() if entry.comes_from in (WAREHOUSE, SEED_FILE)}
    inputs = []
    for uid, node_sql in compiled.items():
        node = manifest.nodes[uid]
        if node.resource_type not in ("model", "snapshot") or not node_sql.sql:
            continue
        reads = [*node.depends_on, *(p for e in node_sql.ephemerals for p in manifest.nodes[e].depends_on)]
        entry = catalog.get(uid)
        inputs.append(
            LineageInput(
                uid,
                node_sql.sql,
                {CTE_PREFIX + manifest.nodes[e].name: e for e in node_sql.ephemerals},
                warehouse_columns=entry.names
                if entry is not None and entry.comes_from == WAREHOUSE
                else None,
                reads=reads,
            )
        )
    return trace_models(inputs, dialect, relations=relations, known_columns=known, cache_path=cache_path)
