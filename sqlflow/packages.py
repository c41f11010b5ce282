"""dbt packages: the ones installed in `packages-install-path`, and installing them (`deps`).

A package is a dbt project of its own (`dbt_project.yml`) whose macros and generic tests the
root project calls by namespace (`{{ dbt_utils.generate_surrogate_key([...]) }}`,
`- dbt_utils.expression_is_true:` in YAML). `packages.yml` (or `dependencies.yml`) lists them:
`local:` folders, `git:` repositories and dbt Hub packages (`package:` + `version:`). `deps`
installs them and the packages their own `packages.yml` lists, one version of each, and pins what
it installed in package-lock.yml (package_lock.py).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import package_lock
from .errors import Location, UserError
from .project import Project
from .yaml_lines import line_of, load_yaml

DEFAULT_HUB_URL = "https://hub.getdbt.com/api/v1"


@dataclass(frozen=True)
class Package:
    """An installed package."""

    name: str
    root: Path
    settings_path: Path
    macro_paths: tuple[Path, ...]
    test_paths: tuple[Path, ...]
    model_paths: tuple[Path, ...]
    seed_paths: tuple[Path, ...] = ()
    # Its dbt_project.yml as read (not rendered): `models:`/`seeds:` config and `vars:` defaults.
    settings: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def macro_folders(self) -> list[Path]:
        """Where its macros are read from: macro-paths and the `generic/` folder of its test-paths."""
        return [*self.macro_paths, *(folder / "generic" for folder in self.test_paths)]


def install_path(root: Path, settings: dict[str, Any]) -> Path:
    return root / str(settings.get("packages-install-path") or "dbt_packages")


def installed(project: Project) -> list[Package]:
    """The packages in the project's install folder, by name."""
    folder = install_path(project.root, project.settings)
    if not folder.is_dir():
        return []
    found: dict[str, Package] = {}
    for child in sorted(folder.iterdir()):
        settings_path = child / "dbt_project.yml"
        if child.name.startswith(".") or not settings_path.is_file():
            continue
        package = read_package(child)
        if package.name == project.name:
            raise UserError(
                f"the installed package in {child} has the project's own name {package.name!r}",
                path=settings_path,
                hint="remove it from packages.yml and run `sqlflow deps` again",
            )
        other = found.get(package.name)
        if other is not None:
            raise UserError(
                f"two installed packages are named {package.name!r}: {other.root} and {child}",
                path=settings_path,
                hint="remove one of them from packages.yml and run `sqlflow deps` again",
            )
        found[package.name] = package
    return [found[name] for name in sorted(found)]


# dbt's rule for a project name (dbt_project.yml `name`).
_PACKAGE_NAME = re.compile(r"[^\d\W]\w*")


def read_package(root: Path) -> Package:
    settings_path = root / "dbt_project.yml"
    settings = load_yaml(settings_path)
    if not isinstance(settings, dict) or not isinstance(settings.get("name"), str):
        raise UserError(
            "a package's dbt_project.yml must be a mapping with a `name`",
            path=settings_path,
            line=1,
            hint="reinstall the package (`sqlflow deps`)",
        )
    if not _PACKAGE_NAME.fullmatch(settings["name"]):
        # The name is the folder it is installed in: `../../x` would put it outside the install
        # folder (a downloaded package's own packages.yml can ask for any package).
        raise UserError(
            f"package name {settings['name']!r} is not a plain name",
            path=settings_path,
            line=line_of(settings, "name"),
            hint="a dbt project's `name` is letters, digits and underscores, not starting with a digit",
        )

    def paths(key: str, default: list[str]) -> tuple[Path, ...]:
        value = settings.get(key) or default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise UserError(
                f"`{key}` must be a list of folders", path=settings_path, line=line_of(settings, key)
            )
        return tuple(root / v for v in value)

    return Package(
        name=settings["name"],
        root=root,
        settings_path=settings_path,
        macro_paths=paths("macro-paths", ["macros"]),
        test_paths=paths("test-paths", ["tests"]),
        model_paths=paths("model-paths", ["models"]),
        seed_paths=paths("seed-paths", ["seeds"]),
        settings=settings,
    )


# --------------------------------------------------------------------------- deps


@dataclass(frozen=True)
class Requirement:
    """One entry of a packages.yml: the project's, or one of its packages' own."""

    kind: str  # "local", "git" or "hub"
    location: str  # the folder, the repository URL, or the hub name (`dbt-labs/dbt_utils`)
    revision: str | None  # git: a branch, tag or commit; hub: the version range, joined by ","
    subdirectory: str | None
    path: Path
    line: int | None
    # Its packages.yml is in a package downloaded from git or the Hub: a scratch copy, soon deleted.
    downloaded: bool = False
    required_by: str | None = None  # the package whose packages.yml it is; None: the project's

    def error(self, message: str, hint: str | None = None) -> UserError:
        """A UserError at this entry of packages.yml."""
        if self.required_by is not None and self.downloaded:
            # The file is in a download that is about to be deleted: name whose it is instead.
            return UserError(f"{message} (in {self.where})", hint=hint)
        return UserError(message, path=self.path, line=self.line, hint=hint)

    @property
    def where(self) -> str:
        """Who asks for it, for messages: `packages.yml:2`, `package pkg_a (../pkg_a/packages.yml:3)`."""
        if self.required_by is None:
            return f"{self.path.name}:{self.line}"
        if self.downloaded:
            return f"package {self.required_by}, its {self.path.name}:{self.line}"
        return f"package {self.required_by} ({Location(self.path, self.line)})"


def packages_file(root: Path) -> Path | None:
    """The folder's packages.yml, else its dependencies.yml (as dbt); None when there is neither."""
    for name in ("packages.yml", "dependencies.yml"):
        path = root / name
        if path.is_file():
            return path
    return None


def requirements(root: Path, required_by: str | None = None, downloaded: bool = False) -> list[Requirement]:
    """The entries of the packages.yml (or dependencies.yml) in `root`; [] when there is neither.

    `root` is the project, or a package (`required_by` names it; `downloaded` when it came from
    git or the Hub rather than a local folder)."""
    path = packages_file(root)
    if path is None:
        return []
    if not downloaded:
        return [_requirement(entry, path, False, required_by) for entry in _entries(path)]
    try:
        return [_requirement(entry, path, True, required_by) for entry in _entries(path)]
    except UserError as exc:  # its file is in the scratch folder: say whose it is
        line = f", line {exc.location.line}" if exc.location.line else ""
        raise UserError(
            f"{exc.message} (in the {path.name} of package {required_by}{line})", hint=exc.hint
        ) from exc


def _entries(path: Path) -> list[Any]:
    data = load_yaml(path) or {}
    entries = data.get("packages") if isinstance(data, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise UserError("`packages` must be a list", path=path, line=line_of(data, "packages"))
    return entries


def _requirement(entry: Any, path: Path, downloaded: bool, required_by: str | None) -> Requirement:
    line = line_of(entry)
    example = 'e.g. `- package: dbt-labs/dbt_utils` with `version: [">=1.0.0", "<2.0.0"]`, `- git: <url>` or `- local: ../folder`'
    if not isinstance(entry, dict):
        raise UserError("a package entry must be a mapping", path=path, line=line, hint=example)
    subdirectory = entry.get("subdirectory")
    if "local" in entry:
        return Requirement("local", str(entry["local"]), None, None, path, line, downloaded, required_by)
    if "git" in entry:
        revision = entry.get("revision")
        return Requirement(
            "git", str(entry["git"]), str(revision) if revision is not None else None,
            str(subdirectory) if subdirectory else None, path, line, downloaded, required_by,
        )  # fmt: skip
    if "package" in entry:
        version = entry.get("version")
        if version is None:
            raise UserError(
                f"package {entry['package']!r} has no `version`",
                path=path,
                line=line,
                hint='add a version or a range, e.g. `version: [">=1.0.0", "<2.0.0"]`',
            )
        ranges = version if isinstance(version, list) else [version]
        return Requirement(
            "hub",
            str(entry["package"]),
            ",".join(str(v) for v in ranges),
            None,
            path,
            line,
            downloaded,
            required_by,
        )
    raise UserError(
        "a package entry needs `local:`, `git:` or `package:`", path=path, line=line, hint=example
    )


@dataclass(frozen=True)
class Deps:
    """What `deps` did."""

    installed: list[tuple[package_lock.Pin, Package]]  # [] with `lock_only`
    pins: list[package_lock.Pin]  # every package resolved (or read from the lock)
    from_lock: bool  # package-lock.yml was current: its packages, not a new resolution
    lock_written: bool


def install(
    root: Path,
    settings: dict[str, Any],
    hub_url: str | None = None,
    *,
    upgrade: bool = False,
    lock_only: bool = False,
) -> Deps:
    """Install the packages the project needs into its install folder (replacing what was there)
    and record them in package-lock.yml, as `dbt deps` does.

    The packages are the project's packages.yml entries and, transitively, those of the packages'
    own packages.yml. When package-lock.yml exists and was written for this packages.yml (its
    `sha1_hash`), exactly the packages it names are installed; `upgrade` ignores it and resolves
    again. `lock_only` writes the lock without installing. Nothing is replaced unless every
    package was fetched, and the lock is written after the install folder was swapped in."""
    # Imported here, as in the fetchers: every command reads the installed packages, only deps installs.
    import shutil
    import tempfile

    source = packages_file(root)
    wanted = requirements(root)
    if source is None or not wanted:
        return Deps([], [], from_lock=False, lock_written=False)
    digest = package_lock.sha1_hash(_entries(source))
    lock_path = root / package_lock.FILE_NAME
    lock = None if upgrade else package_lock.read(lock_path)
    if lock is not None and lock.sha1_hash != digest:
        lock = None  # written for another packages.yml: resolve again, and rewrite it
    from_lock = lock is not None
    if lock_only and from_lock:
        return Deps([], [], from_lock=True, lock_written=False)  # as dbt: the lock is current
    destination = install_path(root, settings)
    if not lock_only:
        _check_install_path(root, settings, destination)
    with tempfile.TemporaryDirectory(prefix=".sqlflow-deps-", dir=root) as scratch:
        fetcher = _Fetcher(root, Path(scratch), hub_url, destination)
        resolved = fetcher.from_lock(lock) if lock is not None else fetcher.resolve(wanted)
        _check_names(resolved, settings.get("name"))
        pins = [pin for pin, _, _ in resolved]
        text = None if from_lock else package_lock.render(pins, digest)
        if lock_only:
            assert text is not None
            package_lock.write(lock_path, text)
            return Deps([], pins, from_lock=False, lock_written=True)
        # Assembled next to the install folder, then swapped in: a failure before the swap leaves
        # the installed packages (and package-lock.yml) as they were.
        assembled = destination.with_name(f".{destination.name}.new")
        shutil.rmtree(assembled, ignore_errors=True)
        assembled.mkdir(parents=True)
        try:
            installed_now = []
            for pin, package, _ in resolved:
                target = assembled / package.name
                if pin.kind == "local":
                    # As dbt does: a link, so that edits to a local package need no new `deps`.
                    target.symlink_to(package.root.resolve(), target_is_directory=True)
                else:
                    shutil.move(str(package.root), target)
                installed_now.append((pin, destination / package.name))
            _swap_in(assembled, destination)
        finally:
            shutil.rmtree(assembled, ignore_errors=True)
    if text is not None:
        package_lock.write(lock_path, text)
    return Deps(
        [(pin, read_package(path)) for pin, path in installed_now],
        pins,
        from_lock=from_lock,
        lock_written=text is not None,
    )


def _check_names(
    resolved: list[tuple[package_lock.Pin, Package, list[Requirement]]], project_name: Any
) -> None:
    """Packages are installed in folders named by their `name`: two of one name cannot both be."""
    seen: dict[str, tuple[package_lock.Pin, list[Requirement]]] = {}
    for pin, package, asked in resolved:
        if package.name == project_name:
            raise _first(asked).error(
                f"package {pin.location!r} has the project's own name {package.name!r}",
                hint="a project cannot depend on itself",
            )
        if package.name in seen:
            other, other_asked = seen[package.name]
            raise _first(other_asked + asked).error(
                f"two packages are named {package.name!r}: {other.describe()}, required by "
                f"{_who(other_asked)}, and {pin.describe()}, required by {_who(asked)}",
                hint="require that package from one place only (the Hub or one git URL) everywhere",
            )
        seen[package.name] = (pin, asked)


def _first(asked: list[Requirement]) -> Requirement:
    """The requirement to point an error at: the project's own, if it has one."""
    return next((r for r in asked if r.required_by is None), asked[0])


def _who(asked: list[Requirement]) -> str:
    return " and ".join(dict.fromkeys(r.where for r in asked))


@dataclass
class _Fetched:
    """One package fetched into the scratch folder, and what its own packages.yml asks for."""

    package: Package
    version: str | None  # hub: the version; git: the commit checked out; local: None
    requirements: list[Requirement]


_Key = tuple[str, str]
_UNCHOSEN = "\0 no version"  # the choice of a package that has no version to choose this round


class _Fetcher:
    """Resolves and fetches packages into a scratch folder, each (package, version) once."""

    def __init__(self, root: Path, scratch: Path, hub_url: str | None, destination: Path) -> None:
        self.root = root
        self.scratch = scratch
        # DBT_PACKAGE_HUB_URL is dbt's own setting: a dbt project that sets it runs unchanged.
        env = os.environ
        self.hub_url = (
            hub_url or env.get("SQLFLOW_HUB_URL") or env.get("DBT_PACKAGE_HUB_URL") or DEFAULT_HUB_URL
        )
        self.destination = destination
        self.indexes: dict[str, tuple[str, dict[str, Any]] | UserError] = {}
        self.fetched: dict[tuple[_Key, str | None], _Fetched] = {}
        self.failed: dict[tuple[_Key, str | None], UserError] = {}
        self.scratches = itertools.count()

    def resolve(self, wanted: list[Requirement]) -> list[tuple[package_lock.Pin, Package, list[Requirement]]]:
        """Every package the project needs, transitively, each resolved to one version.

        In rounds, as dbt does: walk the requirements from the project's through the packages
        fetched so far, choose one version of each package that satisfies all its requirers (the
        newest Hub version in every range), fetch what is new, and again, until the choice stays
        the same. A package is visited once a round, so a dependency cycle ends. Unlike dbt, a
        package whose choice changes drops the requirements of the version it no longer has, and
        a failure (no matching version, a fetch that fails) is an error only if the package is
        still needed once the choice settled: it may be one only a dropped version asked for."""
        choices: dict[_Key, str | None] = {}
        earlier: list[dict[_Key, str | None]] = []
        while True:
            order, asked = self._walk(wanted, choices)
            chosen: dict[_Key, str | None] = {}
            problems: dict[_Key, UserError] = {}
            for key in order:
                try:
                    spec, requirement = self._choose(asked[key])
                    chosen[key] = spec
                    self._fetch(key, spec, requirement)
                except UserError as exc:
                    chosen.setdefault(key, _UNCHOSEN)
                    problems[key] = exc
            if chosen == choices:
                for key in order:  # the project's own entries first
                    if key in problems:
                        raise problems[key]
                break
            if chosen in earlier:
                moving = sorted(k[1] for k in chosen if chosen.get(k) != choices.get(k))
                raise _first(asked[order[0]]).error(
                    f"the package requirements do not settle: the versions of {', '.join(moving)} "
                    "keep changing, as each version asks for a different set of packages",
                    hint="pin those packages to one version in packages.yml",
                )
            earlier.append(chosen)
            choices = chosen
        return [
            (
                self._pin(asked[key], self.fetched[(key, choices[key])]),
                self.fetched[(key, choices[key])].package,
                asked[key],
            )
            for key in order
        ]

    def _walk(
        self, wanted: list[Requirement], choices: dict[_Key, str | None]
    ) -> tuple[list[_Key], dict[_Key, list[Requirement]]]:
        """The packages reached from the project's requirements through the chosen versions, in
        the order they are reached (the project's first), with who requires each."""
        from collections import deque

        order: list[_Key] = []
        asked: dict[_Key, list[Requirement]] = {}
        queue = deque(wanted)
        while queue:
            requirement = queue.popleft()
            key = self._key(requirement)
            if key in asked:
                asked[key].append(requirement)
                continue
            asked[key] = [requirement]
            order.append(key)
            fetched = self.fetched.get((key, choices[key])) if key in choices else None
            if fetched is not None:
                queue.extend(fetched.requirements)
        return order, asked

    def _key(self, requirement: Requirement) -> _Key:
        """What makes two requirements the same package: its folder, its repository (with or
        without `.git`) and subdirectory, or its Hub name."""
        if requirement.kind == "local":
            return ("local", str(self._local_folder(requirement).resolve()))
        if requirement.kind == "git":
            url = requirement.location.rstrip("/").removesuffix(".git")
            return ("git", f"{url} {(requirement.subdirectory or '').strip('/')}")
        return ("hub", requirement.location)

    def _choose(self, asked: list[Requirement]) -> tuple[str | None, Requirement]:
        """The version every requirer of one package accepts, and the requirement to fetch it by."""
        first = asked[0]
        if first.kind == "git":
            revisions: dict[str, list[Requirement]] = {}
            for requirement in asked:
                if requirement.revision is not None:
                    revisions.setdefault(requirement.revision, []).append(requirement)
            if len(revisions) > 1:
                wants = "; ".join(f"{_who(by)} wants {revision!r}" for revision, by in revisions.items())
                raise _first(asked).error(
                    f"git package {first.location} is required at different revisions: {wants}",
                    hint="require the same `revision:` everywhere (dbt refuses this too)",
                )
            if revisions:
                revision, by = next(iter(revisions.items()))
                # Fetched from the URL the first requirer wrote (the lock records it), with
                # errors at the entry that names the revision.
                return revision, replace(by[0], location=first.location)
            return None, first
        if first.kind == "hub":
            _, versions = self._index(first)
            releases = [v for v in versions if _is_release(v)]
            for requirement in asked:
                if not [v for v in releases if _in_range(v, requirement)]:
                    raise requirement.error(
                        f"no version of {requirement.location} matches {_ranges(requirement)}",
                        hint="versions available: " + ", ".join(sorted(versions, key=_version_key)[-8:]),
                    )
            matching = [v for v in releases if all(_in_range(v, r) for r in asked)]
            if not matching:
                wants = "; ".join(f"{r.where} wants {', '.join(_ranges(r))}" for r in asked)
                raise _first(asked).error(
                    f"no version of {first.location} satisfies every package that requires it: {wants}",
                    hint="widen a range so that they overlap; versions available: "
                    + ", ".join(sorted(versions, key=_version_key)[-8:]),
                )
            return max(matching, key=_version_key), first
        return None, first

    def _fetch(self, key: _Key, spec: str | None, requirement: Requirement) -> _Fetched:
        found = self.fetched.get((key, spec))
        if found is not None:
            return found
        failed = self.failed.get((key, spec))
        if failed is not None:  # fetched once a run, failures too
            raise failed
        try:
            found = self._download(spec, requirement, self.scratch / str(next(self.scratches)))
        except UserError as exc:
            self.failed[(key, spec)] = exc
            raise
        self.fetched[(key, spec)] = found
        return found

    def _download(self, spec: str | None, requirement: Requirement, scratch: Path) -> _Fetched:
        if requirement.kind == "local":
            package, version, downloaded = self._local(requirement), None, False
            label = package.name
        elif requirement.kind == "git":
            package, version = _fetch_git(requirement, spec, scratch)
            downloaded, label = True, f"{package.name} (git {version[:12]})"
        else:
            package, version, downloaded = self._hub(requirement, str(spec), scratch), spec, True
            label = f"{package.name} {version}"
        return _Fetched(package, version, requirements(package.root, label, downloaded))

    def _pin(self, asked: list[Requirement], fetched: _Fetched) -> package_lock.Pin:
        requirement = asked[0]  # the first to ask: the project's own entry, when it has one
        return package_lock.Pin(
            requirement.kind,
            requirement.location,
            fetched.version,
            requirement.subdirectory,
            fetched.package.name,
        )

    def from_lock(self, lock: package_lock.Lock) -> list[tuple[package_lock.Pin, Package, list[Requirement]]]:
        """Exactly the packages package-lock.yml names: no version is chosen, nothing followed."""
        out = []
        for index, pin in enumerate(lock.pins()):
            requirement = Requirement(
                pin.kind, pin.location, pin.version, pin.subdirectory, lock.path, pin.line
            )
            scratch = self.scratch / f"lock-{index}"
            if pin.kind == "local":
                package, version = self._local(requirement), None
            elif pin.kind == "git":
                package, version = _fetch_git(requirement, pin.version, scratch)
            else:
                package, version = self._hub(requirement, str(pin.version), scratch), pin.version
            out.append((replace(pin, version=version, name=package.name), package, [requirement]))
        return out

    def _local_folder(self, requirement: Requirement) -> Path:
        folder = Path(requirement.location)
        # Relative to the project, in a package's packages.yml too: dbt reads every `local:` so.
        return Path(os.path.normpath(self.root / folder))

    def _local(self, requirement: Requirement) -> Package:
        folder = self._local_folder(requirement)
        destination = self.destination.resolve()
        if folder.resolve() == destination or destination in folder.resolve().parents:
            raise requirement.error(
                f"local package {requirement.location!r} is inside the install folder, which `deps` replaces",
                hint="keep local packages outside packages-install-path (dbt_packages/)",
            )
        if not (folder / "dbt_project.yml").is_file():
            raise requirement.error(
                f"local package {requirement.location!r}: {folder} has no dbt_project.yml",
                hint="`local:` is a folder holding a dbt project, relative to the project "
                "(in a package's packages.yml too, as dbt reads it)",
            )
        return read_package(folder)

    def _index(self, requirement: Requirement) -> tuple[str, dict[str, Any]]:
        """The Hub's versions of the package (read once a run) and where they were read from."""
        found = self.indexes.get(requirement.location)
        if isinstance(found, UserError):
            raise found
        if found is None:
            try:
                found = _hub_index(requirement, self.hub_url)
            except UserError as exc:
                self.indexes[requirement.location] = exc
                raise
            self.indexes[requirement.location] = found
        return found

    def _hub(self, requirement: Requirement, version: str, scratch: Path) -> Package:
        index_url, versions = self._index(requirement)
        if version not in versions:
            raise requirement.error(
                f"{requirement.location} {version}, which package-lock.yml names, is not on the Hub",
                hint="run `sqlflow deps --upgrade` to choose a version again",
            )
        tarball = (versions[version].get("downloads") or {}).get("tarball")
        if not tarball:
            raise requirement.error(f"{index_url} gives no download for version {version}")
        return _download_hub(requirement, version, tarball, scratch)


def _ranges(requirement: Requirement) -> list[str]:
    return [r.strip() for r in str(requirement.revision).split(",") if r.strip()]


def _in_range(version: str, requirement: Requirement) -> bool:
    return all(_satisfies(version, spec) for spec in _ranges(requirement))


def _swap_in(assembled: Path, destination: Path) -> None:
    """Put `assembled` where `destination` is. On Linux the two folders trade places in one step
    (renameat2's RENAME_EXCHANGE), so a command reading the packages meanwhile sees the old set or
    the new one, never none; elsewhere the old folder is moved aside first."""
    import shutil

    if destination.is_dir() and not destination.is_symlink() and _exchange(assembled, destination):
        shutil.rmtree(assembled, ignore_errors=True)  # now the old packages; links removed, never followed
        return
    previous = destination.with_name(f".{destination.name}.old")
    shutil.rmtree(previous, ignore_errors=True)
    if destination.is_symlink() or destination.is_file():
        destination.unlink()
    elif destination.exists():
        destination.rename(previous)
    assembled.rename(destination)
    shutil.rmtree(previous, ignore_errors=True)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the system cannot (not Linux, old kernel or libc)."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return done == 0


def _check_install_path(root: Path, settings: dict[str, Any], destination: Path) -> None:
    """`deps` replaces the install folder: it must be a folder of its own inside the project."""
    root, target = root.resolve(), destination.resolve()
    own = [
        (root / str(folder)).resolve()
        for key, default in RESOURCE_PATHS.items()
        for folder in (settings.get(key) or default)
    ]
    if root not in target.parents or any(target == folder or target in folder.parents for folder in own):
        raise UserError(
            f"packages-install-path {settings.get('packages-install-path')!r} is not a folder of its own "
            "inside the project; `deps` would delete what is there",
            hint="leave it unset (dbt_packages) or name a new folder inside the project",
        )


# The project's own folders (with dbt's defaults), which `deps` must never replace.
RESOURCE_PATHS = {
    "model-paths": ["models"],
    "seed-paths": ["seeds"],
    "macro-paths": ["macros"],
    "test-paths": ["tests", "data_tests"],
    "snapshot-paths": ["snapshots"],
    "analysis-paths": ["analyses"],
    "docs-paths": [],
}


def _fetch_git(requirement: Requirement, revision: str | None, scratch: Path) -> tuple[Package, str]:
    """Clone the repository at `revision` (default: its default branch); the package and the
    commit it was checked out at."""
    import shutil
    import subprocess

    clone = scratch / "clone"

    def git(*args: str, cwd: Path | None = None) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise requirement.error(
                "git is not installed", hint="install git, or use a `local:` or dbt Hub entry"
            ) from exc
        except subprocess.CalledProcessError as exc:
            # git spreads one message over lines ("...access rights\nand the repository exists.")
            said = " ".join(line.strip() for line in exc.stderr.splitlines() if line.strip())
            raise requirement.error(
                f"git {args[0]} of {requirement.location} failed: {said or exc}",
                hint="check the URL and `revision:`, and that this machine can reach the repository",
            ) from exc
        return done.stdout.strip()

    if revision and revision.startswith("-"):  # git would read it as an option
        raise requirement.error(f"revision {revision!r} is not a branch, tag or commit")
    git("clone", "--quiet", "--", requirement.location, str(clone))
    if revision:
        git("checkout", "--quiet", revision, cwd=clone)
    # The commit, whatever the revision named: what package-lock.yml pins.
    commit = git("rev-parse", "HEAD", cwd=clone)
    shutil.rmtree(clone / ".git", ignore_errors=True)
    root = (clone / requirement.subdirectory).resolve() if requirement.subdirectory else clone
    if root != clone.resolve() and clone.resolve() not in root.parents:
        raise requirement.error(
            f"subdirectory {requirement.subdirectory!r} leaves the repository",
            hint="name a folder inside the repository",
        )
    if not (root / "dbt_project.yml").is_file():
        raise requirement.error(
            f"{requirement.location}{'/' + requirement.subdirectory if requirement.subdirectory else ''} "
            "holds no dbt_project.yml",
            hint="point `subdirectory:` at the folder of the package",
        )
    return read_package(root), commit


def _hub_index(requirement: Requirement, hub_url: str) -> tuple[str, dict[str, Any]]:
    """The package's versions on the Hub (`{version: {"downloads": {"tarball": url}}}`) and the
    URL they were read from."""
    import urllib.error
    import urllib.request

    index_url = f"{hub_url.rstrip('/')}/{requirement.location}.json"
    try:
        with urllib.request.urlopen(index_url, timeout=30) as response:
            index = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise requirement.error(
            f"cannot read package {requirement.location!r} from {index_url}: {exc}",
            hint="check the name and the network; a `git:` or `local:` entry needs no hub",
        ) from exc
    versions = index.get("versions") if isinstance(index, dict) else None
    if not isinstance(versions, dict):
        raise requirement.error(f"{index_url} is not a dbt Hub package index")
    return index_url, versions


def _download_hub(requirement: Requirement, version: str, tarball: str, scratch: Path) -> Package:
    import shutil
    import tarfile
    import urllib.error
    import urllib.request

    archive = scratch / "package.tar.gz"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(tarball, timeout=60) as response, archive.open("wb") as out:
            shutil.copyfileobj(response, out)
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):  # refuses links and paths leaving the folder
                tar.extractall(scratch / "unpacked", filter="data")
            else:  # Python before 3.10.12 / 3.11.4: only plain files and folders inside it
                members = tar.getmembers()
                for member in members:
                    name = Path(member.name)
                    if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                        raise tarfile.TarError(f"unsafe member {member.name!r}")
                tar.extractall(scratch / "unpacked", members=members)
    except (urllib.error.URLError, OSError, tarfile.TarError) as exc:
        raise requirement.error(
            f"cannot download {requirement.location} {version} from {tarball}: {exc}"
        ) from exc
    roots = [p.parent for p in (scratch / "unpacked").glob("*/dbt_project.yml")] + [
        p.parent for p in (scratch / "unpacked").glob("dbt_project.yml")
    ]
    if not roots:
        raise requirement.error(f"the archive of {requirement.location} {version} holds no dbt_project.yml")
    return read_package(roots[0])


_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-.]?([0-9A-Za-z.]+))?$")


def _is_release(version: str) -> bool:
    match = _VERSION.match(version)
    return bool(match) and not match.group(4)  # type: ignore[union-attr]


def _version_key(version: str) -> tuple[int, ...]:
    match = _VERSION.match(version)
    return tuple(int(part) for part in match.groups()[:3]) if match else (-1,)


def _satisfies(version: str, spec: str) -> bool:
    match = re.match(r"^(>=|<=|>|<|==|=)?\s*(\S+)$", spec)
    if not match:
        return False
    operator, bound = match.group(1) or "=", _version_key(match.group(2))
    have = _version_key(version)
    return {
        ">=": have >= bound,
        "<=": have <= bound,
        ">": have > bound,
        "<": have < bound,
        "==": have == bound,
        "=": have == bound,
    }[operator]
