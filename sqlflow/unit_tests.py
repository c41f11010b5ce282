"""Unit tests: a model's SQL run on rows given in YAML, compared with the rows expected.

Nothing upstream is built or read: every `ref`/`source` of the model is replaced by a CTE of the
given rows (a VALUES list built with sqlglot), and the model's query runs on those alone. Where the
upstream relation already exists in the warehouse its column types are used for the given rows,
as dbt does; otherwise the types come from the values themselves.
"""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .lazy import exp, sqlglot
from .sql import inline_ctes
from .yaml_lines import line_of

FORMATS = ("dict", "csv", "sql")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
MOCK_PREFIX = "__sqlflow_input__"
_INPUT = re.compile(
    r"""^\s*(?:(ref)\(\s*['"]([^'"]+)['"]\s*\)|(source)\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)|(this))\s*$"""
)


@dataclass
class Rows:
    """Rows as written: a list of mappings (dict), CSV text, or a SELECT (sql)."""

    format: str
    rows: Any
    line: int | None = None


def parse_unit_test(entry: dict[str, Any], path: Path, fixtures: Sequence[Path]) -> dict[str, Any]:
    """The parts of a `unit_tests:` entry, checked; kept as plain data in the node's test_metadata."""
    line = line_of(entry)
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise UserError("a unit test has no `name`", path=path, line=line)
    model = entry.get("model")
    if not isinstance(model, str) or not model:
        raise UserError(
            f"unit test {name!r} has no `model`", path=path, line=line, hint="add `model: <model name>`"
        )
    given = entry.get("given") or []
    if not isinstance(given, list):
        raise UserError(
            f"unit test {name!r}: `given` must be a list of inputs", path=path, line=line_of(entry, "given")
        )
    inputs = []
    for item in given:
        item_line = line_of(item) or line_of(entry, "given")
        if not isinstance(item, dict) or not isinstance(item.get("input"), str):
            raise UserError(
                f"unit test {name!r}: each `given` item needs `input:` (ref('model'), source('src', 'table') or this)",
                path=path,
                line=item_line,
            )
        match = _INPUT.match(item["input"])
        if match is None:
            raise UserError(
                f"unit test {name!r}: input {item['input']!r} is not ref('model'), source('src', 'table') or this",
                path=path,
                line=item_line,
            )
        if match.group(1):
            kind, input_name = "ref", match.group(2)
        elif match.group(3):
            kind, input_name = "source", f"{match.group(4)}.{match.group(5)}"
        else:
            kind, input_name = "this", "this"
        rows = _rows(item, name, path, item_line, fixtures)
        inputs.append({"kind": kind, "name": input_name, "text": item["input"], "rows": rows})
    expect = entry.get("expect")
    if not isinstance(expect, dict):
        raise UserError(
            f"unit test {name!r} has no `expect:` rows",
            path=path,
            line=line,
            hint="add `expect: {rows: [...]}`",
        )
    overrides = entry.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise UserError(
            f"unit test {name!r}: `overrides` must be a mapping", path=path, line=line_of(entry, "overrides")
        )
    for key in overrides:
        if key not in ("macros", "vars", "env_vars"):
            raise UserError(
                f"unit test {name!r}: unknown override {key!r}",
                path=path,
                line=line_of(overrides, key),
                hint="overrides are macros (is_incremental), vars and env_vars",
            )
    return {
        "model": model,
        "inputs": inputs,
        "expect": _rows(expect, name, path, line_of(entry, "expect"), fixtures),
        "overrides": {k: dict(overrides.get(k) or {}) for k in ("macros", "vars", "env_vars")},
    }


def _rows(item: dict[str, Any], test: str, path: Path, line: int | None, fixtures: Sequence[Path]) -> Rows:
    fmt = str(item.get("format", "dict"))
    if fmt not in FORMATS:
        raise UserError(
            f"unit test {test!r}: unknown format {fmt!r}", path=path, line=line, hint="use dict, csv or sql"
        )
    rows = item.get("rows")
    fixture = item.get("fixture")
    if fixture is not None:
        suffix = ".csv" if fmt == "csv" else ".sql" if fmt == "sql" else None
        if suffix is None:
            raise UserError(f"unit test {test!r}: a fixture needs format csv or sql", path=path, line=line)
        found = [f / "fixtures" / f"{fixture}{suffix}" for f in fixtures]
        existing = [p for p in found if p.is_file()]
        if not existing:
            raise UserError(
                f"unit test {test!r}: fixture {fixture!r} not found",
                path=path,
                line=line,
                hint="looked for " + ", ".join(str(p) for p in found),
            )
        rows = existing[0].read_text(encoding="utf-8")
    if fmt == "dict":
        rows = rows if rows is not None else []
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise UserError(f"unit test {test!r}: `rows` must be a list of mappings", path=path, line=line)
        rows = [{str(k): v for k, v in r.items()} for r in rows]
    elif fmt == "csv":
        if not isinstance(rows, str):
            raise UserError(
                f"unit test {test!r}: csv `rows` must be text (use `rows: |`)", path=path, line=line
            )
        reader = csv.DictReader(io.StringIO(rows.strip() + "\n"))
        rows = [{k.strip(): _csv_value(v) for k, v in r.items()} for r in reader]
    else:
        if not isinstance(rows, str):
            raise UserError(f"unit test {test!r}: sql `rows` must be a SELECT", path=path, line=line)
        try:
            sqlglot.parse_one(rows)
        except sqlglot.errors.ParseError as exc:
            raise UserError(
                f"unit test {test!r}: sql rows do not parse: {exc.errors[0]['description']}",
                path=path,
                line=line,
            ) from exc
    return Rows(fmt, rows, line)


def _csv_value(value: str | None) -> Any:
    return None if value is None or value.strip().lower() in ("", "null") else value.strip()


# --------------------------------------------------------------------------- running


def input_query(rows: Rows, columns: list[tuple[str, str]] | None, dialect: str) -> exp.Query:
    """The given rows as a query; typed like the upstream relation where its columns are known."""
    if rows.format == "sql":
        return sqlglot.parse_one(rows.rows, dialect=dialect)  # type: ignore[return-value]
    given: list[dict[str, Any]] = rows.rows
    known = {name.lower(): (name, kind) for name, kind in columns or []}
    names = list(dict.fromkeys(k for r in given for k in r))
    # dbt fills columns missing from the given rows with NULLs of the upstream type.
    all_names = [name for name, _ in columns] if columns else names
    for name in names:
        if name.lower() not in known and columns:
            all_names.append(name)
    if not all_names:
        raise UserError(
            "an input with no rows needs its upstream relation built (for its columns) or `format: sql`"
        )

    def value(row: dict[str, Any], name: str) -> exp.Expression:
        lookup = {k.lower(): k for k in row}
        raw = row[lookup[name.lower()]] if name.lower() in lookup else None
        kind = known.get(name.lower(), (name, None))[1]
        if kind is None and rows.format == "csv" and isinstance(raw, str) and _NUMBER.match(raw):
            raw = decimal.Decimal(raw)  # untyped CSV: a number is a number, as the reader expects
        literal = _literal(raw)
        return (
            exp.cast(literal, exp.DataType.build(kind, dialect=dialect), dialect=dialect) if kind else literal
        )

    selects = [
        exp.select(*[exp.alias_(value(row, name), name, quoted=True) for name in all_names]) for row in given
    ]
    if not selects:
        empty = {name: None for name in all_names}
        return exp.select(*[exp.alias_(value(empty, n), n, quoted=True) for n in all_names]).where(
            exp.false()
        )
    query: exp.Query = selects[0]
    for select in selects[1:]:
        query = exp.union(query, select, distinct=False)
    return query


def _literal(value: Any) -> exp.Expression:
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float | decimal.Decimal):
        return exp.Literal.number(value)
    if isinstance(value, datetime.datetime):
        return exp.cast(exp.Literal.string(value.isoformat(sep=" ")), exp.DataType.Type.TIMESTAMP)
    if isinstance(value, datetime.date):
        return exp.cast(exp.Literal.string(value.isoformat()), exp.DataType.Type.DATE)
    return exp.Literal.string(str(value))


def expected_rows(rows: Rows, run_sql: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Expected columns and rows; `format: sql` rows are computed by the warehouse (`run_sql`)."""
    if rows.format == "sql":
        result = run_sql(rows.rows)
        return list(result.columns), [tuple(r) for r in result.rows]
    given: list[dict[str, Any]] = rows.rows
    columns = list(dict.fromkeys(k for r in given for k in r))
    return columns, [tuple(r.get(c) for c in columns) for r in given]


def canonical(value: Any) -> Any:
    """A value reduced so that YAML's, CSV's and the warehouse's spellings of it compare equal."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | decimal.Decimal):
        return _number(decimal.Decimal(str(value)))
    if isinstance(value, datetime.datetime):
        text = value.isoformat(sep=" ")
        return text[:-6] if text.endswith("+00:00") else text
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false"):
            return text.lower()
        try:
            return _number(decimal.Decimal(text))
        except decimal.InvalidOperation:
            return text
    return str(value)


def _number(value: decimal.Decimal) -> str:
    if value.is_nan() or value.is_infinite():
        return str(value)
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def compare(columns: list[str], expected: list[tuple[Any, ...]], actual: list[tuple[Any, ...]]) -> str | None:
    """None when the rows match as multisets; otherwise a diff of what is missing and extra."""
    want = Counter(tuple(canonical(v) for v in row) for row in expected)
    got = Counter(tuple(canonical(v) for v in row) for row in actual)
    if want == got:
        return None
    missing = list((want - got).elements())
    extra = list((got - want).elements())
    lines = [
        f"actual differs from expected ({len(missing)} expected rows missing, {len(extra)} unexpected rows):"
    ]
    lines.append("    " + " | ".join(columns))
    lines += ["  - " + " | ".join(_show(v) for v in row) for row in missing]
    lines += ["  + " + " | ".join(_show(v) for v in row) for row in extra]
    lines.append("(- expected but not returned, + returned but not expected)")
    return "\n".join(lines)


def _show(value: Any) -> str:
    return "NULL" if value is None else str(value)


def mock_name(name: str) -> str:
    """The CTE that stands for an input (a model name, `source.table`, or `this`)."""
    return MOCK_PREFIX + re.sub(r"\W", "_", name)


@dataclass
class UnitResult:
    status: str  # pass | fail
    message: str
    rows: int


def execute(adapter: Any, model_sql: str, metadata: dict[str, Any], columns_of: Any) -> UnitResult:
    """Run the model's query on the given rows and compare with the expected rows.

    `columns_of(input)` gives the upstream relation's (name, type) columns, or None when unknown.
    """
    dialect = adapter.dialect
    query = sqlglot.parse_one(model_sql, dialect=dialect)
    ctes = [
        (mock_name(i["name"]), input_query(i["rows"], columns_of(i), dialect)) for i in metadata["inputs"]
    ]
    # Inlined the same way as ephemeral models, ahead of the model's own CTEs.
    with_inputs = inline_ctes(query, ctes)  # type: ignore[arg-type]
    columns, expected = expected_rows(
        metadata["expect"], lambda text: adapter.execute(sqlglot.parse_one(text, dialect=dialect), fetch=True)
    )
    if not columns:
        raise UserError("`expect` has no rows and no columns", hint="give at least one expected row")
    actual_query = exp.select(*[exp.column(exp.to_identifier(c)) for c in columns]).from_(
        exp.Subquery(this=with_inputs, alias=exp.TableAlias(this=exp.to_identifier("actual")))
    )
    actual = [tuple(r) for r in adapter.execute(actual_query, fetch=True).rows]
    diff = compare(columns, expected, actual)
    if diff is None:
        return UnitResult("pass", "", len(actual))
    return UnitResult("fail", diff, len(actual))
