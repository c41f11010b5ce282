"""Seeds for warehouses without a CSV reader: the file as a typed `SELECT ... FROM (VALUES ...)`.

Column types are inferred the way DuckDB's `read_csv` infers them (an empty field is NULL; a
column whose values are all whole numbers is BIGINT, all numbers DOUBLE, all true/false BOOLEAN,
all ISO dates DATE, all ISO timestamps TIMESTAMP, anything else VARCHAR), so a seed holds the same
values on every warehouse. `column_types` overrides a column's type; its values are then cast
from the text as written in the file.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .lazy import exp, sqlglot

_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_BOOLEAN = {"true", "false"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")
_INT64 = 2**63
# Tried in this order; the first that accepts every non-empty value of a column wins.
_CANDIDATES = ("bigint", "double", "boolean", "date", "timestamp")


@dataclass
class SeedTable:
    columns: list[str]
    types: list[str]  # sqlglot type names, e.g. "bigint"
    rows: list[list[str | None]]  # as written; None for an empty field


def read_seed(path: Path, delimiter: str = ",") -> SeedTable:
    """The header, inferred column types and rows of a seed CSV."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            records = list(csv.reader(handle, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read seed {path.name}: {exc}", path=path) from exc
    if not records or not records[0]:
        raise UserError(f"seed {path.name} has no header row", path=path, line=1)
    header = [name.strip() for name in records[0]]
    rows: list[list[str | None]] = []
    for number, record in enumerate(records[1:], start=2):
        if not record:
            continue  # a blank line
        if len(record) != len(header):
            raise UserError(
                f"seed {path.name}: row has {len(record)} fields, the header has {len(header)}",
                path=path,
                line=number,
            )
        rows.append([value if value != "" else None for value in record])
    types = [_infer([row[i] for row in rows]) for i in range(len(header))]
    return SeedTable(header, types, rows)


def _infer(values: list[str | None]) -> str:
    present = [v.strip() for v in values if v is not None]
    if not present:
        return "varchar"
    for candidate in _CANDIDATES:
        if all(_accepts(candidate, v) for v in present):
            return candidate
    return "varchar"


def _accepts(kind: str, value: str) -> bool:
    if kind == "bigint":
        return bool(_INTEGER.match(value)) and -_INT64 <= int(value) < _INT64
    if kind == "double":
        return bool(_NUMBER.match(value))
    if kind == "boolean":
        return value.lower() in _BOOLEAN
    if kind == "date":
        return bool(_DATE.match(value))
    return bool(_TIMESTAMP.match(value))


def values_select(table: SeedTable, column_types: dict[str, str], dialect: str) -> exp.Query:
    """`SELECT CAST(column1 AS type) AS "name", ... FROM (VALUES ...)`: the seed as one query.

    `column_types` are written in `dialect` (the project's). VALUES columns are named column1,
    column2, ... on PostgreSQL and SQLite alike.
    """
    types: list[exp.DataType] = []
    overridden: list[bool] = []
    lowered = {name.lower(): kind for name, kind in column_types.items()}
    for name, inferred in zip(table.columns, table.types, strict=True):
        wanted = column_types.get(name) or lowered.get(name.lower())
        overridden.append(wanted is not None)
        types.append(_data_type(str(wanted), dialect) if wanted is not None else exp.DataType.build(inferred))

    def literal(value: str | None, inferred: str, override: bool) -> exp.Expression:
        if value is None:
            return exp.Null()
        if override:
            return exp.Literal.string(value)
        if inferred in ("bigint", "double"):
            return exp.Literal.number(value.strip())
        if inferred == "boolean":
            return exp.Boolean(this=value.strip().lower() == "true")
        return exp.Literal.string(value)

    columns = [
        exp.alias_(exp.cast(exp.column(f"column{i + 1}"), kind.copy()), name, quoted=True)
        for i, (name, kind) in enumerate(zip(table.columns, types, strict=True))
    ]
    if not table.rows:
        empty = [
            exp.alias_(exp.cast(exp.Null(), kind.copy()), name, quoted=True)
            for name, kind in zip(table.columns, types, strict=True)
        ]
        return exp.select(*empty).where(exp.false())
    values = exp.Values(
        expressions=[
            exp.Tuple(
                expressions=[
                    literal(value, inferred, override)
                    for value, inferred, override in zip(row, table.types, overridden, strict=True)
                ]
            )
            for row in table.rows
        ],
        alias=exp.TableAlias(this=exp.to_identifier("seed_rows")),
    )
    return exp.select(*columns).from_(values)


def _data_type(text: str, dialect: str) -> exp.DataType:
    try:
        return exp.DataType.build(text, dialect=dialect)
    except (sqlglot.errors.SqlglotError, ValueError) as exc:
        raise UserError(f"column_types: {text!r} is not a {dialect} data type") from exc
