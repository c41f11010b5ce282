"""Everything sqlglot: parsing with located errors, ephemeral inlining, table references, transpiling."""

from __future__ import annotations

import hashlib
import re
import threading
from functools import cache
from pathlib import Path

from .errors import CompilationError
from .lazy import exp, sqlglot


@cache
def dialect(name: str) -> sqlglot.Dialect:
    return sqlglot.Dialect.get_or_raise(name)


def parse(
    sql: str, dialect_name: str, *, path: Path | str | None = None, compiled_path: str | None = None
) -> exp.Query:
    """Parse one SELECT-like statement; a syntax error names the file and line."""
    d = dialect(dialect_name)
    try:
        tokenizer, parser = _reused(d)
        statements = [s for s in parser.parse(tokenizer.tokenize(sql), sql) if s is not None]
    except sqlglot.errors.ParseError as exc:
        info = exc.errors[0] if exc.errors else {}
        line = info.get("line")
        description = _readable(info.get("description") or str(exc))
        near = (info.get("highlight") or "").strip()
        raise CompilationError(
            f"SQL syntax error: {description}" + (f" near {near!r}" if near else ""),
            path=path,
            line=line,
            hint=f"line {line} of the compiled SQL in {compiled_path}" if compiled_path and line else None,
        ) from exc
    except sqlglot.errors.TokenError as exc:
        raise CompilationError(f"SQL syntax error: {exc}", path=path) from exc
    except (AttributeError, TypeError, ValueError, IndexError, KeyError) as exc:
        # sqlglot's parser trips over some malformed input instead of reporting it.
        raise CompilationError(
            "SQL syntax error: the statement cannot be parsed",
            path=path,
            hint=f"check the SQL in {compiled_path}" if compiled_path else "check the model's SQL",
        ) from exc
    if len(statements) != 1:
        raise CompilationError(
            f"a model must be exactly one SELECT statement, found {len(statements)}",
            path=path,
            hint="remove the extra statements (and any trailing ';' followed by more SQL)",
        )
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise CompilationError(
            f"a model must be a SELECT query, found {statement.key.upper()}",
            path=path,
            line=1,
            hint="write the model as a SELECT; sqlflow creates the table or view",
        )
    return statement


_parsers = threading.local()


def _reused(d: sqlglot.Dialect) -> tuple[sqlglot.Tokenizer, sqlglot.Parser]:
    """A tokenizer and a parser for `d`, reused by this thread: building them for each query
    (Dialect.parse) cost a sixth of parsing a model. Each use starts by resetting their state."""
    cached = getattr(_parsers, "by_dialect", None)
    if cached is None:
        cached = _parsers.by_dialect = {}
    pair = cached.get(d)
    if pair is None:
        pair = cached[d] = (d.tokenizer(), d.parser())
    return pair


def inline_ctes(query: exp.Query, ctes: list[tuple[str, exp.Query]]) -> exp.Query:
    """Prepend `ctes` (name, query) to the query's WITH, creating it where there is none.

    Works for plain SELECTs, set operations (UNION, ...) and queries that already have a WITH;
    the given CTEs come first so the query's own CTEs can use them.
    """
    if not ctes:
        return query
    query = query.copy()
    new = [
        exp.CTE(this=body, alias=exp.TableAlias(this=exp.to_identifier(name, quoted=True)))
        for name, body in ctes
    ]
    existing = query.args.get("with_")
    if existing is not None:
        existing.set("expressions", new + list(existing.expressions))
    else:
        query.set("with_", exp.With(expressions=new))
    return query


def referenced_tables(query: exp.Query) -> list[exp.Table]:
    """Tables read by the query, excluding references to its own CTEs."""
    cte_names, tables = set(), []
    for found in query.find_all(exp.CTE, exp.Table):  # one walk of the tree, not two
        if isinstance(found, exp.CTE):
            cte_names.add(found.alias_or_name)
        else:
            tables.append(found)
    return [
        table
        for table in tables
        if table.name
        and not (not table.db and table.name in cte_names)
        and not isinstance(table.this, exp.Func)
    ]


def normalized_digest(query: exp.Expression, dialect_name: str) -> str:
    """A digest of the query as sqlglot writes it back (no comments, one spacing): what changes
    only when the query does (a fingerprint's SQL part)."""
    return text_digest(normalized_text(query, dialect_name))


def normalized_text(query: exp.Expression, dialect_name: str) -> str:
    return query.sql(dialect=dialect(dialect_name), comments=False)


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def generate(query: exp.Expression, dialect_name: str) -> str:
    return query.sql(dialect=dialect(dialect_name), pretty=True)


def body(sql: str) -> str:
    """A SELECT's text cleaned for embedding: no trailing semicolon; a trailing comment closed."""
    text = sql.strip().rstrip(";").rstrip()
    last = text.rsplit("\n", 1)[-1]
    return text + "\n" if "--" in last else text


def _readable(description: str) -> str:
    # sqlglot names tokens by their repr ("<Token token_type: TokenType.WHERE, text: where, ...>").
    description = re.sub(r"<Token token_type: TokenType\.SENTINEL[^>]*>", "the end of the query", description)
    return re.sub(r"<Token token_type: [^,]*, text: ([^,]*),[^>]*>", r"'\1'", description)
