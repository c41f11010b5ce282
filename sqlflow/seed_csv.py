"""Seed CSVs: column types inferred as dbt infers them, and the file as a typed query.

dbt infers a seed's column types with agate, creates the table with them, and has the warehouse
read the file into it (dbt-duckdb: `COPY ... FROM 'file.csv'`), so a value the warehouse cannot
read as the inferred type fails the seed. The rules here are agate's (as configured by
dbt-core 1.10) restricted to what DuckDB's CSV reader then accepts; where dbt-duckdb would fail,
the column gets the next wider type that holds every value instead:

- an empty field is NULL; a column with no value at all is `integer`;
- numbers: `integer` when no value has a fractional part (after dropping trailing zeros: `1.0`,
  `1e3` count as whole) and all fit in 32 bits, else `bigint`, else `decimal(38, 0)` up to 28
  digits; any fractional part, more than 28 whole digits (agate's precision), `NaN` or `inf` make
  the column `double`. Leading zeros, a `+`, spaces around the number and `_` between digits are
  accepted, as DuckDB does. `$`, `%` and thousands separators (which agate strips, and DuckDB
  refuses) leave the column `varchar`;
- `date`: `YYYY-M-D` (one- or two-digit month and day);
- `timestamp`: `YYYY-M-D H:M:S` in every row, or ISO 8601 `YYYY-MM-DDTHH:MM[:SS[.f]]` with an
  optional `Z` or `+HH[:MM]` offset, which is dropped (the wall-clock time is kept) in every row;
- `boolean`: `true` / `false` in any case;
- anything else, mixes of the above, and the word `null` (agate's null, not DuckDB's): `varchar`,
  as written.

DuckDB reads the file itself with these types (`read_csv(..., columns = {...})`, the same reader
as dbt-duckdb's COPY); other warehouses get `values_select`, whose literals hold the values DuckDB
would read. `column_types` overrides a column's type; its values are then cast from the text.
"""

from __future__ import annotations

import csv
import datetime
import math
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, InvalidOperation
from pathlib import Path

from .errors import UserError
from .lazy import exp, sqlglot


def _forms(pattern: str, flags: int = 0) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """`pattern` for one value, and for a column's values joined with NUL (which none of these
    forms holds): one match in C for a whole column, where most columns are decided."""
    flags |= re.ASCII
    return re.compile(pattern, flags), re.compile(rf"(?:{pattern})(?:\x00(?:{pattern}))*", flags)


# What DuckDB trims around a value it reads as a number, date or timestamp.
_SPACE = "[ \t\n\v\f\r]*"
_DIGITS = "[0-9]+(?:_[0-9]+)*"  # `_` between digits, as DuckDB (and Python's Decimal) accept
_MANTISSA = rf"(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})"
# A whole number in DuckDB's integer syntax: no fraction or exponent, the common case.
_WHOLE, _WHOLES = _forms(rf"{_SPACE}[+-]?{_DIGITS}{_SPACE}")
# DuckDB's integer syntax (it rounds a fraction away); its exponent takes no `_`.
_INTEGER_TEXT, _ = _forms(rf"{_SPACE}[+-]?{_MANTISSA}(?:[eE][+-]?[0-9]+)?{_SPACE}")
# DuckDB's double syntax, less what agate's Decimal refuses.
_, _DOUBLES = _forms(
    rf"{_SPACE}[+-]?(?:{_MANTISSA}(?:[eE][+-]?{_DIGITS})?|nan|inf|infinity){_SPACE}", re.IGNORECASE
)
# agate's `%Y-%m-%d` (Python's strptime) as DuckDB reads it: one- or two-digit month and day.
_YMD = "([0-9]{4})-(1[0-2]|0[1-9]|[1-9])-(3[01]|[12][0-9]|0[1-9]|[1-9])"
_DATE, _DATES = _forms(rf"{_SPACE}{_YMD}{_SPACE}")
# agate's `%Y-%m-%d %H:%M:%S`: one- or two-digit fields, no fraction, no offset.
_DATETIME, _DATETIMES = _forms(
    rf"{_SPACE}{_YMD}[ \t]+(2[0-3]|[01][0-9]|[0-9]):([0-5][0-9]|[0-9]):([0-5][0-9]|[0-9]){_SPACE}"
)
# ISO 8601 as both isodate (agate's) and DuckDB read it; DuckDB drops the offset.
_ISO_DATETIME, _ISO_DATETIMES = _forms(
    rf"{_SPACE}([0-9]{{4}})-([0-9]{{2}})-([0-9]{{2}})T([0-9]{{2}}):([0-9]{{2}})"
    rf"(?::([0-9]{{2}})(?:\.([0-9]+))?)?(?:Z|[+-][0-9]{{2}}(?::?[0-9]{{2}})?)?{_SPACE}"
)
_, _BOOLEANS = _forms("true|false", re.IGNORECASE)
_BOOLEAN = {"true": True, "false": False}
_STRIP = " \t\n\v\f\r"
# agate finds a column's decimal places with Decimal.normalize() in Python's default context, and
# counts a number of more whole digits than its precision as having decimal places (float8).
_AGATE_DIGITS = 28
_AGATE_CONTEXT = Context(prec=_AGATE_DIGITS, rounding=ROUND_HALF_EVEN, Emin=-999999, Emax=999999)
_INT32, _INT64 = 2**31, 2**63
_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


@dataclass
class SeedTable:
    columns: list[str]
    types: list[str]  # sqlglot type names, e.g. "integer"
    rows: list[list[str]]  # as written; "" for an empty field (NULL)


def read_seed(path: Path, delimiter: str = ",") -> SeedTable:
    """The header, inferred column types and rows of a seed CSV."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            records = list(csv.reader(handle, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"cannot read seed {path.name}: {exc}", path=path) from exc
    if not records or not records[0]:
        raise UserError(f"seed {path.name} has no header row", path=path, line=1)
    header = column_names(records[0])
    width = len(header)
    rows = records[1:]
    if any(length != width for length in set(map(len, rows))):  # one pass in C when all is well
        # A blank line is skipped, as DuckDB's reader does, but with one column it is an empty
        # field: NULL, again as DuckDB reads it.
        rows = [record or [""] for record in rows] if width == 1 else [record for record in rows if record]
        for number, record in enumerate(records[1:], start=2):
            if record and len(record) != width:
                raise UserError(
                    f"seed {path.name}: row has {len(record)} fields, the header has {width}",
                    path=path,
                    line=number,
                )
    types = [infer_type(column) for column in zip(*rows, strict=True)] if rows else ["integer"] * width
    return SeedTable(header, types, rows)


def column_names(header: list[str]) -> list[str]:
    """The seed's column names, as agate (and so dbt) names them: an empty name is the column's
    letter (`a`, `b`, ..., `aa`), a repeated one gets `_2`, `_3`... Unlike agate, names are trimmed
    of surrounding spaces, and `A` repeats `a` (warehouses compare names ignoring case).
    """
    names: list[str] = []
    taken: set[str] = set()
    for index, written in enumerate(header):
        base = written.strip() or string.ascii_lowercase[index % 26] * (index // 26 + 1)
        name, repeat = base, 1
        while name.lower() in taken:
            repeat += 1
            name = f"{base}_{repeat}"
        names.append(name)
        taken.add(name.lower())
    return names


def infer_type(values: Sequence[str | None]) -> str:
    """The type of a column holding `values` ("" or None: an empty field), as in the module docstring."""
    present = list(filter(None, values))
    if not present:
        return "integer"  # agate's first type takes a column of nulls
    column = "\x00".join(present)
    if column.count("\x00") != len(present) - 1:
        return "varchar"  # a value holds a NUL: no other type has one
    number = _number_type(present, column)
    if number is not None:
        return number
    if _DATES.fullmatch(column) and all(_date(v) is not None for v in set(present)):
        return "date"
    # agate tries its strptime format, then ISO 8601: one of them must read every value
    for one, many in ((_DATETIME, _DATETIMES), (_ISO_DATETIME, _ISO_DATETIMES)):
        if many.fullmatch(column) and all(_datetime(v, (one,)) is not None for v in set(present)):
            return "timestamp"
    if _BOOLEANS.fullmatch(column):
        return "boolean"
    return "varchar"


def _number_type(values: list[str], column: str) -> str | None:
    """integer, bigint, decimal(38, 0) or double when every value is a number DuckDB reads; else None."""
    if _WHOLES.fullmatch(column):
        longest = max(map(len, values))
        if longest <= 9:
            return "integer"  # nine characters hold no number past 999,999,999
        if longest <= _AGATE_DIGITS:
            numbers = list(map(int, values))
            return _integer_type(min(numbers), max(numbers))
    if not _DOUBLES.fullmatch(column):
        return None
    # Numbers, some with a fraction, an exponent, NaN or inf, or long: one by one, as agate reads them.
    exponents = "e" in column or "E" in column  # NaN, inf and infinity have none
    fraction = False  # a value has decimal places: agate's float8
    wide = False  # a value has more whole digits than agate's precision: float8 too
    whole = True  # every value is in DuckDB's integer syntax
    low = high = 0
    for value in values:
        if fraction:  # double, unless agate cannot read an exponent
            if not exponents:
                break
            if ("e" in value or "E" in value) and _decimal(value) is None:
                return None
            continue
        if _WHOLE.fullmatch(value):
            if len(value) > _AGATE_DIGITS and _whole_places(value) > _AGATE_DIGITS:
                wide = True
                continue
            number = int(value)
        elif _INTEGER_TEXT.fullmatch(value):
            decimal = _decimal(value)
            if decimal is None:
                return None
            places, whole_places = _places(decimal)
            if places:
                fraction = True
                continue
            if whole_places > _AGATE_DIGITS:
                wide = True
                continue
            number = int(decimal.to_integral_value(ROUND_HALF_UP))
        else:  # NaN, inf, or an exponent with `_`
            whole = False
            decimal = _decimal(value)
            if decimal is None:
                return None
            if decimal.is_finite():
                places, whole_places = _places(decimal)
                fraction = fraction or places > 0
                wide = wide or whole_places > _AGATE_DIGITS
            continue
        if number < low:
            low = number
        elif number > high:
            high = number
    return "double" if fraction or wide or not whole else _integer_type(low, high)


def _integer_type(low: int, high: int) -> str:
    if low >= -_INT32 and high < _INT32:
        return "integer"  # dbt-duckdb's type: every value fits
    if low >= -_INT64 and high < _INT64:
        return "bigint"  # dbt-duckdb fails here: its integer column cannot hold the values
    return "decimal(38, 0)"  # at most 28 digits here; dbt-duckdb fails too


def _whole_places(value: str) -> int:
    return len(value.strip(_STRIP).lstrip("+-").replace("_", "").lstrip("0"))


def _decimal(value: str) -> Decimal | None:
    """agate's reading of a number; None for an exponent beyond Decimal's range, which it refuses."""
    try:
        return Decimal(value.strip(_STRIP))
    except InvalidOperation:
        return None


def _places(decimal: Decimal) -> tuple[int, int]:
    """(decimal places, whole places) of a finite number as agate's MaxPrecision counts them: after
    rounding to its 28 digits and dropping trailing zeros (1.50 has one place, 1e3 none, 1e30 31
    whole places)."""
    try:
        normalized = decimal.normalize(_AGATE_CONTEXT)
    except ArithmeticError:  # beyond the context's exponent range
        return 0, _AGATE_DIGITS + 1
    _, digits, exponent = normalized.as_tuple()
    return max(-exponent, 0), len(digits) + exponent  # type: ignore[operator]


def _date(value: str) -> datetime.date | None:
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:  # 2023-02-29, year 0
        return None


def _datetime(value: str, forms: tuple[re.Pattern[str], ...] = ()) -> datetime.datetime | None:
    """A timestamp in one of `forms` (default: either of agate's), without its offset, as DuckDB reads it."""
    for form in forms or (_DATETIME, _ISO_DATETIME):
        match = form.fullmatch(value)
        if match is not None:
            break
    else:
        return None
    year, month, day, hour, minute, second, fraction = (*match.groups(), None)[:7]
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0  # DuckDB keeps microseconds, truncated
    try:
        return datetime.datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
        )
    except ValueError:  # day 31 of a 30-day month, hour 24, second 60
        return None


def values_select(table: SeedTable, column_types: dict[str, str], dialect: str) -> exp.Query:
    """`SELECT CAST(column1 AS type) AS "name", ... FROM (VALUES ...)`: the seed as one query.

    `column_types` are written in `dialect` (the project's). VALUES columns are named column1,
    column2, ... on PostgreSQL and SQLite alike. Each literal holds the value DuckDB's CSV reader
    reads for the inferred type, so a seed holds the same values on every warehouse.
    """
    types: list[exp.DataType] = []
    encoders: list[Callable[[str], exp.Expression]] = []
    for name, inferred in zip(table.columns, table.types, strict=True):
        wanted = column_override(column_types, name)
        types.append(_data_type(wanted, dialect) if wanted is not None else exp.DataType.build(inferred))
        encoders.append(_text if wanted is not None else _encoder(inferred, dialect))

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
                    encode(value) if value else exp.Null()
                    for value, encode in zip(row, encoders, strict=True)
                ]
            )
            for row in table.rows
        ],
        alias=exp.TableAlias(this=exp.to_identifier("seed_rows")),
    )
    return exp.select(*columns).from_(values)


def column_override(column_types: dict[str, str], name: str) -> str | None:
    """The `column_types` entry for column `name`: by its exact name, else ignoring case."""
    wanted = column_types.get(name)
    if wanted is None:
        wanted = next((kind for key, kind in column_types.items() if key.lower() == name.lower()), None)
    return None if wanted is None else str(wanted)


def _text(value: str) -> exp.Expression:
    return exp.Literal.string(value)


def _encoder(inferred: str, dialect: str) -> Callable[[str], exp.Expression]:
    """value as written -> the literal of the value DuckDB reads for type `inferred`."""
    if inferred in ("integer", "bigint", "decimal(38, 0)"):
        return lambda value: exp.Literal.number(str(_integer(value)))
    if inferred == "double":
        return lambda value: _double(value, dialect)
    if inferred == "boolean":
        return lambda value: exp.Boolean(this=_BOOLEAN[value.lower()])
    if inferred == "date":
        return lambda value: exp.Literal.string(_date(value).isoformat())  # type: ignore[union-attr]
    if inferred == "timestamp":
        return lambda value: exp.Literal.string(_datetime(value).isoformat(sep=" "))  # type: ignore[union-attr]
    return _text


def _integer(value: str) -> int:
    if _WHOLE.fullmatch(value):
        return int(value)
    return int(Decimal(value.strip(_STRIP)).to_integral_value(ROUND_HALF_UP))


def _double(value: str, dialect: str) -> exp.Expression:
    number = float(value.strip(_STRIP))
    if math.isfinite(number):
        return exp.Literal.number(repr(number))
    if dialect == "sqlite":  # no NaN (it stores NULL), and text does not convert to an infinity
        return exp.Null() if math.isnan(number) else exp.Literal.number("9e999" if number > 0 else "-9e999")
    return exp.cast(exp.Literal.string(_NON_FINITE[repr(number)]), exp.DataType.build("double"))


def _data_type(text: str, dialect: str) -> exp.DataType:
    try:
        return exp.DataType.build(text, dialect=dialect)
    except (sqlglot.errors.SqlglotError, ValueError) as exc:
        raise UserError(f"column_types: {text!r} is not a {dialect} data type") from exc
