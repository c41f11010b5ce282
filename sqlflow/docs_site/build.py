"""Writing the static docs site: the page and its assets, a small index, lazy details, search.

    target/docs/index.html            the page (package data, copied)
    target/docs/assets/*.js, *.css    our front-end (package data, copied)
    target/docs/data/index.js         first paint: every node's name, type, folder, schema,
                                      layout and last status, and the graph's edges
    target/docs/data/search.js        the prebuilt search index, loaded right after first paint
    target/docs/data/nodes/N.js       details (SQL, columns, lineage, tests...) of nodes N*100 to
                                      N*100+99, loaded when one of them is opened

Data files are scripts calling `sqlflowData(name, value)`, not JSON fetched at run time:
browsers refuse `fetch()` between `file://` URLs, and the site must work opened from disk. Every
string in them is data; the page only ever puts it in the DOM as text.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..catalog import CatalogEntry
from ..compiler import CompiledNode
from ..doc_blocks import OVERVIEW
from ..graph import Graph
from ..lineage import ModelLineage
from ..manifest import Manifest
from ..nodes import Exposure, Node, Source
from ..project import Secrets
from ..snapshots import META_COLUMNS
from .layout import layered
from .search_index import COLUMN, DESCRIPTION, NAME, OTHER, SearchIndex

CHUNK_SIZE = 100
# Above this many nodes in the graph the page opens focused on one node (2+node+2) instead of
# drawing everything.
FOCUS_THRESHOLD = 300
RELATION_TYPES = ("source", "seed", "model", "snapshot")  # what has columns
GRAPH_TYPES = (*RELATION_TYPES, "exposure")
_TYPE_ORDER = {kind: index for index, kind in enumerate((*GRAPH_TYPES, "test", "unit_test", "macro"))}
KINDS = {"direct": "d", "expression": "e", "aggregate": "a"}


@dataclass
class SiteSummary:
    path: Path  # index.html
    nodes: int
    models: int
    columns: int
    unresolved_columns: int
    data_bytes: int  # everything under data/


@dataclass
class SiteInputs:
    """Everything the site shows, produced by the earlier stages of `docs generate`."""

    manifest: Manifest
    graph: Graph
    uids: Sequence[str]  # the documented nodes and sources
    compiled: Mapping[str, CompiledNode]
    catalog: Mapping[str, CatalogEntry]
    lineage: Mapping[str, ModelLineage]
    results: Mapping[str, dict[str, Any]]  # run_results.json entries by unique id
    dialect: str


def write_site(inputs: SiteInputs, out: Path) -> SiteSummary:
    """Write the site to `out` (replacing its data) and return what it holds."""
    site = _Site(inputs)
    data = out / "data"
    if data.exists():
        shutil.rmtree(data)  # chunks of an earlier, larger project must not linger
    (data / "nodes").mkdir(parents=True)
    _copy_assets(out)
    mask = _masker(inputs.manifest.project.secrets)
    written = _write_script(data / "index.js", "index", site.index(), mask)
    written += _write_script(data / "search.js", "search", site.search(), mask)
    details = site.details()
    for chunk in range(0, len(site.entries), CHUNK_SIZE):
        part = {str(i): details[i] for i in range(chunk, min(chunk + CHUNK_SIZE, len(site.entries)))}
        number = chunk // CHUNK_SIZE
        written += _write_script(data / "nodes" / f"{number}.js", f"chunk:{number}", part, mask)
    return SiteSummary(
        out / "index.html",
        nodes=len(site.entries),
        models=sum(1 for e in site.entries if getattr(e, "resource_type", "") == "model"),
        columns=site.column_count,
        unresolved_columns=site.unresolved_count,
        data_bytes=written,
    )


def read_run_results(target_path: Path) -> dict[str, dict[str, Any]]:
    """The last run's results by unique id (empty when there is no readable run_results.json)."""
    try:
        data = json.loads((target_path / "run_results.json").read_text(encoding="utf-8"))
        return {
            r["unique_id"]: r for r in data.get("results", []) if isinstance(r, dict) and "unique_id" in r
        }
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def _copy_assets(out: Path) -> None:
    assets = resources.files(__package__) / "assets"
    (out / "assets").mkdir(parents=True, exist_ok=True)
    for item in assets.iterdir():
        if not item.is_file() or item.name.startswith("."):
            continue
        target = out / item.name if item.name == "index.html" else out / "assets" / item.name
        target.write_bytes(item.read_bytes())


def _write_script(path: Path, name: str, value: Any, mask: Callable[[str], str]) -> int:
    # Masked as text, and every string once more as JSON writes it: a secret with a quote or a
    # non-ASCII character in it is escaped in the file. (A `</script>` in a value ends nothing:
    # the script is a file of its own, never inlined in the page.)
    text = mask(f"sqlflowData({json.dumps(name)},{json.dumps(value, separators=(',', ':'), default=str)});\n")
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def _masker(secrets: Secrets) -> Callable[[str], str]:
    """The secret mask, for secrets as they are and as JSON escapes them."""
    forms = {form for value in secrets.values for form in (value, json.dumps(value)[1:-1])}
    ordered = sorted(forms, key=len, reverse=True)

    def mask(text: str) -> str:
        for form in ordered:
            text = text.replace(form, "*****")
        return text

    return mask


class _Site:
    def __init__(self, inputs: SiteInputs) -> None:
        self.inputs = inputs
        manifest = inputs.manifest
        chosen = set(inputs.uids)
        resources_ = [
            manifest.nodes.get(uid) or manifest.sources.get(uid) or manifest.exposures[uid]
            for uid in inputs.uids
        ]
        resources_ += list(manifest.macros.values())
        self.entries: list[Any] = sorted(resources_, key=_sort_key)
        self.position = {e.unique_id: i for i, e in enumerate(self.entries)}
        self.in_graph = [e.unique_id for e in self.entries if _kind(e) in GRAPH_TYPES]
        graph_set = set(self.in_graph)
        self.edges = [
            (parent, child)
            for child in self.in_graph
            for parent in inputs.graph.parents(child)
            if parent in graph_set and parent in chosen
        ]
        self.layout = layered(self.in_graph, self.edges, order=lambda uid: self.position[uid])
        self.tests_of: dict[str, list[str]] = {}
        for entry in self.entries:
            if _kind(entry) in ("test", "unit_test") and entry.attached_node:
                self.tests_of.setdefault(entry.attached_node, []).append(entry.unique_id)
        self.columns = {
            e.unique_id: self._columns(e.unique_id) for e in self.entries if _kind(e) in RELATION_TYPES
        }
        self._add_downstream()
        self.column_count = sum(len(cols) for cols in self.columns.values())
        self.unresolved_count = sum(1 for cols in self.columns.values() for c in cols if c.get("unresolved"))

    def _entry(self, uid: str) -> Any:
        return self.entries[self.position[uid]]

    def ref(self, uid: str) -> int | str:
        """A node as the page refers to it: its index, or its unique id when it is not in the site."""
        return self.position.get(uid, uid)

    # ------------------------------------------------------------------ index

    def index(self) -> dict[str, Any]:
        manifest = self.inputs.manifest
        nodes = []
        for i, entry in enumerate(self.entries):
            item: dict[str, Any] = {
                "i": entry.unique_id,
                "n": _display_name(entry),
                "t": _kind(entry),
                "c": i // CHUNK_SIZE,
            }
            path = _path(entry)
            if path:
                item["p"] = path
            relation = getattr(entry, "relation", None)
            if (
                relation is not None
                and _kind(entry) in GRAPH_TYPES
                and not getattr(entry, "is_ephemeral", False)
            ):
                item["s"] = relation.schema
                item["r"] = relation.identifier
                if relation.database:
                    item["d"] = relation.database
            if isinstance(entry, Node):
                if entry.resource_type == "model":
                    item["m"] = entry.materialized
                if entry.tags:
                    item["g"] = entry.tags
                item["f"] = ".".join(entry.fqn)
                if entry.package_name != manifest.project.name:
                    item["k"] = entry.package_name
                if entry.attached_node:
                    item["a"] = self.ref(entry.attached_node)
            elif isinstance(entry, (Source, Exposure)):
                if isinstance(entry, Source):
                    item["sn"] = entry.source_name
                item["f"] = ".".join(entry.fqn)
                if entry.tags:
                    item["g"] = entry.tags
            if entry.unique_id in self.layout:
                item["x"], item["y"] = self.layout[entry.unique_id].layer, self.layout[entry.unique_id].rank
            result = self.inputs.results.get(entry.unique_id)
            if result:
                item["st"] = result.get("status")
                if result.get("execution_time") is not None:
                    item["du"] = result["execution_time"]
            nodes.append(item)
        edges = [v for parent, child in self.edges for v in (self.position[parent], self.position[child])]
        counts: dict[str, int] = {}
        for entry in self.entries:
            counts[_kind(entry)] = counts.get(_kind(entry), 0) + 1
        return {
            "project": manifest.project.name,
            "target": manifest.project.target.name,
            "adapter": manifest.project.target.type,
            "generated_at": manifest.run_started_at.isoformat(),
            # The project's `{% docs __overview__ %}` block, shown on the front page as dbt does.
            "overview": overview.block_contents if (overview := manifest.docs.get(OVERVIEW)) else None,
            "focus_threshold": FOCUS_THRESHOLD,
            "chunk_size": CHUNK_SIZE,
            "counts": counts,
            "nodes": nodes,
            "edges": edges,
        }

    # ------------------------------------------------------------------ search

    def search(self) -> dict[str, list]:
        index = SearchIndex()
        for i, entry in enumerate(self.entries):
            # Test names are made up from the test and its column: found, but after models.
            index.add(i, _display_name(entry), OTHER if _kind(entry) in ("test", "unit_test") else NAME)
            index.add(i, getattr(entry, "description", ""), DESCRIPTION)
            index.add_all(i, (c["name"] for c in self.columns.get(entry.unique_id, [])), COLUMN)
            index.add_all(i, [*_tags(entry), _path(entry)], OTHER)
        return index.data()

    # ------------------------------------------------------------------ details

    def details(self) -> list[dict[str, Any]]:
        return [self._detail(entry) for entry in self.entries]

    def _detail(self, entry: Any) -> dict[str, Any]:
        uid = entry.unique_id
        kind = _kind(entry)
        detail: dict[str, Any] = {"description": getattr(entry, "description", "") or ""}
        if kind == "macro":
            detail.update(path=entry.original_file_path, raw=entry.macro_sql)
            return detail
        graph = self.inputs.graph
        detail["parents"] = [self.ref(p) for p in graph.parents(uid) if not _is_test_uid(p)]
        detail["children"] = [self.ref(c) for c in graph.children(uid) if not _is_test_uid(c)]
        result = self.inputs.results.get(uid)
        if result:
            detail["result"] = {
                k: result.get(k)
                for k in ("status", "execution_time", "message", "failures")
                if result.get(k) is not None
            }
            timing = result.get("timing") or []
            if timing and isinstance(timing[-1], dict):
                detail["result"]["completed_at"] = timing[-1].get("completed_at")
        if isinstance(entry, Exposure):
            detail.update(
                path=entry.original_file_path,
                exposure_type=entry.type,
                label=entry.label,
                owner=entry.owner,
                maturity=entry.maturity,
                url=entry.url,
                meta=entry.meta,
                tags=entry.tags,
            )
        elif isinstance(entry, Source):
            detail.update(
                path=entry.path,
                source_name=entry.source_name,
                relation=entry.relation.sql(self.inputs.dialect),
                loaded_at_field=entry.loaded_at_field,
                freshness=entry.freshness,
                meta=entry.meta,
                tags=entry.tags,
            )
        else:
            detail.update(path=entry.original_file_path, config=_plain(entry.config), tags=entry.tags)
            if entry.relation is not None and kind in GRAPH_TYPES and not entry.is_ephemeral:
                detail["relation"] = entry.relation.sql(self.inputs.dialect)
            if kind in ("model", "snapshot", "test"):
                detail["raw"] = entry.raw_code
                compiled = self.inputs.compiled.get(uid)
                if compiled is not None:
                    detail["compiled"] = compiled.sql
            if kind == "test":
                detail.update(
                    test_metadata=_plain(entry.test_metadata),
                    column_name=entry.column_name,
                    attached=self.ref(entry.attached_node) if entry.attached_node else None,
                )
            if kind == "unit_test":
                detail.update(
                    test_metadata=_plain(entry.test_metadata), attached=self.ref(entry.attached_node)
                )
        if uid in self.columns:
            detail["columns"] = self.columns[uid]
            catalog = self.inputs.catalog.get(uid)
            detail["catalog"] = catalog.comes_from if catalog is not None else None
            lineage = self.inputs.lineage.get(uid)
            if lineage is not None and lineage.unresolved:
                detail["lineage_unresolved"] = lineage.unresolved
            tests = [t for t in self.tests_of.get(uid, []) if not self._entry(t).column_name]
            detail["tests"] = [self._test_ref(t) for t in tests]
        return detail

    def _test_ref(self, uid: str) -> list[Any]:
        """[test, short name, last status] as a model page lists a test."""
        test = self._entry(uid)
        short = (
            test.test_metadata["name"] if test.resource_type == "test" and test.test_metadata else test.name
        )
        status = (self.inputs.results.get(uid) or {}).get("status")
        return [self.ref(uid), short, status]

    # ------------------------------------------------------------------ columns

    def _columns(self, uid: str) -> list[dict[str, Any]]:
        """A relation's columns: the catalog's, then any the SQL outputs that it lacks, then any
        documented in YAML only; each with type, description, tests and upstream columns."""
        entry = self._entry(uid)
        catalog = self.inputs.catalog.get(uid)
        lineage = self.inputs.lineage.get(uid)
        traced = {c.name.lower(): c for c in lineage.columns} if lineage is not None else {}
        documented = {name.lower(): column for name, column in entry.columns.items()}
        rows: dict[str, dict[str, Any]] = {}

        def row(name: str) -> dict[str, Any]:
            key = name.lower()
            if key not in rows:
                rows[key] = {"name": name}
            return rows[key]

        if catalog is not None:
            for name, data_type in catalog.columns:
                item = row(name)
                if data_type:
                    item["type"] = data_type
                item["in"] = catalog.comes_from
        for column in lineage.columns if lineage is not None else []:
            row(column.name).setdefault("in", "sql")
        for name, column in entry.columns.items():
            item = row(name)
            item.setdefault("in", "yaml")
            if column.data_type and "type" not in item:
                item["type"] = column.data_type
        tests_by_column: dict[str, list[list[Any]]] = {}
        for test in self.tests_of.get(uid, []):
            column_name = self._entry(test).column_name
            if column_name:
                tests_by_column.setdefault(column_name.lower(), []).append(self._test_ref(test))
        for key, item in rows.items():
            doc = documented.get(key)
            if doc is not None and doc.description:
                item["description"] = doc.description
            if key in tests_by_column:
                item["tests"] = tests_by_column[key]
            column = traced.get(key)
            if column is not None:
                if column.upstream:
                    item["up"] = [[self.ref(u.unique_id), u.column, KINDS[u.kind]] for u in column.upstream]
                if column.unresolved:
                    item["unresolved"] = column.unresolved
            elif _kind(entry) == "snapshot" and key in _history_columns(entry):
                item["note"] = "added by the snapshot: when this version of the row was valid"
            elif lineage is not None and not lineage.unresolved and item.get("in") != "yaml":
                item["unresolved"] = "not among the columns of the model's SQL (built from an older version?)"
            elif lineage is not None and lineage.unresolved:
                item["unresolved"] = lineage.unresolved
        return list(rows.values())

    def _add_downstream(self) -> None:
        """Each column's `down`: the columns its `up` lists name, inverted."""
        by_name: dict[int, dict[str, dict[str, Any]]] = {
            self.position[uid]: {c["name"].lower(): c for c in cols} for uid, cols in self.columns.items()
        }
        for here, columns in list(by_name.items()):
            for column in list(columns.values()):
                for target, name, kind in column.get("up", ()):
                    if not isinstance(target, int):
                        continue
                    found = by_name.setdefault(target, {})
                    upstream = found.get(name.lower())
                    if upstream is None:  # a column the SQL reads but the catalog does not list
                        upstream = found[name.lower()] = {"name": name, "in": "sql"}
                        self.columns.setdefault(self.entries[target].unique_id, []).append(upstream)
                    upstream.setdefault("down", []).append([here, column["name"], kind])


def _history_columns(snapshot: Node) -> set[str]:
    """The columns a snapshot adds to its query's (dbt's names, or the configured ones)."""
    renamed = snapshot.config.get("snapshot_meta_column_names")
    names = set(META_COLUMNS) | (set(map(str, renamed.values())) if isinstance(renamed, dict) else set())
    return {name.lower() for name in names}


def _kind(entry: Any) -> str:
    if isinstance(entry, Source):
        return "source"
    if isinstance(entry, Exposure):
        return "exposure"
    if isinstance(entry, Node):
        return entry.resource_type
    return "macro"


def _is_test_uid(uid: str) -> bool:
    return uid.startswith(("test.", "unit_test."))


def _display_name(entry: Any) -> str:
    if isinstance(entry, Source):
        return f"{entry.source_name}.{entry.name}"
    return entry.name


def _path(entry: Any) -> str:
    if isinstance(entry, Source):
        return entry.path
    return entry.original_file_path


def _tags(entry: Any) -> list[str]:
    return list(getattr(entry, "tags", []) or [])


def _sort_key(entry: Any) -> tuple[int, str, str]:
    return (_TYPE_ORDER[_kind(entry)], _path(entry) or "", _display_name(entry))


def _plain(value: Any) -> Any:
    """Config and test metadata as JSON-ready values (dataclasses as mappings)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)
