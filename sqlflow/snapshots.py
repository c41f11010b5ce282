"""Snapshots: dbt's type-2 slowly changing dimensions, as sqlglot statements.

A snapshot keeps every version of each row of a SELECT, keyed by `unique_key`. Each version
carries dbt's meta columns: `dbt_scd_id` (a hash of the key and the version's timestamp),
`dbt_updated_at`, `dbt_valid_from` and `dbt_valid_to` (NULL, or `dbt_valid_to_current`, while
the version is current), plus `dbt_is_deleted` with `hard_deletes='new_record'`.

The first run builds the table under a temporary name and swaps it in, as a table model does.
A later run works in one transaction: the SELECT is staged into a temporary table, new source
columns are added to the snapshot, changed rows are closed, deleted keys are handled as
configured and new versions are inserted. A failure rolls everything back, so the snapshot keeps
exactly the rows it had. A run without source changes changes nothing.

Every statement is a sqlglot expression with quoted identifiers, generated in the adapter's
dialect; the SELECT itself is embedded verbatim. Nothing here depends on the warehouse's name:
the statements (UPDATE ... FROM, INSERT ... SELECT, NOT EXISTS, IS DISTINCT FROM, ALTER TABLE
ADD COLUMN, MD5) are common to DuckDB and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .adapters.base import Adapter
from .lazy import exp, sqlglot
from .materializations import TMP_SUFFIX, BuildError, Outcome, _create, _drop, _verbatim
from .nodes import Relation

STRATEGIES = ("timestamp", "check")
HARD_DELETES = ("ignore", "invalidate", "new_record")
# dbt's names of the columns a snapshot adds; `snapshot_meta_column_names` renames them.
META_COLUMNS = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to", "dbt_is_deleted")
STAGING_SUFFIX = "__sqlflow_snapshot"
# Aliases of the staged SELECT and of the snapshot table in every statement.
SOURCE = "source"
SNAPSHOT = "snapshot"

_STRATEGY_HELP = "'timestamp' (with updated_at) or 'check' (with check_cols)"


@dataclass(frozen=True)
class SnapshotConfig:
    """A snapshot's config, checked: what `materialize_snapshot` needs of it."""

    strategy: str
    unique_key: tuple[str, ...]
    updated_at: str | None
    check_cols: tuple[str, ...] | None  # None: every column of the SELECT ('all')
    hard_deletes: str
    # dbt's meta column name -> the name used in the table.
    meta: dict[str, str] = field(default_factory=dict)
    valid_to_current: str | None = None  # an SQL expression, as the user wrote it


# --------------------------------------------------------------------------- config


def check_snapshot_config(config: Mapping[str, Any], *, dialect: str | None = None) -> str | None:
    """A message describing the first problem with a snapshot's config, or None when it is valid.

    With `dialect`, `dbt_valid_to_current` is also parsed as an SQL expression of that dialect.
    """
    try:
        read_snapshot_config(config, dialect=dialect)
    except BuildError as exc:
        return str(exc)
    return None


def read_snapshot_config(config: Mapping[str, Any], *, dialect: str | None = None) -> SnapshotConfig:
    """The checked config; a missing or invalid key raises `BuildError` naming it and its valid values."""
    strategy = config.get("strategy")
    if strategy is None:
        raise BuildError(f"snapshot config 'strategy' is missing; use {_STRATEGY_HELP}")
    if strategy not in STRATEGIES:
        raise BuildError(f"snapshot config 'strategy' is {strategy!r}; use {_STRATEGY_HELP}")

    unique_key = _names(config.get("unique_key"))
    if not unique_key:
        raise BuildError(
            "snapshot config 'unique_key' is "
            + ("missing" if config.get("unique_key") is None else f"{config.get('unique_key')!r}")
            + "; set it to a column name or a list of column names that identify a row"
        )

    updated_at = config.get("updated_at")
    if updated_at is not None and (not isinstance(updated_at, str) or not updated_at.strip()):
        raise BuildError(
            f"snapshot config 'updated_at' is {updated_at!r}; set it to the name of a timestamp column"
        )
    if strategy == "timestamp" and updated_at is None:
        raise BuildError(
            "snapshot config 'updated_at' is missing; strategy 'timestamp' needs the name of a "
            "timestamp column that changes whenever the row does (or use strategy 'check' with check_cols)"
        )

    check_cols: tuple[str, ...] | None = None
    if strategy == "check":
        raw = config.get("check_cols")
        if raw == "all":
            check_cols = None
        else:
            check_cols = _names(raw) if not isinstance(raw, str) else None
            if not check_cols:
                raise BuildError(
                    "snapshot config 'check_cols' is "
                    + ("missing" if raw is None else f"{raw!r}")
                    + "; strategy 'check' needs a list of column names, or 'all'"
                )

    hard_deletes = _hard_deletes(config)
    meta = _meta_names(config.get("snapshot_meta_column_names"))

    current = config.get("dbt_valid_to_current")
    if current is not None:
        if not isinstance(current, str) or not current.strip():
            raise BuildError(
                f"snapshot config 'dbt_valid_to_current' is {current!r}; set it to an SQL expression "
                "such as \"cast('9999-12-31' as timestamp)\""
            )
        if dialect is not None:
            valid_to_current_expression(current, dialect)
    return SnapshotConfig(
        strategy=strategy,
        unique_key=unique_key,
        updated_at=updated_at,
        check_cols=check_cols,
        hard_deletes=hard_deletes,
        meta=meta,
        valid_to_current=current,
    )


def valid_to_current_expression(text: str, dialect: str) -> exp.Expression:
    """`dbt_valid_to_current` parsed as one SQL expression (not a statement) of `dialect`."""
    problem = "it is not an SQL expression"
    try:
        parsed = sqlglot.parse_one(text, read=dialect)
    except (sqlglot.errors.SqlglotError, ValueError) as exc:
        parsed, problem = None, str(exc).splitlines()[0] if str(exc) else problem
    if parsed is None or isinstance(parsed, (exp.Query, exp.DDL, exp.DML, exp.Command)):
        raise BuildError(
            f"snapshot config 'dbt_valid_to_current' is {text!r}: {problem}; set it to an SQL expression "
            "such as \"cast('9999-12-31' as timestamp)\""
        )
    return parsed


def _names(value: Any) -> tuple[str, ...]:
    """A column name or a list of them; () when the value is neither."""
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    return ()


def _hard_deletes(config: Mapping[str, Any]) -> str:
    hard_deletes = config.get("hard_deletes")
    legacy = config.get("invalidate_hard_deletes")
    if legacy is not None and not isinstance(legacy, bool):
        raise BuildError(
            f"snapshot config 'invalidate_hard_deletes' is {legacy!r}; use true or false "
            "(or hard_deletes: 'ignore', 'invalidate' or 'new_record')"
        )
    if hard_deletes is not None and hard_deletes not in HARD_DELETES:
        raise BuildError(
            f"snapshot config 'hard_deletes' is {hard_deletes!r}; use one of: "
            + ", ".join(repr(h) for h in HARD_DELETES)
        )
    if legacy and hard_deletes not in (None, "invalidate"):
        raise BuildError(
            f"snapshot config sets both 'invalidate_hard_deletes' and hard_deletes={hard_deletes!r}; "
            "keep only 'hard_deletes' ('ignore', 'invalidate' or 'new_record')"
        )
    if legacy:
        return "invalidate"
    return hard_deletes or "ignore"


def _meta_names(value: Any) -> dict[str, str]:
    names = {name: name for name in META_COLUMNS}
    if value is None:
        return names
    if not isinstance(value, Mapping):
        raise BuildError(
            f"snapshot config 'snapshot_meta_column_names' is {value!r}; set it to a mapping from "
            f"{', '.join(META_COLUMNS)} to the column names to use"
        )
    for key, name in value.items():
        if key not in META_COLUMNS:
            raise BuildError(
                f"snapshot config 'snapshot_meta_column_names' has an unknown key {key!r}; "
                f"valid keys: {', '.join(META_COLUMNS)}"
            )
        if not isinstance(name, str) or not name.strip():
            raise BuildError(
                f"snapshot config 'snapshot_meta_column_names' gives {key} the name {name!r}; "
                "use a non-empty column name"
            )
        names[key] = name
    folded = [n.lower() for n in names.values()]
    duplicates = sorted({n for n in names.values() if folded.count(n.lower()) > 1})
    if duplicates:
        raise BuildError(
            f"snapshot config 'snapshot_meta_column_names' uses {', '.join(map(repr, duplicates))} "
            "for more than one meta column; give each a different name"
        )
    return names


# --------------------------------------------------------------------------- building


def materialize_snapshot(
    adapter: Adapter,
    relation: Relation,
    select_sql: str,
    config: dict,
    *,
    existing_kind: str | None,
    dialect_of_select: str,
) -> Outcome:
    """Record the current rows of `select_sql` (a validated SELECT in the adapter's dialect) in the
    snapshot table `relation`. `existing_kind` is what the warehouse holds under that name now
    ('table', 'view' or None); `dialect_of_select` is the dialect the project's SQL is written in,
    used to read `dbt_valid_to_current`.

    A table is updated in place in one transaction; otherwise the snapshot is created (replacing a
    view, which holds no history). Rows inserted are reported in `Outcome.rows`.
    """
    settings = read_snapshot_config(config)
    current = (
        valid_to_current_expression(settings.valid_to_current, dialect_of_select)
        if settings.valid_to_current is not None
        else None
    )
    run = _Run(adapter, relation, settings, current)
    if existing_kind == "table":
        return run.update(select_sql)
    return run.create(select_sql, existing_kind)


@dataclass
class _Columns:
    """The staged SELECT's columns, and the config's columns resolved against them."""

    data: list[tuple[str, str]]  # (name, data type) of every column of the SELECT
    keys: list[str]
    updated_at: str | None
    check: list[str]


class _Run:
    """One snapshot run: the statements, built from the config and the columns found."""

    def __init__(
        self, adapter: Adapter, relation: Relation, settings: SnapshotConfig, current: exp.Expression | None
    ) -> None:
        self.adapter = adapter
        self.relation = relation
        self.settings = settings
        self.current = current
        self.staging = Relation(None, relation.schema, relation.identifier + STAGING_SUFFIX)
        self.meta = dict(settings.meta)  # replaced by the table's own spelling on later runs
        self.now: exp.Expression = exp.Null()

    # ------------------------------------------------------------------ runs

    def create(self, select_sql: str, existing_kind: str | None) -> Outcome:
        adapter, relation = self.adapter, self.relation
        tmp = relation.with_identifier(relation.identifier + TMP_SUFFIX)
        with adapter.transaction():
            columns = self._stage(select_sql)
            self.now = self._snapshot_time()
            version = self._version(SOURCE, columns)
            names = [name for name, _ in columns.data]
            select = exp.select(
                *[_col(name, SOURCE) for name in names],
                *[
                    exp.alias_(value, self.meta[meta], quoted=True)
                    for meta, value in self._new_version_values(columns.keys, version)
                ],
            ).from_(self._staging_table(SOURCE))
            adapter.execute(_drop(tmp, "table"))
            result = adapter.execute(_create(tmp, "table", select))
            adapter.swap(tmp, relation, existing_kind, "table")
            self._drop_staging()
        inserted = result.rowcount or 0
        return Outcome(_message(0, inserted, 0), inserted)

    def update(self, select_sql: str) -> Outcome:
        adapter, settings = self.adapter, self.settings
        with adapter.transaction():
            target_columns = self._target_columns()
            columns = self._stage(select_sql)
            self.now = self._snapshot_time()
            target_names = self._add_new_columns(columns, target_columns)

            changed = self._count(self._close_changed(columns, target_names))
            deleted, recorded = 0, 0
            if settings.hard_deletes == "invalidate":
                deleted = self._count(self._close_deleted(columns, target_names))
            elif settings.hard_deletes == "new_record":
                data = [name for name, _ in target_columns if not self._is_meta(name)]
                recorded = deleted = self._count(self._insert_deletion_records(columns, target_names, data))
                adapter.execute(self._close_deleted(columns, target_names))
            inserted = self._count(self._insert_new_versions(columns, target_names))
            self._drop_staging()
        return Outcome(_message(changed, inserted - changed, deleted), inserted + recorded)

    # ------------------------------------------------------------------ steps

    def _stage(self, select_sql: str) -> _Columns:
        """Run the SELECT once into a temporary table; check the config's columns against it."""
        self._drop_staging()
        self.adapter.execute(_create(self.staging, "table", _verbatim(select_sql), temporary=True))
        data = self.adapter.columns(self.staging, temporary=True)
        names = [name for name, _ in data]
        for meta in self.meta.values():
            clash = _find(meta, names, case_insensitive=self.adapter.case_insensitive)
            if clash is not None:
                raise BuildError(
                    f"the snapshot's SELECT has a column {clash!r}, a name snapshots use for their own "
                    "columns; rename it in the SELECT, or choose other names with snapshot_meta_column_names"
                )
        settings = self.settings
        keys = [self._resolve(key, names, "unique_key") for key in settings.unique_key]
        updated_at = self._resolve(settings.updated_at, names, "updated_at") if settings.updated_at else None
        if settings.strategy != "check":
            check: list[str] = []
        elif settings.check_cols is None:
            check = [name for name in names if name not in keys]
        else:
            check = [self._resolve(name, names, "check_cols") for name in settings.check_cols]
        self._check_keys(keys)
        return _Columns(data, keys, updated_at, check)

    def _target_columns(self) -> list[tuple[str, str]]:
        """The snapshot table's columns; the meta columns must be there (dbt_is_deleted is added)."""
        columns = self.adapter.columns(self.relation)
        names = [name for name, _ in columns]
        missing = []
        for meta, name in self.meta.items():
            found = _find(name, names, case_insensitive=self.adapter.case_insensitive)
            if found is not None:
                self.meta[meta] = found
            elif meta != "dbt_is_deleted":
                missing.append(name)
        if missing:
            raise BuildError(
                f"{self.relation.sql(self.adapter.dialect)} exists but is not a snapshot: it has no "
                f"{', '.join(missing)} column(s). Drop or rename it, or give the snapshot another name"
            )
        return columns

    def _add_new_columns(self, columns: _Columns, target_columns: list[tuple[str, str]]) -> dict[str, str]:
        """ALTER TABLE ADD COLUMN for the SELECT's columns the snapshot lacks (and dbt_is_deleted
        for hard_deletes='new_record'). Returns each SELECT column's name in the snapshot."""
        target_names = [name for name, _ in target_columns]
        mapping: dict[str, str] = {}
        additions: list[tuple[str, exp.DataType]] = []
        for name, data_type in columns.data:
            found = _find(name, target_names, case_insensitive=self.adapter.case_insensitive)
            if found is None:
                additions.append((name, _data_type(data_type, self.adapter.dialect)))
                found = name
            mapping[name] = found
        is_deleted = self.meta["dbt_is_deleted"]
        if self.settings.hard_deletes == "new_record" and is_deleted not in target_names:
            additions.append((is_deleted, exp.DataType.build("varchar")))
        for name, data_type in additions:
            self.adapter.execute(
                exp.Alter(
                    this=self.relation.table(),
                    kind="TABLE",
                    actions=[exp.ColumnDef(this=exp.to_identifier(name, quoted=True), kind=data_type)],
                )
            )
        return mapping

    def _close_changed(self, columns: _Columns, target_names: dict[str, str]) -> exp.Update:
        """End the current version of every key whose row changed, at the new version's timestamp."""
        meta = self.meta
        if columns.updated_at is not None and self.settings.strategy == "timestamp":
            changed: exp.Expression = exp.GT(
                this=_col(columns.updated_at, SOURCE), expression=_col(meta["dbt_updated_at"], SNAPSHOT)
            )
        elif columns.check:
            changed = exp.or_(
                *[
                    exp.NullSafeNEQ(this=_col(target_names[name], SNAPSHOT), expression=_col(name, SOURCE))
                    for name in columns.check
                ]
            )
        else:
            changed = exp.false()
        if self.settings.hard_deletes == "new_record":
            # A key that comes back after a deletion record gets a new version.
            changed = exp.or_(changed, _col(meta["dbt_is_deleted"], SNAPSHOT).eq(exp.Literal.string("True")))
        return exp.Update(
            this=self._target(SNAPSHOT),
            expressions=[_set(meta["dbt_valid_to"], self._version(SOURCE, columns))],
            from_=exp.From(this=self._staging_table(SOURCE)),
            where=exp.Where(
                this=exp.and_(
                    self._key_match(columns, target_names),
                    self._is_current(SNAPSHOT),
                    exp.paren(changed),
                )
            ),
        )

    def _deleted(self, columns: _Columns, target_names: dict[str, str]) -> exp.Expression:
        """The current version of a key the SELECT no longer returns (the snapshot aliased SNAPSHOT)."""
        in_source = (
            exp.select("1").from_(self._staging_table(SOURCE)).where(self._key_match(columns, target_names))
        )
        conditions = [self._is_current(SNAPSHOT), exp.not_(exp.Exists(this=in_source))]
        if self.settings.hard_deletes == "new_record":
            is_deleted = _col(self.meta["dbt_is_deleted"], SNAPSHOT)
            conditions.append(exp.NullSafeNEQ(this=is_deleted, expression=exp.Literal.string("True")))
        return exp.and_(*conditions)

    def _close_deleted(self, columns: _Columns, target_names: dict[str, str]) -> exp.Update:
        """End the current version of every deleted key at the time of this run."""
        return exp.Update(
            this=self._target(SNAPSHOT),
            expressions=[_set(self.meta["dbt_valid_to"], self.now.copy())],
            where=exp.Where(this=self._deleted(columns, target_names)),
        )

    def _insert_deletion_records(
        self, columns: _Columns, target_names: dict[str, str], data: list[str]
    ) -> exp.Insert:
        """hard_deletes='new_record': a current version with dbt_is_deleted 'True' for each deleted key,
        holding the last values seen. Runs before `_close_deleted` ends the versions it copies."""
        meta = self.meta
        now = self.now
        values = [
            ("dbt_scd_id", _hash([_col(meta["dbt_scd_id"], SNAPSHOT), now.copy()])),
            ("dbt_updated_at", now.copy()),
            ("dbt_valid_from", now.copy()),
            ("dbt_valid_to", self._new_valid_to(now)),
            ("dbt_is_deleted", exp.Literal.string("True")),
        ]
        select = (
            exp.select(*[_col(name, SNAPSHOT) for name in data], *[value for _, value in values])
            .from_(self._target(SNAPSHOT))
            .where(self._deleted(columns, target_names))
        )
        return _insert(self.relation, [*data, *[meta[m] for m, _ in values]], select)

    def _insert_new_versions(self, columns: _Columns, target_names: dict[str, str]) -> exp.Insert:
        """A version for every row of the SELECT whose key has no current version: new keys, keys
        whose version was just closed, keys that come back after being deleted."""
        current = (
            exp.select("1")
            .from_(self._target(SNAPSHOT))
            .where(exp.and_(self._key_match(columns, target_names), self._is_current(SNAPSHOT)))
        )
        values = self._new_version_values(columns.keys, self._version(SOURCE, columns))
        names = [name for name, _ in columns.data]
        select = (
            exp.select(*[_col(name, SOURCE) for name in names], *[value for _, value in values])
            .from_(self._staging_table(SOURCE))
            .where(exp.not_(exp.Exists(this=current)))
        )
        return _insert(
            self.relation, [*[target_names[n] for n in names], *[self.meta[m] for m, _ in values]], select
        )

    # ------------------------------------------------------------------ expressions

    def _version(self, alias: str, columns: _Columns) -> exp.Expression:
        """A new version's timestamp: the row's updated_at, else the time of this run."""
        if columns.updated_at is not None:
            return _col(columns.updated_at, alias)
        return self.now.copy()

    def _new_version_values(
        self, keys: list[str], version: exp.Expression
    ) -> list[tuple[str, exp.Expression]]:
        values = [
            ("dbt_scd_id", _hash([*[_col(k, SOURCE) for k in keys], version.copy()])),
            ("dbt_updated_at", version.copy()),
            ("dbt_valid_from", version.copy()),
            ("dbt_valid_to", self._new_valid_to(version)),
        ]
        if self.settings.hard_deletes == "new_record":
            values.append(("dbt_is_deleted", exp.Literal.string("False")))
        return values

    def _new_valid_to(self, version: exp.Expression) -> exp.Expression:
        # NULL typed like the version's timestamp (as dbt does), so CREATE TABLE AS gets the right type.
        typed_null = exp.Nullif(this=version.copy(), expression=version.copy())
        if self.current is None:
            return typed_null
        return exp.Coalesce(this=typed_null, expressions=[self.current.copy()])

    def _is_current(self, alias: str) -> exp.Expression:
        valid_to = _col(self.meta["dbt_valid_to"], alias)
        if self.current is None:
            return valid_to.is_(exp.null())
        return exp.paren(exp.or_(valid_to.is_(exp.null()), valid_to.copy().eq(self.current.copy())))

    def _key_match(self, columns: _Columns, target_names: dict[str, str]) -> exp.Expression:
        return exp.and_(*[_col(target_names[k], SNAPSHOT).eq(_col(k, SOURCE)) for k in columns.keys])

    def _target(self, alias: str) -> exp.Table:
        table = self.relation.table()
        table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        return table

    def _staging_table(self, alias: str | None = None) -> exp.Table:
        table = exp.Table(this=exp.to_identifier(self.staging.identifier, quoted=True))
        if alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        return table

    def _is_meta(self, name: str) -> bool:
        return (
            _find(name, list(self.meta.values()), case_insensitive=self.adapter.case_insensitive) is not None
        )

    # ------------------------------------------------------------------ helpers

    def _snapshot_time(self) -> exp.Expression:
        """The run's timestamp, read once so every statement and row of the run agree on it."""
        query = exp.select(exp.cast(exp.CurrentTimestamp(), exp.DataType.build("timestamp")))
        value = self.adapter.execute(query, fetch=True).rows[0][0]
        text = value.isoformat(sep=" ") if isinstance(value, dt.datetime) else str(value)
        return exp.cast(exp.Literal.string(text), exp.DataType.build("timestamp"))

    def _check_keys(self, keys: list[str]) -> None:
        staging = self._staging_table()
        nulls = (
            exp.select(exp.func("count", exp.Star()))
            .from_(staging.copy())
            .where(exp.or_(*[_col(k).is_(exp.null()) for k in keys]))
        )
        count = self.adapter.execute(nulls, fetch=True).rows[0][0]
        if count:
            raise BuildError(
                f"unique_key ({', '.join(keys)}) is null in {count} row(s) of the snapshot's SELECT; "
                "every row needs a key to be tracked. Filter those rows out or fix unique_key"
            )
        duplicates = (
            exp.select(*[_col(k) for k in keys], exp.func("count", exp.Star()))
            .from_(staging.copy())
            .group_by(*[_col(k) for k in keys])
            .having(exp.func("count", exp.Star()) > 1)
            .limit(1)
        )
        rows = self.adapter.execute(duplicates, fetch=True).rows
        if rows:
            sample = ", ".join(f"{k}={v!r}" for k, v in zip(keys, rows[0][:-1], strict=False))
            raise BuildError(
                f"unique_key ({', '.join(keys)}) is not unique in the snapshot's SELECT: {sample} appears "
                f"{rows[0][-1]} times. Deduplicate the SELECT or fix unique_key"
            )

    def _resolve(self, name: str, names: list[str], key: str) -> str:
        # An exact match first, then one differing only in case (an unquoted name folded by the warehouse).
        found = _find(name, names, case_insensitive=True)
        if found is None:
            raise BuildError(
                f"snapshot config '{key}' names {name!r}, which is not a column of the snapshot's SELECT "
                f"(its columns: {', '.join(names)})"
            )
        return found

    def _drop_staging(self) -> None:
        self.adapter.execute(exp.Drop(tables=[self._staging_table()], kind="TABLE", exists=True))

    def _count(self, statement: exp.Expression) -> int:
        """Run a statement; the rows it inserted or updated."""
        return int(self.adapter.execute(statement).rowcount or 0)


def _message(changed: int, new: int, deleted: int) -> str:
    return f"snapshot: {changed} changed, {new} new, {deleted} deleted"


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table, quoted=True)


def _set(name: str, value: exp.Expression) -> exp.EQ:
    # SET takes the bare column name (PostgreSQL rejects a qualified one).
    return exp.EQ(this=_col(name), expression=value)


def _insert(relation: Relation, columns: Sequence[str], select: exp.Select) -> exp.Insert:
    return exp.Insert(
        this=exp.Schema(
            this=relation.table(), expressions=[exp.to_identifier(c, quoted=True) for c in columns]
        ),
        expression=select,
    )


def _hash(parts: list[exp.Expression]) -> exp.Expression:
    """dbt's snapshot_hash_arguments: md5 of the parts cast to text, nulls as '', joined by '|'."""
    pieces = [
        exp.Coalesce(this=exp.cast(part, exp.DataType.build("varchar")), expressions=[exp.Literal.string("")])
        for part in parts
    ]
    joined = pieces[0]
    for piece in pieces[1:]:
        joined = exp.DPipe(this=exp.DPipe(this=joined, expression=exp.Literal.string("|")), expression=piece)
    return exp.MD5(this=joined)


def _find(name: str, names: Sequence[str], *, case_insensitive: bool) -> str | None:
    """`name` as spelled in `names`: an exact match, else (case_insensitive) the one match ignoring case."""
    if name in names:
        return name
    if not case_insensitive:
        return None
    matches = [n for n in names if n.lower() == name.lower()]
    return matches[0] if len(matches) == 1 else None


def _data_type(text: str, dialect: str) -> exp.DataType:
    """A column type as the warehouse reported it, for ALTER TABLE ADD COLUMN."""
    try:
        return exp.DataType.build(text, dialect=dialect, udt=True)
    except (sqlglot.errors.SqlglotError, ValueError):
        return exp.DataType(this=exp.DataType.Type.USERDEFINED, kind=text)


__all__ = [
    "HARD_DELETES",
    "META_COLUMNS",
    "STRATEGIES",
    "SnapshotConfig",
    "check_snapshot_config",
    "materialize_snapshot",
    "read_snapshot_config",
]
