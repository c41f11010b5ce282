"""package-lock.yml: what `deps` resolved, pinned, in dbt's format (dbt-core 1.7+).

`deps` writes it after a successful install: every package it installed, the ones the project's
packages' own `packages.yml` asked for included, each pinned (a Hub package to one version, a git
package to a commit), with `sha1_hash`, a digest of the project's `packages.yml` entries. A later
`deps` whose `packages.yml` still has that digest installs what the lock names instead of looking
for newer versions, so that every machine installs the same packages.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .yaml_lines import line_of, load_yaml

FILE_NAME = "package-lock.yml"
# A Hub version in the lock is one release, not a range.
_EXACT = re.compile(r"^\d+\.\d+\.\d+([-+.][0-9A-Za-z.+-]+)?$")
_FIX = f"delete {FILE_NAME} or run `sqlflow deps --upgrade`, which writes it again"


def sha1_hash(entries: list[Any]) -> str:
    """The digest dbt records as `sha1_hash` for these `packages.yml` entries.

    dbt hashes each entry as its package contract serializes it (every field of the entry's kind,
    with dbt's defaults, plus the entry as written under `unrendered`), one sorted-key JSON line per
    entry, the lines sorted. The same here, so that a lock written by dbt is current for sqlflow and
    the other way round (checked against dbt-core 1.8, 1.10 and 1.11). dbt renders Jinja in the
    fields first; sqlflow does not render packages.yml, so an entry with `{{ env_var(...) }}` hashes
    differently from dbt's and the lock is re-resolved once.
    """
    lines = sorted(json.dumps(_as_dbt_contract(entry), sort_keys=True) for entry in entries)
    return hashlib.sha1("\n".join(lines).encode("utf-8")).hexdigest()


def _as_dbt_contract(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry
    fields: dict[str, Any]
    if "local" in entry:
        fields = {"local": entry["local"]}
    elif "tarball" in entry:
        fields = {"tarball": entry["tarball"]}
    elif "git" in entry:
        fields = {
            "git": entry["git"],
            "revision": entry.get("revision"),
            "warn-unpinned": entry.get("warn-unpinned"),
            "subdirectory": entry.get("subdirectory"),
        }
    elif "package" in entry:
        fields = {
            "package": entry["package"],
            "version": entry.get("version"),
            "install_prerelease": entry.get("install_prerelease", False),
        }
    else:
        fields = {}
    if entry.get("name") is not None:  # dbt 1.9+ takes `name`, and leaves it out when unset
        fields["name"] = entry["name"]
    fields["unrendered"] = entry
    return fields


@dataclass(frozen=True)
class Pin:
    """One package resolved to exactly one thing to install: an entry of package-lock.yml."""

    kind: str  # "local", "git" or "hub"
    location: str  # local: the folder, relative to the project; git: the URL; hub: `owner/name`
    version: str | None  # hub: the version; git: the commit; local: None
    subdirectory: str | None
    name: str | None  # the package's `name` (dbt_project.yml); a lock of dbt 1.7/1.8 has none
    line: int | None = None  # where it is in package-lock.yml, when read from it

    def describe(self) -> str:
        """`hub: dbt-labs/dbt_utils 1.1.1`, `git: <url> @ <commit>`, `local: ../shared`."""
        if self.kind == "hub":
            return f"hub: {self.location} {self.version}"
        if self.kind == "git":
            where = f"{self.location}{' ' + self.subdirectory if self.subdirectory else ''}"
            return f"git: {where} @ {(self.version or 'HEAD')[:12]}"
        return f"local: {self.location}"


@dataclass(frozen=True)
class Lock:
    """A package-lock.yml as read: its digest, and its entries (checked when they are used)."""

    path: Path
    sha1_hash: str | None  # None: the lock has none, so it is never current (as in dbt)
    entries: list[Any]

    def error(self, message: str, line: int | None) -> UserError:
        return UserError(message, path=self.path, line=line, hint=_FIX)

    def pins(self) -> list[Pin]:
        """The packages the lock names; a malformed entry is an error at its line."""
        return [self._pin(entry) for entry in self.entries]

    def _pin(self, entry: Any) -> Pin:
        line = line_of(entry)
        if not isinstance(entry, dict):
            raise self.error("a package-lock.yml entry must be a mapping", line)
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            raise self.error("`name` must be text", line)

        def text(key: str, required: bool = True) -> str | None:
            value = entry.get(key)
            if value is None and not required:
                return None
            if not isinstance(value, (str, int, float)) or isinstance(value, bool) or value == "":
                raise self.error(f"`{key}` must be text", line_of(entry, key))
            return str(value)

        if "local" in entry:
            return Pin("local", str(text("local")), None, None, name, line)
        if "git" in entry:
            return Pin(
                "git", str(text("git")), text("revision", False), text("subdirectory", False), name, line
            )
        if "package" in entry:
            version = text("version")
            if version is None or not _EXACT.match(version):
                raise self.error(
                    f"the version of {entry['package']!r} must be one exact version, e.g. 1.1.1",
                    line_of(entry, "version"),
                )
            return Pin("hub", str(text("package")), version, None, name, line)
        for kind in ("tarball", "private"):
            if kind in entry:
                raise UserError(
                    f"sqlflow does not install `{kind}:` packages",
                    path=self.path,
                    line=line,
                    hint="install it with `local:`, `git:` or a dbt Hub `package:` entry in packages.yml",
                )
        raise self.error("a package-lock.yml entry needs `local:`, `git:` or `package:`", line)


def read(path: Path) -> Lock | None:
    """The lock file at `path`, None when there is none. Unreadable or malformed: a UserError."""
    if not path.is_file():
        return None
    try:
        data = load_yaml(path)
    except UserError as exc:
        raise UserError(exc.message, path=path, line=exc.location.line, hint=_FIX) from exc
    if not isinstance(data, dict):
        raise UserError(
            "package-lock.yml must be a mapping with `packages` and `sha1_hash`", path=path, line=1, hint=_FIX
        )
    entries = data.get("packages")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise UserError("`packages` must be a list", path=path, line=line_of(data, "packages"), hint=_FIX)
    digest = data.get("sha1_hash")
    if digest is not None and not isinstance(digest, str):
        raise UserError("`sha1_hash` must be text", path=path, line=line_of(data, "sha1_hash"), hint=_FIX)
    return Lock(path, digest, entries)


class _Dumper(yaml.SafeDumper):
    """Lists indented under their key, as dbt writes the file."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def render(pins: list[Pin], digest: str) -> str:
    """The text of package-lock.yml for these packages, laid out as dbt lays it out."""
    entries = []
    for pin in pins:
        entry: dict[str, Any] = {"name": pin.name}
        if pin.kind == "hub":
            entry.update(package=pin.location, version=pin.version)
        elif pin.kind == "git":
            entry.update(git=pin.location, revision=pin.version)
            if pin.subdirectory:
                entry["subdirectory"] = pin.subdirectory
        else:
            entry["local"] = pin.location
        entries.append(entry)
    # Keys sorted, as yaml.dump sorts them for dbt.
    return yaml.dump({"packages": entries, "sha1_hash": digest}, Dumper=_Dumper, sort_keys=True)


def write(path: Path, text: str) -> None:
    """Replace the file at once: a reader sees the old lock or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.new")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise UserError(
            f"cannot write {path.name}: {exc.strerror}",
            path=path,
            hint="check that the project folder is writable, then run `sqlflow deps` again",
        ) from exc
