"""PostgreSQL through SQLAlchemy and psycopg 3.

DDL is transactional, so a table is swapped in (drop the old one, rename the new one) inside one
transaction. Views that read a replaced relation would go with it (PostgreSQL binds views to the
relation, not its name): their definitions are read first and they are created again after the
rename, in the same transaction. `MERGE` is used from PostgreSQL 15; before that, a merge is a
delete+insert in one transaction (`INSERT ... ON CONFLICT` would need a unique index on the key,
which sqlflow's tables do not have).
Ctrl-C cancels running statements through the driver; concurrent runs are kept apart by an
advisory lock on the target schema.
"""

from __future__ import annotations

import re
import time
import zlib
from functools import cache
from typing import Any, ClassVar

import sqlalchemy as sa

from ..errors import UserError, WarehouseError
from ..lazy import exp, sqlglot
from ..locking import Holder, RunLock, this_process
from ..nodes import Relation
from .base import Adapter, QueryResult, drop, rename
from .sqlalchemy import SQLAlchemyAdapter

DEFAULT_PORT = 5432
MERGE_SINCE = 150000  # server_version_num of PostgreSQL 15
CONNECTION_CHECK_SINCE = 140000  # client_connection_check_interval exists from PostgreSQL 14
_CONNECTION_CHECK = exp.Set(
    expressions=[
        exp.SetItem(
            this=exp.EQ(
                this=exp.column("client_connection_check_interval"), expression=exp.Literal.number(2000)
            )
        )
    ]
).sql(dialect="postgres")
LOCK_NAMESPACE = 0x53514C46  # "SQLF": the first key of every sqlflow advisory lock
TERMINATION_WAIT = 10  # seconds a terminated stale session may take to release its lock
# Connection settings passed to libpq as they are (dbt-postgres's names).
LIBPQ_SETTINGS = ("sslmode", "sslcert", "sslkey", "sslrootcert", "connect_timeout", "keepalives_idle")

_QUERIES = {
    "relations": """
        SELECT ns.nspname, cls.relname, cls.relkind
        FROM pg_class AS cls JOIN pg_namespace AS ns ON ns.oid = cls.relnamespace
        WHERE cls.relkind IN ('r', 'p', 'f', 'v')
          AND ns.nspname NOT IN ('pg_catalog', 'information_schema') AND ns.nspname NOT LIKE 'pg!_%' ESCAPE '!'
    """,
    "columns": """
        SELECT att.attname, FORMAT_TYPE(att.atttypid, att.atttypmod)
        FROM pg_attribute AS att
        WHERE att.attrelid = TO_REGCLASS(:relation) AND att.attnum > 0 AND NOT att.attisdropped
        ORDER BY att.attnum
    """,
    # Views reading the relation, directly or through other views, parents first: a view is
    # created after what it reads, so oid order will do (a walk keeping depths instead visits a
    # view once per path to it, and a root of 5,000 models took seconds).
    "dependent_views": """
        WITH RECURSIVE dependents(oid) AS (
          SELECT rewrite.ev_class
          FROM pg_depend AS dep JOIN pg_rewrite AS rewrite ON rewrite.oid = dep.objid
          WHERE dep.refclassid = CAST('pg_class' AS REGCLASS) AND dep.refobjid = TO_REGCLASS(:relation)
            AND dep.classid = CAST('pg_rewrite' AS REGCLASS) AND rewrite.ev_class <> dep.refobjid
          UNION
          SELECT rewrite.ev_class
          FROM dependents
          JOIN pg_depend AS dep
            ON dep.refclassid = CAST('pg_class' AS REGCLASS) AND dep.refobjid = dependents.oid
          JOIN pg_rewrite AS rewrite ON rewrite.oid = dep.objid
          WHERE dep.classid = CAST('pg_rewrite' AS REGCLASS) AND rewrite.ev_class <> dep.refobjid
        )
        SELECT ns.nspname, cls.relname, PG_GET_VIEWDEF(cls.oid)
        FROM dependents
        JOIN pg_class AS cls ON cls.oid = dependents.oid
        JOIN pg_namespace AS ns ON ns.oid = cls.relnamespace
        WHERE cls.relkind = 'v'
        ORDER BY cls.oid
    """,
    "has_dependent_views": """
        SELECT EXISTS (
          SELECT 1
          FROM pg_depend AS dep JOIN pg_rewrite AS rewrite ON rewrite.oid = dep.objid
          WHERE dep.refclassid = CAST('pg_class' AS REGCLASS) AND dep.refobjid = TO_REGCLASS(:relation)
            AND dep.classid = CAST('pg_rewrite' AS REGCLASS) AND rewrite.ev_class <> dep.refobjid
        )
    """,
    "view_definition": "SELECT PG_GET_VIEWDEF(TO_REGCLASS(:relation))",
    "functions": "SELECT DISTINCT LOWER(proname) FROM pg_proc",
    "server_version": "SELECT CAST(CURRENT_SETTING('server_version_num') AS INT)",
    "swap_lock": "SELECT PG_ADVISORY_XACT_LOCK(:namespace, :key)",
    "lock": "SELECT PG_TRY_ADVISORY_LOCK(:namespace, :key)",
    "unlock": "SELECT PG_ADVISORY_UNLOCK(:namespace, :key)",
    "lock_holder": """
        SELECT act.application_name, CAST(act.backend_start AS TEXT), act.pid, CAST(act.client_addr AS TEXT)
        FROM pg_locks AS lk JOIN pg_stat_activity AS act ON act.pid = lk.pid
        WHERE lk.locktype = 'advisory' AND lk.granted AND lk.classid = :namespace AND lk.objid = :key
          AND lk.objsubid = 2 AND lk.database = (SELECT oid FROM pg_database WHERE datname = CURRENT_DATABASE())
    """,
    "terminate": "SELECT PG_TERMINATE_BACKEND(:pid)",
}


@cache
def _template(name: str) -> exp.Expression:
    return sqlglot.parse_one(_QUERIES[name], read="postgres")


def query(name: str, **values: Any) -> exp.Expression:
    """One of the catalog queries above, with its `:placeholders` filled in as literals."""
    return exp.replace_placeholders(_template(name).copy(), **{k: exp.convert(v) for k, v in values.items()})


class PostgresAdapter(SQLAlchemyAdapter):
    type: ClassVar[str] = "postgres"
    dialect: ClassVar[str] = "postgres"
    supports_merge = True  # set per connection from the server's version
    replaces_views = False  # CREATE OR REPLACE VIEW fails when columns change
    case_insensitive = False
    server_version: int | None = None
    _functions: frozenset[str] | None = None

    def url(self) -> sa.URL:
        settings = self.target.settings
        database = settings.get("dbname") or settings.get("database")
        missing = [
            name
            for name, value in (
                ("host", settings.get("host")),
                ("user", settings.get("user")),
                ("dbname", database),
            )
            if not value
        ]
        if missing:
            raise UserError(
                f"target {self.target.name!r} (type: postgres) needs {', '.join(missing)}",
                path=self.target.profiles_path,
                hint="fields: host, port, user, password, dbname (or database), schema, threads",
            )
        libpq = {k: str(settings[k]) for k in LIBPQ_SETTINGS if settings.get(k) is not None}
        try:
            port = int(settings.get("port") or DEFAULT_PORT)
        except (TypeError, ValueError) as exc:
            raise UserError(
                f"target {self.target.name!r}: port must be a number", path=self.target.profiles_path
            ) from exc
        return sa.URL.create(
            "postgresql+psycopg",
            username=str(settings["user"]),
            password=str(settings["password"]) if settings.get("password") not in (None, "") else None,
            host=str(settings["host"]),
            port=port,
            database=str(database),
            query=libpq,
        )

    def open(self) -> None:
        super().open()
        version = self.execute(query("server_version"), fetch=True).rows[0][0]
        self.server_version = int(version)
        # An instance attribute: whether MERGE exists depends on the server, not the adapter.
        self.supports_merge = self.server_version >= MERGE_SINCE  # type: ignore[misc]

    def on_connect(self, dbapi_connection: Any, record: Any) -> None:
        # PostgreSQL notices a dead client only when it next writes to it, so the query of a
        # sqlflow killed with -9 would run to its end holding its locks; from version 14 the
        # server can check the connection every few seconds and cancel the query instead.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(query("server_version").sql(dialect="postgres"))
                if cursor.fetchone()[0] >= CONNECTION_CHECK_SINCE:
                    cursor.execute(_CONNECTION_CHECK)
        finally:
            dbapi_connection.autocommit = autocommit

    def engine_options(self) -> dict[str, Any]:
        options = super().engine_options()
        role = self.target.settings.get("role")
        search_path = self.target.settings.get("search_path")
        options_text = " ".join(
            f"-c {name}={value}" for name, value in (("role", role), ("search_path", search_path)) if value
        )
        # Named in pg_stat_activity, so sqlflow's sessions can be told apart from others.
        options["connect_args"] = {"application_name": "sqlflow"}
        if options_text:
            options["connect_args"]["options"] = options_text
        return options

    def execute(self, statement: exp.Expression | str, *, fetch: bool = False) -> QueryResult:
        try:
            return super().execute(statement, fetch=fetch)
        except WarehouseError as exc:
            # Two sessions running CREATE ... IF NOT EXISTS at once (sqlflow runs it outside
            # transactions): one gets a unique violation on the catalog instead of a no-op. The
            # object exists either way.
            if isinstance(statement, exp.Create) and statement.args.get("exists") and _is_duplicate(exc):
                return super().execute(exp.select(exp.Literal.number(1)))
            raise

    # ------------------------------------------------------------------ introspection

    def list_relations(self) -> dict[tuple[str, str], str]:
        rows = self.execute(query("relations"), fetch=True).rows
        return {self.key(schema, name): ("view" if kind == "v" else "table") for schema, name, kind in rows}

    def columns(self, relation: Relation, *, temporary: bool = False) -> list[tuple[str, str]]:
        name = _regclass_name(relation, temporary=temporary)
        return [(n, t) for n, t in self.execute(query("columns", relation=name), fetch=True).rows]

    def function_names(self) -> frozenset[str] | None:
        if self._functions is None:
            self._functions = frozenset(row[0] for row in self.execute(query("functions"), fetch=True).rows)
        return self._functions

    # ------------------------------------------------------------------ swap

    def swap(self, tmp: Relation, relation: Relation, existing_kind: str | None, kind: str) -> None:
        """Replace the old relation by the new one; views reading the old one keep working.

        A view whose columns stay the same is replaced in place (CREATE OR REPLACE VIEW), and so
        is a table that views read: it is emptied and refilled from the new one. Neither touches
        the views reading it, which a model near the root of a large project can have thousands
        of (dropping and re-creating them in one transaction exhausts PostgreSQL's lock table).
        Otherwise the old relation is dropped and the new one renamed, and the views that read
        the old one are created again from their definitions.
        """
        if kind == "view" and existing_kind == "view" and self._replace_view(tmp, relation):
            return
        views = []
        if existing_kind:
            if self._has_dependent_views(relation):
                if kind == "table" and existing_kind == "table" and self._refill_table(tmp, relation):
                    return
                # One such swap at a time per schema: two swaps dropping and re-creating the same
                # view (one reading both relations) would otherwise deadlock. Held until commit.
                self.execute(
                    query("swap_lock", namespace=LOCK_NAMESPACE, key=_schema_key(relation.schema) ^ 1)
                )
                views = self._dependent_views(relation)
            self.execute(drop(relation, existing_kind, cascade=bool(views)))
        self.execute(rename(tmp, relation.identifier, kind))
        for schema, name, definition in views:
            # A view that no longer fits (a column it reads is gone) stays dropped; its model rebuilds it.
            self._attempt(
                exp.Create(
                    this=Relation(None, schema, name).table(), kind="VIEW", expression=_body(definition)
                )
            )

    def _dependent_views(self, relation: Relation) -> list[tuple[Any, ...]]:
        return self.execute(query("dependent_views", relation=relation.sql(self.dialect)), fetch=True).rows

    def _has_dependent_views(self, relation: Relation) -> bool:
        result = self.execute(query("has_dependent_views", relation=relation.sql(self.dialect)), fetch=True)
        return bool(result.rows[0][0])

    def _refill_table(self, tmp: Relation, relation: Relation) -> bool:
        """Replace a table's rows by `tmp`'s (views read it) when its columns stay the same."""
        if self.columns(tmp) != self.columns(relation):
            return False
        self.execute(exp.TruncateTable(expressions=[relation.table()]))
        self.execute(exp.insert(exp.select("*").from_(tmp.table()), relation.table()))
        self.execute(drop(tmp, "table"))
        return True

    def _replace_view(self, tmp: Relation, relation: Relation) -> bool:
        definition = self.execute(query("view_definition", relation=tmp.sql(self.dialect)), fetch=True).rows[
            0
        ][0]
        replace = exp.Create(this=relation.table(), kind="VIEW", expression=_body(definition), replace=True)
        if not self._attempt(replace):  # columns changed: PostgreSQL refuses
            return False
        self.execute(drop(tmp, "view"))
        return True

    def _attempt(self, statement: exp.Expression) -> bool:
        """Run one statement inside the transaction; if it fails, undo it alone (a savepoint)."""
        savepoint = exp.to_identifier("sqlflow_attempt")
        self.execute(exp.Command(this="SAVEPOINT", expression=exp.Var(this=savepoint.sql("postgres"))))
        try:
            self.execute(statement)
        except WarehouseError:
            self.execute(exp.Rollback(savepoint=savepoint))
            return False
        self.execute(
            exp.Command(this="RELEASE", expression=exp.Var(this=f"SAVEPOINT {savepoint.sql('postgres')}"))
        )
        return True

    def create_schema(self, schema: str, database: str | None = None) -> None:
        # PostgreSQL names one database per connection: a schema is created in it.
        Adapter.create_schema(self, schema, None)

    # ------------------------------------------------------------------ lock

    def run_lock(self) -> RunLock:
        return AdvisoryLock(self)

    def describe(self) -> str:
        url = self.url()
        version = self.server_version
        shown = f" {version // 10000}.{version % 10000}" if version else ""
        return f"postgres{shown} at {url.host}:{url.port}/{url.database}, schema {self.target.schema}"


class AdvisoryLock(RunLock):
    """`pg_try_advisory_lock(SQLF, hash(schema))` held by a connection of its own for the run.

    The session's application_name records the holder's pid and host; PostgreSQL releases the lock
    when the session ends. A lock held by a session whose sqlflow process is gone (same host, no
    such pid) is stale: that session is terminated and the lock taken over.
    """

    def __init__(self, adapter: PostgresAdapter) -> None:
        self.adapter = adapter
        self.schema = adapter.target.schema
        self.key = _schema_key(self.schema)
        url = adapter.url()
        self.subject = f"advisory lock on schema {self.schema!r} of {url.database} at {url.host}:{url.port}"
        self._connection: sa.Connection | None = None
        self._engine: sa.Engine | None = None

    def _run(self, statement: exp.Expression) -> list[tuple[Any, ...]]:
        if self._connection is None:
            me = this_process()
            # A connection outside the adapter's pool: closing it really ends the session (and
            # the lock), and its application_name tells other runs who holds the lock.
            self._engine = sa.create_engine(
                self.adapter.url(),
                poolclass=sa.pool.NullPool,
                connect_args={"application_name": f"sqlflow pid={me.pid} host={me.host}"[:63]},
            )
            self._connection = self.adapter.connect(self._engine)
        try:
            rows = self._connection.exec_driver_sql(statement.sql("postgres")).fetchall()
        except sa.exc.DBAPIError as exc:
            raise UserError(
                self.adapter.mask(f"cannot take the run lock ({self.subject}): {exc.orig}"),
                path=self.adapter.target.profiles_path,
            ) from exc
        return [tuple(r) for r in rows]

    def try_acquire(self) -> bool:
        if self._run(query("lock", namespace=LOCK_NAMESPACE, key=self.key))[0][0]:
            return True
        found = self._holder()
        if found is None or not found[0].is_dead():
            return False
        self._run(query("terminate", pid=found[1]))
        # The session releases the lock when its backend has exited, a moment after the signal.
        deadline = time.monotonic() + TERMINATION_WAIT
        while time.monotonic() < deadline:
            if self._run(query("lock", namespace=LOCK_NAMESPACE, key=self.key))[0][0]:
                self.stale = found[0]
                return True
            time.sleep(0.05)
        return False

    def _holder(self) -> tuple[Holder, int] | None:
        rows = self._run(query("lock_holder", namespace=LOCK_NAMESPACE, key=self.key))
        if not rows:
            return None
        application, started, backend_pid, address = rows[0]
        match = re.match(r"sqlflow pid=(\d+) host=(.*)$", application or "")
        if match:
            return Holder(int(match.group(1)), match.group(2), started or ""), backend_pid
        return Holder(
            None, f"{address or 'local socket'} (backend pid {backend_pid})", started or ""
        ), backend_pid

    def holder(self) -> Holder | None:
        found = self._holder()
        return found[0] if found else None

    def release(self) -> None:
        if self._connection is None:
            return
        try:
            self._run(query("unlock", namespace=LOCK_NAMESPACE, key=self.key))
        except UserError:
            pass  # closing the session below releases it too
        finally:
            self._connection.close()
            self._connection = None
            self._engine.dispose()


def _body(definition: str) -> exp.Expression:
    """A view's definition as PostgreSQL prints it, for CREATE VIEW ... AS."""
    return exp.Var(this=definition.strip().rstrip(";"))


def _schema_key(schema: str) -> int:
    return zlib.crc32(schema.encode()) & 0x7FFFFFFE


def _regclass_name(relation: Relation, *, temporary: bool) -> str:
    """The relation's name as `to_regclass` reads it (quoted; temporary tables in pg_temp)."""
    if temporary:
        return exp.Table(
            this=exp.to_identifier(relation.identifier, quoted=True), db=exp.to_identifier("pg_temp")
        ).sql("postgres")
    return relation.sql("postgres")


def _is_duplicate(error: WarehouseError) -> bool:
    text = str(error)
    return "duplicate key value violates unique constraint" in text or "already exists" in text
