"""The per-file parse cache: each model file's parsed template (and its load-time render) and each
properties file's YAML, reused while the file, the macros and the settings a parse depends on are
unchanged, so that editing one file costs one file. The whole-project cache (manifest_cache.py)
skips loading altogether when nothing changed; this one serves the loads in between.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import pickle
import sys
from pathlib import Path
from typing import Any

from . import __version__
from .jinja import Program
from .project import Project
from .yaml_lines import load_yaml


class ParseCache:
    """Per-file parse results in target/, keyed by content and everything a parse depends on."""

    FILE = "sqlflow_parse_cache.pickle"
    FORMAT = 3  # bump when the shape of an entry changes (3: config() calls merged as dbt merges them)

    def __init__(self, project: Project) -> None:
        self.path = project.target_path / self.FILE
        env_part = sorted((k, v) for k, v in os.environ.items() if k.startswith(("SQLFLOW_", "DBT_")))
        self.context_key = _digest(
            json.dumps(
                [
                    self.FORMAT,
                    __version__,
                    sys.version,
                    project.vars,
                    project.target.name,
                    project.target.schema,
                    project.target.type,  # adapter.dispatch picks macros by it
                    project.settings.get("dispatch"),
                    env_part,
                ],
                sort_keys=True,
                default=str,
            )
        )
        self.entries: dict[str, Any] = {}
        self.fresh: dict[str, Any] = {}
        self.dirty = False
        try:
            with self.path.open("rb") as handle:
                stored = pickle.load(handle)
            if stored.get("context") == self.context_key:
                self.entries = stored["entries"]
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, AttributeError, TypeError, ValueError):
            self.entries = {}

    def _key(self, path: Path, text: str, macros_digest: str) -> str:
        return _digest(f"{path}\0{text}\0{macros_digest}")

    def program(self, path: Path, text: str, macros_digest: str):
        hit = self.entries.get(str(path))
        if hit and hit[0] == self._key(path, text, macros_digest):
            program: Program = hit[1]
            # The caller's path object, equal to the cached one: shared, the node and its program
            # pickle it once in the whole-project cache (5,000 fewer paths to rebuild when read).
            program.path = path
            if hit[3] is not None:
                program.code = marshal.loads(hit[3])
            loaded = hit[2]
            if loaded is not None and any(os.environ.get(k) != v for k, v in loaded[3].items()):
                loaded = None  # an environment variable it read has changed: render again
            self.fresh[str(path)] = hit
            return program, loaded
        return None

    def remember(self, path: Path, text: str, macros_digest: str, program: Program, loaded: Any) -> None:
        key = self._key(path, text, macros_digest)
        if str(path) in self.fresh and self.fresh[str(path)][0] == key:
            return
        code = marshal.dumps(program.code) if program.code is not None else None
        self.fresh[str(path)] = (key, program, loaded, code)
        self.dirty = True

    def yaml(self, path: Path) -> Any:
        text = path.read_text(encoding="utf-8")
        key = _digest(text)
        hit = self.entries.get(f"yaml:{path}")
        if hit and hit[0] == key:
            self.fresh[f"yaml:{path}"] = hit
            return hit[1]
        data = load_yaml(path, text)
        self.fresh[f"yaml:{path}"] = (key, data)
        self.dirty = True
        return data

    def save(self) -> None:
        if not self.dirty and len(self.fresh) == len(self.entries):
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            with tmp.open("wb") as handle:
                pickle.dump({"context": self.context_key, "entries": self.fresh}, handle, protocol=5)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs time


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
