"""Snapshots (SCD type 2) on a real DuckDB file: versions, idempotence, hard deletes, atomicity.

Each test writes a source table with plain SQL, runs `materialize_snapshot` over `select ... from
src` and checks the rows of the snapshot table afterwards. Every statement the snapshot sends is
checked to be a sqlglot expression (none assembled as text).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from sqlglot import exp

from sqlflow.adapters import adapter_for
from sqlflow.errors import WarehouseError
from sqlflow.materializations import BuildError, Outcome
from sqlflow.nodes import Relation
from sqlflow.project import Target
from sqlflow.snapshots import check_snapshot_config, materialize_snapshot

SNAP = Relation(None, "main", "snap")
T1 = dt.datetime(2024, 1, 1)
T2 = dt.datetime(2024, 2, 1)
T3 = dt.datetime(2024, 3, 1)
META = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")
TIMESTAMP = {"strategy": "timestamp", "unique_key": "id", "updated_at": "updated_at"}
CHECK_ALL = {"strategy": "check", "unique_key": "id", "check_cols": "all"}
CHECK_VAL = {"strategy": "check", "unique_key": "id", "check_cols": ["val"]}


class Warehouse:
    """A DuckDB adapter, plain SQL for setting up sources, and snapshot runs."""

    def __init__(self, adapter) -> None:
        self.adapter = adapter
        self.statements: list[exp.Expression] = []
        execute = adapter.execute

        def recording_execute(statement, *, fetch=False):
            assert isinstance(statement, exp.Expression), f"SQL sent as text: {statement!r}"
            self.statements.append(statement)
            return execute(statement, fetch=fetch)

        adapter.execute = recording_execute

    def sql(self, text: str) -> list[tuple]:
        return self.adapter._run(text, fetch=True).rows

    def source(self, rows: list[tuple], columns: str = "id, val, updated_at", table: str = "src") -> None:
        self.sql(f"create or replace table {table} as select * from (values {_values(rows)}) as v({columns})")

    def snapshot(self, config: dict, select: str = "select * from src", relation: Relation = SNAP) -> Outcome:
        existing = self.adapter.list_relations().get(self.adapter.key(relation.schema, relation.identifier))
        return materialize_snapshot(
            self.adapter, relation, select, dict(config), existing_kind=existing, dialect_of_select="duckdb"
        )

    def versions(
        self,
        columns: str = "id, val, dbt_valid_from, dbt_valid_to",
        table: str = "snap",
        order: str = "id, dbt_valid_from, dbt_valid_to nulls last",
    ) -> list[tuple]:
        """Rows of the snapshot, each key's versions in time order."""
        return self.sql(f"select {columns} from {table} order by {order}")

    def relations(self) -> set[str]:
        return {
            name
            for (name,) in self.sql(
                "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
            )
        }

    def now(self) -> dt.datetime:
        return self.sql("select cast(current_timestamp as timestamp)")[0][0]


def _values(rows: list[tuple]) -> str:
    def literal(value) -> str:
        if value is None:
            return "null"
        if isinstance(value, dt.datetime):
            return f"timestamp '{value.isoformat(sep=' ')}'"
        if isinstance(value, str):
            return "'" + value.replace("'", "''") + "'"
        return str(value)

    return ", ".join("(" + ", ".join(literal(v) for v in row) + ")" for row in rows)


@pytest.fixture
def wh(tmp_path: Path):
    target = Target(
        profile_name="proj",
        name="dev",
        type="duckdb",
        schema="main",
        database=None,
        threads=1,
        settings={"path": str(tmp_path / "warehouse.duckdb")},
        profiles_path=tmp_path / "profiles.yml",
    )
    adapter = adapter_for(target)
    adapter.open()
    try:
        yield Warehouse(adapter)
    finally:
        adapter.close()


def md5(*parts) -> str:
    return hashlib.md5("|".join("" if p is None else str(p) for p in parts).encode()).hexdigest()


def assert_no_leftovers(wh: Warehouse) -> None:
    assert not [n for n in wh.relations() if "__sqlflow" in n]
    assert wh.sql("select count(*) from duckdb_tables() where temporary") == [(0,)]


# --------------------------------------------------------------------------- first run


def test_first_snapshot_creates_the_table_with_dbt_columns(wh):
    wh.source([(1, "a", T1), (2, None, T2)])
    outcome = wh.snapshot(TIMESTAMP)
    assert outcome == Outcome("snapshot: 0 changed, 2 new, 0 deleted", 2)
    columns = [
        name
        for (name,) in wh.sql(
            "select column_name from information_schema.columns "
            "where table_name = 'snap' order by ordinal_position"
        )
    ]
    assert columns == ["id", "val", "updated_at", *META]
    assert wh.sql("select table_type from information_schema.tables where table_name = 'snap'") == [
        ("BASE TABLE",)
    ]
    assert wh.versions("id, val, dbt_scd_id, dbt_updated_at, dbt_valid_from, dbt_valid_to") == [
        (1, "a", md5(1, "2024-01-01 00:00:00"), T1, T1, None),
        (2, None, md5(2, "2024-02-01 00:00:00"), T2, T2, None),
    ]
    types = dict(
        wh.sql("select column_name, data_type from information_schema.columns where table_name = 'snap'")
    )
    assert types["dbt_scd_id"] == "VARCHAR"
    assert types["dbt_valid_to"] == types["dbt_valid_from"] == "TIMESTAMP"
    assert_no_leftovers(wh)


def test_first_check_snapshot_uses_the_run_time(wh):
    wh.source([(1, "a", T1)])
    before = wh.now()
    wh.snapshot(CHECK_ALL)
    after = wh.now()
    [(updated_at, valid_from, valid_to, scd_id)] = wh.sql(
        "select dbt_updated_at, dbt_valid_from, dbt_valid_to, dbt_scd_id from snap"
    )
    assert before <= valid_from <= after
    assert updated_at == valid_from
    assert valid_to is None
    assert scd_id == md5(1, wh.sql(f"select cast(timestamp '{valid_from}' as varchar)")[0][0])


def test_snapshot_replaces_a_view_of_the_same_name(wh):
    wh.source([(1, "a", T1)])
    wh.sql("create view snap as select 42 as x")
    wh.snapshot(TIMESTAMP)
    assert wh.sql("select table_type from information_schema.tables where table_name = 'snap'") == [
        ("BASE TABLE",)
    ]
    assert wh.versions() == [(1, "a", T1, None)]


# --------------------------------------------------------------------------- changes


def test_timestamp_change_closes_the_old_version_and_adds_a_new_one(wh):
    wh.source([(1, "a", T1), (2, "b", T1), (3, "c", T1)])
    wh.snapshot(TIMESTAMP)
    # 2 changed with a newer updated_at; 3 changed without one, which the timestamp strategy ignores
    wh.source([(1, "a", T1), (2, "B", T2), (3, "C", T1)])
    outcome = wh.snapshot(TIMESTAMP)
    assert outcome == Outcome("snapshot: 1 changed, 0 new, 0 deleted", 1)
    assert wh.versions("id, val, dbt_updated_at, dbt_valid_from, dbt_valid_to") == [
        (1, "a", T1, T1, None),
        (2, "b", T1, T1, T2),
        (2, "B", T2, T2, None),
        (3, "c", T1, T1, None),
    ]
    assert_no_leftovers(wh)


def test_check_change_closes_the_old_version_at_the_run_time(wh):
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(CHECK_VAL)
    [(first_run,)] = wh.sql("select distinct dbt_valid_from from snap")
    # val of 2 changes; only updated_at of 1 changes, which is not a check column
    wh.source([(1, "a", T2), (2, "B", T1)])
    before = wh.now()
    outcome = wh.snapshot(CHECK_VAL)
    after = wh.now()
    assert outcome == Outcome("snapshot: 1 changed, 0 new, 0 deleted", 1)
    rows = wh.versions("id, val, updated_at, dbt_valid_from, dbt_valid_to, dbt_updated_at")
    assert [r[:3] for r in rows] == [(1, "a", T1), (2, "b", T1), (2, "B", T1)]
    closed, new = rows[1], rows[2]
    assert closed[3] == first_run
    assert before <= closed[4] <= after
    assert new[3] == closed[4] == new[5]  # the new version starts when the old one ends
    assert new[4] is None
    assert rows[0][4] is None


@pytest.mark.parametrize("config", [CHECK_ALL, CHECK_VAL], ids=["all", "cols"])
def test_check_sees_changes_from_and_to_null(wh, config):
    wh.source([(1, None, T1), (2, "b", T1), (3, None, T1)])
    wh.snapshot(config)
    wh.source([(1, "a", T1), (2, None, T1), (3, None, T1)])
    assert wh.snapshot(config) == Outcome("snapshot: 2 changed, 0 new, 0 deleted", 2)
    assert wh.versions("id, val, dbt_valid_to is null") == [
        (1, None, False),
        (1, "a", True),
        (2, "b", False),
        (2, None, True),
        (3, None, True),
    ]


def test_history_of_a_key_changed_twice(wh):
    config = {**TIMESTAMP, "hard_deletes": "invalidate"}
    for val, updated_at in (("a", T1), ("b", T2), ("c", T3)):
        wh.source([(1, val, updated_at), (2, "x", T1)])
        wh.snapshot(config)
    assert wh.versions() == [
        (1, "a", T1, T2),
        (1, "b", T2, T3),
        (1, "c", T3, None),
        (2, "x", T1, None),
    ]


def test_check_strategy_with_updated_at_uses_it_as_the_version_time(wh):
    wh.source([(1, "a", T1)])
    config = {**CHECK_VAL, "updated_at": "updated_at"}
    wh.snapshot(config)
    wh.source([(1, "b", T3)])
    wh.snapshot(config)
    assert wh.versions() == [(1, "a", T1, T3), (1, "b", T3, None)]


@pytest.mark.parametrize(
    "config", [TIMESTAMP, CHECK_ALL, CHECK_VAL], ids=["timestamp", "check-all", "check-cols"]
)
@pytest.mark.parametrize("hard_deletes", ["ignore", "invalidate", "new_record"])
def test_rerun_without_source_changes_changes_nothing(wh, config, hard_deletes):
    config = {**config, "hard_deletes": hard_deletes}
    wh.source([(1, "a", T1), (2, None, T1), (3, "c", None)])  # nulls in check columns and updated_at
    wh.snapshot(config)
    wh.source([(1, "A", T2), (2, None, T1), (4, "d", T1)])  # a change, a delete, a new key
    wh.snapshot(config)
    everything = "*"
    before = wh.versions(everything)
    for _ in range(2):
        outcome = wh.snapshot(config)
        assert outcome == Outcome("snapshot: 0 changed, 0 new, 0 deleted", 0)
        assert wh.versions(everything) == before
    assert_no_leftovers(wh)


def test_new_key_is_inserted(wh):
    wh.source([(1, "a", T1)])
    wh.snapshot(TIMESTAMP)
    wh.source([(1, "a", T1), (2, "b", T2)])
    assert wh.snapshot(TIMESTAMP) == Outcome("snapshot: 0 changed, 1 new, 0 deleted", 1)
    assert wh.versions() == [(1, "a", T1, None), (2, "b", T2, None)]


def test_counts_of_a_mixed_run(wh):
    wh.source([(1, "a", T1), (2, "b", T1), (3, "c", T1), (4, "d", T1)])
    wh.snapshot({**TIMESTAMP, "hard_deletes": "invalidate"})
    wh.source([(1, "A", T2), (2, "B", T2), (3, "c", T1), (5, "e", T1)])
    outcome = wh.snapshot({**TIMESTAMP, "hard_deletes": "invalidate"})
    assert outcome == Outcome("snapshot: 2 changed, 1 new, 1 deleted", 3)


# --------------------------------------------------------------------------- hard deletes


def test_hard_deletes_ignore_keeps_the_version_current(wh):
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(TIMESTAMP)
    wh.source([(1, "a", T1)])
    assert wh.snapshot(TIMESTAMP) == Outcome("snapshot: 0 changed, 0 new, 0 deleted", 0)
    assert wh.versions() == [(1, "a", T1, None), (2, "b", T1, None)]


@pytest.mark.parametrize(
    "deletes",
    [{"hard_deletes": "invalidate"}, {"invalidate_hard_deletes": True}],
    ids=["hard_deletes", "legacy"],
)
def test_hard_deletes_invalidate_ends_the_version(wh, deletes):
    config = {**TIMESTAMP, **deletes}
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(config)
    wh.source([(1, "a", T1)])
    before = wh.now()
    assert wh.snapshot(config) == Outcome("snapshot: 0 changed, 0 new, 1 deleted", 0)
    after = wh.now()
    rows = wh.versions()
    assert rows[0] == (1, "a", T1, None)
    assert rows[1][:3] == (2, "b", T1)
    assert before <= rows[1][3] <= after
    assert "dbt_is_deleted" not in {
        name for (name,) in wh.sql("select column_name from information_schema.columns")
    }


def test_hard_deletes_new_record_adds_a_deleted_version(wh):
    config = {**TIMESTAMP, "hard_deletes": "new_record"}
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(config)
    assert wh.versions("id, dbt_is_deleted") == [(1, "False"), (2, "False")]
    wh.source([(1, "a", T1)])
    assert wh.snapshot(config) == Outcome("snapshot: 0 changed, 0 new, 1 deleted", 1)
    rows = wh.versions("id, val, dbt_valid_from, dbt_valid_to, dbt_updated_at, dbt_is_deleted, dbt_scd_id")
    assert [r[0] for r in rows] == [1, 2, 2]
    assert rows[0][:6] == (1, "a", T1, None, T1, "False")
    old, deleted = rows[1], rows[2]
    assert old[:3] == (2, "b", T1)
    run_time = old[3]
    assert run_time is not None and run_time > T1
    assert old[5] == "False"
    # the deletion record: last values seen, current from the run's time on
    assert deleted[:6] == (2, "b", run_time, None, run_time, "True")
    assert deleted[6] not in (old[6], rows[0][6])


@pytest.mark.parametrize("hard_deletes", ["invalidate", "new_record"])
@pytest.mark.parametrize("config", [TIMESTAMP, CHECK_ALL], ids=["timestamp", "check"])
def test_a_key_that_comes_back_gets_a_new_version(wh, config, hard_deletes):
    config = {**config, "hard_deletes": hard_deletes}
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(config)
    wh.source([(1, "a", T1)])
    wh.snapshot(config)
    wh.source([(1, "a", T1), (2, "back", T3)])
    outcome = wh.snapshot(config)
    assert outcome.rows == 1
    current = wh.sql("select id, val from snap where dbt_valid_to is null order by id")
    assert current == [(1, "a"), (2, "back")]
    if hard_deletes == "new_record":
        assert outcome.message == "snapshot: 1 changed, 0 new, 0 deleted"  # the deletion record is closed
        assert wh.sql("select dbt_is_deleted from snap where id = 2 and dbt_valid_to is null") == [("False",)]
        assert wh.sql("select count(*) from snap where id = 2 and dbt_is_deleted = 'True'") == [(1,)]
    else:
        assert outcome.message == "snapshot: 0 changed, 1 new, 0 deleted"
    assert wh.sql("select count(*) from snap where id = 2") == [(3 if hard_deletes == "new_record" else 2,)]
    before = wh.versions("*")
    assert wh.snapshot(config).rows == 0
    assert wh.versions("*") == before


# --------------------------------------------------------------------------- failures keep the old rows


def _two_versions(wh) -> list[tuple]:
    wh.source([(1, 10, T1), (2, 20, T1)])
    wh.snapshot(TIMESTAMP)
    wh.source([(1, 10, T1), (2, 21, T2)])
    wh.snapshot(TIMESTAMP)
    return wh.versions("*")


@pytest.mark.parametrize(
    "select",
    [
        "select id, val // 0 as val, updated_at from src",  # fails while running
        "select id, val, updated_at, no_such_column from src",
    ],
    ids=["division-by-zero", "missing-column"],
)
def test_failing_select_leaves_the_snapshot_untouched(wh, select):
    before = _two_versions(wh)
    wh.source([(1, 11, T3), (3, 30, T3)])
    with pytest.raises(WarehouseError):
        wh.snapshot({**TIMESTAMP, "hard_deletes": "invalidate"}, select=select)
    assert wh.versions("*") == before
    assert_no_leftovers(wh)


def test_failure_after_versions_were_closed_rolls_everything_back(wh):
    before = _two_versions(wh)
    # val becomes text: rows are closed and a column is added before inserting 'x' into an
    # integer column fails
    wh.source([(1, "x", T3, 1), (2, "21", T2, 2), (4, "40", T3, 4)], "id, val, updated_at, extra")
    config = {**TIMESTAMP, "hard_deletes": "new_record"}
    with pytest.raises(WarehouseError, match="x"):
        wh.snapshot(config)
    kinds = [type(s).__name__ for s in wh.statements]
    assert "Update" in kinds and "Alter" in kinds, kinds  # the failure came after changes were made
    assert wh.versions("*") == before
    assert [
        c for (c,) in wh.sql("select column_name from information_schema.columns where table_name = 'snap'")
    ] == [
        "id",
        "val",
        "updated_at",
        *META,
    ]
    assert_no_leftovers(wh)
    # and the next good run works
    wh.source([(1, 12, T3)])
    assert wh.snapshot(config).message == "snapshot: 1 changed, 0 new, 1 deleted"


def test_failing_first_run_leaves_nothing(wh):
    wh.source([(1, 10, T1)])
    with pytest.raises(WarehouseError):
        wh.snapshot(TIMESTAMP, select="select id, val // 0 as val, updated_at from src")
    assert "snap" not in wh.relations()
    assert_no_leftovers(wh)


def test_duplicate_or_null_keys_are_refused_before_anything_changes(wh):
    wh.source([(1, "a", T1)])
    wh.snapshot(TIMESTAMP)
    before = wh.versions("*")
    wh.source([(1, "a", T2), (1, "b", T2)])
    with pytest.raises(BuildError, match=r"not unique.*id=1 appears 2 times"):
        wh.snapshot(TIMESTAMP)
    wh.source([(1, "a", T2), (None, "b", T2)])
    with pytest.raises(BuildError, match=r"null in 1 row"):
        wh.snapshot(TIMESTAMP)
    assert wh.versions("*") == before
    assert_no_leftovers(wh)


def test_a_table_that_is_not_a_snapshot_is_left_alone(wh):
    wh.source([(1, "a", T1)])
    wh.sql("create table snap as select 1 as id, 'x' as val")
    with pytest.raises(BuildError, match=r"not a snapshot.*dbt_scd_id"):
        wh.snapshot(TIMESTAMP)
    assert wh.sql("select * from snap") == [(1, "x")]


# --------------------------------------------------------------------------- names and columns


def test_identifiers_that_need_quoting(wh):
    wh.sql('create schema "My Schema"')
    relation = Relation(None, "My Schema", 'snap "x" y')
    columns = '"order id", "it\'s ""v""", "updated at"'
    config = {
        "strategy": "timestamp",
        "unique_key": "order id",
        "updated_at": "updated at",
        "hard_deletes": "new_record",
        "snapshot_meta_column_names": {
            "dbt_valid_from": "valid from",
            "dbt_valid_to": 'valid "to"',
            "dbt_scd_id": "scd id",
            "dbt_updated_at": "select",
            "dbt_is_deleted": "is deleted?",
        },
    }
    wh.source([(1, "a", T1), (2, "b", T1)], columns)
    wh.snapshot(config, relation=relation)
    wh.source([(1, "A", T2)], columns)
    assert wh.snapshot(config, relation=relation) == Outcome("snapshot: 1 changed, 0 new, 1 deleted", 2)
    table = '"My Schema"."snap ""x"" y"'
    rows = wh.versions(
        '"order id", "it\'s ""v""", "valid from", "valid ""to""" is null, "is deleted?", "select"',
        table,
        order='"order id", "valid from"',
    )
    assert [r[:2] + r[3:5] for r in rows] == [
        (1, "a", False, "False"),
        (1, "A", True, "False"),
        (2, "b", False, "False"),
        (2, "b", True, "True"),
    ]
    assert wh.snapshot(config, relation=relation).rows == 0
    assert wh.sql(f"select count(*) from {table}") == [(4,)]
    assert_no_leftovers(wh)


def test_composite_unique_key(wh):
    config = {
        "strategy": "check",
        "unique_key": ["a", "b"],
        "check_cols": ["val"],
        "hard_deletes": "invalidate",
    }
    columns = "a, b, val"
    wh.source([(1, "x", 10), (1, "y", 20), (2, "x", 30)], columns)
    wh.snapshot(config)
    wh.source([(1, "x", 10), (1, "y", 21), (2, "y", 30)], columns)
    assert wh.snapshot(config) == Outcome("snapshot: 1 changed, 1 new, 1 deleted", 2)
    assert wh.sql("select a, b, val from snap where dbt_valid_to is null order by all") == [
        (1, "x", 10),
        (1, "y", 21),
        (2, "y", 30),
    ]
    assert wh.sql("select a, b, val from snap where dbt_valid_to is not null order by all") == [
        (1, "y", 20),
        (2, "x", 30),
    ]
    [(scd_id,)] = wh.sql("select dbt_scd_id from snap where a = 1 and b = 'x'")
    [(valid_from,)] = wh.sql("select cast(dbt_valid_from as varchar) from snap where a = 1 and b = 'x'")
    assert scd_id == md5(1, "x", valid_from)
    assert wh.snapshot(config).rows == 0


@pytest.mark.parametrize("config", [TIMESTAMP, CHECK_ALL], ids=["timestamp", "check-all"])
def test_new_source_column_is_added(wh, config):
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(config)
    wh.sql('create or replace table src as select *, cast(null as decimal(10, 2)) as "new col" from src')
    wh.sql("update src set \"new col\" = 1.5, updated_at = timestamp '2024-03-01' where id = 2")
    outcome = wh.snapshot(config)
    assert outcome == Outcome("snapshot: 1 changed, 0 new, 0 deleted", 1)
    types = dict(
        wh.sql("select column_name, data_type from information_schema.columns where table_name = 'snap'")
    )
    assert types["new col"] == "DECIMAL(10,2)"
    assert wh.versions('id, "new col", dbt_valid_to is null') == [
        (1, None, True),
        (2, None, False),
        (2, 1.5, True),
    ]
    assert wh.snapshot(config).rows == 0


def test_dbt_valid_to_current(wh):
    config = {
        **TIMESTAMP,
        "hard_deletes": "invalidate",
        "dbt_valid_to_current": "cast('9999-12-31' as timestamp)",
    }
    end = dt.datetime(9999, 12, 31)
    wh.source([(1, "a", T1), (2, "b", T1)])
    wh.snapshot(config)
    assert wh.versions() == [(1, "a", T1, end), (2, "b", T1, end)]
    wh.source([(1, "A", T2)])
    assert wh.snapshot(config).message == "snapshot: 1 changed, 0 new, 1 deleted"
    rows = wh.versions()
    assert rows[:3] == [(1, "a", T1, T2), (1, "A", T2, end), (2, "b", T1, rows[2][3])]
    assert rows[2][3] not in (None, end)
    assert wh.snapshot(config).rows == 0


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"unique_key": "id"}, "'strategy' is missing; use 'timestamp' (with updated_at) or 'check'"),
        ({"strategy": "merge", "unique_key": "id"}, "'strategy' is 'merge'; use 'timestamp'"),
        ({"strategy": "timestamp", "updated_at": "u"}, "'unique_key' is missing"),
        ({"strategy": "timestamp", "unique_key": [], "updated_at": "u"}, "'unique_key' is []"),
        ({"strategy": "timestamp", "unique_key": "id"}, "'updated_at' is missing"),
        ({"strategy": "check", "unique_key": "id"}, "'check_cols' is missing; strategy 'check' needs a list"),
        ({"strategy": "check", "unique_key": "id", "check_cols": "val"}, "'check_cols' is 'val'"),
        (
            {**TIMESTAMP, "hard_deletes": "drop"},
            "'hard_deletes' is 'drop'; use one of: 'ignore', 'invalidate', 'new_record'",
        ),
        (
            {**TIMESTAMP, "invalidate_hard_deletes": "yes"},
            "'invalidate_hard_deletes' is 'yes'; use true or false",
        ),
        (
            {**TIMESTAMP, "invalidate_hard_deletes": True, "hard_deletes": "new_record"},
            "sets both 'invalidate_hard_deletes' and hard_deletes='new_record'",
        ),
        (
            {**TIMESTAMP, "snapshot_meta_column_names": {"valid_from": "x"}},
            "unknown key 'valid_from'; valid keys: dbt_scd_id",
        ),
        (
            {**TIMESTAMP, "snapshot_meta_column_names": {"dbt_valid_from": "v", "dbt_valid_to": "V"}},
            "for more than one meta column",
        ),
        ({**TIMESTAMP, "dbt_valid_to_current": "select 1"}, "'dbt_valid_to_current' is 'select 1'"),
        ({**TIMESTAMP, "dbt_valid_to_current": "cast('9999' as"}, "'dbt_valid_to_current' is"),
    ],
)
def test_config_problems(wh, config, expected):
    problem = check_snapshot_config(config, dialect="duckdb")
    assert problem is not None and expected in problem
    wh.source([(1, "a", T1)])
    with pytest.raises(BuildError) as raised:
        wh.snapshot(config)
    assert expected in str(raised.value)
    assert "snap" not in wh.relations()


@pytest.mark.parametrize(
    "config",
    [
        TIMESTAMP,
        CHECK_ALL,
        {**CHECK_VAL, "unique_key": ["id", "val"], "hard_deletes": "new_record"},
        {**TIMESTAMP, "invalidate_hard_deletes": True, "hard_deletes": "invalidate"},
        {**TIMESTAMP, "invalidate_hard_deletes": False, "dbt_valid_to_current": "'9999-12-31'"},
    ],
)
def test_valid_configs(config):
    assert check_snapshot_config(config) is None
    assert check_snapshot_config(config, dialect="duckdb") is None


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({**TIMESTAMP, "unique_key": "nope"}, "'unique_key' names 'nope', which is not a column"),
        ({**TIMESTAMP, "updated_at": "nope"}, "'updated_at' names 'nope'"),
        ({**CHECK_VAL, "check_cols": ["val", "nope"]}, "'check_cols' names 'nope'"),
    ],
)
def test_config_columns_must_be_in_the_select(wh, config, expected):
    wh.source([(1, "a", T1)])
    with pytest.raises(BuildError, match=expected) as raised:
        wh.snapshot(config)
    assert "id, val, updated_at" in str(raised.value)
    assert "snap" not in wh.relations()
    assert_no_leftovers(wh)


def test_config_column_names_ignore_case_where_the_select_folded_them(wh):
    wh.source([(1, "a", T1)])
    wh.snapshot({"strategy": "timestamp", "unique_key": "ID", "updated_at": "Updated_At"})
    assert wh.versions() == [(1, "a", T1, None)]


def test_select_with_a_meta_column_name_is_refused(wh):
    wh.source([(1, "a", T1)])
    with pytest.raises(BuildError, match=r"'dbt_valid_from'.*snapshot_meta_column_names"):
        wh.snapshot(TIMESTAMP, select="select *, updated_at as dbt_valid_from from src")


# --------------------------------------------------------------------------- snapshot files and commands

SNAPSHOT_PROJECT = {
    "seeds/raw_people.csv": "id,name,updated_at\n1,ada,2024-01-01 00:00:00\n2,grace,2024-01-01 00:00:00\n",
    "models/people.sql": "select * from {{ ref('raw_people') }}\n",
    "snapshots/people_history.sql": """\
        -- text outside the block is ignored, as in dbt
        {% snapshot people_history %}
        {{ config(unique_key='id', strategy='timestamp', updated_at='updated_at') }}
        select * from {{ ref('people') }}
        {% endsnapshot %}
        """,
    "snapshots/schema.yml": """\
        snapshots:
          - name: people_history
            columns:
              - name: id
                data_tests: [not_null]
        """,
}


def _results(project) -> dict[str, dict]:
    import json

    data = json.loads((project.root / "target/run_results.json").read_text())
    return {r["unique_id"]: r for r in data["results"]}


def test_build_records_a_changed_row_as_a_new_version(make_project):
    project = make_project(SNAPSHOT_PROJECT)
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    order = list(_results(project))
    assert order.index("model.proj.people") < order.index("snapshot.proj.people_history")
    assert _results(project)["test.proj.not_null_people_history_id"]["status"] == "pass"
    project.write(
        "seeds/raw_people.csv",
        "id,name,updated_at\n1,ada,2024-01-01 00:00:00\n2,grace h,2024-02-01 00:00:00\n",
    )
    assert project.cli("build").exit_code == 0
    rows = project.query(
        "select id, name, cast(dbt_valid_from as varchar), cast(dbt_valid_to as varchar) "
        "from people_history order by id, dbt_valid_from"
    )
    assert rows == [
        (1, "ada", "2024-01-01 00:00:00", None),
        (2, "grace", "2024-01-01 00:00:00", "2024-02-01 00:00:00"),
        (2, "grace h", "2024-02-01 00:00:00", None),
    ]
    # the snapshot command alone, with nothing changed, adds nothing
    result = project.cli("snapshot")
    assert result.exit_code == 0, result.output
    assert list(_results(project)) == ["snapshot.proj.people_history"]
    assert project.scalar("select count(*) from people_history") == 3


def test_snapshot_from_yaml_and_target_schema(make_project):
    project = make_project(
        {
            "seeds/raw_people.csv": "id,name\n1,ada\n",
            "snapshots/schema.yml": """\
                snapshots:
                  - name: people_versions
                    relation: ref('raw_people')
                    config:
                      unique_key: id
                      strategy: check
                      check_cols: all
                      target_schema: history
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert project.query("select id, name from history.people_versions") == [(1, "ada")]


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (
            "\n{% snapshot s %}\n{{ config(unique_key='id', strategy='sometimes') }}\nselect 1 as id\n{% endsnapshot %}\n",
            "snapshot s:",
            2,
        ),
        ("select 1 as id\n", "no snapshot in this file", None),
        (
            "{% snapshot s %}\n{{ config(unique_key='id', strategy='check') }}\nselect 1 as id\n{% endsnapshot %}\n",
            "check_cols",
            1,
        ),
    ],
)
def test_bad_snapshot_files_are_user_errors(make_project, text, message, line):
    project = make_project({"snapshots/s.sql": text})
    result = project.cli("build")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert ("snapshots/s.sql:" + str(line) if line else "snapshots/s.sql") in result.output
    assert "Traceback" not in result.output


def test_yaml_snapshot_next_to_data_tests_in_the_same_file(make_project):
    project = make_project(
        {
            "seeds/raw_people.csv": "id,name\n1,ada\n",
            "snapshots/_snapshots.yml": """\
                snapshots:
                  - name: people_versions
                    relation: ref('raw_people')
                    config: {unique_key: id, strategy: check, check_cols: all}
                    columns:
                      - name: id
                        data_tests: [unique]
                """,
        }
    )
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    assert (project.root / "target/compiled/proj/snapshots/_snapshots.yml/people_versions.sql").exists()
