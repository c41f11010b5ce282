"""Apache Spark through pyspark: a local session, a standalone cluster, or Spark Connect.

`master: local[*]` runs Spark inside this process (the tests do); `spark://host:7077` drives a
standalone cluster from here; `sc://host:15002` (or `method: connect`) talks to a Spark Connect
server. One SparkSession serves the whole process and every thread, and is kept for the next
command (a JVM takes seconds to start).

Spark has no transactions. What each build guarantees instead (docs/warehouses.md):
- a table is built under a temporary name and only then replaces the old one (drop, rename):
  a failed build leaves the old table and its rows; readers may find the name missing for the
  moment between the two statements. Tables of a format with atomic replacement (Delta,
  Iceberg) are replaced with CREATE OR REPLACE TABLE instead;
- `insert_overwrite` replaces the partitions its new rows fall in (dynamic partition overwrite),
  and is refused on an unpartitioned table, where it would replace every row;
- formats without DELETE/UPDATE/MERGE (parquet, the default) cannot do `merge`, `delete+insert`
  or `microbatch`: a compile error says so. sqlflow's own state tables and snapshots still
  update rows there, by writing the table's new rows to a new table that replaces the old one
  (`spark_rewrite.py`).
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import UserError, WarehouseError
from ..lazy import exp
from ..locking import FileLock, NoLock, RunLock
from ..nodes import Node, Relation, partition_columns
from ..seed_csv import read_seed, values_select
from . import spark_rewrite
from .base import Adapter, QueryResult, drop

# Table formats with DELETE, UPDATE, MERGE and atomic CREATE OR REPLACE TABLE.
DML_FORMATS = ("delta", "iceberg", "hudi")
# The session catalog (Hive metastore or in-memory) refuses other schema and table names.
SESSION_CATALOG_NAME = re.compile(r"^[A-Za-z0-9_]+$")
REWRITE_SUFFIX = "__sqlflow_rewrite"
NEEDS_DML = ("merge", "delete+insert", "microbatch")
_session_lock = threading.Lock()


class SparkAdapter(Adapter):
    type: ClassVar[str] = "spark"
    dialect: ClassVar[str] = "spark"
    replaces_views = True
    case_insensitive = True
    overwrites_partitions = True

    def __init__(self, target) -> None:
        super().__init__(target)
        self._spark: Any = None
        self.file_format = str(target.settings.get("file_format") or "").lower() or None
        self.supports_merge = self.file_format in DML_FORMATS  # type: ignore[misc]

    # ------------------------------------------------------------------ settings

    @property
    def master(self) -> str:
        return str(self.target.settings.get("master") or "local[*]")

    @property
    def is_connect(self) -> bool:
        return self.target.settings.get("method") == "connect" or self.master.startswith("sc://")

    @property
    def is_local(self) -> bool:
        return not self.is_connect and self.master.startswith("local")

    @property
    def warehouse_dir(self) -> Path | None:
        raw = self.target.settings.get("warehouse_dir")
        return Path(str(raw)) if raw else None

    def connect_url(self) -> str:
        url = self.master if "://" in self.master else f"sc://{self.master}"
        token = self.target.settings.get("token")
        return f"{url.rstrip('/')}/;token={token}" if token else url

    def session_conf(self) -> dict[str, str]:
        """The SparkSession's configuration: sqlflow's defaults, then the profile's `spark_conf`."""
        conf = {
            "spark.ui.showConsoleProgress": "false",
            "spark.log.level": "ERROR",
            # TIMESTAMP without a time zone, as in DuckDB and PostgreSQL; time zone functions in UTC.
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.timestampType": "TIMESTAMP_NTZ",
        }
        if self.is_local:
            conf["spark.ui.enabled"] = "false"
            # One shuffle task per core: the default 200 cost more than the data on one machine.
            conf["spark.sql.shuffle.partitions"] = str(os.cpu_count() or 2)
            if self.warehouse_dir is not None:
                # The tables and the Hive metastore (an embedded Derby database) live together.
                conf["spark.sql.warehouse.dir"] = str(self.warehouse_dir)
                metastore = self.warehouse_dir / "_sqlflow_metastore"
                conf["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
                    f"jdbc:derby:;databaseName={metastore};create=true"
                )
                conf["spark.driver.extraJavaOptions"] = f"-Dderby.system.home={self.warehouse_dir}"
        for key, value in (self.target.settings.get("spark_conf") or {}).items():
            conf[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
        return conf

    # ------------------------------------------------------------------ connections

    def open(self) -> None:
        self.session()

    def session(self) -> Any:
        if self._spark is not None:
            return self._spark
        try:
            from pyspark.sql import SparkSession
        except ImportError as exc:
            raise UserError(
                f"target {self.target.name!r} (type: spark) needs pyspark: {exc}",
                path=self.target.profiles_path,
                hint="pip install 'sqlflow[spark]' (Spark Connect also needs 'pyspark[connect]'); Java 17+ runs it",
            ) from exc
        conf = self.session_conf()
        with _session_lock:
            try:
                if self.is_connect:
                    spark = SparkSession.builder.remote(self.connect_url()).getOrCreate()
                else:
                    if self.is_local:
                        # A local Spark listens on loopback only, not on the machine's network.
                        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
                    builder = SparkSession.builder.master(self.master).appName(
                        str(self.target.settings.get("app_name") or "sqlflow")
                    )
                    for key, value in conf.items():
                        builder = builder.config(key, value)
                    if "spark.sql.catalogImplementation" not in conf:
                        builder = builder.enableHiveSupport()  # tables outlive the session
                    spark = builder.getOrCreate()
            except Exception as exc:  # the JVM or the server could not be reached
                raise UserError(
                    self._mask(f"cannot start Spark for target {self.target.name!r}: {_message(exc)}"),
                    path=self.target.profiles_path,
                    hint="check `master` and `token` in profiles.yml, and that pyspark[connect] is installed"
                    if self.is_connect
                    else "check `master` in profiles.yml and that Java 17+ is installed (`java -version`)",
                ) from exc
            _quiet_pyspark_logging()
            # A session started earlier in this process keeps its static settings; these apply anyway.
            runtime = {k: v for k, v in conf.items() if k.startswith("spark.sql.") and "warehouse" not in k}
            runtime["spark.sql.sources.partitionOverwriteMode"] = "dynamic"  # insert_overwrite depends on it
            for key, value in runtime.items():
                with contextlib.suppress(Exception):
                    spark.conf.set(key, value)
            if self.target.database:
                with contextlib.suppress(Exception):
                    spark.catalog.setCurrentCatalog(self.target.database)
            self._spark = spark
        return spark

    def close(self) -> None:
        # The session stays up for the rest of the process: the next command reuses it.
        self._spark = None

    def _run(self, sql: str, params: Sequence[Any] | None = None, *, fetch: bool) -> QueryResult:
        spark = self.session()
        try:
            frame = spark.sql(sql)
            if fetch:
                return QueryResult(list(frame.columns), [tuple(row) for row in frame.collect()])
            return QueryResult([], [], _written_rows(frame))
        except Exception as exc:
            message = _message(exc)
            if "cancelled" in message.lower() or "interrupted" in message.lower():
                raise WarehouseError("cancelled") from exc
            raise WarehouseError(self._mask(message)) from exc

    def _mask(self, text: str) -> str:
        token = str(self.target.settings.get("token") or "")
        return text.replace(token, "*****") if len(token) >= 3 else text

    # No transactions: each statement commits by itself (see the module's docstring).
    def begin(self) -> None:
        pass

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def cancel(self) -> None:
        spark = self._spark
        if spark is None:
            return
        with contextlib.suppress(Exception):
            spark.interruptAll()
        with contextlib.suppress(Exception):
            spark.sparkContext.cancelAllJobs()

    # ------------------------------------------------------------------ statements

    def execute(self, statement: exp.Expression | str, *, fetch: bool = False) -> QueryResult:
        if isinstance(statement, str):
            return self._run(statement, fetch=fetch)
        if _is_temporary_table(statement):
            # Spark has temporary views, not tables: CACHE TABLE computes the rows once, now.
            cache = exp.Cache(this=statement.this.copy(), expression=statement.expression.copy(), lazy=False)
            return self._run(cache.sql(dialect=self.dialect), fetch=False)
        if isinstance(statement, exp.Delete | exp.Update) and not self._has_dml(
            spark_rewrite.target_of(statement)
        ):
            return self.rewrite(statement)
        if isinstance(statement, exp.Insert) and statement.args.get("overwrite"):
            self._check_partitioned(statement)
        # CREATE TABLE ... AS reports no row count, and counting a partitioned table means listing
        # every partition: tables show none.
        return super().execute(statement, fetch=fetch)

    def rewrite(self, statement: exp.Delete | exp.Update) -> QueryResult:
        """Run a DELETE or UPDATE on a table whose format has neither: its rows after the statement
        go to a new table, which then replaces it. The old table stays whole until the new one is
        complete; a statement that changes no row writes nothing."""
        table = spark_rewrite.target_of(statement)
        count = int(super().execute(spark_rewrite.affected(statement), fetch=True).rows[0][0])
        if not count:
            return QueryResult([], [], 0)
        rewritten = table.copy()
        rewritten.set("this", exp.to_identifier(table.name + REWRITE_SUFFIX, quoted=True))
        like = exp.Properties(expressions=[exp.LikeProperty(this=table.copy())])
        super().execute(exp.Drop(tables=[rewritten.copy()], kind="TABLE", exists=True))
        super().execute(exp.Create(this=rewritten.copy(), kind="TABLE", properties=like))
        select = spark_rewrite.rows_after(statement, self._columns_of(table))
        super().execute(exp.insert(select, rewritten.copy()))
        if isinstance(statement, exp.Update) and statement.args.get("from_"):
            # The join that finds each row's new values must not duplicate rows.
            size = exp.select(exp.func("count", exp.Star()))
            before = int(super().execute(size.from_(table.copy()), fetch=True).rows[0][0])
            after = int(super().execute(size.copy().from_(rewritten.copy()), fetch=True).rows[0][0])
            if after != before:
                super().execute(exp.Drop(tables=[rewritten.copy()], kind="TABLE", exists=True))
                raise WarehouseError(
                    f"rewriting {table.sql(self.dialect)} for an UPDATE would leave {after} rows instead of "
                    f"{before}: the UPDATE matches some rows more than once; the table was not changed"
                )
        super().execute(exp.Drop(tables=[table.copy()], kind="TABLE"))
        rename = exp.AlterRename(this=exp.Table(this=exp.to_identifier(table.name, quoted=True)))
        super().execute(exp.Alter(this=rewritten, kind="TABLE", actions=[rename]))
        return QueryResult([], [], count)

    def swap(self, tmp: Relation, relation: Relation, existing_kind: str | None, kind: str) -> None:
        provider = self._provider(tmp.table()) if kind == "table" and existing_kind == "table" else None
        if provider not in DML_FORMATS:
            super().swap(tmp, relation, existing_kind, kind)
            return
        # Delta and Iceberg replace a table atomically: readers see the old rows or the new ones.
        properties: list[exp.Expression] = [exp.FileFormatProperty(this=exp.Var(this=provider))]
        partitions = self._partitions_of(tmp.table())
        if partitions:
            names = [exp.to_identifier(name, quoted=True) for name in partitions]
            properties.append(exp.PartitionedByProperty(this=exp.Schema(expressions=names)))
        replace = exp.Create(
            this=relation.table(),
            kind="TABLE",
            replace=True,
            properties=exp.Properties(expressions=properties),
            expression=exp.select("*").from_(tmp.table()),
        )
        self.execute(replace)
        self.execute(drop(tmp, "table"))

    def _describe(self, table: exp.Table, *, extended: bool = False) -> list[tuple[Any, ...]]:
        what = f"TABLE EXTENDED {table.sql(self.dialect)}" if extended else f"TABLE {table.sql(self.dialect)}"
        return super().execute(exp.Describe(this=exp.Var(this=what)), fetch=True).rows

    def _columns_of(self, table: exp.Table) -> list[tuple[str, str]]:
        columns = []
        for name, data_type, *_ in self._describe(table):
            if not name or name.startswith("#"):
                break
            columns.append((name, data_type))
        return columns

    def _partitions_of(self, table: exp.Table) -> list[str]:
        rows = self._describe(table)
        names = [str(row[0]) for row in rows]
        if "# Partition Information" not in names:
            return []
        found = []
        for name in names[names.index("# Partition Information") + 1 :]:
            if not name:
                break
            if not name.startswith("#"):
                found.append(name)
        return found

    def _provider(self, table: exp.Table) -> str | None:
        try:
            rows = self._describe(table, extended=True)
        except WarehouseError:
            return None
        for name, value, *_ in rows:
            if name == "Provider":
                return str(value).lower()
        return None

    def _has_dml(self, table: exp.Table) -> bool:
        return self._provider(table) in DML_FORMATS

    def _check_partitioned(self, insert: exp.Insert) -> None:
        target = insert.this.this if isinstance(insert.this, exp.Schema) else insert.this
        if not self._partitions_of(target):
            raise WarehouseError(
                f"{target.sql(self.dialect)} is not partitioned: INSERT OVERWRITE would replace every row "
                "of it, not just the new rows' partitions. Rebuild it with --full-refresh to create it "
                "partitioned by the model's partition_by"
            )

    # ------------------------------------------------------------------ introspection

    def _show(self, what: str, container: exp.Expression | None = None) -> list[tuple[Any, ...]]:
        text = what + (f" IN {container.sql(self.dialect)}" if container is not None else "")
        return super().execute(exp.Command(this="SHOW", expression=exp.Var(this=text)), fetch=True).rows

    def list_relations(self) -> dict[tuple[str, str], str]:
        catalog = exp.to_identifier(self.target.database, quoted=True) if self.target.database else None
        found: dict[tuple[str, str], str] = {}
        for schema, *_ in self._show("SCHEMAS", catalog):
            container = exp.Table(this=exp.to_identifier(schema, quoted=True), db=catalog)
            views = {str(row[1]) for row in self._show("VIEWS", container) if not row[-1]}
            for _, name, is_temporary in self._show("TABLES", container):
                if not is_temporary:
                    found[self.key(schema, name)] = "view" if name in views else "table"
        return found

    def columns(self, relation: Relation, *, temporary: bool = False) -> list[tuple[str, str]]:
        table = exp.Table(this=exp.to_identifier(relation.identifier, quoted=True))
        try:
            return self._columns_of(table if temporary else relation.table())
        except WarehouseError:
            return []

    def function_names(self) -> frozenset[str] | None:
        # Listing them needs the session; before it runs (compile without a warehouse) they go unchecked.
        if self._spark is None:
            return None
        names = set()
        for name, *_ in self._show("FUNCTIONS"):
            names.add(str(name).lower())
            names.add(str(name).lower().rsplit(".", 1)[-1])
        return frozenset(names)

    # ------------------------------------------------------------------ seeds, models

    def csv_select(self, path: Path, column_types: dict[str, str], delimiter: str) -> exp.Query:
        # The rows travel inside the statement: a cluster cannot read a file on this machine.
        query = values_select(read_seed(path, delimiter), column_types, self.dialect)
        values = query.find(exp.Values)
        if values is not None and values.args.get("alias") is not None:
            # Spark names VALUES columns col1, col2, ...; the query reads column1, column2, ...
            width = len(values.expressions[0].expressions)
            names = [exp.to_identifier(f"column{i + 1}") for i in range(width)]
            values.args["alias"].set("columns", names)
        return query

    def table_properties(self, node: Node) -> list[exp.Expression]:
        properties: list[exp.Expression] = []
        file_format = node.config.get("file_format") or self.file_format
        if file_format:
            properties.append(exp.FileFormatProperty(this=exp.Var(this=str(file_format))))
        partitions = partition_columns(node.config)
        if partitions:
            names = [exp.to_identifier(name, quoted=True) for name in partitions]
            properties.append(exp.PartitionedByProperty(this=exp.Schema(expressions=names)))
        return properties

    def unbuildable(self, node: Node) -> tuple[str, str] | None:
        if node.resource_type not in ("model", "seed", "snapshot") or node.relation is None:
            return None
        if node.is_ephemeral:
            return None
        relation = node.relation
        if relation.database in (None, "spark_catalog"):
            for part in (relation.schema, relation.identifier):
                if not SESSION_CATALOG_NAME.match(part):
                    return (
                        f"Spark's session catalog takes only letters, digits and _ in schema and table "
                        f"names, not {part!r}",
                        "give the node another name with config(alias=...) or schema=..., or use a "
                        "catalog that takes such names (`catalog:` in profiles.yml)",
                    )
        if node.materialized != "incremental":
            return None
        strategy = node.config.get("incremental_strategy") or (
            "merge" if node.config.get("unique_key") else "append"
        )
        file_format = str(node.config.get("file_format") or self.file_format or "parquet").lower()
        if strategy in NEEDS_DML and file_format not in DML_FORMATS:
            return (
                f"incremental_strategy {strategy!r} needs a table format with MERGE and DELETE; "
                f"{file_format} tables have neither",
                "on Spark, use incremental_strategy='insert_overwrite' with partition_by, or 'append'; "
                "or file_format='delta' (or iceberg, hudi) where the cluster has it",
            )
        return None

    # ------------------------------------------------------------------ lock, description

    def run_lock(self) -> RunLock:
        # A local warehouse is a folder here: a file lock next to it. A cluster's is not ours to lock.
        if self.is_local and self.warehouse_dir is not None:
            return FileLock(self.warehouse_dir.with_name(self.warehouse_dir.name + ".sqlflow-lock"))
        return NoLock()

    def database_exists(self) -> bool:
        if self.is_local and self.warehouse_dir is not None:
            return self.warehouse_dir.exists()
        return True

    def describe(self) -> str:
        try:
            from pyspark import __version__ as version
        except ImportError:
            version = "?"
        where = self.connect_url().split("/;", 1)[0] if self.is_connect else self.master
        return f"spark {version} ({where}), schema {self.target.schema}"


def _is_temporary_table(statement: exp.Expression) -> bool:
    if not isinstance(statement, exp.Create) or statement.kind != "TABLE" or statement.expression is None:
        return False
    properties = statement.args.get("properties")
    return properties is not None and any(
        isinstance(p, exp.TemporaryProperty) for p in properties.expressions
    )


def _written_rows(frame: Any) -> int | None:
    """Rows an INSERT wrote, from the executed plan's metrics (local and cluster sessions only)."""
    try:
        node = frame._jdf.queryExecution().executedPlan().commandPhysicalPlan()
        # Down through adaptive execution's wrappers (AdaptiveSparkPlan, query stages) to the write.
        for _ in range(8):
            metrics = node.metrics()
            if metrics.contains("numOutputRows"):
                return int(metrics.get("numOutputRows").get().value())
            name = node.getClass().getSimpleName()
            if name == "AdaptiveSparkPlanExec":
                node = node.executedPlan()
            elif name.endswith("QueryStageExec"):
                node = node.plan()
            elif node.children().size() == 1:
                node = node.children().apply(0)
            else:
                return None
    except Exception:  # Spark Connect, or a statement without the metric
        return None
    return None


def _message(exc: BaseException) -> str:
    """Spark's message without the JVM's stack trace."""
    text = str(exc)
    for marker in ("\n\tat ", "\nJVM stacktrace:", "\n== SQL"):
        text = text.split(marker, 1)[0]
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[:8]) or type(exc).__name__


def _quiet_pyspark_logging() -> None:
    # pyspark logs every failed statement's exception itself; sqlflow reports it once, as a result.
    with contextlib.suppress(ImportError):
        from pyspark.logger import PySparkLogger

        for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
            PySparkLogger.getLogger(name).disabled = True
