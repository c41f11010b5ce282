"""The catalog: each documented relation's columns and types, and where they were read.

Columns come from the warehouse where the relation is built (one bulk query through the
adapter), from a seed's CSV file where the seed is not loaded yet, and from the properties YAML
otherwise. `target/catalog.json` is written in dbt's format, so tools that read dbt's catalog
read ours.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, artifacts
from .adapters import Adapter
from .errors import UserError
from .manifest import Manifest
from .nodes import Column, Node, Source
from .runner import now_iso
from .seed_csv import column_override, read_seed

CATALOG_SCHEMA = "https://schemas.getdbt.com/dbt/catalog/v1.json"
WAREHOUSE, SEED_FILE, YAML = "warehouse", "seed file", "yaml"


@dataclass
class CatalogEntry:
    unique_id: str
    columns: list[tuple[str, str | None]] = field(default_factory=list)  # (name, type) in order
    comes_from: str | None = None  # warehouse | seed file | yaml; None: no columns known
    kind: str | None = None  # "table" | "view" where built

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]


def read_catalog(
    manifest: Manifest,
    uids: Iterable[str],
    adapter: Adapter | None,
    existing: dict[tuple[str, str], str],
) -> dict[str, CatalogEntry]:
    """Columns of every relation among `uids` (models, seeds, snapshots, sources).

    `existing` is the adapter's `list_relations()` (empty, with no adapter, when the warehouse
    does not exist yet): only relations in it are asked for.
    """
    resources = [_resource(manifest, uid) for uid in uids]
    documented = [r for r in resources if r is not None and _has_relation(r)]
    key = adapter.key if adapter is not None else (lambda schema, name: (schema, name))
    built = [r for r in documented if key(r.relation.schema, r.relation.identifier) in existing]
    warehouse = adapter.catalog([r.relation for r in built]) if adapter is not None and built else {}
    catalog: dict[str, CatalogEntry] = {}
    for resource in documented:
        entry = CatalogEntry(resource.unique_id)
        found = warehouse.get(resource.relation)
        if found:
            entry.columns = [(name, kind) for name, kind in found]
            entry.comes_from = WAREHOUSE
            entry.kind = existing.get(key(resource.relation.schema, resource.relation.identifier))
        elif getattr(resource, "resource_type", None) == "seed":
            entry.columns, entry.comes_from = _seed_columns(resource), SEED_FILE
        elif resource.columns:
            entry.columns = [(c.name, c.data_type) for c in resource.columns.values()]
            entry.comes_from = YAML
        catalog[resource.unique_id] = entry
    return catalog


def _resource(manifest: Manifest, uid: str) -> Node | Source | None:
    return manifest.nodes.get(uid) or manifest.sources.get(uid)


def _has_relation(resource: Node | Source) -> bool:
    if isinstance(resource, Source):
        return True
    return resource.resource_type in ("model", "seed", "snapshot") and not resource.is_ephemeral


def _seed_columns(node: Node) -> list[tuple[str, str | None]]:
    delimiter = str(node.config.get("delimiter") or ",")
    overrides = {str(k): str(v) for k, v in (node.config.get("column_types") or {}).items()}
    try:
        table = read_seed(node.path, delimiter)
    except UserError:
        return []  # `seed` reports a broken file; the docs show the seed without columns
    return [
        (name, column_override(overrides, name) or kind)
        for name, kind in zip(table.columns, table.types, strict=True)
    ]


def column_docs(resource: Node | Source) -> dict[str, Column]:
    """The YAML entries of a resource's columns, by lower-cased name (warehouses fold case)."""
    return {name.lower(): column for name, column in resource.columns.items()}


def write_catalog_json(manifest: Manifest, catalog: dict[str, CatalogEntry]) -> Path:
    """target/catalog.json in dbt's format: the columns read from the warehouse (and seed files)."""
    nodes: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    for uid, entry in catalog.items():
        resource = _resource(manifest, uid)
        if resource is None or entry.comes_from not in (WAREHOUSE, SEED_FILE):
            continue
        relation = resource.relation
        data = {
            "unique_id": uid,
            "metadata": {
                "type": (entry.kind or "table").upper(),
                "schema": relation.schema,
                "name": relation.identifier,
                "database": relation.database,
                "comment": None,
                "owner": None,
            },
            "columns": {
                name: {"type": kind, "index": index, "name": name, "comment": None}
                for index, (name, kind) in enumerate(entry.columns, start=1)
            },
            "stats": {},
        }
        (sources if isinstance(resource, Source) else nodes)[uid] = data
    document = {
        "metadata": {
            "dbt_schema_version": CATALOG_SCHEMA,
            "dbt_version": "1.8.0",
            "sqlflow_version": __version__,
            "generated_at": now_iso(),
            "invocation_id": manifest.invocation_id,
            "env": {},
        },
        "nodes": nodes,
        "sources": sources,
        "errors": None,
    }
    path = manifest.project.target_path / "catalog.json"
    artifacts.write_json(path, document, manifest.project.secrets)
    return path
