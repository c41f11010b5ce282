"""The small interface every warehouse implements.

An adapter runs SQL on a connection of the calling thread, introspects relations, and says what
it can do through class attributes; materializations choose their statements from those flags.
Statements arrive as sqlglot expressions and are generated in the adapter's dialect here.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..errors import WarehouseError
from ..lazy import exp
from ..locking import NoLock, RunLock
from ..nodes import Node, Relation
from ..project import Target

# Errors that say nothing about the SQL: the same statement may well succeed a moment later.
TRANSIENT_ERRORS = re.compile(
    r"connection (?:was |has been )?(?:reset|closed)|server closed the connection"
    r"|lock (?:wait )?timeout|could not obtain lock|serialization failure|could not serialize"
    r"|deadlock|conflict on|database is locked",
    re.IGNORECASE,
)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    rowcount: int | None = None


class Adapter(ABC):
    type: ClassVar[str]
    dialect: ClassVar[str]
    supports_merge: ClassVar[bool] = False
    # CREATE OR REPLACE VIEW works whatever the old view's columns were.
    replaces_views: ClassVar[bool] = False
    # Unquoted and quoted identifiers compare without case.
    case_insensitive: ClassVar[bool] = False
    # ALTER VIEW ... RENAME exists; without it a view is dropped and created again in a transaction.
    renames_views: ClassVar[bool] = True
    # Columns have real types (SQLite's are mere affinities): contracts and on_schema_change compare
    # types only where this holds, names everywhere.
    typed_columns: ClassVar[bool] = True
    # INSERT OVERWRITE replaces just the partitions the new rows fall in (Spark); without it the
    # insert_overwrite strategy deletes the rows of those partitions and inserts.
    overwrites_partitions: ClassVar[bool] = False

    def __init__(self, target: Target) -> None:
        self.target = target
        self._local = threading.local()

    # ------------------------------------------------------------------ connections

    @abstractmethod
    def open(self) -> None:
        """Connect (once per run)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    @abstractmethod
    def _run(self, sql: str, params: Sequence[Any] | None = None, *, fetch: bool) -> QueryResult:
        """Run one statement on the calling thread's connection."""

    def execute(self, statement: exp.Expression | str, *, fetch: bool = False) -> QueryResult:
        sql = statement if isinstance(statement, str) else statement.sql(dialect=self.dialect)
        return self._run(sql, fetch=fetch)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @abstractmethod
    def begin(self) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def rollback(self) -> None: ...

    @abstractmethod
    def cancel(self) -> None:
        """Interrupt every running statement (Ctrl-C)."""

    def statement_canceller(self) -> Callable[[], None] | None:
        """A function that interrupts whatever statement the calling thread's connection is
        running, callable from another thread (a model's `timeout`); None where the warehouse
        cannot cancel one connection's statement alone."""
        return None

    def is_transient(self, error: WarehouseError) -> bool:
        """Whether `error` may go away by itself (lost connection, lock, conflict): worth a retry.

        Models with `retries` are rebuilt after such an error; any other error is final.
        """
        return bool(TRANSIENT_ERRORS.search(str(error)))

    # ------------------------------------------------------------------ introspection

    @abstractmethod
    def list_relations(self) -> dict[tuple[str, str], str]:
        """(schema, identifier) -> 'table' | 'view' for every relation visible to the target."""

    @abstractmethod
    def columns(self, relation: Relation, *, temporary: bool = False) -> list[tuple[str, str]]:
        """(name, data type as the warehouse spells it) of a relation's columns, in order.

        `temporary`: the relation is a table this connection created with CREATE TEMPORARY TABLE
        under its identifier alone; its schema and database are ignored.
        """

    def catalog(self, relations: Sequence[Relation]) -> dict[Relation, list[tuple[str, str]]]:
        """`columns` of many relations at once (the docs' catalog); override with one query where
        asking relation by relation is slow."""
        return {relation: self.columns(relation) for relation in relations}

    def key(self, schema: str, identifier: str) -> tuple[str, str]:
        if self.case_insensitive:
            return schema.lower(), identifier.lower()
        return schema, identifier

    def create_schema(self, schema: str, database: str | None = None) -> None:
        self.execute(
            exp.Create(
                this=exp.Table(
                    db=exp.to_identifier(schema, quoted=True),
                    catalog=exp.to_identifier(database, quoted=True) if database else None,
                ),
                kind="SCHEMA",
                exists=True,
            )
        )

    # ------------------------------------------------------------------ seeds

    @abstractmethod
    def csv_select(self, path: Path, column_types: dict[str, str], delimiter: str) -> exp.Query:
        """A SELECT reading a seed CSV with inferred types, `column_types` overriding."""

    def describe(self) -> str:
        return self.target.type

    # ------------------------------------------------------------------ swap, lock, checks

    def swap(self, tmp: Relation, relation: Relation, existing_kind: str | None, kind: str) -> None:
        """Put `tmp` (a table or view just built) in place of `relation`, inside the caller's transaction."""
        if existing_kind:
            self.execute(drop(relation, existing_kind))
        self.execute(rename(tmp, relation.identifier, kind))

    def run_lock(self) -> RunLock:
        """The lock that keeps two runs from writing to this target at once (see locking.py).

        Taken before the first connection is opened, so it must not need one of the adapter's.
        """
        return NoLock()

    def database_exists(self) -> bool:
        """Whether the database is there already (false for a file not created yet)."""
        return True

    def function_names(self) -> frozenset[str] | None:
        """Lower-case names of every function the warehouse knows, or None when it cannot say.

        Transpiled models are checked against them, so a function the warehouse lacks is a
        compile error instead of a failure halfway through a run.
        """
        return None

    def syntax_error(self, sql: str) -> str | None:
        """Why the warehouse could not parse `sql` (a SELECT), where that can be told without running it."""
        return None

    def unbuildable(self, node: Node) -> tuple[str, str] | None:
        """(problem, hint) when this warehouse cannot build `node` as configured (a name it refuses,
        a strategy its tables cannot do): reported at compile time, before anything runs."""
        return None

    def table_properties(self, node: Node) -> list[exp.Expression]:
        """Properties of the CREATE TABLE of a model's table (Spark: file format, partitioning)."""
        return []


def drop(relation: Relation, kind: str, *, cascade: bool = False) -> exp.Drop:
    return exp.Drop(
        tables=[relation.table()], kind="VIEW" if kind == "view" else "TABLE", exists=True, cascade=cascade
    )


def rename(relation: Relation, new_identifier: str, kind: str) -> exp.Alter:
    return exp.Alter(
        this=relation.table(),
        kind="VIEW" if kind == "view" else "TABLE",
        actions=[exp.AlterRename(this=exp.Table(this=exp.to_identifier(new_identifier, quoted=True)))],
    )
