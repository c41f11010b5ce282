"""SQLite files through SQLAlchemy's pysqlite driver.

SQLite has no schemas: the target's `path` is the `main` schema and every other schema is a file
of its own next to it (`shop.sqlite` -> `shop.<schema>.sqlite`), attached to each connection.
Transactions start with `BEGIN IMMEDIATE`, so writers queue on SQLite's lock instead of failing
halfway; DDL is transactional, so the swap (drop, rename) is atomic. There is no MERGE (a merge is
delete+insert), no renaming of views (a view is dropped and created in one transaction), and
column types are affinities, so contracts and on_schema_change compare column names only.
`md5()` is added to each connection for snapshots. A file lock next to the database keeps two
runs apart.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy as sa

from ..errors import UserError
from ..lazy import exp
from ..locking import FileLock, RunLock
from ..nodes import Relation
from .base import QueryResult
from .sqlalchemy import SQLAlchemyAdapter

MAIN = "main"
DEFAULT_TIMEOUT = 300  # seconds a writer waits for another one's transaction (busy timeout)


class SQLiteAdapter(SQLAlchemyAdapter):
    type: ClassVar[str] = "sqlite"
    dialect: ClassVar[str] = "sqlite"
    supports_merge = False
    replaces_views = False
    renames_views = False
    case_insensitive = True
    typed_columns = False

    def __init__(self, target) -> None:
        super().__init__(target)
        # schema -> file; every connection attaches all of them.
        self._schemas: dict[str, Path] = self._existing_schema_files()

    @property
    def path(self) -> Path:
        raw = self.target.settings.get("path")
        if not raw or str(raw) == ":memory:":
            raise UserError(
                f"target {self.target.name!r} (type: sqlite) needs a `path` to a database file",
                path=self.target.profiles_path,
                hint="e.g. path: shop.sqlite (relative to the project folder)",
            )
        return Path(str(raw))

    def schema_path(self, schema: str) -> Path:
        return self.path.with_name(f"{self.path.stem}.{schema}{self.path.suffix or '.sqlite'}")

    def _existing_schema_files(self) -> dict[str, Path]:
        pattern = f"{self.path.stem}.*{self.path.suffix or '.sqlite'}"
        found = {}
        for candidate in sorted(self.path.parent.glob(pattern)):
            schema = candidate.name[len(self.path.stem) + 1 : len(candidate.name) - len(candidate.suffix)]
            if schema and candidate != self.path:
                found[schema] = candidate
        return found

    def url(self) -> sa.URL:
        return sa.URL.create("sqlite", database=str(self.path))

    def engine_options(self) -> dict[str, Any]:
        timeout = float(self.target.settings.get("timeout") or DEFAULT_TIMEOUT)
        options = super().engine_options()
        options.pop("pool_pre_ping", None)
        options["connect_args"] = {"timeout": timeout, "check_same_thread": False}
        return options

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        super().open()

    def on_connect(self, dbapi_connection: sqlite3.Connection, record: Any) -> None:
        dbapi_connection.create_function("md5", 1, _md5, deterministic=True)
        # A rename must not rewrite (or refuse because of) views that read the old name: they
        # read whatever relation bears the name, as on the other warehouses.
        pragma = exp.Pragma(this=exp.EQ(this=exp.var("legacy_alter_table"), expression=exp.var("ON")))
        dbapi_connection.execute(pragma.sql(dialect="sqlite"))

    def _connection(self) -> sa.Connection:
        connection = super()._connection()
        if not self.in_transaction():
            # ATTACH is refused inside a transaction; schemas created meanwhile are attached here.
            attached = connection.connection.info.setdefault("sqlflow_attached", set())
            for schema, path in list(self._schemas.items()):
                if schema not in attached:
                    statement = exp.Attach(
                        this=exp.Alias(
                            this=exp.Literal.string(str(path)), alias=exp.to_identifier(schema, quoted=True)
                        )
                    )
                    connection.exec_driver_sql(statement.sql(dialect="sqlite"))
                    attached.add(schema)
        return connection

    def execute(self, statement: exp.Expression | str, *, fetch: bool = False) -> QueryResult:
        result = super().execute(statement, fetch=fetch)
        if isinstance(statement, exp.Create) and statement.kind == "TABLE" and statement.expression:
            # SQLite reports no row count for CREATE TABLE ... AS; the outcome shows one.
            count = exp.select(exp.func("count", exp.Star())).from_(statement.this.copy())
            result.rowcount = int(super().execute(count, fetch=True).rows[0][0])
        return result

    def begin_statement(self) -> exp.Expression:
        return exp.Transaction(this="IMMEDIATE")

    def create_schema(self, schema: str, database: str | None = None) -> None:
        if schema.lower() in (MAIN, "temp") or schema in self._schemas:
            return
        self._schemas[schema] = self.schema_path(schema)
        self._connection()

    def database_exists(self) -> bool:
        return self.path.exists()

    # ------------------------------------------------------------------ introspection

    def _attached(self) -> list[str]:
        query = exp.select("name").from_(exp.Table(this=exp.Anonymous(this="pragma_database_list")))
        return [row[0] for row in self.execute(query, fetch=True).rows if row[0] != "temp"]

    def list_relations(self) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for schema in self._attached():
            master = exp.Table(
                this=exp.to_identifier("sqlite_master", quoted=True),
                db=exp.to_identifier(schema, quoted=True),
            )
            query = (
                exp.select("name", "type")
                .from_(master)
                .where(
                    exp.and_(
                        exp.column("type").isin(exp.Literal.string("table"), exp.Literal.string("view")),
                        exp.not_(exp.column("name").like(exp.Literal.string("sqlite_%"))),
                    )
                )
            )
            for name, kind in self.execute(query, fetch=True).rows:
                found[self.key(schema, name)] = "view" if kind == "view" else "table"
        return found

    def columns(self, relation: Relation, *, temporary: bool = False) -> list[tuple[str, str]]:
        schema = "temp" if temporary else relation.schema
        info = exp.Table(
            this=exp.Anonymous(
                this="pragma_table_info",
                expressions=[exp.Literal.string(relation.identifier), exp.Literal.string(schema)],
            )
        )
        query = exp.select("name", "type").from_(info).order_by("cid")
        return [(name, kind) for name, kind in self.execute(query, fetch=True).rows]

    def function_names(self) -> frozenset[str] | None:
        # The same library in memory: compile can check models before the file exists.
        connection = sqlite3.connect(":memory:")
        try:
            self.on_connect(connection, None)
            query = exp.select("name").from_(exp.Table(this=exp.Anonymous(this="pragma_function_list")))
            rows = connection.execute(query.sql(dialect="sqlite")).fetchall()
        finally:
            connection.close()
        return frozenset(str(row[0]).lower() for row in rows)

    def syntax_error(self, sql: str) -> str | None:
        # SQLite parses a statement before it resolves names: in an empty database, a statement
        # failing for another reason than a missing table or column does not parse, or calls a
        # function SQLite lacks (functions belong to the connection, and this one has sqlflow's).
        connection = sqlite3.connect(":memory:")
        try:
            connection.execute("EXPLAIN " + sql)
        except sqlite3.Error as exc:
            message = str(exc)
            if not message.startswith(("no such table", "no such column", "unknown database")):
                return message
        finally:
            connection.close()
        return None

    # ------------------------------------------------------------------ lock

    def run_lock(self) -> RunLock:
        return FileLock(self.path.with_name(self.path.name + ".sqlflow-lock"))

    def describe(self) -> str:
        return f"sqlite {sqlite3.sqlite_version} at {self.path}"


def _md5(value: Any) -> str | None:
    return None if value is None else hashlib.md5(str(value).encode()).hexdigest()
