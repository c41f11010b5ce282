"""Data tests: what a test declared in YAML is, the built-in generic tests, and judging a result.

A data test is a query returning the rows that break a rule; it fails when it returns any (or
more than its `error_if` threshold). Generic tests (`unique`, `not_null`, `accepted_values`,
`relationships`, or a `{% test %}` macro) are declared on models, seeds and sources in YAML;
singular tests are `.sql` files under the test paths. Both become `Node`s of type "test".
"""

from __future__ import annotations

import hashlib
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CompilationError, UserError
from .lazy import exp, sqlglot

BUILTIN_TESTS = ("unique", "not_null", "accepted_values", "relationships")
# Keys of a test entry that are config, not arguments (dbt accepts both places).
CONFIG_KEYS = frozenset(
    {
        "severity",
        "where",
        "limit",
        "warn_if",
        "error_if",
        "fail_calc",
        "store_failures",
        "store_failures_as",
        "tags",
        "enabled",
        "meta",
        "schema",
        "database",
        "alias",
    }
)
AUDIT_SCHEMA = "dbt_test__audit"
_THRESHOLD = re.compile(r"^\s*(==|=|!=|<>|>=|<=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass
class TestSpec:
    """One generic test as written in YAML, before it becomes a node."""

    test_name: str
    namespace: str | None
    kwargs: dict[str, Any]  # the test macro's arguments, column_name included
    config: dict[str, Any]
    custom_name: str | None
    description: str
    line: int | None


def parse_entry(
    raw: Any, *, column_name: str | None, path: Path, line: int | None, quote: bool = False
) -> TestSpec:
    """A `data_tests:` list item: `unique`, `{accepted_values: {values: [...]}}`, or `{test_name: ..}`."""
    if isinstance(raw, str):
        name, args = raw, {}
    elif isinstance(raw, dict) and "test_name" in raw:
        args = {k: v for k, v in raw.items() if k != "test_name"}
        name = raw["test_name"]
    elif isinstance(raw, dict) and len(raw) == 1:
        name, args = next(iter(raw.items()))
        args = args if args is not None else {}
    else:
        raise UserError(
            "a test entry must be a test name or a mapping with one test name as its key",
            path=path,
            line=line,
            hint="e.g. `- unique` or `- accepted_values: {values: [a, b]}`",
        )
    if not isinstance(name, str) or not name:
        raise UserError(f"test name {name!r} is not a string", path=path, line=line)
    if not isinstance(args, dict):
        raise UserError(
            f"the arguments of test {name!r} must be a mapping, not {type(args).__name__}",
            path=path,
            line=line,
            hint=f"e.g. `- {name}: {{values: [a, b]}}`",
        )
    args = dict(args)
    config = dict(args.pop("config", None) or {})
    for key in list(args):
        if key in CONFIG_KEYS:
            config.setdefault(key, args.pop(key))
    nested = args.pop("arguments", None)  # dbt 1.10's `arguments:` block
    if isinstance(nested, dict):
        args.update(nested)
    custom_name = args.pop("name", None)
    description = str(args.pop("description", "") or "")
    namespace, _, short = name.rpartition(".")
    kwargs = dict(args)
    if column_name is not None:
        kwargs["column_name"] = column_name
    spec = TestSpec(short, namespace or None, kwargs, config, custom_name, description, line)
    if quote:
        spec.kwargs["quote"] = True
    problem = check_config(config)
    if problem:
        raise UserError(f"test {name!r}: {problem}", path=path, line=line)
    return spec


_JINJA_CALL = re.compile(r"^\s*(ref|source|var|env_var)\s*\(")


def kwarg_template(value: str) -> str | None:
    """The Jinja template behind an argument: `ref('x')` is an expression, as in dbt; None if plain."""
    if "{{" in value or "{%" in value:
        return value
    if _JINJA_CALL.match(value):
        return "{{ " + value + " }}"
    return None


def kwarg_templates(value: Any) -> list[str]:
    """Every template among a test's arguments (to find the refs they add)."""
    if isinstance(value, str):
        template = kwarg_template(value)
        return [template] if template else []
    if isinstance(value, dict):
        return [t for v in value.values() for t in kwarg_templates(v)]
    if isinstance(value, list):
        return [t for v in value for t in kwarg_templates(v)]
    return []


def render_kwargs(value: Any, render: Callable[[str], Any]) -> Any:
    """Arguments with their templates rendered by `render` (which may return a relation object)."""
    if isinstance(value, str):
        template = kwarg_template(value)
        if template is None:
            return value
        rendered = render(template)
        return rendered.strip() if type(rendered) is str else rendered
    if isinstance(value, dict):
        return {k: render_kwargs(v, render) for k, v in value.items()}
    if isinstance(value, list):
        return [render_kwargs(v, render) for v in value]
    return value


def check_config(config: dict[str, Any]) -> str | None:
    """A problem with a test's config, or None."""
    severity = str(config.get("severity", "error")).lower()
    if severity not in ("error", "warn"):
        return f"severity must be error or warn, not {config.get('severity')!r}"
    for key in ("warn_if", "error_if"):
        if key in config and not _THRESHOLD.match(str(config[key])):
            return f"{key} {config[key]!r} is not a condition like '!=0' or '>10'"
    limit = config.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        return f"limit must be a non-negative integer, not {limit!r}"
    return None


def node_name(spec: TestSpec, target_name: str) -> str:
    """dbt's synthesized test name, e.g. `accepted_values_orders_status__placed__shipped`."""
    if spec.custom_name:
        return str(spec.custom_name)
    flat: list[str] = []
    for key in sorted(spec.kwargs):
        if key in ("model", "quote"):
            continue
        value = spec.kwargs[key]
        parts = list(value.values()) if isinstance(value, dict) else value
        flat.extend(str(p) for p in (parts if isinstance(parts, list | tuple) else [parts]))
    clean = "__".join(re.sub(r"[^0-9a-zA-Z_]+", "_", part) for part in flat)
    prefix = f"{spec.namespace}_{spec.test_name}" if spec.namespace else spec.test_name
    name = f"{prefix}_{target_name}_{clean}" if clean else f"{prefix}_{target_name}"
    if len(name) >= 64:
        # Long names are cut and made unique with a hash, as dbt does (identifier limits).
        name = f"{prefix}_{target_name}"[:30] + "_" + hashlib.md5(name.encode()).hexdigest()
    return name


# --------------------------------------------------------------------------- built-in generic tests


def builtin_query(name: str, model: exp.Expression, kwargs: dict[str, Any], dialect: str) -> exp.Query:
    """The failing-rows query of a built-in test, as an expression in `dialect`."""
    column = _column(kwargs, dialect)
    count = exp.Count(this=exp.Star())
    if name == "not_null":
        return exp.select("*").from_(model).where(exp.Is(this=column, expression=exp.Null()))
    if name == "unique":
        return (
            exp.select(column.as_("unique_field"), count.as_("n_records"))
            .from_(model)
            .where(exp.not_(exp.Is(this=column.copy(), expression=exp.Null())))
            .group_by(column.copy())
            .having(exp.GT(this=count.copy(), expression=exp.Literal.number(1)))
        )
    if name == "accepted_values":
        values = kwargs.get("values")
        if not isinstance(values, list) or not values:
            raise CompilationError("accepted_values needs `values:`, a non-empty list")
        quote = kwargs.get("quote", True) is not False
        literals = [
            exp.Literal.string(str(v)) if quote else sqlglot.parse_one(str(v), dialect=dialect)
            for v in values
        ]
        all_values = (
            exp.select(column.as_("value_field"), count.as_("n_records")).from_(model).group_by(column.copy())
        )
        return (
            exp.select("*")
            .from_("all_values")
            .where(exp.not_(exp.column("value_field").isin(*literals)))
            .with_("all_values", as_=all_values)
        )
    if name == "relationships":
        to, field = kwargs.get("to"), kwargs.get("field")
        if not to or not field:
            raise CompilationError("relationships needs `to:` (e.g. ref('customers')) and `field:`")
        parent_table = _parse(str(to), dialect, into=exp.Table, what="to")
        parent_column = _parse(str(field), dialect, what="field")
        child = (
            exp.select(column.as_("from_field"))
            .from_(model)
            .where(exp.not_(exp.Is(this=column.copy(), expression=exp.Null())))
        )
        parent = exp.select(parent_column.as_("to_field")).from_(parent_table)
        return (
            exp.select(exp.column("from_field", "child"))
            .from_(child.subquery("child"))
            .join(
                parent.subquery("parent"),
                on=exp.EQ(
                    this=exp.column("from_field", "child"), expression=exp.column("to_field", "parent")
                ),
                join_type="left",
            )
            .where(exp.Is(this=exp.column("to_field", "parent"), expression=exp.Null()))
        )
    raise CompilationError(f"unknown built-in test {name!r}")


def _column(kwargs: dict[str, Any], dialect: str) -> exp.Expression:
    name = kwargs.get("column_name")
    if not name:
        raise CompilationError("this test is declared on a column: put it under a column's `data_tests:`")
    if kwargs.get("quote"):
        return exp.column(exp.to_identifier(str(name), quoted=True))
    # As in dbt, column_name may be an expression (`lower(email)`).
    return _parse(str(name), dialect, what="column_name")


def _parse(text: str, dialect: str, *, what: str, into: Any = None) -> exp.Expression:
    try:
        return (
            sqlglot.parse_one(text, dialect=dialect, into=into)
            if into
            else sqlglot.parse_one(text, dialect=dialect)
        )
    except sqlglot.errors.ParseError as exc:
        raise CompilationError(f"{what} {text!r} is not valid SQL: {exc.errors[0]['description']}") from exc


def model_expression(relation: exp.Table, where: str | None, dialect: str) -> exp.Expression:
    """The relation a test reads: the model itself, or only the rows its `where` config keeps."""
    if not where:
        return relation
    condition = _parse(where, dialect, what="where")
    return exp.select("*").from_(relation).where(condition).subquery("dbt_subquery")


# --------------------------------------------------------------------------- judging a result


def failures_query(test_sql: str, config: dict[str, Any], dialect: str) -> exp.Select:
    """SELECT <fail_calc> AS failures over the test's rows (at most `limit` of them)."""
    rows: exp.Expression = exp.Subquery(
        this=exp.Var(this=test_sql), alias=exp.TableAlias(this=exp.to_identifier("test_rows"))
    )
    limit = config.get("limit")
    if limit is not None:
        rows = exp.select("*").from_(rows).limit(int(limit)).subquery("limited_rows")
    fail_calc = config.get("fail_calc")
    measure = _parse(str(fail_calc), dialect, what="fail_calc") if fail_calc else exp.Count(this=exp.Star())
    return exp.select(exp.alias_(measure, "failures")).from_(rows)


@dataclass
class Verdict:
    status: str  # pass | warn | fail
    message: str


def judge(failures: int, config: dict[str, Any]) -> Verdict:
    """dbt's rule: error-severity tests fail past `error_if`, then any test warns past `warn_if`."""
    severity = str(config.get("severity", "error")).lower()
    warn_if = str(config.get("warn_if", "!=0"))
    error_if = str(config.get("error_if", "!=0"))
    noun = "result" if failures == 1 else "results"
    if severity == "error" and _holds(error_if, failures):
        return Verdict("fail", f"Got {failures} {noun}, configured to fail if {_pretty(error_if)}")
    if _holds(warn_if, failures):
        return Verdict("warn", f"Got {failures} {noun}, configured to warn if {_pretty(warn_if)}")
    return Verdict("pass", "")


def _holds(condition: str, value: int) -> bool:
    match = _THRESHOLD.match(condition)
    assert match, condition  # checked at load time
    return _OPERATORS[match.group(1)](value, float(match.group(2)))


def _pretty(condition: str) -> str:
    match = _THRESHOLD.match(condition)
    assert match
    return f"{match.group(1)} {match.group(2)}"
