"""Dialect transpilation: a model written in the project's dialect, generated for the warehouse's.

sqlglot rewrites what it knows how to (DuckDB's `list_value` becomes PostgreSQL's `ARRAY[...]`,
`x::int` a `CAST`, ...). What it cannot express in the target is reported at compile time, with
the model, line and construct, instead of as a warehouse error halfway through a run:

- constructs sqlglot itself declares unsupported for the target;
- functions the warehouse does not have: every function call of the generated SQL is looked up
  in the warehouse's own catalog (`Adapter.function_names`), user-defined functions included;
- SQL the warehouse cannot parse, where the adapter can check that without running it
  (`Adapter.syntax_error`, SQLite).

A model with `config(transpile=false)` is written in the warehouse's dialect and sent verbatim.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import sql
from .errors import CompilationError
from .lazy import exp, sqlglot

# Function-call syntax that is SQL grammar, not a function in the warehouses' catalogs.
SYNTAX_FORMS = frozenset(
    {
        "cast",
        "coalesce",
        "nullif",
        "greatest",
        "least",
        "extract",
        "trim",
        "position",
        "overlay",
        "substring",
        "exists",
        "row",
        "values",
        "collate",
        "grouping",
        "any",
        "all",
        "some",
        "in",
        "array",  # PostgreSQL's ARRAY(subquery)
    }
)
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_$]*)\s*\(")


@dataclass
class Transpiler:
    """Generates queries of `source` SQL in `target` SQL, checking what the target supports."""

    source: str
    target: str
    # The warehouse's function names (lower case), fetched on first use; None: not checked.
    functions: Callable[[], frozenset[str] | None] | None = None
    syntax_error: Callable[[str], str | None] | None = None
    _known: frozenset[str] | None = field(default=None, init=False, repr=False)
    _fetched: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def generate(
        self,
        query: exp.Expression,
        *,
        source: str | None = None,
        path: Path | str | None = None,
        compiled_path: str | None = None,
    ) -> str:
        """`query` (parsed in `source`, default the project's dialect) as SQL of the target."""
        source = source or self.source
        if source == self.target:
            return sql.generate(query, self.target)
        where = f" (see the compiled SQL in {compiled_path})" if compiled_path else ""
        try:
            text = query.sql(
                dialect=sql.dialect(self.target), pretty=True, unsupported_level=sqlglot.ErrorLevel.RAISE
            )
        except sqlglot.errors.UnsupportedError as exc:
            node = _culprit(query, self.target)
            construct = node.sql(dialect=sql.dialect(source))[:80] if node is not None else ""
            raise CompilationError(
                f"cannot transpile from {source} to {self.target}: {_first_line(exc)}"
                + (f" in `{construct}`" if construct else ""),
                path=path,
                line=_line(node) if node is not None else None,
                hint=f"rewrite it in SQL both dialects share, or write the model in {self.target} SQL "
                "with {{ config(transpile=false) }}" + where,
            ) from exc
        self._check_functions(query, source, path, where)
        if self.syntax_error is not None:
            problem = self.syntax_error(text)
            if problem:
                raise CompilationError(
                    f"the SQL transpiled from {source} to {self.target} is not valid {self.target} SQL: {problem}",
                    path=path,
                    hint=f"a construct has no {self.target} equivalent; rewrite it, or write the model in "
                    f"{self.target} SQL with {{{{ config(transpile=false) }}}}" + where,
                )
        return text

    def known_functions(self) -> frozenset[str] | None:
        with self._lock:
            if not self._fetched:
                self._known = self.functions() if self.functions is not None else None
                self._fetched = True
        return self._known

    def _check_functions(
        self, query: exp.Expression, source: str, path: Path | str | None, where: str
    ) -> None:
        known = self.known_functions()
        if known is None:
            return
        target = sql.dialect(self.target)
        for node in query.find_all(exp.Func):
            try:
                generated = node.sql(dialect=target)
            except sqlglot.errors.SqlglotError:
                continue
            match = _CALL.match(generated)
            if match is None:
                continue
            name = match.group(1)
            if name.lower() in known or name.lower() in SYNTAX_FORMS:
                continue
            written = node.sql(dialect=sql.dialect(source))[:80]
            shown = (
                f"{name}()" if written.upper().startswith(name.upper()) else f"{name}() (from `{written}`)"
            )
            raise CompilationError(
                f"{shown} is not a function of the {self.target} warehouse; sqlglot has no "
                f"{self.target} equivalent for it",
                path=path,
                line=_line(node),
                hint=f"use a function both dialects have, create it in the warehouse, or write the model in "
                f"{self.target} SQL with {{{{ config(transpile=false) }}}}" + where,
            )


def _culprit(query: exp.Expression, target: str) -> exp.Expression | None:
    """The smallest part of `query` that sqlglot cannot generate for `target`."""
    dialect = sql.dialect(target)
    node: exp.Expression = query
    while True:
        for child in node.iter_expressions():
            try:
                child.sql(dialect=dialect, unsupported_level=sqlglot.ErrorLevel.RAISE)
            except sqlglot.errors.UnsupportedError:
                node = child
                break
        else:
            return node


def _line(node: exp.Expression) -> int | None:
    """The line a node came from: its own, else its first descendant's, else its parent's."""
    for candidate in node.walk():
        line = candidate.meta.get("line") if candidate.meta else None
        if line:
            return int(line)
    parent = node.parent
    while parent is not None:
        if parent.meta and parent.meta.get("line"):
            return int(parent.meta["line"])
        parent = parent.parent
    return None


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
