"""Materializations: the statements that turn a compiled SELECT into a relation.

Every statement is a sqlglot expression generated in the adapter's dialect. A table is built
under a temporary name and swapped in inside one transaction, so a failed build leaves the old
relation and its rows untouched and a reader never finds the relation missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from .adapters.base import Adapter
from .compiler import CompiledNode
from .errors import WarehouseError
from .nodes import INCREMENTAL_STRATEGIES, Node, Relation

TMP_SUFFIX = "__sqlflow_tmp"
NEW_ROWS_SUFFIX = "__sqlflow_new"
STRATEGIES = INCREMENTAL_STRATEGIES


class BuildError(Exception):
    """A model failed for a reason sqlflow detected (not a warehouse error)."""


@dataclass
class Outcome:
    message: str
    rows: int | None = None


def materialize(
    adapter: Adapter, compiled: CompiledNode, existing_kind: str | None, *, full_refresh: bool
) -> Outcome:
    node = compiled.node
    kind = node.materialized
    if kind == "view":
        return _view(adapter, node, compiled.sql, existing_kind)
    if kind == "table":
        return _table(adapter, node.relation, _verbatim(compiled.sql), existing_kind)
    if kind == "incremental":
        if compiled.is_incremental:
            return _incremental(adapter, node, compiled.sql)
        return _table(adapter, node.relation, _verbatim(compiled.sql), existing_kind)
    if kind == "seed":
        delimiter = str(node.config.get("delimiter") or ",")
        query = adapter.csv_select(node.path, dict(node.config.get("column_types") or {}), delimiter)
        return _table(adapter, node.relation, query, existing_kind)
    raise BuildError(f"cannot materialize {kind!r}")


def _verbatim(select_sql: str) -> exp.Expression:
    # The SELECT was parsed and validated by the compiler; it is sent as the user wrote it.
    return exp.Var(this=select_sql)


def _drop(relation: Relation, kind: str) -> exp.Drop:
    return exp.Drop(tables=[relation.table()], kind="VIEW" if kind == "view" else "TABLE", exists=True)


def _rename(relation: Relation, new_identifier: str, kind: str) -> exp.Alter:
    return exp.Alter(
        this=relation.table(),
        kind="VIEW" if kind == "view" else "TABLE",
        actions=[exp.AlterRename(this=exp.Table(this=exp.to_identifier(new_identifier, quoted=True)))],
    )


def _create(
    relation: Relation, kind: str, body: exp.Expression, *, replace: bool = False, temporary: bool = False
) -> exp.Create:
    properties = exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary else None
    return exp.Create(
        this=relation.table()
        if not temporary
        else exp.Table(this=exp.to_identifier(relation.identifier, quoted=True)),
        kind=kind.upper(),
        expression=body,
        replace=replace,
        properties=properties,
    )


def _view(adapter: Adapter, node: Node, select_sql: str, existing_kind: str | None) -> Outcome:
    relation = node.relation
    assert relation is not None
    body = _verbatim(select_sql)
    if existing_kind in (None, "view") and adapter.replaces_views:
        adapter.execute(_create(relation, "view", body, replace=True))
        return Outcome("CREATE VIEW")
    tmp = relation.with_identifier(relation.identifier + TMP_SUFFIX)
    with adapter.transaction():
        adapter.execute(_drop(tmp, "view"))
        adapter.execute(_create(tmp, "view", body))
        if existing_kind:
            adapter.execute(_drop(relation, existing_kind))
        adapter.execute(_rename(tmp, relation.identifier, "view"))
    return Outcome("CREATE VIEW")


def _table(
    adapter: Adapter, relation: Relation | None, body: exp.Expression, existing_kind: str | None
) -> Outcome:
    assert relation is not None
    tmp = relation.with_identifier(relation.identifier + TMP_SUFFIX)
    with adapter.transaction():
        adapter.execute(_drop(tmp, "table"))
        result = adapter.execute(_create(tmp, "table", body))
        if existing_kind:
            adapter.execute(_drop(relation, existing_kind))
        adapter.execute(_rename(tmp, relation.identifier, "table"))
    return Outcome("CREATE TABLE", result.rowcount)


# --------------------------------------------------------------------------- incremental


def strategy_of(node: Node) -> str:
    strategy = node.config.get("incremental_strategy")
    if strategy is None:
        return "merge" if node.config.get("unique_key") else "append"
    if strategy not in STRATEGIES:
        raise BuildError(f"unknown incremental_strategy {strategy!r}; use one of: {', '.join(STRATEGIES)}")
    if strategy != "append" and not node.config.get("unique_key"):
        raise BuildError(f"incremental_strategy {strategy!r} needs a unique_key")
    return strategy


def unique_key_of(node: Node) -> list[str]:
    key = node.config.get("unique_key")
    if not key:
        return []
    return [key] if isinstance(key, str) else [str(k) for k in key]


def _incremental(adapter: Adapter, node: Node, select_sql: str) -> Outcome:
    relation = node.relation
    assert relation is not None
    strategy = strategy_of(node)
    keys = unique_key_of(node)
    new_rows = Relation(None, relation.schema, relation.identifier + NEW_ROWS_SUFFIX)
    new_table = exp.Table(this=exp.to_identifier(new_rows.identifier, quoted=True))
    with adapter.transaction():
        adapter.execute(exp.Drop(tables=[new_table.copy()], kind="TABLE", exists=True))
        adapter.execute(_create(new_rows, "table", _verbatim(select_sql), temporary=True))
        target_columns = [name for name, _ in adapter.columns(relation)]
        new_columns = {name.lower() for name, _ in _temp_columns(adapter, new_rows.identifier)}
        columns = [c for c in target_columns if c.lower() in new_columns]
        missing = [
            k for k in keys if k.lower() not in new_columns or k.lower() not in {c.lower() for c in columns}
        ]
        if missing:
            raise BuildError(
                f"unique_key column(s) {', '.join(missing)} are not in both the model and {relation.identifier}"
            )
        if strategy == "merge":
            _check_unique(adapter, new_table, keys, node)
        if strategy == "append":
            result = adapter.execute(_insert(relation, new_table, columns))
        elif strategy == "merge" and adapter.supports_merge:
            result = adapter.execute(_merge(relation, new_table, columns, keys))
        else:
            adapter.execute(_delete_matching(relation, new_table, keys))
            result = adapter.execute(_insert(relation, new_table, columns))
        adapter.execute(exp.Drop(tables=[new_table.copy()], kind="TABLE", exists=True))
    return Outcome(f"{strategy.upper()}", result.rowcount)


def _temp_columns(adapter: Adapter, identifier: str) -> list[tuple[str, str]]:
    query = exp.select("*").from_(exp.Table(this=exp.to_identifier(identifier, quoted=True))).limit(0)
    return [(name, "") for name in adapter.execute(query, fetch=True).columns]


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


def _insert(relation: Relation, new_table: exp.Table, columns: list[str]) -> exp.Insert:
    select = exp.select(*[exp.column(c, quoted=True) for c in columns]).from_(new_table.copy())
    return exp.Insert(
        this=exp.Schema(
            this=relation.table(), expressions=[exp.to_identifier(c, quoted=True) for c in columns]
        ),
        expression=select,
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


__all__ = ["BuildError", "Outcome", "WarehouseError", "materialize"]
