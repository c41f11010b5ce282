"""Materializations: the statements that turn a compiled SELECT into a relation.

Every statement is a sqlglot expression generated in the adapter's dialect. A table is built
under a temporary name and swapped in inside one transaction, so a failed build leaves the old
relation and its rows untouched and a reader never finds the relation missing. An enforced
contract is checked on that temporary relation, before the swap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .adapters.base import Adapter, drop
from .errors import WarehouseError
from .lazy import exp, sqlglot
from .microbatch import Batch, window_condition
from .nodes import INCREMENTAL_STRATEGIES, ON_SCHEMA_CHANGE, Column, Node, Relation, partition_columns

if TYPE_CHECKING:  # compiled nodes are only read here; the compiler sits upstream
    from .compiler import CompiledNode

TMP_SUFFIX = "__sqlflow_tmp"
NEW_ROWS_SUFFIX = "__sqlflow_new"
STRATEGIES = INCREMENTAL_STRATEGIES


class BuildError(Exception):
    """A model failed for a reason sqlflow detected (not a warehouse error)."""


@dataclass
class Outcome:
    message: str
    rows: int | None = None
    batch_results: dict[str, Any] | None = None  # microbatch: {"successful": [...], "failed": [...]}


class BatchesFailed(BuildError):
    """Some batches of a microbatch model failed; the others are built and recorded."""

    def __init__(self, message: str, batch_results: dict[str, Any]) -> None:
        super().__init__(message)
        self.batch_results = batch_results


def materialize(
    adapter: Adapter, compiled: CompiledNode, existing_kind: str | None, *, full_refresh: bool
) -> Outcome:
    node = compiled.node
    kind = node.materialized
    contract = Contract(node, compiled.dialect or adapter.dialect) if node.contract_enforced else None
    if kind == "view":
        return _view(adapter, node, compiled.sql, existing_kind, contract)
    if kind == "incremental" and compiled.is_incremental:
        return _incremental(adapter, node, compiled.sql, contract)
    if kind in ("table", "incremental"):  # an incremental model's first build is a table's
        return _table(
            adapter,
            node.relation,
            _verbatim(compiled.sql),
            existing_kind,
            contract,
            adapter.table_properties(node),
        )
    if kind == "seed":
        delimiter = str(node.config.get("delimiter") or ",")
        query = adapter.csv_select(node.path, dict(node.config.get("column_types") or {}), delimiter)
        return _table(adapter, node.relation, query, existing_kind)
    raise BuildError(f"cannot materialize {kind!r}")


def _verbatim(select_sql: str) -> exp.Expression:
    # The SELECT was parsed and validated by the compiler; it is sent as the user wrote it.
    return exp.Var(this=select_sql)


def _drop(relation: Relation, kind: str) -> exp.Drop:
    return drop(relation, kind)


def _create(
    relation: Relation,
    kind: str,
    body: exp.Expression,
    *,
    replace: bool = False,
    temporary: bool = False,
    properties: Sequence[exp.Expression] = (),
) -> exp.Create:
    listed = [exp.TemporaryProperty()] if temporary else [p.copy() for p in properties]
    return exp.Create(
        this=relation.table()
        if not temporary
        else exp.Table(this=exp.to_identifier(relation.identifier, quoted=True)),
        kind=kind.upper(),
        expression=body,
        replace=replace,
        properties=exp.Properties(expressions=listed) if listed else None,
    )


def _view(
    adapter: Adapter, node: Node, select_sql: str, existing_kind: str | None, contract: Contract | None
) -> Outcome:
    relation = node.relation
    assert relation is not None
    body = _verbatim(select_sql)
    if contract is None and existing_kind in (None, "view") and adapter.replaces_views:
        adapter.execute(_create(relation, "view", body, replace=True))
        return Outcome("CREATE VIEW")
    if not adapter.renames_views:
        # No ALTER VIEW ... RENAME: the view is created under its own name, in the transaction
        # that drops the old one; a failed contract rolls both back.
        with adapter.transaction():
            if existing_kind:
                adapter.execute(_drop(relation, existing_kind))
            adapter.execute(_create(relation, "view", body))
            if contract is not None:
                contract.check(adapter, relation)
        return Outcome("CREATE VIEW")
    # A contract is checked on the view under its temporary name, before it replaces the old one.
    tmp = relation.with_identifier(relation.identifier + TMP_SUFFIX)
    with adapter.transaction():
        adapter.execute(_drop(tmp, "view"))
        adapter.execute(_create(tmp, "view", body))
        if contract is not None:
            contract.check(adapter, tmp)
        adapter.swap(tmp, relation, existing_kind, "view")
    return Outcome("CREATE VIEW")


def _table(
    adapter: Adapter,
    relation: Relation | None,
    body: exp.Expression,
    existing_kind: str | None,
    contract: Contract | None = None,
    properties: Sequence[exp.Expression] = (),
) -> Outcome:
    assert relation is not None
    tmp = relation.with_identifier(relation.identifier + TMP_SUFFIX)
    with adapter.transaction():
        adapter.execute(_drop(tmp, "table"))
        result = adapter.execute(_create(tmp, "table", body, properties=properties))
        if contract is not None:
            contract.check(adapter, tmp)
        adapter.swap(tmp, relation, existing_kind, "table")
    return Outcome("CREATE TABLE", result.rowcount)


def replace_table(
    adapter: Adapter, relation: Relation, query: exp.Expression, existing_kind: str | None
) -> Outcome:
    """Create a table from `query`, or replace it atomically (old rows kept if this fails)."""
    return _table(adapter, relation, query, existing_kind)


# --------------------------------------------------------------------------- incremental


def strategy_of(node: Node) -> str:
    strategy = node.config.get("incremental_strategy")
    if strategy is None:
        return "merge" if node.config.get("unique_key") else "append"
    if strategy not in STRATEGIES:
        raise BuildError(f"unknown incremental_strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if strategy in ("merge", "delete+insert") and not node.config.get("unique_key"):
        raise BuildError(f"incremental_strategy {strategy!r} needs a unique_key")
    return strategy


def unique_key_of(node: Node) -> list[str]:
    key = node.config.get("unique_key")
    if not key:
        return []
    return [key] if isinstance(key, str) else [str(k) for k in key]


def _incremental(adapter: Adapter, node: Node, select_sql: str, contract: Contract | None) -> Outcome:
    with adapter.transaction():
        return incremental_step(adapter, node, _verbatim(select_sql), contract)


def incremental_step(
    adapter: Adapter,
    node: Node,
    query: exp.Expression,
    contract: Contract | None,
    *,
    window: exp.Expression | None = None,
) -> Outcome:
    """Add `query`'s rows to the existing table, in the caller's transaction.

    `window` (microbatch): the condition on the table's rows that the new rows replace.
    """
    relation = node.relation
    assert relation is not None
    strategy = strategy_of(node)
    keys = unique_key_of(node)
    new_rows = Relation(None, relation.schema, relation.identifier + NEW_ROWS_SUFFIX)
    new_table = exp.Table(this=exp.to_identifier(new_rows.identifier, quoted=True))
    # Appended rows are read once, straight from the query through a view; the other strategies
    # read them several times (checks, delete, insert), so they are computed once into a table.
    staging = "view" if strategy == "append" else "table"
    adapter.execute(exp.Drop(tables=[new_table.copy()], kind=staging.upper(), exists=True))
    adapter.execute(_create(new_rows, staging, query, temporary=True))
    if contract is not None:
        contract.check(adapter, new_rows, temporary=True)
    target_columns = adapter.columns(relation)
    change = schema_change(adapter, target_columns, adapter.columns(new_rows, temporary=True))
    mode = on_schema_change_of(node)
    if change and mode == "fail":
        raise BuildError(_schema_change_failure(relation, change, adapter.dialect))
    fold = _folder(adapter)
    # The columns inserted/merged: those in both, plus the ones added to the table below.
    columns = [name for name, _ in target_columns if fold(name) in change.incoming]
    if mode in ("append_new_columns", "sync_all_columns"):
        columns += [name for name, _ in change.added]
    missing = [k for k in keys if fold(k) not in {fold(c) for c in columns}]
    if missing:
        raise BuildError(
            f"unique_key column(s) {', '.join(missing)} are not in both the model and {relation.identifier}"
        )
    if strategy == "merge":
        _check_unique(adapter, new_table, keys, node)
    # Same transaction as the insert/merge: if anything below fails, the ALTERs roll back too.
    for statement in _schema_statements(relation, change, mode, adapter.dialect):
        adapter.execute(statement)
    if strategy == "microbatch":
        assert window is not None, "a microbatch step replaces one window"
        adapter.execute(exp.delete(relation.table(), where=window))
        result = adapter.execute(_insert(relation, new_table, columns))
    elif strategy == "append":
        result = adapter.execute(_insert(relation, new_table, columns))
    elif strategy == "insert_overwrite" and adapter.overwrites_partitions:
        result = adapter.execute(_insert(relation, new_table, columns, overwrite=True))
    elif strategy == "insert_overwrite":
        # The partitions the new rows fall in are replaced: their old rows go, the new ones come.
        adapter.execute(_delete_matching(relation, new_table, partition_columns(node.config)))
        result = adapter.execute(_insert(relation, new_table, columns))
    elif strategy == "merge" and adapter.supports_merge:
        result = adapter.execute(_merge(relation, new_table, columns, keys))
    else:
        adapter.execute(_delete_matching(relation, new_table, keys))
        result = adapter.execute(_insert(relation, new_table, columns))
    adapter.execute(exp.Drop(tables=[new_table.copy()], kind=staging.upper(), exists=True))
    return Outcome(f"{strategy.upper()}{change.summary(mode)}", result.rowcount)


# --------------------------------------------------------------------------- microbatch

BatchRetryHook = Callable[[Batch, int, int, WarehouseError, int], None]


def build_batches(
    adapter: Adapter,
    node: Node,
    batches: Sequence[Batch],
    batch_query: Callable[[Batch], exp.Expression],
    event_time: exp.Expression,
    record: Callable[[Sequence[Batch]], None],
    *,
    rebuild: bool,
    existing_kind: str | None,
    contract: Contract | None = None,
    on_retry: BatchRetryHook | None = None,
    cancel: threading.Event | None = None,
) -> Outcome:
    """Build a microbatch model's `batches` and `record` them as done.

    A rebuild (first build, --full-refresh) fills a temporary table batch by batch and swaps it
    in, all in one transaction: old rows stay until every batch succeeded. Otherwise each batch
    replaces its window of rows in a transaction of its own, recorded in the same transaction;
    a batch that fails with a transient error is retried alone (`retries`), and a failed batch
    does not stop the others.
    """
    relation = node.relation
    assert relation is not None and batches
    span = (
        f"{len(batches)} batch{'es' if len(batches) != 1 else ''} {Batch(batches[0].start, batches[-1].end)}"
    )
    if rebuild:
        tmp = relation.with_identifier(relation.identifier + TMP_SUFFIX)
        with adapter.transaction():
            adapter.execute(_drop(tmp, "table"))
            first = _create(tmp, "table", batch_query(batches[0]), properties=adapter.table_properties(node))
            rows = adapter.execute(first).rowcount or 0
            for batch in batches[1:]:
                if cancel is not None and cancel.is_set():
                    raise BuildError("cancelled; the table was not replaced")
                rows += adapter.execute(exp.insert(batch_query(batch), tmp.table())).rowcount or 0
            if contract is not None:
                contract.check(adapter, tmp)
            adapter.swap(tmp, relation, existing_kind, "table")
            record(batches)
        results = {"successful": [b.as_json() for b in batches], "failed": []}
        return Outcome(f"MICROBATCH {span}", rows, results)
    attempts = 1 + int(node.config.get("retries") or 0)
    delay = node.config.get("retry_delay")
    delay = 1 if delay is None else int(delay)
    rows, built, failed = 0, [], []
    for batch in batches:
        if cancel is not None and cancel.is_set():
            failed.append((batch, "cancelled"))
            continue
        for attempt in range(1, attempts + 1):
            try:
                with adapter.transaction():
                    step = incremental_step(
                        adapter,
                        node,
                        batch_query(batch),
                        contract,
                        window=window_condition(event_time, batch),
                    )
                    record([batch])
            except WarehouseError as exc:
                if attempt < attempts and adapter.is_transient(exc):
                    if on_retry is not None:
                        on_retry(batch, attempt, attempts, exc, delay)
                    if not (cancel or threading.Event()).wait(delay):
                        continue
                failed.append((batch, str(exc)))
            except BuildError as exc:
                failed.append((batch, str(exc)))
            else:
                rows += step.rows or 0
                built.append(batch)
            break
    results = {"successful": [b.as_json() for b in built], "failed": [b.as_json() for b, _ in failed]}
    if failed:
        lines = [f"  {batch}: {error}" for batch, error in failed[:5]]
        if len(failed) > 5:
            lines.append(f"  ... and {len(failed) - 5} more")
        raise BatchesFailed(
            f"{len(failed)} of {len(batches)} batches failed ({len(built)} built and recorded; "
            "`sqlflow retry` or the next run builds the failed ones):\n" + "\n".join(lines),
            results,
        )
    return Outcome(f"MICROBATCH {span}", rows, results)


# --------------------------------------------------------------------------- on_schema_change


def on_schema_change_of(node: Node) -> str:
    mode = node.config.get("on_schema_change") or "ignore"
    if mode not in ON_SCHEMA_CHANGE:
        raise BuildError(f"unknown on_schema_change {mode!r}; use one of: {', '.join(ON_SCHEMA_CHANGE)}")
    return str(mode)


@dataclass
class SchemaChange:
    """How the columns of an incremental model's new rows differ from its table's."""

    added: list[tuple[str, str]]  # (name, type) of new-row columns the table lacks
    removed: list[tuple[str, str]]  # (name, type) of table columns the new rows lack
    changed: list[tuple[str, str, str]]  # (name as in the table, table type, new-row type)
    incoming: set[str]  # folded names of every new-row column

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def summary(self, mode: str) -> str:
        """What `mode` changed in the table, as a suffix for the outcome message."""
        parts = []
        if self.added and mode in ("append_new_columns", "sync_all_columns"):
            parts.append("added columns: " + ", ".join(name for name, _ in self.added))
        if mode == "sync_all_columns":
            if self.removed:
                parts.append("removed columns: " + ", ".join(name for name, _ in self.removed))
            if self.changed:
                parts.append("changed types: " + _type_changes(self.changed))
        return f" ({'; '.join(parts)})" if parts else ""


def schema_change(
    adapter: Adapter, target: list[tuple[str, str]], incoming: list[tuple[str, str]]
) -> SchemaChange:
    fold = _folder(adapter)
    target_types = {fold(name): data_type for name, data_type in target}
    incoming_types = {fold(name): data_type for name, data_type in incoming}
    return SchemaChange(
        added=[(name, kind) for name, kind in incoming if fold(name) not in target_types],
        removed=[(name, kind) for name, kind in target if fold(name) not in incoming_types],
        changed=[
            (name, kind, incoming_types[fold(name)])
            for name, kind in target
            if fold(name) in incoming_types
            and adapter.typed_columns
            and _type_key(kind, adapter.dialect) != _type_key(incoming_types[fold(name)], adapter.dialect)
        ],
        incoming=set(incoming_types),
    )


def _folder(adapter: Adapter):
    return str.lower if adapter.case_insensitive else str


def _data_type(data_type: str, dialect: str) -> exp.DataType:
    """A type as the warehouse spells it; one sqlglot cannot read is passed through as written."""
    try:
        return exp.DataType.build(data_type, dialect=dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return exp.DataType.build(data_type, udt=True)


def _type_key(data_type: str, dialect: str) -> str:
    return _data_type(data_type, dialect).sql(dialect=dialect).upper()


def _type_changes(changed: list[tuple[str, str, str]]) -> str:
    return ", ".join(f"{name} ({old} -> {new})" for name, old, new in changed)


def _schema_statements(relation: Relation, change: SchemaChange, mode: str, dialect: str) -> list[exp.Alter]:
    """ALTER TABLE statements, one action each: add, then drop (never leaving no column), then retype."""
    if mode not in ("append_new_columns", "sync_all_columns"):
        return []
    actions: list[exp.Expression] = [
        exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=_data_type(kind, dialect))
        for name, kind in change.added
    ]
    if mode == "sync_all_columns":
        actions += [
            exp.Drop(tables=[exp.column(name, quoted=True)], kind="COLUMN") for name, _ in change.removed
        ]
        actions += [
            exp.AlterColumn(this=exp.to_identifier(name, quoted=True), dtype=_data_type(new, dialect))
            for name, _, new in change.changed
        ]
    return [exp.Alter(this=relation.table(), kind="TABLE", actions=[action]) for action in actions]


def _schema_change_failure(relation: Relation, change: SchemaChange, dialect: str) -> str:
    lines = [
        f"on_schema_change='fail': the model's columns differ from those of {relation.sql(dialect)}; "
        "the table was not changed"
    ]
    if change.added:
        lines.append("  added columns: " + ", ".join(name for name, _ in change.added))
    if change.removed:
        lines.append("  removed columns: " + ", ".join(name for name, _ in change.removed))
    if change.changed:
        lines.append("  changed types: " + _type_changes(change.changed))
    lines.append(
        "  hint: run with --full-refresh to rebuild the table, or set on_schema_change to "
        "'append_new_columns' or 'sync_all_columns'"
    )
    return "\n".join(lines)


def _check_unique(adapter: Adapter, new_table: exp.Table, keys: list[str], node: Node) -> None:
    key_columns = [exp.column(k, quoted=True) for k in keys]
    query = (
        exp.select(*key_columns, exp.alias_(exp.func("count", exp.Star()), "n"))
        .from_(new_table.copy())
        .group_by(*[c.copy() for c in key_columns])
        .having(exp.func("count", exp.Star()) > 1)
        .limit(1)
    )
    rows = adapter.execute(query, fetch=True).rows
    if rows:
        sample = ", ".join(f"{k}={v!r}" for k, v in zip(keys, rows[0][:-1], strict=False))
        raise BuildError(
            f"unique_key ({', '.join(keys)}) is not unique in the new rows: {sample} appears {rows[0][-1]} times; "
            "a merge would duplicate rows. Deduplicate the model's output or fix unique_key"
        )


def _insert(
    relation: Relation, new_table: exp.Table, columns: list[str], *, overwrite: bool = False
) -> exp.Insert:
    select = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(new_table.copy())
    return exp.Insert(
        this=exp.Schema(
            this=relation.table(), expressions=[exp.to_identifier(c, quoted=True) for c in columns]
        ),
        expression=select,
        overwrite=overwrite,
    )


def _key_match(target_alias: str, source_alias: str, keys: list[str]) -> exp.Expression:
    return exp.and_(
        *[
            exp.column(k, table=target_alias, quoted=True).eq(exp.column(k, table=source_alias, quoted=True))
            for k in keys
        ]
    )


def _delete_matching(relation: Relation, new_table: exp.Table, keys: list[str]) -> exp.Delete:
    source = new_table.copy()
    source.set("alias", exp.TableAlias(this=exp.to_identifier("new_rows", quoted=True)))
    matching = (
        exp.select("1")
        .from_(source)
        .where(
            exp.and_(
                *[
                    exp.column(k, table="new_rows", quoted=True).eq(
                        exp.Column(
                            this=exp.to_identifier(k, quoted=True),
                            table=relation.table().this.copy(),
                            db=exp.to_identifier(relation.schema, quoted=True),
                        )
                    )
                    for k in keys
                ]
            )
        )
    )
    return exp.Delete(this=relation.table(), where=exp.Where(this=exp.Exists(this=matching)))


def _merge(relation: Relation, new_table: exp.Table, columns: list[str], keys: list[str]) -> exp.Merge:
    target = relation.table()
    target.set("alias", exp.TableAlias(this=exp.to_identifier("target_rows", quoted=True)))
    source = new_table.copy()
    source.set("alias", exp.TableAlias(this=exp.to_identifier("new_rows", quoted=True)))
    updates = [c for c in columns if c.lower() not in {k.lower() for k in keys}]
    whens = []
    if updates:
        whens.append(
            exp.When(
                matched=True,
                then=exp.Update(
                    expressions=[
                        exp.EQ(
                            this=exp.column(c, quoted=True),
                            expression=exp.column(c, table="new_rows", quoted=True),
                        )
                        for c in updates
                    ]
                ),
            )
        )
    whens.append(
        exp.When(
            matched=False,
            then=exp.Insert(
                this=exp.Tuple(expressions=[exp.column(c, quoted=True) for c in columns]),
                expression=exp.Tuple(
                    expressions=[exp.column(c, table="new_rows", quoted=True) for c in columns]
                ),
            ),
        )
    )
    return exp.Merge(
        this=target,
        using=source,
        on=_key_match("target_rows", "new_rows", keys),
        whens=exp.Whens(expressions=whens),
    )


# --------------------------------------------------------------------------- contracts


@dataclass
class Contract:
    """A model's enforced contract: its declared columns, with types written in `dialect`."""

    node: Node
    dialect: str

    def check(self, adapter: Adapter, relation: Relation, *, temporary: bool = False) -> None:
        """Compare the columns of the relation just built (not yet swapped in) with the contract."""
        differences = contract_differences(
            self.node.columns.values(),
            adapter.columns(relation, temporary=temporary),
            declared_dialect=self.dialect,
            actual_dialect=adapter.dialect,
            case_insensitive=adapter.case_insensitive,
            compare_types=adapter.typed_columns,
        )
        if differences:
            raise BuildError(_contract_message(self.node, differences))


def contract_differences(
    declared: Iterable[Column],
    actual: list[tuple[str, str]],
    *,
    declared_dialect: str,
    actual_dialect: str,
    case_insensitive: bool,
    compare_types: bool = True,
) -> list[tuple[str, str, str, str]]:
    """(column, contract type, actual type, problem) for each column that differs; order is ignored.

    Without `compare_types` (a warehouse whose columns have no real types) only names are compared.
    """

    def fold(name: str) -> str:
        return name.lower() if case_insensitive else name

    built = {fold(name): data_type for name, data_type in actual}
    differences = []
    for column in declared:
        wanted = str(column.data_type or "")
        found = built.get(fold(column.name))
        if found is None:
            differences.append((column.name, wanted, "", "missing"))
        elif compare_types and not same_type(wanted, declared_dialect, found, actual_dialect):
            differences.append((column.name, wanted, found, "type differs"))
    names = {fold(column.name) for column in declared}
    differences += [(name, "", data_type, "extra") for name, data_type in actual if fold(name) not in names]
    return differences


def same_type(declared: str, declared_dialect: str, actual: str, actual_dialect: str) -> bool:
    """Types compared as sqlglot reads them, so synonyms match (int/integer/int4, varchar/text).

    A declared type written without parameters (`decimal`) matches any parameters (`decimal(18,2)`),
    and so does a built type without them (PostgreSQL's unconstrained `numeric` holds any decimal).
    """
    try:
        wanted = exp.DataType.build(declared, dialect=declared_dialect)
        built = exp.DataType.build(actual, dialect=actual_dialect)
    except (sqlglot.errors.SqlglotError, ValueError):
        return declared.strip().upper() == actual.strip().upper()
    if "(" not in declared or not any(
        isinstance(e, exp.DataTypeParam) for e in built.find_all(exp.DataTypeParam)
    ):
        # Dialects fill in defaults (DuckDB reads `decimal` as decimal(18,3)): drop them on both sides.
        for data_type in (*wanted.find_all(exp.DataType), *built.find_all(exp.DataType)):
            data_type.set(
                "expressions", [e for e in data_type.expressions if not isinstance(e, exp.DataTypeParam)]
            )
    return wanted.sql(dialect=actual_dialect) == built.sql(dialect=actual_dialect)


def _contract_message(node: Node, differences: list[tuple[str, str, str, str]]) -> str:
    header = ("column", "contract type", "actual type", "problem")
    widths = [max(len(row[i]) for row in (header, *differences)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        return "  " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()

    table = [line(header), "  " + "-+-".join("-" * width for width in widths)]
    table += [line(row) for row in differences]
    where = node.patch_path or "the model's properties YAML"
    example = next((row for row in differences if row[3] == "type differs"), None)
    cast = f", e.g. cast({example[0]} as {example[1]}) as {example[0]}" if example else ""
    return (
        f"contract not met: {len(differences)} column(s) of the model's result differ from its declared "
        "columns\n" + "\n".join(table) + f"\n  hint: update the columns in {where}, or change the SQL{cast}"
    )


__all__ = ["BuildError", "Contract", "Outcome", "WarehouseError", "contract_differences", "materialize"]
