"""The whole-project load cache: a loaded project's nodes, reused while none of their inputs change.

The per-file parse cache (manifest.py) saves rendering and parsing, but a load still builds every
node: reading the properties YAML, merging config, naming relations, resolving refs. When no
input changed at all, this cache skips that work and unpickles the nodes as they were built.

Its key is a digest of every input a load reads: the path and content of every file under the
project's model, seed, snapshot, macro and test folders, and under each installed package's
model, seed, macro and test folders, with its dbt_project.yml, and of every `.md` file under
the project's docs folders; the settings and vars; the target; the sqlflow and Python versions; and `SQLFLOW_*`/
`DBT_*` environment variables. Environment variables read by `env_var()` while loading are
recorded with their values and checked on use.
A load that read a secret-looking variable is not cached (the nodes may hold its value).
"""

from __future__ import annotations

import copyreg
import functools
import gc
import hashlib
import json
import marshal
import os
import pickle
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path, PosixPath, PurePath, WindowsPath
from typing import Any

from . import __version__, packages
from .nodes import Doc, Exposure, Macro, Node, Source
from .project import SECRET_ENV_MARKERS, Project

FILE = "sqlflow_manifest_cache.pickle"
FORMAT = 4  # bump when the shape of a snapshot changes


@dataclass
class Snapshot:
    """What a load produced, and what it read beyond the files the key covers."""

    key: str
    nodes: dict[str, Node]
    sources: dict[str, Source]
    macros: dict[str, Macro]
    warnings: list[str]
    env_reads: dict[str, str | None] = field(default_factory=dict)  # name -> value (None: unset)
    code: dict[str, bytes] = field(default_factory=dict)  # unique id -> marshalled Jinja code
    docs: dict[str, Doc] = field(default_factory=dict)  # name -> doc block
    exposures: dict[str, Exposure] = field(default_factory=dict)
    graph_lists: Any = None  # Manifest.graph_lists, when a graph was built before saving


def inputs_key(project: Project, sql_read: dict[str, bytes] | None = None) -> str:
    """The digest of everything a load of `project` depends on (see the module docstring).

    The SQL files it had to read are kept in `sql_read` (path -> content), if given: a load
    that follows would read them again."""
    target = project.target
    context = _stable_text(
        [
            FORMAT,
            __version__,
            _code_stamp(),
            sys.version,
            str(project.root),
            project.settings,
            project.vars,
            project.dialect,
            [target.profile_name, target.name, target.type, target.schema, target.database],
            [target.threads, target.public_settings()],
            sorted((k, v) for k, v in os.environ.items() if k.startswith(("SQLFLOW_", "DBT_"))),
        ]
    )
    digest = hashlib.blake2b(context.encode(), digest_size=20)
    installed = packages.installed(project)
    folders = [
        *project.model_paths,
        *project.seed_paths,
        *project.snapshot_paths,
        *project.macro_paths,
        *project.test_paths,
        # Installed packages' macros, and their models, seeds, YAML and tests, which are built too.
        *(folder for package in installed for folder in package.macro_folders),
        *(folder for package in installed for folder in (*package.model_paths, *package.seed_paths)),
        *(folder for package in installed for folder in package.test_paths),
    ]
    table_path = project.target_path / FILE_DIGESTS
    known = _read_file_digests(table_path)
    now, current = time.time_ns(), {}
    keep = sql_read if sql_read is not None else {}
    paths = _files(folders)
    if installed:
        paths = sorted({*paths, *(str(package.settings_path) for package in installed)})
    # Of other docs folders (by default only `analyses`), only the doc blocks.
    if docs_only := [folder for folder in project.docs_paths if folder not in folders]:
        paths = sorted({*paths, *(path for path in _files(docs_only) if path.endswith(".md"))})
    for path in paths:
        current[path] = _file_digest(path, known.get(path), keep if path.endswith(".sql") else None)
        digest.update(f"\0{path}\0".encode() + current[path][2])
    # Written again when a file changed, and while recent digests still wait to be trusted.
    if len(current) != len(known) or any(
        known.get(path, (0, 0, b"", 0))[:3] != entry or not known[path][3] for path, entry in current.items()
    ):
        _write_file_digests(table_path, current, now)
    return digest.hexdigest()


FILE_DIGESTS = "sqlflow_file_digests.pickle"
# A file modified this close to when its digest was taken may have changed again within the
# same timestamp: its digest is not trusted (git's "racily clean" rule).
_RACY_NS = 2_000_000_000
FileDigest = tuple[int, int, bytes]  # size, modification time (ns), blake2b of the content


def _file_digest(
    path: str, known: tuple[int, int, bytes, int] | None, keep: dict[str, bytes] | None
) -> FileDigest:
    """A file's digest, read again only when its size or modification time changed since the
    digest was taken (reading and hashing every file was most of computing the key); what is
    read is kept in `keep`."""
    try:
        stat = os.stat(path)
        if known is not None and known[:2] == (stat.st_size, stat.st_mtime_ns) and known[3]:
            return known[:3]
        with open(path, "rb") as handle:
            content = handle.read()
        if keep is not None:
            keep[path] = content
        return stat.st_size, stat.st_mtime_ns, hashlib.blake2b(content, digest_size=16).digest()
    except OSError:
        return -1, -1, b"unreadable"  # the load reports it; the key only has to differ


def _read_file_digests(path: Path) -> dict[str, tuple[int, int, bytes, int]]:
    """path -> (size, mtime, digest, trusted): trusted when the file had not been modified
    within _RACY_NS of the digest being taken."""
    try:
        with open(path, "rb") as handle:
            stored = pickle.load(handle)
        taken, files = stored["taken"], stored["files"]
        return {p: (*entry, int(entry[1] < taken - _RACY_NS)) for p, entry in files.items()}
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError):
        return {}


def _write_file_digests(path: Path, files: dict[str, FileDigest], taken: int) -> None:
    tmp = path.with_name(f".{FILE_DIGESTS}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            pickle.dump({"taken": taken, "files": files}, handle, protocol=5)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def loaded_key(key: str, env_reads: dict[str, str | None]) -> str:
    """The key of a load's result: the inputs' key and the environment variables it read."""
    text = _stable_text([key, sorted(env_reads.items(), key=lambda item: item[0])])
    return hashlib.blake2b(text.encode(), digest_size=20).hexdigest()


@functools.cache
def _code_stamp() -> str:
    """sqlflow's own files (name, size, time): an edited checkout drops the caches like a new
    version does, instead of serving what the previous code built."""
    package = Path(__file__).parent
    stamps = []
    for folder in (package, package / "adapters"):
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.endswith(".py"):
                    stat = entry.stat()
                    stamps.append(f"{entry.path}:{stat.st_size}:{stat.st_mtime_ns}")
    return hashlib.blake2b("\0".join(sorted(stamps)).encode(), digest_size=16).hexdigest()


def _stable_text(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except TypeError:  # keys of mixed types (`--vars '{1: a, b: 2}'`) cannot be sorted
        return repr(value)


def _files(folders: list[Path]) -> list[str]:
    """Every file under `folders` that a load could read, sorted, skipping hidden ones
    (project.iter_files' rule)."""
    found: set[str] = set()
    for folder in dict.fromkeys(str(f) for f in folders):
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found.update(os.path.join(dirpath, name) for name in filenames if not name.startswith("."))
    return sorted(found)


def read(project: Project, key: str) -> Snapshot | None:
    """The snapshot saved under `key`, or None when there is none or an input it read changed."""
    path = project.target_path / FILE
    # Unpickling creates only live objects: collections would find nothing, yet cost a third of it.
    enabled = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as handle:
            if pickle.load(handle) != (FORMAT, key):  # a header, so a stale snapshot is not unpickled
                return None
            snapshot = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError, ValueError, ImportError):
        return None
    finally:
        # The project lives as long as the session: straight to the oldest generation (freeze then
        # unfreeze moves every tracked object there without a walk), instead of being walked by
        # the next two young collections (40 ms at 5,000 models).
        gc.freeze()
        gc.unfreeze()
        if enabled:
            gc.enable()
    if not isinstance(snapshot, Snapshot) or snapshot.key != key:
        return None
    if any(os.environ.get(name) != value for name, value in snapshot.env_reads.items()):
        return None
    for uid, code in snapshot.code.items():
        snapshot.nodes[uid].program.code = marshal.loads(code)
    return snapshot


def write(project: Project, snapshot: Snapshot) -> None:
    """Save a snapshot (atomically); a load that read a secret-looking variable is not saved."""
    if any(marker in name.upper() for name in snapshot.env_reads for marker in SECRET_ENV_MARKERS):
        return
    snapshot.code = {
        uid: marshal.dumps(node.program.code)
        for uid, node in snapshot.nodes.items()
        if node.program is not None and node.program.code is not None
    }
    path = project.target_path / FILE
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            pickle.dump((FORMAT, snapshot.key), handle, protocol=5)
            pickler = pickle.Pickler(handle, protocol=5)
            pickler.dispatch_table = _DISPATCH
            pickler.dump(snapshot)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # a cache that cannot be written only costs time


def _path_from_text(cls: type[PurePath], text: str) -> PurePath:
    return cls(text)


def _reduce_path(path: PurePath) -> tuple[Any, tuple[type[PurePath], str]]:
    # A path pickles as its parts by default, and rebuilding it from them costs three times as
    # much as parsing its text: at thousands of nodes, half of reading the snapshot.
    return _path_from_text, (type(path), str(path))


_DISPATCH = {**copyreg.dispatch_table, PosixPath: _reduce_path, WindowsPath: _reduce_path}
