"""Spark for tests: one local SparkSession per test session, a schema of each test's own.

Starting the JVM takes seconds, so the session is started once (`spark` fixture, session scope)
and every adapter of the test process reuses it (SparkSession.getOrCreate). Its warehouse and
Hive metastore live in a temporary folder. Tests skip when pyspark or Java is missing, unless
`SQLFLOW_REQUIRE_SPARK=1` (CI), where they fail instead.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sqlflow.adapters.spark import SparkAdapter
from sqlflow.project import Target


@functools.cache
def spark_problem() -> str | None:
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'sqlflow[spark]')"
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java is not installed"
    return None


def spark_available() -> bool:
    """Whether Spark tests can run; fails the test when they must (SQLFLOW_REQUIRE_SPARK=1) and cannot."""
    problem = spark_problem()
    if problem is not None and os.environ.get("SQLFLOW_REQUIRE_SPARK") == "1":
        pytest.fail(f"Spark cannot run: {problem}; SQLFLOW_REQUIRE_SPARK=1 makes that an error")
    return problem is None


def require_spark() -> None:
    if not spark_available():
        pytest.skip(f"Spark cannot run: {spark_problem()}")


@dataclass
class Spark:
    """The process's SparkSession and a schema for one test."""

    session: Any
    schema: str

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.session.sql(sql).collect()]

    def relations(self) -> dict[str, str]:
        """name -> 'table' | 'view' in the test's schema (none when it was never created)."""
        if self.schema not in {row[0] for row in self.query("show schemas")}:
            return {}
        views = {row[1] for row in self.query(f"show views in `{self.schema}`")}
        return {
            row[1]: "view" if row[1] in views else "table"
            for row in self.query(f"show tables in `{self.schema}`")
            if not row[2]
        }

    def output(self, name: str = "spark", **extra: Any) -> str:
        """A profiles.yml output (indented for `outputs:`) with this test's schema."""
        fields = {"type": "spark", "master": "local[*]", "schema": self.schema, "threads": 4, **extra}
        lines = [f"    {name}:"] + [f"      {key}: {_yaml(value)}" for key, value in fields.items()]
        return "\n".join(lines) + "\n"

    def profiles(self, **extra: Any) -> str:
        return "proj:\n  target: spark\n  outputs:\n" + self.output(**extra)

    def drop(self) -> None:
        # The test's rows of the shared state tables stay: their names are unique, and deleting
        # them would rewrite the table (a Spark job) after every test.
        for (name,) in self.query("show schemas"):
            if name.startswith(self.schema):
                self.session.sql(f"drop schema if exists `{name}` cascade").collect()


def _yaml(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


@pytest.fixture(scope="session")
def spark_session(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The local SparkSession, started once with the adapter's own settings (Hive metastore included)."""
    require_spark()
    warehouse = tmp_path_factory.mktemp("spark") / "warehouse"
    target = Target(
        profile_name="tests",
        name="spark",
        type="spark",
        schema="default",
        database=None,
        threads=4,
        settings={"type": "spark", "master": "local[2]", "warehouse_dir": str(warehouse)},
        profiles_path=Path("profiles.yml"),
    )
    return SparkAdapter(target).session()


@pytest.fixture
def spark(spark_session: Any) -> Iterator[Spark]:
    found = Spark(spark_session, f"sqlflow_test_{uuid.uuid4().hex[:12]}")
    try:
        yield found
    finally:
        found.drop()
