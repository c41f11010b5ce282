"""Artifacts in target/: manifest.json, run_results.json and compiled SQL, in dbt's formats.

Unique ids and field names follow dbt's artifact schemas so tools that read dbt artifacts read
ours. Every file is written whole (temporary file, then rename) and through the secret mask.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from . import __version__
from .graph import Graph
from .manifest import Manifest
from .nodes import Column, Exposure, Node, Source
from .project import Secrets
from .runner import NodeResult, RunOutcome, now_iso

MANIFEST_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"
RUN_RESULTS_SCHEMA = "https://schemas.getdbt.com/dbt/run-results/v6.json"
SOURCES_SCHEMA = "https://schemas.getdbt.com/dbt/sources/v3.json"


def write_pickle(path: Path, data: Any) -> None:
    """A cache file, written whole or not at all (a reader never sees half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as handle:
        pickle.dump(data, handle, protocol=5)
    os.replace(tmp, path)


def write_json(path: Path, data: Any, secrets: Secrets | None = None) -> None:
    """Write `data` as compact JSON through a temporary file, secrets masked."""
    body = dump_bytes(data)
    if secrets is not None:
        body = mask_json(body, secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, path)


# Dates, datetimes and dataclasses are written as str() gives them, as json's default=str did.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dump_bytes(data: Any) -> bytes:
    """Compact JSON in UTF-8: orjson writes a 5,000-model manifest in a sixth of the time json
    takes (docs/architecture.md), and its bytes go to the file as they are (decoding and encoding
    16 MB again cost 15-25 ms). What orjson refuses (integers past 64 bits, strings that are not
    valid Unicode) is written by json in the same layout."""
    try:
        return orjson.dumps(data, default=str, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(data, default=str, separators=(",", ":")).encode()


def mask_json(body: bytes, secrets: Secrets) -> bytes:
    """`body`, JSON, with each secret masked as it is written inside a JSON string: as is, and
    escaped (a quote or backslash in it, or any non-ASCII character where json.dumps wrote it)."""
    for value in sorted(secrets.values, key=len, reverse=True):
        for form in dict.fromkeys((orjson.dumps(value)[1:-1], json.dumps(value)[1:-1].encode())):
            body = body.replace(form, b"*****")
    return body


def dumps(data: Any) -> str:
    """`dump_bytes` as text."""
    return dump_bytes(data).decode()


def compiled_path(manifest: Manifest, node: Node) -> Path:
    return Path(_compiled_location(manifest, node))


def _compiled_location(manifest: Manifest, node: Node) -> str:
    # A string from one os.path.join: pathlib's joins cost more than the rest of checking that an
    # unchanged model's file is up to date, which a compile does for every model.
    project = manifest.project
    # A package's nodes under its own name, their paths within it: dbt's layout.
    parts = [str(project.target_path), "compiled", node.package_name, node.original_file_path]
    if node.original_file_path.endswith((".yml", ".yaml")):
        parts.append(f"{node.name}.sql")  # many nodes share one YAML file, as in dbt's layout
    return os.path.join(*parts)


def compiled_file(manifest: Manifest, node: Node, sql: str) -> tuple[str, str, str]:
    """Where a model's compiled SQL goes, its masked text, and that text's digest."""
    text = manifest.project.secrets.mask(sql.rstrip() + "\n")
    return _compiled_location(manifest, node), text, _sha(text)


def write_files(files: list[tuple[str, str]]) -> None:
    """Write (path, text) pairs: derived output, rewritten on every compile, so plain writes are
    enough. File descriptors rather than file objects, each folder created once: pathlib's mkdir
    and write_text tripled the cost of writing 5,000 compiled files, and open()'s buffered text
    layer was half of what was left."""
    folders: set[str] = set()
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    for path, text in files:
        folder = os.path.dirname(path)
        if folder not in folders:
            os.makedirs(folder, exist_ok=True)
            folders.add(folder)
        data = text.encode()
        descriptor = os.open(path, flags, 0o666)
        try:
            while data:
                data = data[os.write(descriptor, data) :]
        finally:
            os.close(descriptor)


def _metadata(manifest: Manifest, schema: str) -> dict[str, Any]:
    return {
        "dbt_schema_version": schema,
        "dbt_version": "1.8.0",
        "sqlflow_version": __version__,
        "generated_at": now_iso(),
        "invocation_id": manifest.invocation_id,
        "env": {},
        "project_name": manifest.project.name,
        "adapter_type": manifest.project.target.type,
    }


def _columns(columns: dict[str, Column]) -> dict[str, Any]:
    return {
        name: {
            "name": c.name,
            "description": c.description,
            "data_type": c.data_type,
            "meta": c.meta,
            "tags": [],
            "constraints": [],
        }
        for name, c in columns.items()
    }


def node_json(
    manifest: Manifest, node: Node, compiled_sql: str | None = None, fingerprint: str | None = None
) -> dict[str, Any]:
    relation = node.relation
    data: dict[str, Any] = {
        "unique_id": node.unique_id,
        "resource_type": node.resource_type,
        "name": node.name,
        "package_name": node.package_name,
        "path": _path_in_resource_folder(manifest, node),
        "original_file_path": node.original_file_path,
        "fqn": node.fqn,
        "language": "sql",
        "raw_code": node.raw_code,
        "checksum": {"name": "sha256", "checksum": node.checksum},
        "config": {"materialized": node.materialized, **node.config},
        "tags": node.tags,
        "meta": node.config.get("meta", {}),
        "description": node.description,
        "columns": _columns(node.columns),
        "patch_path": node.patch_path,
        "depends_on": {"nodes": node.depends_on, "macros": []},
        "refs": [{"name": r.name, "package": r.package, "version": None} for r in node.refs],
        "sources": [[s.source_name, s.table_name] for s in node.sources],
        "database": relation.database if relation else None,
        "schema": relation.schema if relation else None,
        "alias": relation.identifier if relation else node.name,
        # As dbt: a test has a relation only when it stores its failures.
        "relation_name": relation.sql(manifest.project.dialect)
        if relation
        and not node.is_ephemeral
        and (node.resource_type != "test" or node.config.get("store_failures"))
        else None,
    }
    if node.resource_type == "test":
        data["column_name"] = node.column_name
        data["attached_node"] = node.attached_node
        if node.test_metadata is not None:
            data["test_metadata"] = node.test_metadata
    elif node.resource_type == "unit_test":
        data["model"] = node.test_metadata["model"] if node.test_metadata else None
        data["given"] = _plain(node.test_metadata["inputs"]) if node.test_metadata else []
        data["expect"] = _plain(node.test_metadata["expect"]) if node.test_metadata else {}
        data["overrides"] = node.test_metadata["overrides"] if node.test_metadata else {}
    if fingerprint:
        data["sqlflow_fingerprint"] = fingerprint
    if compiled_sql is not None:
        data["compiled"] = True
        data["compiled_code"] = compiled_sql
        data["compiled_checksum"] = {"name": "sha256", "checksum": _sha(compiled_sql)}
    return data


def source_json(manifest: Manifest, source: Source) -> dict[str, Any]:
    return {
        "unique_id": source.unique_id,
        "resource_type": "source",
        "source_name": source.source_name,
        "name": source.name,
        "identifier": source.relation.identifier,
        "schema": source.relation.schema,
        "database": source.relation.database,
        "relation_name": source.relation.sql(manifest.project.dialect),
        "package_name": source.package_name or manifest.project.name,
        "original_file_path": source.path,
        "fqn": source.fqn,
        "description": source.description,
        "columns": _columns(source.columns),
        "loaded_at_field": source.loaded_at_field,
        "freshness": source.freshness,
        "meta": source.meta,
        "tags": source.tags,
    }


def exposure_json(manifest: Manifest, exposure: Exposure) -> dict[str, Any]:
    return {
        "unique_id": exposure.unique_id,
        "resource_type": "exposure",
        "name": exposure.name,
        "package_name": exposure.package_name,
        "path": _strip_prefix(exposure.original_file_path, manifest.project.resource_prefixes["model"]),
        "original_file_path": exposure.original_file_path,
        "fqn": exposure.fqn,
        "type": exposure.type,
        "owner": {"email": exposure.owner.get("email"), "name": exposure.owner.get("name")},
        "description": exposure.description,
        "label": exposure.label,
        "maturity": exposure.maturity,
        "url": exposure.url,
        "meta": exposure.meta,
        "tags": exposure.tags,
        "config": {"enabled": True, **exposure.config},
        "depends_on": {"nodes": exposure.depends_on, "macros": []},
        "refs": [{"name": r.name, "package": r.package, "version": None} for r in exposure.refs],
        "sources": [[s.source_name, s.table_name] for s in exposure.sources],
        "metrics": [],
    }


class GraphContext(Mapping):
    """dbt's `graph` Jinja variable: the manifest's nodes and sources as manifest.json writes them,
    built on first use (packages such as codegen walk `graph.nodes`)."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._data: dict[str, Any] | None = None

    def _built(self) -> dict[str, Any]:
        if self._data is None:
            manifest = self._manifest
            self._data = {
                "nodes": {
                    uid: node_json(manifest, n)
                    for uid, n in manifest.nodes.items()
                    if n.resource_type != "unit_test"
                },
                "sources": {uid: source_json(manifest, s) for uid, s in manifest.sources.items()},
                "exposures": {uid: exposure_json(manifest, e) for uid, e in manifest.exposures.items()},
                **{key: {} for key in ("metrics", "groups", "semantic_models", "saved_queries")},
            }
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


def write_manifest(
    manifest: Manifest,
    graph: Graph,
    compiled: dict[str, str] | None = None,
    *,
    fingerprints: dict[str, str | None] | None = None,
) -> Path:
    """target/manifest.json; `fingerprints` (see state.py) let a later `--state` run compare with this one."""
    compiled = compiled or {}
    fingerprints = fingerprints or {}
    path = manifest.project.target_path / "manifest.json"
    mask = manifest.project.secrets.mask
    metadata = _metadata(manifest, MANIFEST_SCHEMA)
    body_key = _manifest_body_key(manifest, compiled, fingerprints)
    if body_key is not None:
        metadata["sqlflow_body_key"] = body_key
        if _replace_metadata(path, body_key, mask(dumps(metadata))):
            return path
    data = {
        "metadata": metadata,
        "nodes": {
            uid: node_json(manifest, n, compiled.get(uid), fingerprints.get(uid))
            for uid, n in manifest.nodes.items()
            if n.resource_type != "unit_test"
        },
        "unit_tests": {
            uid: node_json(manifest, n, compiled.get(uid))
            for uid, n in manifest.nodes.items()
            if n.resource_type == "unit_test"
        },
        "sources": {uid: source_json(manifest, s) for uid, s in manifest.sources.items()},
        "macros": {
            uid: {
                "unique_id": uid,
                "name": m.name,
                "package_name": m.package_name or manifest.project.name,
                "original_file_path": m.original_file_path,
                "path": m.original_file_path,
                "macro_sql": m.macro_sql,
                "resource_type": "macro",
            }
            for uid, m in manifest.macros.items()
        },
        "docs": {
            doc.unique_id: {
                "unique_id": doc.unique_id,
                "name": doc.name,
                "resource_type": "doc",
                "package_name": manifest.project.name,
                "path": _path_in_folders(manifest, doc.original_file_path, manifest.project.docs_paths),
                "original_file_path": doc.original_file_path,
                "block_contents": doc.block_contents,
            }
            for doc in manifest.docs.values()
        },
        "parent_map": {uid: sorted(graph.parents(uid)) for uid in graph},
        "child_map": {uid: sorted(graph.children(uid)) for uid in graph},
        "exposures": {uid: exposure_json(manifest, e) for uid, e in manifest.exposures.items()},
        "metrics": {},
        "groups": {},
        "selectors": {},
        "disabled": {},
    }
    write_json(path, data, manifest.project.secrets)
    return path


def _manifest_body_key(
    manifest: Manifest, compiled: dict[str, str], fingerprints: dict[str, str | None]
) -> str | None:
    """A digest of all manifest.json holds but its metadata, or None when that cannot be known
    cheaply (the project was loaded without caches)."""
    if manifest.inputs_key is None:
        return None
    digest = hashlib.blake2b(digest_size=20)
    for part in (manifest.inputs_key, MANIFEST_SCHEMA, *sorted(manifest.project.secrets.values)):
        digest.update(f"{part}\0".encode())
    for uid in sorted(compiled):
        digest.update(f"{uid}\0{compiled[uid]}\0".encode())
    for uid in sorted(fingerprints):
        digest.update(f"{uid}\0{fingerprints[uid]}\0".encode())
    return digest.hexdigest()


_METADATA_START, _BODY_START = b'{"metadata":', b',"nodes":'


def _replace_metadata(path: Path, body_key: str, metadata: str) -> bool:
    """Rewrite only the metadata of the manifest.json already there when its body is the one
    `body_key` stands for: at 5,000 models, serializing the nodes again costs 0.3 s, this 10 ms.

    JSON escapes every quote inside a string, so the first `,"nodes":` ends the metadata.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with path.open("rb") as old:
            head = old.read(1 << 16)  # the metadata is a few hundred bytes
            end = head.find(_BODY_START)
            if not head.startswith(_METADATA_START) or end < 0:
                return False
            try:
                previous = json.loads(head[len(_METADATA_START) : end])
            except ValueError:
                return False
            if not isinstance(previous, dict) or previous.get("sqlflow_body_key") != body_key:
                return False
            with tmp.open("wb") as new:
                new.write(_METADATA_START + metadata.encode())
                new.flush()
                _copy_from(old, end, new)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def _copy_from(source: Any, offset: int, target: Any) -> None:
    """The rest of `source` from `offset`, appended to `target`: in the kernel where it can
    (sendfile), at half the cost of copying 15 MB through Python."""
    if hasattr(os, "sendfile"):
        try:
            size = os.fstat(source.fileno()).st_size
            while offset < size:
                sent = os.sendfile(target.fileno(), source.fileno(), offset, size - offset)
                if sent == 0:
                    break
                offset += sent
            return
        except OSError:
            target.seek(0, os.SEEK_END)  # not for this kind of file: copy the rest ourselves
    source.seek(offset)
    shutil.copyfileobj(source, target, 1 << 20)


def result_json(manifest: Manifest, result: NodeResult) -> dict[str, Any]:
    node = manifest.nodes.get(result.unique_id)
    timing = []
    if result.started_at and result.completed_at:
        timing.append(
            {"name": "execute", "started_at": result.started_at, "completed_at": result.completed_at}
        )
    return {
        "unique_id": result.unique_id,
        "status": result.status,
        "timing": timing,
        "thread_id": result.thread_id,
        "execution_time": round(result.execution_time, 4),
        "adapter_response": {"rows_affected": result.rows} if result.rows is not None else {},
        "message": result.message,
        "failures": result.extra.get("failures"),
        "batch_results": result.extra.get("batch_results"),
        "relation_name": node.relation.sql(manifest.project.dialect) if node and node.relation else None,
    }


def write_run_results(manifest: Manifest, outcome: RunOutcome, args: dict[str, Any]) -> Path:
    data = {
        "metadata": _metadata(manifest, RUN_RESULTS_SCHEMA),
        "results": [result_json(manifest, r) for r in outcome.results],
        "elapsed_time": round(outcome.elapsed, 4),
        "args": args,
    }
    path = manifest.project.target_path / "run_results.json"
    write_json(path, data, manifest.project.secrets)
    return path


def freshness_result_json(result: NodeResult) -> dict[str, Any] | None:
    """One sources.json entry (dbt's SourceFreshnessOutput or SourceFreshnessRuntimeError)."""
    if result.status == "skipped":
        return None  # never started (Ctrl-C): dbt's format has no status for it
    criteria = getattr(result, "criteria", None)  # set on freshness.FreshnessResult
    if result.status == "runtime error" or criteria is None:
        return {"unique_id": result.unique_id, "error": result.message, "status": "runtime error"}
    timing = []
    if result.started_at and result.completed_at:
        timing.append(
            {"name": "execute", "started_at": result.started_at, "completed_at": result.completed_at}
        )
    age = getattr(result, "age", None)
    return {
        "unique_id": result.unique_id,
        "max_loaded_at": getattr(result, "max_loaded_at", None),
        "snapshotted_at": getattr(result, "snapshotted_at", None),
        "max_loaded_at_time_ago_in_s": round(age, 3) if age is not None else None,
        "status": result.status,
        "criteria": criteria,
        "adapter_response": {},
        "timing": timing,
        "thread_id": result.thread_id,
        "execution_time": round(result.execution_time, 4),
    }


def write_sources(manifest: Manifest, outcome: RunOutcome, path: Path | None = None) -> Path:
    """sources.json (`source freshness`); `path` replaces target/sources.json (--output)."""
    entries = (freshness_result_json(r) for r in outcome.results)
    data = {
        "metadata": _metadata(manifest, SOURCES_SCHEMA),
        "results": [e for e in entries if e is not None],
        "elapsed_time": round(outcome.elapsed, 4),
    }
    path = path or manifest.project.target_path / "sources.json"
    write_json(path, data, manifest.project.secrets)
    return path


def _plain(value: Any) -> Any:
    """Dataclasses inside node metadata as JSON-ready mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


INVOCATION_FILE = "sqlflow_invocation.json"


def write_invocation(target_path: Path, args: dict[str, Any]) -> Path:
    """The command line, written before the project loads, so that `retry` can repeat a command
    that failed before any node ran (run_results.json is left for `result:` selectors)."""
    data = {"sqlflow_version": __version__, "generated_at": now_iso(), "args": args}
    path = target_path / INVOCATION_FILE
    write_json(path, data)
    return path


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _path_in_resource_folder(manifest: Manifest, node: Node) -> str:
    """dbt's `path`: relative to the model (or seed) folder the file is in, its package's for a
    package's node (whose original_file_path is inside the package)."""
    kind = "seed" if node.resource_type == "seed" else "model"
    package = manifest.packages.get(node.package_name)
    if package is None:
        return _strip_prefix(node.original_file_path, manifest.project.resource_prefixes[kind])
    folders = package.seed_paths if kind == "seed" else package.model_paths
    return _strip_prefix(
        node.original_file_path, [f"{f.relative_to(package.root).as_posix()}/" for f in folders]
    )


def _path_in_folders(manifest: Manifest, original_file_path: str, folders: list[Path]) -> str:
    return _strip_prefix(original_file_path, [manifest.project.relpath(f) + "/" for f in folders])


def _strip_prefix(original_file_path: str, prefixes: Iterable[str]) -> str:
    # original_file_path is relative to the project root, like each prefix: string arithmetic
    # gives pathlib's relative_to at a tenth of its cost.
    for prefix in prefixes:
        if original_file_path.startswith(prefix):
            return original_file_path[len(prefix) :]
    return original_file_path
