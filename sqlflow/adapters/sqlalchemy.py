"""Warehouses reached through SQLAlchemy: the shared adapter, and `type: sqlalchemy` with a `url`.

Each thread gets its own connection in autocommit mode; transactions are explicit (`BEGIN` ...
`COMMIT`, as sqlglot writes them in the warehouse's dialect), so DDL is transactional wherever
the warehouse allows it. Statements are sent as text without parameters, so a `%` in a model
reaches the warehouse as written.

`type: sqlalchemy` is best-effort: views, tables and tests work on any database SQLAlchemy and
sqlglot both speak; incremental models, snapshots and seeds use the same generic statements and
may or may not (see docs/warehouses.md). PostgreSQL and SQLite have adapters of their own built
on this one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, unquote

import sqlalchemy as sa

from ..errors import UserError, WarehouseError
from ..lazy import exp, sqlglot
from ..nodes import Relation
from ..project import SECRET_FIELD_NAMES, Target
from ..seed_csv import read_seed, values_select
from .base import Adapter, QueryResult, drop, rename

# Dialects whose DROP takes CASCADE (views reading a swapped table go with it, as in dbt).
CASCADING_DROPS = ("postgres", "redshift", "snowflake", "duckdb")
# SQLAlchemy's dialect names -> sqlglot's, where they differ.
SQLGLOT_DIALECTS = {
    "postgresql": "postgres",
    "mssql": "tsql",
    "mariadb": "mysql",
    "awsathena": "athena",
    "databricks": "databricks",
}


class SQLAlchemyAdapter(Adapter):
    type: ClassVar[str] = "sqlalchemy"
    dialect: ClassVar[str] = "postgres"  # replaced per instance from the URL's dialect
    cancelled_markers: ClassVar[tuple[str, ...]] = ("canceling statement due to user request", "interrupted")

    def __init__(self, target: Target) -> None:
        super().__init__(target)
        self._engine: sa.Engine | None = None
        self._connections: list[sa.Connection] = []
        self._lock = threading.Lock()
        url = self.url()
        if type(self) is SQLAlchemyAdapter:
            if url.get_backend_name() == "sqlite":
                raise UserError(
                    f"target {target.name!r}: use `type: sqlite` with a `path` for SQLite files",
                    path=target.profiles_path,
                    hint="SQLite has no CREATE SCHEMA; its adapter keeps each schema in a file of its own",
                )
            name = SQLGLOT_DIALECTS.get(url.get_backend_name(), url.get_backend_name())
            try:
                sqlglot.Dialect.get_or_raise(name)
            except ValueError as exc:
                raise UserError(
                    f"sqlflow has no SQL dialect for SQLAlchemy's {url.get_backend_name()!r}",
                    path=target.profiles_path,
                    hint="type: sqlalchemy works for databases sqlglot knows (mysql, tsql, oracle, trino, ...)",
                ) from exc
            self.dialect = name  # type: ignore[misc]

    # ------------------------------------------------------------------ settings

    def url(self) -> sa.URL:
        """The connection URL, from the profile's `url`."""
        raw = self.target.settings.get("url")
        if not raw:
            raise UserError(
                f"target {self.target.name!r} (type: sqlalchemy) has no `url`",
                path=self.target.profiles_path,
                hint="e.g. url: \"mysql+pymysql://user:{{ env_var('DB_PASSWORD') }}@host/db\"",
            )
        try:
            return sa.make_url(str(raw))
        except (sa.exc.ArgumentError, ValueError) as exc:
            raise UserError(
                self.mask(f"target {self.target.name!r}: `url` is not a SQLAlchemy URL: {exc}"),
                path=self.target.profiles_path,
            ) from exc

    def engine_options(self) -> dict[str, Any]:
        threads = self.target.threads
        return {"pool_size": threads + 1, "max_overflow": threads + 1, "pool_pre_ping": True}

    def secret_values(self) -> list[str]:
        """What must never be shown: the password, also as it is written inside a URL."""
        values = [str(v) for k, v in self.target.settings.items() if k.lower() in SECRET_FIELD_NAMES and v]
        raw = self.target.settings.get("url")
        if raw:
            with contextlib.suppress(Exception):
                password = sa.make_url(str(raw)).password
                if password:
                    values.append(str(password))
        values += [quote(v, safe="") for v in values] + [unquote(v) for v in values]
        # As in project.Secrets: masking one or two characters would garble every message.
        return sorted({v for v in values if len(v) >= 3}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for value in self.secret_values():
            text = text.replace(value, "*****")
        return text

    # ------------------------------------------------------------------ connections

    @property
    def engine(self) -> sa.Engine:
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self.url(), **self.engine_options())
            except (sa.exc.ArgumentError, ImportError) as exc:
                raise UserError(
                    self.mask(f"cannot use target {self.target.name!r}: {exc}"),
                    path=self.target.profiles_path,
                    hint="is the database driver installed? (e.g. pip install 'psycopg[binary]')",
                ) from exc
            sa.event.listen(self._engine, "connect", self.on_connect)
        return self._engine

    def on_connect(self, dbapi_connection: Any, record: Any) -> None:
        """Called for each new DBAPI connection (session settings, functions)."""

    def open(self) -> None:
        self._connection()  # connect now, so a bad host or password stops the command early

    def connect(self, engine: sa.Engine | None = None) -> sa.Connection:
        """A new autocommit connection (of `engine`, default the adapter's); errors become a
        `UserError` without the password."""
        try:
            connection = (engine or self.engine).connect()
        except sa.exc.DBAPIError as exc:
            raise UserError(
                self.mask(f"cannot connect to target {self.target.name!r}: {_message(exc)}"),
                path=self.target.profiles_path,
                hint="check host, port, user, password and database in profiles.yml (`sqlflow debug`)",
            ) from exc
        return connection.execution_options(isolation_level="AUTOCOMMIT", no_parameters=True)

    def _connection(self) -> sa.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            connection = self.connect()
            with self._lock:
                self._connections.append(connection)
            self._local.connection = connection
            self._local.in_transaction = False
        return connection

    def close(self) -> None:
        with self._lock:
            for connection in self._connections:
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    connection.close()
            self._connections.clear()
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
        self._local = threading.local()

    def _run(self, sql: str, params: Sequence[Any] | None = None, *, fetch: bool) -> QueryResult:
        connection = self._connection()
        try:
            result = connection.exec_driver_sql(sql, tuple(params) if params else ())
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(row) for row in result.fetchall()] if result.returns_rows else []
            rowcount = result.rowcount if not result.returns_rows and result.rowcount >= 0 else None
        except sa.exc.DBAPIError as exc:
            if exc.connection_invalidated:
                self._local.connection = None  # the next statement reconnects
            message = _message(exc)
            if any(marker in message for marker in self.cancelled_markers):
                raise WarehouseError("cancelled") from exc
            raise WarehouseError(self.mask(message)) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise WarehouseError(self.mask(str(exc))) from exc
        return QueryResult(columns, rows if fetch else [], rowcount)

    def begin(self) -> None:
        self._run(self.begin_statement().sql(dialect=self.dialect), fetch=False)
        self._local.in_transaction = True

    def begin_statement(self) -> exp.Expression:
        return exp.Transaction()

    def commit(self) -> None:
        try:
            self._run(exp.Commit().sql(dialect=self.dialect), fetch=False)
        finally:
            self._local.in_transaction = False

    def rollback(self) -> None:
        self._local.in_transaction = False
        connection = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.invalidated:
            return
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            connection.exec_driver_sql(exp.Rollback().sql(dialect=self.dialect))

    def in_transaction(self) -> bool:
        return bool(getattr(self._local, "in_transaction", False))

    def cancel(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(Exception):
                self.cancel_connection(connection.connection.dbapi_connection)

    def statement_canceller(self) -> Callable[[], None]:
        dbapi_connection = self._connection().connection.dbapi_connection

        def cancel() -> None:
            with contextlib.suppress(Exception):
                self.cancel_connection(dbapi_connection)

        return cancel

    def cancel_connection(self, dbapi_connection: Any) -> None:
        """Interrupt the statement running on one DBAPI connection (driver-specific)."""
        for method in ("cancel_safe", "cancel", "interrupt"):
            if hasattr(dbapi_connection, method):
                getattr(dbapi_connection, method)()
                return

    # ------------------------------------------------------------------ DDL

    def swap(self, tmp: Relation, relation: Relation, existing_kind: str | None, kind: str) -> None:
        if existing_kind:
            self.execute(drop(relation, existing_kind, cascade=self.dialect in CASCADING_DROPS))
        self.execute(rename(tmp, relation.identifier, kind))

    def create_schema(self, schema: str, database: str | None = None) -> None:
        try:
            exists = schema in sa.inspect(self._connection()).get_schema_names()
        except sa.exc.DBAPIError as exc:
            raise WarehouseError(self.mask(_message(exc))) from exc
        if not exists:
            super().create_schema(schema, database)

    # ------------------------------------------------------------------ introspection

    def list_relations(self) -> dict[tuple[str, str], str]:
        inspector = sa.inspect(self._connection())
        found: dict[tuple[str, str], str] = {}
        try:
            for schema in inspector.get_schema_names():
                for name in inspector.get_table_names(schema=schema):
                    found[self.key(schema, name)] = "table"
                for name in inspector.get_view_names(schema=schema):
                    found[self.key(schema, name)] = "view"
        except sa.exc.DBAPIError as exc:
            raise WarehouseError(self.mask(_message(exc))) from exc
        return found

    def columns(self, relation: Relation, *, temporary: bool = False) -> list[tuple[str, str]]:
        inspector = sa.inspect(self._connection())
        dialect = self.engine.dialect
        try:
            found = inspector.get_columns(relation.identifier, schema=None if temporary else relation.schema)
        except sa.exc.NoSuchTableError:
            return []
        except sa.exc.DBAPIError as exc:
            raise WarehouseError(self.mask(_message(exc))) from exc
        return [(str(c["name"]), c["type"].compile(dialect=dialect)) for c in found]

    # ------------------------------------------------------------------ seeds

    def csv_select(self, path: Path, column_types: dict[str, str], delimiter: str) -> exp.Query:
        # column_types name the warehouse's own types, as in dbt
        return values_select(read_seed(path, delimiter), column_types, self.dialect)

    def describe(self) -> str:
        url = self.url()
        return f"{url.get_backend_name()} at {url.render_as_string(hide_password=True)}"


def _message(exc: sa.exc.DBAPIError) -> str:
    """The driver's own message, without SQLAlchemy's statement echo and help link."""
    original = getattr(exc, "orig", None)
    text = str(original) if original is not None else str(exc)
    return text.strip() or type(original or exc).__name__
