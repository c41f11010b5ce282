"""The parsed project as plain data: relations, nodes, sources, macros.

Nodes carry no behaviour beyond small derived properties; every stage after loading reads them
and none mutates another stage's output.
"""

from __future__ import annotations

import collections.abc
import threading
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from .lazy import exp, sqlglot

# Config keys whose values accumulate across levels (folder < YAML < file) instead of replacing.
INCREMENTAL_STRATEGIES = ("append", "merge", "delete+insert", "insert_overwrite", "microbatch")
# What an incremental run does when the model's columns differ from its table's (dbt's values).
ON_SCHEMA_CHANGE = ("ignore", "fail", "append_new_columns", "sync_all_columns")
ADDITIVE_CONFIG_KEYS = ("tags",)
MERGED_CONFIG_KEYS = ("meta",)


def partition_columns(config: Any) -> list[str]:
    """A model's `partition_by` (a column or a list of columns) as a list of names."""
    value = config.get("partition_by")
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


@dataclass(frozen=True)
class Relation:
    """A table or view in the warehouse. `database` is None where the connection's default applies."""

    database: str | None
    schema: str
    identifier: str

    def table(self) -> exp.Table:
        return exp.Table(
            this=exp.to_identifier(self.identifier, quoted=True),
            db=exp.to_identifier(self.schema, quoted=True),
            catalog=exp.to_identifier(self.database, quoted=True) if self.database else None,
        )

    def sql(self, dialect: str) -> RelationName:
        return _render_relation(self, dialect)

    def with_identifier(self, identifier: str) -> Relation:
        return Relation(self.database, self.schema, identifier)


class RelationName(str):
    """A relation as Jinja sees it (`this`, `ref()`, `source()`): its quoted name, which is what
    renders, with the attributes of dbt's Relation (`{{ this.schema }}`, `{{ ref('orders').identifier }}`)."""

    database: str | None
    schema: str | None
    identifier: str | None
    dialect: str | None  # None: quoted with double quotes (the load's placeholders)

    def __new__(
        cls, text: str, database: str | None, schema: str | None, identifier: str | None, dialect: str | None
    ) -> RelationName:
        name = super().__new__(cls, text)
        name.database, name.schema, name.identifier, name.dialect = database, schema, identifier, dialect
        return name

    def __reduce__(self) -> tuple[Any, ...]:
        return RelationName, (str(self), self.database, self.schema, self.identifier, self.dialect)

    @property
    def name(self) -> str | None:
        return self.identifier

    @property
    def table(self) -> str | None:
        return self.identifier

    # What dbt_utils' `_is_relation` and `_is_ephemeral` look at: it is a mapping (registered
    # below) whose metadata type ends in "Relation", and no CTE.
    is_cte = False

    def get(self, key: str, default: Any = None) -> Any:
        if key == "metadata":
            return {"type": "Relation"}
        return getattr(self, key) if key in self.keys() else default

    def keys(self) -> list[str]:
        return ["database", "schema", "identifier"]

    def items(self) -> list[tuple[str, str | None]]:
        return [(key, getattr(self, key)) for key in self.keys()]

    def values(self) -> list[str | None]:
        return [getattr(self, key) for key in self.keys()]

    def render(self) -> str:
        return str(self)

    def include(self, database: bool = True, schema: bool = True, identifier: bool = True) -> RelationName:
        """The name with only some of its parts, as dbt's `this.include(database=false)`."""
        kept = (
            self.database if database else None,
            self.schema if schema else None,
            self.identifier if identifier else None,
        )
        return relation_name(*kept, dialect=self.dialect)


collections.abc.Mapping.register(RelationName)


def relation_name(
    database: str | None, schema: str | None, identifier: str | None, *, dialect: str | None
) -> RelationName:
    parts = [part for part in (database, schema, identifier) if part]
    quote = (
        (lambda part: _quoted(part, dialect))
        if dialect
        else (lambda part: '"' + part.replace('"', '""') + '"')
    )
    return RelationName(".".join([quote(part) for part in parts]), database, schema, identifier, dialect)


@lru_cache(maxsize=65536)
def _render_relation(relation: Relation, dialect: str) -> RelationName:
    # Rendering is on the hot path (every ref of every model, every node of manifest.json). Each
    # name is quoted once (a schema is shared by thousands of relations): building the table's
    # expression cost 25 µs, three times the rest. sqlglot writes a table as its quoted parts
    # joined by dots in every dialect (tests/test_nodes.py).
    return relation_name(relation.database or None, relation.schema, relation.identifier, dialect=dialect)


@lru_cache(maxsize=65536)
def _quoted(name: str, dialect: str) -> str:
    # What sqlglot's generator writes for a quoted identifier, without it where nothing needs
    # escaping: 10,000 relation names of a large project each cost it ~8 µs (tests/test_nodes.py
    # checks both ways agree in every dialect).
    quote_start, quote_end = _quotes(dialect)
    if quote_end not in name and "\\" not in name and name.isascii() and name.isprintable():
        return quote_start + name + quote_end
    # A generator per thread and dialect quotes in a quarter of the time of expression.sql(),
    # which builds one per call.
    generators = _generators.__dict__
    generator = generators.get(dialect)
    if generator is None:
        generator = generators[dialect] = _dialect(dialect).generator()
    return generator.generate(exp.to_identifier(name, quoted=True), copy=False)  # fresh: no copy needed


_generators = threading.local()


@cache
def _quotes(dialect: str) -> tuple[str, str]:
    d = _dialect(dialect)
    return d.IDENTIFIER_START, d.IDENTIFIER_END


@cache
def _dialect(name: str) -> sqlglot.Dialect:
    # get_or_raise builds a new Dialect for a name on every call (4x the cost of the rendering).
    return sqlglot.Dialect.get_or_raise(name)


@dataclass(frozen=True)
class RefCall:
    name: str
    line: int | None = None
    package: str | None = None


@dataclass(frozen=True)
class SourceCall:
    source_name: str
    table_name: str
    line: int | None = None


@dataclass
class Column:
    name: str
    description: str = ""
    data_type: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tests: list[Any] = field(default_factory=list)
    line: int | None = None  # of the column's entry in the properties YAML


@dataclass
class Node:
    """A model, seed, snapshot or data test: something the runner builds or checks."""

    unique_id: str
    resource_type: str  # "model" | "seed" | "snapshot" | "test"
    name: str
    package_name: str
    path: Path  # absolute
    original_file_path: str  # relative to the project root, posix
    fqn: list[str]
    raw_code: str
    checksum: str
    config: dict[str, Any]
    refs: list[RefCall] = field(default_factory=list)
    sources: list[SourceCall] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    relation: Relation | None = None
    description: str = ""
    columns: dict[str, Column] = field(default_factory=dict)
    patch_path: str | None = None
    # The parsed Jinja program (see jinja.Program); opaque to every stage but rendering.
    program: Any = None
    line: int | None = None  # where a node defined inside a YAML file is declared
    # Generic data tests: {"name", "namespace", "kwargs"} and the node and column they test.
    test_metadata: dict[str, Any] | None = None
    column_name: str | None = None
    attached_node: str | None = None

    @property
    def materialized(self) -> str:
        if self.resource_type != "model":
            return self.resource_type
        return str(self.config.get("materialized", "view"))

    @property
    def is_ephemeral(self) -> bool:
        return self.materialized == "ephemeral"

    @property
    def contract_enforced(self) -> bool:
        """`contract: {enforced: true}`: the built relation must have exactly the declared columns."""
        contract = self.config.get("contract")
        enforced = isinstance(contract, dict) and contract.get("enforced") is True
        return self.resource_type == "model" and enforced

    @property
    def tags(self) -> list[str]:
        return list(self.config.get("tags", []))


@dataclass
class Source:
    unique_id: str
    source_name: str
    name: str
    relation: Relation
    path: str
    line: int | None = None
    description: str = ""
    columns: dict[str, Column] = field(default_factory=dict)
    loaded_at_field: str | None = None
    freshness: dict[str, Any] | None = None
    event_time: str | None = None  # `config: {event_time: ...}`: microbatch models read one window
    external_location: str | None = None  # dbt-duckdb's: what source() renders, e.g. 'data/x.parquet'
    meta: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    fqn: list[str] = field(default_factory=list)
    package_name: str | None = None  # None: the root project


@dataclass
class Exposure:
    """A dashboard, notebook or application that reads the project (`exposures:` in properties
    YAML): a vertex of the graph that is never built (exposures.py)."""

    unique_id: str
    name: str
    package_name: str
    path: Path  # the properties file, absolute
    original_file_path: str
    fqn: list[str]
    type: str
    owner: dict[str, Any]
    refs: list[RefCall] = field(default_factory=list)
    sources: list[SourceCall] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    description: str = ""
    label: str | None = None
    maturity: str | None = None
    url: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    resource_type: str = "exposure"


@dataclass
class Doc:
    """A `{% docs name %}` block of a `.md` file (doc_blocks.py)."""

    unique_id: str
    name: str
    path: Path
    original_file_path: str
    block_contents: str
    line: int | None = None


@dataclass
class Macro:
    unique_id: str
    name: str
    path: Path
    original_file_path: str
    macro_sql: str
    line: int | None = None
    package_name: str | None = None  # None: the root project


# dbt's spellings of the hook configs; the manifest's.
HOOK_KEYS = {
    "pre_hook": "pre-hook",
    "pre-hook": "pre-hook",
    "post_hook": "post-hook",
    "post-hook": "post-hook",
}


def hook_list(value: Any) -> list[dict[str, Any]]:
    """A hook config as dbt's manifest writes it: [{"sql": ..., "transaction": ...}], from a string,
    a `{sql: ...}` mapping or a list of either."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [hook for item in value for hook in hook_list(item)]
    if isinstance(value, dict) and "sql" in value:
        return [{"sql": str(value["sql"]), "transaction": bool(value.get("transaction", True))}]
    return [{"sql": str(value), "transaction": True}]


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """dbt's precedence: later levels replace keys, except tags (appended), meta (merged) and
    hooks (every level's run, outer levels first)."""
    merged = dict(base)
    for key, value in override.items():
        if key in HOOK_KEYS:
            name = HOOK_KEYS[key]
            merged[name] = [*merged.get(name, []), *hook_list(value)]
        elif key in ADDITIVE_CONFIG_KEYS:
            values = [value] if isinstance(value, str) else list(value or [])
            merged[key] = list(dict.fromkeys([*merged.get(key, []), *values]))
        elif key in MERGED_CONFIG_KEYS and isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        else:
            merged[key] = value
    return merged
