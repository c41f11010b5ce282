"""dbt's cross-database macros (`dbt.concat`, `dbt.dateadd`, `dbt.type_string`, ...), built with
sqlglot for the project's dialect.

dbt ships them as Jinja macros with one variant per adapter; packages such as dbt_utils call
them for every warehouse. Here each is a sqlglot expression written out in the dialect the
project's models are in, so one definition covers DuckDB, PostgreSQL, SQLite and Spark. Their
arguments are SQL fragments (`dbt.hash("customer_id")`), as in dbt.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .errors import CompilationError
from .lazy import exp, sqlglot


@functools.cache
def namespace(dialect: str) -> CrossDatabaseMacros:
    return CrossDatabaseMacros(dialect)


def names() -> frozenset[str]:
    """Every macro of the `dbt` namespace: dbt also offers them without the prefix (`last_day()`)."""
    return _NAMES


class CrossDatabaseMacros:
    """The `dbt` object of the Jinja context."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        # Python keywords, as dbt names them (`dbt.except()`).
        self._aliases: dict[str, Callable[..., str]] = {
            "except": lambda: "except",
            "intersect": lambda: "intersect",
        }

    def lookup(self, name: str) -> Callable[..., str] | None:
        """Macro `name` (a public method, or a keyword-named alias); None if there is none."""
        if name.startswith("_") or name in ("lookup", "dialect"):
            return None
        return self._aliases.get(name) or getattr(self, name, None)

    # ------------------------------------------------------------------ helpers

    def _expr(self, text: Any) -> exp.Expression:
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            return exp.Literal.number(text)
        try:
            return sqlglot.parse_one(str(text), read=self.dialect)
        except sqlglot.errors.ParseError as exc:
            raise CompilationError(f"a dbt macro got SQL it cannot parse: {str(text)!r}") from exc

    def _type(self, name: str) -> exp.DataType:
        try:
            return exp.DataType.build(str(name), dialect=self.dialect)
        except (sqlglot.errors.ParseError, ValueError) as exc:
            raise CompilationError(f"{name!r} is not a data type of {self.dialect}") from exc

    def _sql(self, expression: exp.Expression) -> str:
        return expression.sql(dialect=self.dialect)

    @staticmethod
    def _unit(datepart: Any) -> exp.Var:
        return exp.var(str(datepart).strip("'\"").upper())

    # ------------------------------------------------------------------ data types

    def type_string(self) -> str:
        return self._sql(exp.DataType.build("text"))

    def type_timestamp(self) -> str:
        return self._sql(exp.DataType.build("timestamp"))

    def type_float(self) -> str:
        return self._sql(exp.DataType.build("double"))

    def type_numeric(self) -> str:
        return self._sql(exp.DataType.build("decimal(28, 6)"))

    def type_bigint(self) -> str:
        return self._sql(exp.DataType.build("bigint"))

    def type_int(self) -> str:
        return self._sql(exp.DataType.build("int"))

    def type_boolean(self) -> str:
        return self._sql(exp.DataType.build("boolean"))

    # ------------------------------------------------------------------ casts and literals

    def cast(self, field: Any, type: Any) -> str:
        return self._sql(exp.Cast(this=self._expr(field), to=self._type(type)))

    def safe_cast(self, field: Any, type: Any) -> str:
        return self._sql(exp.TryCast(this=self._expr(field), to=self._type(type)))

    def cast_bool_to_text(self, field: Any) -> str:
        return self._sql(exp.Cast(this=self._expr(field), to=exp.DataType.build("text")))

    def string_literal(self, value: Any) -> str:
        return self._sql(exp.Literal.string(str(value)))

    def escape_single_quotes(self, expression: Any) -> str:
        return str(expression).replace("'", "''")

    def current_timestamp(self) -> str:
        return self._sql(exp.CurrentTimestamp())

    current_timestamp_backcompat = current_timestamp
    current_timestamp_in_utc_backcompat = current_timestamp

    # ------------------------------------------------------------------ strings

    def concat(self, fields: Any) -> str:
        parts = [self._expr(f) for f in (fields if isinstance(fields, (list, tuple)) else [fields])]
        if self.dialect == "sqlite":  # no concat() before SQLite 3.44
            return self._sql(
                functools.reduce(lambda left, right: exp.DPipe(this=left, expression=right), parts)
            )
        # concat() by name, as dbt writes it (NULL-skipping in DuckDB and PostgreSQL).
        return self._sql(exp.Anonymous(this="concat", expressions=parts))

    def hash(self, field: Any) -> str:
        text = exp.Cast(this=self._expr(field), to=exp.DataType.build("text"))
        return self._sql(exp.MD5(this=text))

    def length(self, expression: Any) -> str:
        return self._sql(exp.Length(this=self._expr(expression)))

    def position(self, substring_text: Any, string_text: Any) -> str:
        return self._sql(exp.StrPosition(this=self._expr(string_text), substr=self._expr(substring_text)))

    def replace(self, field: Any, old_chars: Any, new_chars: Any) -> str:
        return self._sql(
            exp.Replace(
                this=self._expr(field), expression=self._expr(old_chars), replacement=self._expr(new_chars)
            )
        )

    def right(self, string_text: Any, length_expression: Any) -> str:
        return self._sql(exp.Right(this=self._expr(string_text), expression=self._expr(length_expression)))

    def split_part(self, string_text: Any, delimiter_text: Any, part_number: Any) -> str:
        return self._sql(
            exp.SplitPart(
                this=self._expr(string_text),
                delimiter=self._expr(delimiter_text),
                part_index=self._expr(part_number),
            )
        )

    def listagg(
        self, measure: Any, delimiter_text: Any = "','", order_by_clause: Any = None, limit_num: Any = None
    ) -> str:
        if limit_num is not None:
            raise CompilationError(
                "dbt.listagg(limit_num=...) is not supported",
                hint="aggregate a subquery that keeps the rows wanted",
            )
        this = self._expr(measure)
        if order_by_clause:
            order = sqlglot.parse_one(f"SELECT 1 {order_by_clause}", read=self.dialect).args.get("order")
            if order is None:
                raise CompilationError(f"dbt.listagg: {order_by_clause!r} is not an ORDER BY clause")
            this = exp.Order(this=this, expressions=order.expressions)
        return self._sql(exp.GroupConcat(this=this, separator=self._expr(delimiter_text)))

    # ------------------------------------------------------------------ aggregates and comparisons

    def any_value(self, expression: Any) -> str:
        return self._sql(exp.AnyValue(this=self._expr(expression)))

    def bool_or(self, expression: Any) -> str:
        return self._sql(exp.LogicalOr(this=self._expr(expression)))

    def equals(self, expr1: Any, expr2: Any) -> str:
        return self._sql(exp.NullSafeEQ(this=self._expr(expr1), expression=self._expr(expr2)))

    # ------------------------------------------------------------------ dates

    def dateadd(self, datepart: Any, interval: Any, from_date_or_timestamp: Any) -> str:
        return self._sql(self._dateadd(datepart, interval, from_date_or_timestamp))

    def _dateadd(self, datepart: Any, interval: Any, start: Any) -> exp.Expression:
        start = start if isinstance(start, exp.Expression) else self._expr(start)
        return exp.DateAdd(this=start, expression=self._expr(interval), unit=self._unit(datepart))

    def datediff(self, first_date: Any, second_date: Any, datepart: Any) -> str:
        return self._sql(
            exp.DateDiff(
                this=self._expr(second_date), expression=self._expr(first_date), unit=self._unit(datepart)
            )
        )

    def date_trunc(self, datepart: Any, date: Any) -> str:
        return self._sql(self._date_trunc(datepart, self._expr(date)))

    def _date_trunc(self, datepart: Any, date: exp.Expression) -> exp.Expression:
        return exp.TimestampTrunc(this=date, unit=self._unit(datepart))

    def last_day(self, date: Any, datepart: Any) -> str:
        start = self._date_trunc(datepart, self._expr(date))
        end = self._dateadd("day", -1, self._dateadd(datepart, 1, start))
        return self._sql(exp.Cast(this=end, to=exp.DataType.build("date")))

    def date(self, year: Any, month: Any, day: Any) -> str:
        return self._sql(
            exp.DateFromParts(year=self._expr(year), month=self._expr(month), day=self._expr(day))
        )

    # ------------------------------------------------------------------ arrays

    def array_construct(self, inputs: Any = (), data_type: Any = None) -> str:
        array = exp.Array(expressions=[self._expr(i) for i in inputs or []])
        if not inputs and data_type:
            return self._sql(
                exp.Cast(this=array, to=exp.DataType.build(f"{data_type}[]", dialect=self.dialect))
            )
        return self._sql(array)

    def array_append(self, array: Any, new_element: Any) -> str:
        return self._sql(exp.ArrayAppend(this=self._expr(array), expression=self._expr(new_element)))

    def array_concat(self, array_1: Any, array_2: Any) -> str:
        return self._sql(exp.ArrayConcat(this=self._expr(array_1), expressions=[self._expr(array_2)]))


_NAMES = frozenset(
    [name for name in vars(CrossDatabaseMacros) if not name.startswith("_") and name not in ("lookup",)]
    + ["except", "intersect"]
)
