"""Column-level lineage: for each column a model outputs, the upstream columns that feed it.

Each model's compiled SQL (ephemeral parents inlined as CTEs) is qualified with sqlglot against
the columns known for the relations it reads, and every output column is traced through CTEs,
derived tables, set operations and scalar subqueries down to the columns of models, seeds,
sources or ephemeral models it reads. Only one hop of the model graph is recorded per model;
the docs site walks the hops. project_lineage.py runs this over a whole project.

A column is *unresolved* when the trace cannot be finished exactly (a `*` over a relation whose
columns are unknown, a column that could come from more than one table, a table that is not part
of the project): it is marked with the reason, never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope
from sqlglot.schema import MappingSchema

from . import sql

DIRECT, EXPRESSION, AGGREGATE = "direct", "expression", "aggregate"
_STRENGTH = {DIRECT: 0, EXPRESSION: 1, AGGREGATE: 2}
# Relations a query reads are renamed to these before qualifying: a flat, one-level schema.
_PLACEHOLDER = "__sqlflow_rel_"


@dataclass(frozen=True)
class Upstream:
    """One column of a model, seed, source or ephemeral model that feeds a column."""

    unique_id: str
    column: str
    kind: str  # direct | expression | aggregate


@dataclass
class ColumnLineage:
    name: str
    upstream: list[Upstream] = field(default_factory=list)
    unresolved: str | None = None  # why the trace could not be finished


@dataclass
class ModelLineage:
    unique_id: str
    columns: list[ColumnLineage] = field(default_factory=list)
    # Why the output columns themselves are unknown (or the SQL could not be read).
    unresolved: str | None = None

    @property
    def resolved_columns(self) -> list[str] | None:
        """The output column names, when every one is known exactly."""
        return None if self.unresolved else [c.name for c in self.columns]


def strongest(*kinds: str) -> str:
    """The kind of a path: an aggregate anywhere makes it an aggregate, an expression an expression."""
    return max(kinds, key=_STRENGTH.__getitem__)


# --------------------------------------------------------------------------- one query


class _Unresolved(Exception):
    pass


def trace_query(
    text: str,
    dialect: str,
    *,
    table_owner: Callable[[exp.Table], str | None],
    columns_of: Mapping[str, list[str]],
    ephemeral_ctes: Mapping[str, str] | None = None,
    unique_id: str = "",
    output_columns: list[str] | None = None,
) -> ModelLineage:
    """Trace every output column of one SELECT.

    `table_owner` maps a table the query reads to the unique id that builds it (None: not part of
    the project); `columns_of` gives the known columns of those unique ids; `ephemeral_ctes`
    maps the CTE names of inlined ephemeral models to their unique ids; `output_columns` (from
    the warehouse) names the outputs when the query's own `*` cannot be expanded.
    """
    result = ModelLineage(unique_id)
    try:
        query = sql.parse(text, dialect)
    except Exception as exc:  # a lineage problem must never stop the docs
        result.unresolved = f"the SQL could not be read: {exc}"
        return result
    owners, flat_schema = _prepare(query, table_owner, columns_of, dialect)
    ctes = {name.lower(): uid for name, uid in (ephemeral_ctes or {}).items()}
    try:
        qualified = qualify(
            query,
            dialect=dialect,
            schema=_FlatSchema(flat_schema, dialect),
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        root = build_scope(qualified)
    except Exception as exc:  # sqlglot raises many kinds; none may stop the docs
        result.unresolved = f"sqlglot could not qualify the query: {exc}"
        return result
    if root is None:
        result.unresolved = "the query has no SELECT to trace"
        return result
    tracer = _Tracer(owners, ctes)
    names = tracer.output_names(root)
    by_name = names is None  # a `*` is left: follow each of the built relation's columns by name
    if names is None:
        if not output_columns:
            result.unresolved = tracer.star_reason(root)
            return result
        names = list(output_columns)
    for position, name in enumerate(names):
        column = ColumnLineage(name)
        try:
            found = tracer.trace(root, name if by_name else position)
            column.upstream = _merge(found)
        except _Unresolved as exc:
            column.unresolved = str(exc)
        result.columns.append(column)
    return result


def _merge(found: Iterable[Upstream]) -> list[Upstream]:
    """One entry per upstream column, with the strongest kind among the paths to it."""
    best: dict[tuple[str, str], Upstream] = {}
    for item in found:
        key = (item.unique_id, item.column)
        if key not in best or _STRENGTH[item.kind] > _STRENGTH[best[key].kind]:
            best[key] = item
    return list(best.values())


def _prepare(
    query: exp.Query,
    table_owner: Callable[[exp.Table], str | None],
    columns_of: Mapping[str, list[str]],
    dialect: str,
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Rename the project's relations to placeholders and drop filters, in one walk of the tree.

    A relation's placeholder name (its own name kept as alias) makes the schema flat and exact
    whatever the relation's database and schema, and maps straight back to its unique id.
    Filters (WHERE, HAVING, QUALIFY) never feed a column's value; without them sqlglot has less
    to resolve, and a filter's subquery over a relation whose columns are unknown cannot stop
    the whole query.
    """
    tables: list[exp.Table] = []
    cte_names: set[str] = set()
    for node in query.walk():
        if isinstance(node, exp.Table):
            tables.append(node)
        elif isinstance(node, exp.CTE):
            cte_names.add(node.alias_or_name.lower())
        elif isinstance(node, exp.Select):
            for clause in ("where", "having", "qualify"):
                if node.args.get(clause) is not None:
                    node.set(clause, None)
    owners: dict[str, str] = {}
    by_uid: dict[str, str] = {}
    schema: dict[str, list[str]] = {}
    for table in tables:
        if not table.name or isinstance(table.this, exp.Func):
            continue
        if not table.db and table.name.lower() in cte_names:
            continue
        uid = table_owner(table)
        if uid is None:
            continue
        placeholder = by_uid.get(uid)
        if placeholder is None:
            placeholder = by_uid[uid] = f"{_PLACEHOLDER}{len(by_uid)}"
            owners[placeholder] = uid
            if columns_of.get(uid):
                schema[placeholder] = [_normalized(name, dialect) for name in columns_of[uid]]
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name)))
        table.set("this", exp.to_identifier(placeholder))
        table.set("db", None)
        table.set("catalog", None)
    return owners, schema


@lru_cache(maxsize=65536)
def _normalized(name: str, dialect: str) -> str:
    """A column name as sqlglot normalizes the identifiers of a query in `dialect`."""
    return sql.dialect(dialect).normalize_identifier(exp.to_identifier(name)).name


class _FlatSchema(MappingSchema):
    """The columns of the placeholder-named relations of one query.

    MappingSchema normalizes its whole mapping when built and every table on each lookup, which
    was half the cost of qualifying; these names are normalized already and looked up as is.
    """

    def __init__(self, columns: dict[str, list[str]], dialect: str) -> None:
        super().__init__({}, dialect=dialect)
        self.flat = columns

    def column_names(self, table, only_visible=False, dialect=None, normalize=None):  # sqlglot signature
        name = table.name if isinstance(table, exp.Table) else str(table)
        return list(self.flat.get(name, ()))


class _Tracer:
    def __init__(self, owners: Mapping[str, str], ephemeral_ctes: Mapping[str, str]) -> None:
        self.owners = owners
        self.ephemeral_ctes = ephemeral_ctes

    def output_names(self, scope: Scope) -> list[str] | None:
        """The query's output column names; None while a `*` is left unexpanded."""
        select = _first_select(scope)
        if select is None or any(_is_star(p) for p in select.selects):
            return None
        return [p.alias_or_name for p in select.selects]

    def star_reason(self, scope: Scope) -> str:
        select = _first_select(scope)
        if select is None:
            return "the query has no SELECT to trace"
        unknown = [self._describe(source) for source in _star_sources(scope, select)]
        what = ", ".join(unknown) if unknown else "a relation"
        return (
            f"`*` over {what}, whose columns are unknown: build it first, so its columns are in the catalog"
        )

    def _describe(self, source: exp.Table | Scope) -> str:
        if isinstance(source, exp.Table):
            uid = self.owners.get(source.name)
            return uid.rsplit(".", 1)[-1] if uid else source.sql()
        return "a subquery"

    # ------------------------------------------------------------------ tracing

    def trace(self, scope: Scope, column: int | str, kind: str = DIRECT) -> list[Upstream]:
        """The upstream columns of one output column of `scope`, by position or by name."""
        if isinstance(scope.expression, exp.SetOperation):
            found: list[Upstream] = []
            for branch in scope.set_operation_scopes:
                found += self.trace(branch, column, kind)
            return found
        select = scope.expression
        if not isinstance(select, exp.Select):
            raise _Unresolved(f"cannot trace through {select.key.upper()}")
        projection = self._projection(select, column)
        if projection is None:
            return self._through_star(scope, select, column, kind)
        own_kind, columns, queries = _parts(projection)
        return self._expression(scope, columns, queries, strongest(kind, own_kind))

    def _projection(self, select: exp.Select, column: int | str) -> exp.Expression | None:
        projections = select.selects
        if isinstance(column, int):
            if column < len(projections) and not _is_star(projections[column]):
                return projections[column]
            if any(_is_star(p) for p in projections):
                raise _Unresolved("a `*` over a relation whose columns are unknown")
            raise _Unresolved("the query has fewer columns than its output")
        wanted = column.lower()
        for projection in projections:
            if not _is_star(projection) and projection.alias_or_name.lower() == wanted:
                return projection
        return None

    def _through_star(self, scope: Scope, select: exp.Select, name: int | str, kind: str) -> list[Upstream]:
        """A named column not among the projections must come through a `*` that was left as is."""
        sources = _star_sources(scope, select)
        if len(sources) != 1:
            if not sources:
                raise _Unresolved(f"no column {name!r} in the query")
            raise _Unresolved(f"{name!r} comes through `*` over several relations whose columns are unknown")
        return self._from_source(sources[0], str(name), kind)

    def _expression(
        self, scope: Scope, columns: list[exp.Column], queries: list[exp.Query], kind: str
    ) -> list[Upstream]:
        found: list[Upstream] = []
        for column in columns:
            found += self._column(scope, column, kind)
        for query in queries:
            sub = _scope_of(scope, query)
            if sub is None:
                raise _Unresolved("a subquery could not be traced")
            found += self.trace(sub, 0, strongest(kind, EXPRESSION))
        return found

    def _column(self, scope: Scope, column: exp.Column, kind: str) -> list[Upstream]:
        if not column.table:
            # sqlglot leaves a column unqualified when the schema cannot place it; with a single
            # relation in FROM it can only come from there, with several it stays unknown.
            sources = list(scope.selected_sources.values())
            if len(sources) == 1:
                return self._from_source(sources[0][1], column.name, kind)
            raise _Unresolved(
                f"cannot tell which relation {column.name!r} comes from (their columns are not in the catalog)"
            )
        current: Scope | None = scope
        while current is not None:  # correlated subqueries read their outer query's sources
            source = current.sources.get(column.table)
            if source is not None:
                return self._from_source(source, column.name, kind)
            current = current.parent
        raise _Unresolved(f"{column.table}.{column.name} does not name a relation of the query")

    def _from_source(self, source: exp.Table | Scope, name: str, kind: str) -> list[Upstream]:
        if isinstance(source, Scope):
            cte = _cte_name(source)
            if cte is not None and cte.lower() in self.ephemeral_ctes:
                return [Upstream(self.ephemeral_ctes[cte.lower()], name, kind)]
            if isinstance(source.expression, exp.Values) or source.is_udtf:
                return []  # constants (VALUES) or a table function: nothing upstream
            return self.trace(source, name, kind)
        if isinstance(source, exp.Table):
            if isinstance(source.this, exp.Func) or not source.name:
                return []  # a table function (range(), unnest()...): generated, nothing upstream
            uid = self.owners.get(source.name)
            if uid is None:
                raise _Unresolved(
                    f"reads {source.sql()}, which is not a model, seed or source of the project"
                )
            return [Upstream(uid, name, kind)]
        return []


def _first_select(scope: Scope) -> exp.Select | None:
    # Not `scope.is_set_operation`: that is also true of each branch of a UNION.
    while isinstance(scope.expression, exp.SetOperation):
        if not scope.set_operation_scopes:
            return None
        scope = scope.set_operation_scopes[0]
    return scope.expression if isinstance(scope.expression, exp.Select) else None


def _is_star(projection: exp.Expression) -> bool:
    return isinstance(projection, exp.Star) or (
        isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
    )


def _star_sources(scope: Scope, select: exp.Select) -> list[exp.Table | Scope]:
    """The sources a SELECT's remaining `*`s read (`t.*` reads t, `*` every source)."""
    stars = [p for p in select.selects if _is_star(p)]
    if any(isinstance(s, exp.Star) for s in stars):
        return list(scope.selected_sources[name][1] for name in scope.selected_sources)
    names = {s.table for s in stars}
    return [scope.sources[name] for name in names if name in scope.sources]


def _parts(projection: exp.Expression) -> tuple[str, list[exp.Column], list[exp.Query]]:
    """A projection's kind, and the columns and subqueries (scopes of their own) it reads."""
    expression = projection.this if isinstance(projection, exp.Alias) else projection
    if isinstance(expression, exp.Column):
        return DIRECT, [expression], []
    kind, columns, queries = EXPRESSION, [], []
    stack = [(expression, False)]
    while stack:
        node, windowed = stack.pop()
        if isinstance(node, exp.Column):
            columns.append(node)
            continue
        if isinstance(node, exp.Query):
            queries.append(node)
            continue
        # An aggregate inside a window (sum(x) over (...)) keeps one row per input row.
        if not windowed and isinstance(node, exp.AggFunc):
            kind = AGGREGATE
        inner = windowed or isinstance(node, exp.Window)
        stack.extend((child, inner) for child in node.iter_expressions())
    return kind, columns, queries


def _scope_of(scope: Scope, query: exp.Query) -> Scope | None:
    inner = query.this if isinstance(query, exp.Subquery) else query
    for sub in scope.subquery_scopes:
        if sub.expression is inner or sub.expression is query:
            return sub
    return None


def _cte_name(scope: Scope) -> str | None:
    parent = scope.expression.parent
    return parent.alias if isinstance(parent, exp.CTE) else None
