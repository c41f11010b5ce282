"""Seed column types and values: what dbt-core 1.10 + dbt-duckdb make of the same CSV files.

Each case below was loaded with `dbt seed` (dbt-core 1.10.23, dbt-duckdb 1.11.1, DuckDB 2.0.1);
its type and values are dbt's. On the cases marked `dbt_fails`, `dbt seed` fails (agate infers a
type DuckDB's reader then cannot read every value as, e.g. `integer` for 3000000000 or `$5`);
sqlflow loads them with the next wider type instead, and those expectations are sqlflow's own.
The same files loaded on PostgreSQL hold the same values.
"""

from __future__ import annotations

import datetime
import math
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from warehouses import Postgres, sqlite_profiles
from warehouses import postgres as postgres  # a fixture

from sqlflow.cli import main

NAN, INF = float("nan"), float("inf")
D, TS = datetime.date, datetime.datetime


@dataclass
class Case:
    name: str
    lines: list[str]  # the CSV under its header `v`
    type: str  # DuckDB's information_schema name
    values: list[Any]
    dbt_fails: bool = False


CASES = [
    # whole numbers: integer while they fit, as dbt-duckdb
    Case("small_int", ["1", "2", "-3"], "INTEGER", [1, 2, -3]),
    Case("int32_bounds", ["-2147483648", "2147483647"], "INTEGER", [-2147483648, 2147483647]),
    Case("plus_sign", ["+5", "6"], "INTEGER", [5, 6]),
    Case("one_zero", ["1", "0"], "INTEGER", [1, 0]),
    Case("leading_zeros", ["01234", "00501"], "INTEGER", [1234, 501]),
    Case("quoted_number", ['"123"', '"456"'], "INTEGER", [123, 456]),
    Case("padded_int", [" 5", "6 ", " 7 "], "INTEGER", [5, 6, 7]),
    Case("underscores", ["1_000", "2"], "INTEGER", [1000, 2]),
    Case("zero_fraction", ["1.0", "2.00"], "INTEGER", [1, 2]),
    Case("exponent_whole", ["1e3", "2e2"], "INTEGER", [1000, 200]),
    Case("compact_date", ["20240131", "20231201"], "INTEGER", [20240131, 20231201]),
    # ...past 32 bits dbt-duckdb fails; sqlflow widens
    Case("above_int32", ["1", "3000000000"], "BIGINT", [1, 3000000000], dbt_fails=True),
    Case("below_int32", ["-2147483649", "1"], "BIGINT", [-2147483649, 1], dbt_fails=True),
    Case("int64_max", ["9223372036854775807", "1"], "BIGINT", [9223372036854775807, 1], dbt_fails=True),
    Case(
        "above_int64",
        ["1", "99999999999999999999"],
        "DECIMAL(38,0)",
        [1, 99999999999999999999],
        dbt_fails=True,
    ),
    Case("exponent_above_int64", ["1e27", "2"], "DECIMAL(38,0)", [10**27, 2], dbt_fails=True),
    # ...and past 28 digits (agate's precision) they count as having decimal places: float8
    Case("above_28_digits", ["1", "1" * 29], "DOUBLE", [1.0, float("1" * 29)]),
    Case("exponent_above_28_digits", ["1e30", "2"], "DOUBLE", [1e30, 2.0]),
    # numbers with a fraction
    Case("decimals", ["1.5", "2.25"], "DOUBLE", [1.5, 2.25]),
    Case("mixed_int_decimal", ["1", "2.5"], "DOUBLE", [1.0, 2.5]),
    Case("bare_points", [".5", "1.", "-.25"], "DOUBLE", [0.5, 1.0, -0.25]),
    Case("scientific", ["1e5", "2.5E-3"], "DOUBLE", [100000.0, 0.0025]),
    Case("padded_decimal", [" 1.5", "2.5 "], "DOUBLE", [1.5, 2.5]),
    Case("long_decimal", ["0.123456789012345678", "1"], "DOUBLE", [0.12345678901234568, 1.0]),
    Case("nan", ["NaN", "1.5"], "DOUBLE", [NAN, 1.5]),
    Case("infinities", ["Infinity", "-inf", "2.5"], "DOUBLE", [INF, -INF, 2.5]),
    Case("nan_alone", ["NaN", "nan"], "DOUBLE", [NAN, NAN], dbt_fails=True),
    Case("whole_and_nan", ["1", "NaN"], "DOUBLE", [1.0, NAN], dbt_fails=True),
    # what agate reads as a number and DuckDB does not: text
    Case("thousands", ['"1,234"', '"5,678"'], "VARCHAR", ["1,234", "5,678"], dbt_fails=True),
    Case("currency", ['"$1,234"', "-$5"], "VARCHAR", ["$1,234", "-$5"], dbt_fails=True),
    Case("percent", ["50%", "12.5%"], "VARCHAR", ["50%", "12.5%"], dbt_fails=True),
    Case("hex", ["0x10", "0x20"], "VARCHAR", ["0x10", "0x20"]),
    Case("parenthesized", ["(5)", "6"], "VARCHAR", ["(5)", "6"]),
    Case("lone_point", [".", "1"], "VARCHAR", [".", "1"]),
    # booleans: true/false only
    Case("booleans", ["true", "false"], "BOOLEAN", [True, False]),
    Case("boolean_case", ["True", "FALSE"], "BOOLEAN", [True, False]),
    Case("t_f", ["t", "f"], "VARCHAR", ["t", "f"]),
    Case("yes_no", ["yes", "no"], "VARCHAR", ["yes", "no"]),
    Case("boolean_and_int", ["true", "1"], "VARCHAR", ["true", "1"]),
    Case("padded_boolean", [" true", "false "], "VARCHAR", [" true", "false "], dbt_fails=True),
    # dates
    Case("dates", ["2024-01-31", "2023-12-01"], "DATE", [D(2024, 1, 31), D(2023, 12, 1)]),
    Case("unpadded_date", ["2024-1-5", "2024-12-01"], "DATE", [D(2024, 1, 5), D(2024, 12, 1)]),
    Case("padded_date", [" 2024-01-31", "2024-02-01 "], "DATE", [D(2024, 1, 31), D(2024, 2, 1)]),
    Case("impossible_date", ["2024-01-31", "2023-02-29"], "VARCHAR", ["2024-01-31", "2023-02-29"]),
    Case("us_date", ["01/31/2024", "12/01/2023"], "VARCHAR", ["01/31/2024", "12/01/2023"]),
    # timestamps: `Y-M-D H:M:S` in every row, or ISO 8601 with a T in every row
    Case(
        "timestamps",
        ["2024-01-31 10:20:30", "2024-1-5 1:2:3"],
        "TIMESTAMP",
        [TS(2024, 1, 31, 10, 20, 30), TS(2024, 1, 5, 1, 2, 3)],
    ),
    Case(
        "iso_timestamps",
        ["2024-01-31T10:20:30", "2024-02-01T00:00"],
        "TIMESTAMP",
        [TS(2024, 1, 31, 10, 20, 30), TS(2024, 2, 1)],
    ),
    Case(
        "iso_fractions",
        ["2024-01-31T10:20:30.123456", "2024-02-01T00:00:00.5", "2024-02-01T00:00:00.1234567"],
        "TIMESTAMP",
        [
            TS(2024, 1, 31, 10, 20, 30, 123456),
            TS(2024, 2, 1, 0, 0, 0, 500000),
            TS(2024, 2, 1, 0, 0, 0, 123456),
        ],
    ),
    Case(
        "iso_offsets",
        ["2024-01-31T10:20:30+02:00", "2024-02-01T00:00:00Z"],
        "TIMESTAMP",
        [TS(2024, 1, 31, 10, 20, 30), TS(2024, 2, 1)],
    ),
    Case(
        "space_fraction",
        ["2024-01-31 10:20:30.123", "2024-02-01 00:00:00"],
        "VARCHAR",
        ["2024-01-31 10:20:30.123", "2024-02-01 00:00:00"],
    ),
    Case("space_offset", ["2024-01-31 10:20:30+02:00"], "VARCHAR", ["2024-01-31 10:20:30+02:00"]),
    Case("space_no_seconds", ["2024-01-31 10:20"], "VARCHAR", ["2024-01-31 10:20"]),
    Case(
        "date_and_timestamp",
        ["2024-01-31", "2024-02-01 10:00:00"],
        "VARCHAR",
        ["2024-01-31", "2024-02-01 10:00:00"],
    ),
    Case(
        "both_timestamp_forms",
        ["2024-01-31 10:00:00", "2024-02-01T10:00:00"],
        "VARCHAR",
        ["2024-01-31 10:00:00", "2024-02-01T10:00:00"],
    ),
    Case("time_of_day", ["10:20:30", "23:59:59"], "VARCHAR", ["10:20:30", "23:59:59"]),
    # empty fields, null words, text
    Case("with_empty", ["1", "", "3"], "INTEGER", [1, None, 3]),
    Case("all_empty", ["", ""], "INTEGER", [None, None]),
    Case("quoted_empty", ["a", '""', ""], "VARCHAR", ["a", None, None]),
    Case("null_word", ["1", "null", "3"], "VARCHAR", ["1", "null", "3"], dbt_fails=True),
    Case("null_words_in_text", ["a", "null", "NULL"], "VARCHAR", ["a", "null", "NULL"]),
    Case("na", ["1", "NA"], "VARCHAR", ["1", "NA"]),
    Case(
        "quoted_text",
        ['"hello, world"', '"say ""hi"""', "plain"],
        "VARCHAR",
        ["hello, world", 'say "hi"', "plain"],
    ),
    Case("padded_text", [" a", "b ", " c "], "VARCHAR", [" a", "b ", " c "]),
    Case("unicode", ["héllo", "日本"], "VARCHAR", ["héllo", "日本"]),
    Case("numbers_then_text", ["1", "2", "x"], "VARCHAR", ["1", "2", "x"]),
]

POSTGRES_TYPES = {
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "DECIMAL(38,0)": "numeric",
    "DOUBLE": "double precision",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp without time zone",
    "VARCHAR": "character varying",
}


def seed_files() -> dict[str, str]:
    return {f"seeds/{case.name}.csv": "v\n" + "\n".join(case.lines) + "\n" for case in CASES}


def same(found: list[Any], wanted: list[Any]) -> bool:
    def equal(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return type(a) is type(b) and a == b if not isinstance(a, Decimal) else a == Decimal(b)

    return len(found) == len(wanted) and all(equal(a, b) for a, b in zip(found, wanted, strict=True))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """One project holding every case, seeded once on DuckDB."""
    from conftest import Project

    project = Project(tmp_path_factory.mktemp("seed_types") / "proj")
    project.root.mkdir()
    project.write("sqlflow.yml", "name: proj\nprofile: proj\n")
    project.write(
        "profiles.yml",
        "proj:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: warehouse.duckdb\n",
    )
    for relative, text in seed_files().items():
        project.write(relative, text)
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    return project


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_seed_type_and_values_on_duckdb(seeded, case: Case):
    found_type = seeded.scalar(
        f"select data_type from information_schema.columns where table_name = '{case.name}' and column_name = 'v'"
    )
    values = [v for (v,) in seeded.query(f'select v from "{case.name}" order by rowid')]
    assert found_type == case.type
    assert same(values, case.values), values


def test_the_same_files_hold_the_same_values_on_postgres(make_project, postgres: Postgres):
    project = make_project(seed_files(), profiles=postgres.profiles())
    result = CliRunner().invoke(main, ["seed", "--project-dir", str(project.root)])
    assert result.exit_code == 0, result.output
    wrong = {}
    for case in CASES:
        found_type = postgres.scalar(
            "select data_type from information_schema.columns where table_schema = %s and table_name = %s",
            postgres.schema,
            case.name,
        )
        values = [
            v for (v,) in postgres.query(f'select v from "{postgres.schema}"."{case.name}" order by ctid')
        ]
        if found_type != POSTGRES_TYPES[case.type] or not same(values, case.values):
            wrong[case.name] = (found_type, values)
    assert not wrong


def test_every_row_decides_the_type_not_a_sample(make_project):
    # agate (and so dbt) reads every row; DuckDB's sniffer samples 20,480: BIGINT, then failed on 'x'
    project = make_project({"seeds/late.csv": "v\n" + "1\n" * 30000 + "x\n"})
    assert project.cli("seed").exit_code == 0
    assert project.query("select data_type from information_schema.columns where table_name = 'late'") == [
        ("VARCHAR",)
    ]
    assert project.query("select count(*), max(v) from late") == [(30001, "x")]


def test_column_types_override_the_inferred_types(make_project):
    settings = """\
        name: proj
        profile: proj
        seeds:
          proj:
            codes:
              +column_types: {zip: varchar, amount: "decimal(10,2)", big: bigint, FLAG: varchar}
        """
    csv = "zip,amount,big,flag,n\n01234,1.5,1,true,7\n00501,2,3000000000,false,8\n"
    project = make_project({"seeds/codes.csv": csv}, settings=settings)
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    types = dict(
        project.query(
            "select column_name, data_type from information_schema.columns where table_name = 'codes'"
        )
    )
    # `FLAG` names `flag` (dbt matches column_types by exact name and would leave it boolean)
    assert types == {
        "zip": "VARCHAR",
        "amount": "DECIMAL(10,2)",
        "big": "BIGINT",
        "flag": "VARCHAR",
        "n": "INTEGER",
    }
    assert project.query("select * from codes order by n") == [
        ("01234", Decimal("1.50"), 1, "true", 7),
        ("00501", Decimal("2.00"), 3000000000, "false", 8),
    ]


def test_header_only_and_blank_lines(make_project):
    project = make_project(
        {
            "seeds/nothing.csv": "a,b\n",
            # blank lines between rows of several columns are skipped, as DuckDB's reader does
            "seeds/gaps.csv": "a,b\n1,x\n\n2,y\n\n",
        }
    )
    assert project.cli("seed").exit_code == 0
    columns = "select column_name, data_type from information_schema.columns where table_name = '{}'"
    assert project.query(columns.format("nothing")) == [("a", "INTEGER"), ("b", "INTEGER")]
    assert project.scalar("select count(*) from nothing") == 0
    assert project.query(columns.format("gaps")) == [("a", "INTEGER"), ("b", "VARCHAR")]
    assert project.query("select * from gaps order by a") == [(1, "x"), (2, "y")]


def test_quote_columns_keeps_the_header_names_either_way(make_project):
    # On DuckDB quoted and unquoted names keep their case alike; dbt-duckdb's unquoted
    # `create table` fails on names that need quotes, which sqlflow always quotes.
    settings = """\
        name: proj
        profile: proj
        seeds:
          proj:
            quoted: {+quote_columns: true}
            unquoted: {+quote_columns: false}
        """
    csv = "Name,lower_name,MiXeD,A b,select\n1,2,3,4,5\n"
    project = make_project({"seeds/quoted.csv": csv, "seeds/unquoted.csv": csv}, settings=settings)
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    for table in ("quoted", "unquoted"):
        columns = project.query(
            f"select column_name from information_schema.columns where table_name = '{table}' order by ordinal_position"
        )
        assert [c for (c,) in columns] == ["Name", "lower_name", "MiXeD", "A b", "select"]


def test_sqlite_has_no_nan_and_reads_infinities_from_numbers(make_project):
    # SQLite stores NaN as NULL and casts the text 'Infinity' to 0.0: the literals say what it can hold
    project = make_project({"seeds/floats.csv": "v\nInfinity\n-inf\nNaN\n2.5\n"}, profiles=sqlite_profiles())
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    with sqlite3.connect(project.root / "warehouse.sqlite") as connection:
        rows = connection.execute('select v from "floats" order by rowid').fetchall()
    assert rows == [(INF,), (-INF,), (None,), (2.5,)]


def test_empty_and_repeated_header_names_are_named_as_dbt_names_them(make_project):
    # agate names an unnamed column by its letter and numbers repeats; `A` repeats `a` for DuckDB
    project = make_project({"seeds/names.csv": "a,a,,A, b \n1,2,3,4,5\n"})
    result = project.cli("seed")
    assert result.exit_code == 0, result.output
    columns = project.query(
        "select column_name from information_schema.columns where table_name = 'names' order by ordinal_position"
    )
    assert [c for (c,) in columns] == ["a", "a_2", "c", "A_3", "b"]
    assert project.query("select * from names") == [(1, 2, 3, 4, 5)]
