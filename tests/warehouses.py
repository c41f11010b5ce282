"""Helpers for tests on PostgreSQL and SQLite: targets, unique PostgreSQL schemas, reading rows back.

PostgreSQL tests read `SQLFLOW_TEST_POSTGRES_URL` (default: the local server, user postgres,
database test) and skip when it is unreachable, unless `SQLFLOW_REQUIRE_POSTGRES=1` (CI), where
they fail instead. Each test gets its own schema, dropped at the end with every schema whose name
starts with it (custom schemas) and its rows of the shared state table.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("SQLFLOW_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


@functools.cache
def _postgres_problem() -> str | None:
    try:
        engine = sa.create_engine(postgres_url(), connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.exec_driver_sql("select 1")
        engine.dispose()
    except Exception as exc:  # any reason it cannot be used
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return None


def require_postgres() -> None:
    problem = _postgres_problem()
    if problem is None:
        return
    message = f"PostgreSQL at SQLFLOW_TEST_POSTGRES_URL is not reachable ({problem})"
    if os.environ.get("SQLFLOW_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + "; SQLFLOW_REQUIRE_POSTGRES=1 makes that an error")
    pytest.skip(message)


@dataclass
class Postgres:
    """A schema of one test's own, with a connection to check what sqlflow built."""

    schema: str
    url: sa.URL
    engine: sa.Engine

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.engine.connect() as connection:
            result = (
                connection.exec_driver_sql(sql, tuple(params)) if params else connection.exec_driver_sql(sql)
            )
            rows = [tuple(r) for r in result.fetchall()] if result.returns_rows else []
            connection.commit()
            return rows

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.query(sql, *params)[0][0]

    def relations(self) -> dict[str, str]:
        rows = self.query(
            "select table_name, table_type from information_schema.tables where table_schema = %s",
            self.schema,
        )
        return {name: kind for name, kind in rows}

    def output(self, name: str = "pg", **extra: Any) -> str:
        """A profiles.yml output (indented for `outputs:`) pointing at this schema."""
        fields = {
            "type": "postgres",
            "host": self.url.host or "127.0.0.1",
            "port": self.url.port or 5432,
            "user": self.url.username or "postgres",
            "dbname": self.url.database,
            "schema": self.schema,
            "threads": 4,
            **({"password": self.url.password} if self.url.password else {}),
            **extra,
        }
        lines = [f"    {name}:"] + [f"      {key}: {_yaml(value)}" for key, value in fields.items()]
        return "\n".join(lines) + "\n"

    def profiles(self, **extra: Any) -> str:
        return "proj:\n  target: pg\n  outputs:\n" + self.output(**extra)


def _yaml(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    require_postgres()
    url = sa.make_url(postgres_url())
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"sqlflow_test_{uuid.uuid4().hex[:12]}"
    try:
        yield Postgres(schema, url, engine)
    finally:
        drop_postgres_schemas(engine, schema)
        engine.dispose()


def drop_postgres_schemas(engine: sa.Engine, prefix: str) -> None:
    with engine.connect() as connection:
        for (name,) in connection.exec_driver_sql(
            "select nspname from pg_namespace where nspname like %s", (prefix + "%",)
        ).fetchall():
            _drop_relations_one_by_one(connection, name)
            connection.exec_driver_sql(f'drop schema if exists "{name}" cascade')
        for table in ("nodes", "intervals"):
            exists = connection.exec_driver_sql(
                f"select to_regclass('sqlflow_state.{table}') is not null"
            ).scalar()
            if exists:
                connection.exec_driver_sql(
                    f"delete from sqlflow_state.{table} where relation_name like %s", ('"' + prefix + "%",)
                )


def _drop_relations_one_by_one(connection: sa.Connection, schema: str) -> None:
    """Dropping a schema of thousands of relations at once exhausts PostgreSQL's lock table
    (max_locks_per_transaction): drop them first, newest first (a view is newer than what it reads)."""
    rows = connection.exec_driver_sql(
        "select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "where n.nspname = %s and c.relkind in ('r', 'v') order by c.oid desc",
        (schema,),
    ).fetchall()
    if len(rows) < 1000:
        return
    for name, kind in rows:
        kind_word = "view" if kind == "v" else "table"
        connection.exec_driver_sql(f'drop {kind_word} if exists "{schema}"."{name}" cascade')


def sqlite_profiles(path: str = "warehouse.sqlite", **extra: Any) -> str:
    lines = [
        "proj:",
        "  target: lite",
        "  outputs:",
        "    lite:",
        "      type: sqlite",
        f"      path: {path}",
    ]
    lines += [f"      {key}: {_yaml(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- contents


def canonical(value: Any) -> str:
    """One spelling per value across warehouses: numbers rounded to 6 places, dates ISO, booleans 0/1.

    SQLite keeps dates as text, decimals as floats and booleans as integers; these spellings make
    the same data compare equal however a warehouse stores it.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | float | Decimal):
        number = Decimal(str(value)).quantize(Decimal("0.000001"))
        text = format(number.normalize(), "f")
        return "0" if text in ("-0", "") else text
    if hasattr(value, "isoformat"):
        return (
            value.isoformat(sep=" ")
            if hasattr(value, "hour") and hasattr(value, "day")
            else value.isoformat()
        )
    return str(value)


def contents(rows: list[tuple[Any, ...]], columns: list[str]) -> tuple[int, str]:
    """(row count, order-insensitive checksum) of a relation's rows, columns taken by name."""
    import hashlib

    order = sorted(range(len(columns)), key=lambda i: columns[i].lower())
    digests = sorted(
        hashlib.sha256("\x1f".join(canonical(row[i]) for i in order).encode()).hexdigest() for row in rows
    )
    return len(rows), hashlib.sha256("\n".join(digests).encode()).hexdigest()


def read_relation(session: Any, schema: str, name: str, exclude: tuple[str, ...] = ()) -> tuple[int, str]:
    """Row count and checksum of schema.name, read through the session's own adapter."""
    from sqlglot import exp

    from sqlflow.nodes import Relation

    adapter = session.adapter
    result = adapter.execute(exp.select("*").from_(Relation(None, schema, name).table()), fetch=True)
    keep = [i for i, column in enumerate(result.columns) if column.lower() not in exclude]
    rows = [tuple(row[i] for i in keep) for row in result.rows]
    return contents(rows, [result.columns[i] for i in keep])


def copy_project(source: Path, destination: Path) -> Path:
    import shutil

    destination.mkdir(parents=True, exist_ok=True)
    for name in ("sqlflow.yml", "models", "seeds", "snapshots", "data_tests", "macros"):
        path = source / name
        if path.is_dir():
            shutil.copytree(path, destination / name)
        elif path.exists():
            shutil.copy(path, destination / name)
    return destination
