"""What templates may ask the warehouse while they render: dbt's `run_query`, `statement` and
`load_result`, and the adapter's `get_columns_in_relation`, `get_relation` and `load_relation`.

sqlflow compiles every node before it builds any; dbt compiles each one just before building
it, so these calls see the relations the run built before. A node whose render asks the
warehouse is therefore compiled at build time, once its parents are built: rendered ahead of
the run, the first such call raises `NeedsWarehouse` and the compiler defers the node. While
the project loads (`execute` false) they answer as dbt's parser does: nothing, no rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import CompilationError, WarehouseError

if TYPE_CHECKING:
    from .adapters.base import Adapter


class QueryFailed(CompilationError):
    """A query a template ran failed in the warehouse."""


class NeedsWarehouse(Exception):
    """A render ahead of the run asked the warehouse: the node is compiled when it is built."""


@dataclass
class Warehouse:
    """The warehouse as one render may see it."""

    # Opens the adapter; None where there is no warehouse (compiling before it exists).
    connect: Callable[[], Adapter] | None
    # False ahead of a run: the first question raises NeedsWarehouse.
    live: bool
    # False while the project loads: every question answers nothing.
    execute: bool = True

    def _adapter(self, what: str) -> Adapter | None:
        if not self.execute:
            return None
        if not self.live:
            raise NeedsWarehouse(what)
        if self.connect is None:
            raise CompilationError(
                f"{what} reads the warehouse, which does not exist yet",
                hint="build the project first (`sqlflow run`); this model is compiled when it is built",
            )
        return self.connect()

    def query(self, sql: str) -> QueryTable | None:
        adapter = self._adapter("run_query()")
        if adapter is None:
            return None
        try:
            result = adapter.execute(sql, fetch=True)
        except WarehouseError as exc:
            raise QueryFailed(f"a query run while compiling failed: {exc}") from exc
        return QueryTable(result.columns, result.rows, result.rowcount)

    def columns(self, relation: Any) -> list[Column]:
        adapter = self._adapter("adapter.get_columns_in_relation()")
        if adapter is None:
            return []
        found = adapter.columns(_relation(relation))
        return [Column(name, data_type) for name, data_type in found]

    def relation(self, relation: Any) -> Any:
        """`relation` if it exists in the warehouse, else None (dbt's load_relation)."""
        adapter = self._adapter("adapter.get_relation()")
        if adapter is None:
            return None
        target = _relation(relation)
        return relation if adapter.key(target.schema, target.identifier) in adapter.list_relations() else None


def _relation(relation: Any):
    from .nodes import Relation

    schema, identifier = getattr(relation, "schema", None), getattr(relation, "identifier", None)
    if not schema or not identifier:
        raise CompilationError(
            f"expected a relation (ref(), source() or this), got {relation!r}",
            hint="pass ref('model') or source('name', 'table'), not a string",
        )
    return Relation(getattr(relation, "database", None), schema, identifier)


@dataclass
class Column:
    """A column as dbt's adapter returns it."""

    name: str
    data_type: str

    @property
    def column(self) -> str:
        return self.name

    @property
    def dtype(self) -> str:
        return self.data_type

    @property
    def quoted(self) -> str:
        return '"' + self.name.replace('"', '""') + '"'

    def is_string(self) -> bool:
        return self.data_type.lower().startswith(("varchar", "text", "char", "string", "character"))

    def string_size(self) -> int:
        """The length a string column is declared with; 256 where none is (dbt's rule)."""
        if not self.is_string():
            raise CompilationError(f"column {self.name} is not a string but {self.data_type}")
        size = re.search(r"\((\d+)\)", self.data_type)
        return int(size.group(1)) if size else 256

    def is_numeric(self) -> bool:
        return self.data_type.lower().startswith(("decimal", "numeric"))

    def is_number(self) -> bool:
        return self.is_integer() or self.is_float() or self.is_numeric()

    def is_integer(self) -> bool:
        return self.data_type.lower() in ("integer", "int", "bigint", "smallint", "tinyint", "hugeint")

    def is_float(self) -> bool:
        return self.data_type.lower() in ("float", "double", "real", "double precision")


class QueryTable:
    """A query's result as dbt's agate table offers it to templates: `rows` (by position or
    column name), `columns[i].values()` (or `columns['name']`), `column_names`."""

    def __init__(
        self, names: Sequence[str], rows: Sequence[tuple[Any, ...]], rowcount: int | None = None
    ) -> None:
        self.column_names = tuple(names)
        # What the warehouse says the statement touched (dbt's rows_affected), else the rows read.
        self.rowcount = rowcount if rowcount is not None and rowcount >= 0 else len(rows)
        self.rows = [_Row(self.column_names, row) for row in rows]
        self.columns = _Columns(
            [_Column(name, [row[i] for row in rows]) for i, name in enumerate(self.column_names)]
        )

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[_Row]:
        return iter(self.rows)

    def print_table(self, *args: Any, **kwargs: Any) -> str:
        return ""


class _Row(tuple):
    def __new__(cls, names: tuple[str, ...], values: tuple[Any, ...]) -> _Row:
        row = super().__new__(cls, values)
        row._names = names  # type: ignore[attr-defined]
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names.index(key))  # type: ignore[attr-defined]
        return super().__getitem__(key)

    def keys(self) -> tuple[str, ...]:
        return self._names  # type: ignore[attr-defined]

    def values(self) -> tuple[Any, ...]:
        return tuple(self)

    def dict(self) -> dict[str, Any]:
        return dict(zip(self._names, self, strict=True))  # type: ignore[attr-defined]


@dataclass
class _Column:
    name: str
    _values: list[Any]

    def values(self) -> list[Any]:
        return list(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


class _Columns(list):
    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            for column in self:
                if column.name == key:
                    return column
            raise KeyError(key)
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return [column.name for column in self]

    def values(self) -> list[_Column]:
        return list(self)

    def items(self) -> list[tuple[str, _Column]]:
        return [(column.name, column) for column in self]


@dataclass
class StatementResults:
    """`{% call statement('name', fetch_result=True) %}` and `load_result('name')` of one render."""

    warehouse: Warehouse
    results: dict[str, dict[str, Any]] = field(default_factory=dict)

    def statement(
        self,
        name: str | None = None,
        fetch_result: bool = False,
        auto_begin: bool = True,
        language: str = "sql",
        caller: Callable[[], str] | None = None,
    ) -> str:
        sql = caller() if caller is not None else ""
        table = self.warehouse.query(str(sql)) if str(sql).strip() else None
        if name is not None and table is not None:
            kept = table if fetch_result else QueryTable(table.column_names, [])
            self.results[name] = {
                "data": [tuple(row) for row in kept.rows],
                "table": kept,
                "response": {"rows_affected": table.rowcount},
            }
        return ""

    def load_result(self, name: str) -> dict[str, Any] | None:
        return self.results.get(name)


def context(warehouse: Warehouse) -> dict[str, Any]:
    """run_query, statement, load_result and load_relation for one render."""
    statements = StatementResults(warehouse)
    return {
        "run_query": warehouse.query,
        "statement": statements.statement,
        "load_result": statements.load_result,
        "load_relation": warehouse.relation,
        "_sqlflow_warehouse": warehouse,
    }
