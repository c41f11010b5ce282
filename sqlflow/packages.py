"""dbt packages: the ones installed in `packages-install-path`, and installing them (`deps`).

A package is a dbt project of its own (`dbt_project.yml`) whose macros and generic tests the
root project calls by namespace (`{{ dbt_utils.generate_surrogate_key([...]) }}`,
`- dbt_utils.expression_is_true:` in YAML). `packages.yml` (or `dependencies.yml`) lists them:
`local:` folders, `git:` repositories and dbt Hub packages (`package:` + `version:`).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
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
    """One entry of packages.yml."""

    kind: str  # "local", "git" or "hub"
    location: str  # the folder, the repository URL, or the hub name (`dbt-labs/dbt_utils`)
    revision: str | None  # git: a branch, tag or commit; hub: the version range, joined by ","
    subdirectory: str | None
    path: Path
    line: int | None

    def error(self, message: str, hint: str | None = None) -> UserError:
        """A UserError at this entry of packages.yml."""
        return UserError(message, path=self.path, line=self.line, hint=hint)


def requirements(root: Path) -> list[Requirement]:
    """The entries of packages.yml (or dependencies.yml); [] when there is neither."""
    for name in ("packages.yml", "dependencies.yml"):
        path = root / name
        if path.is_file():
            break
    else:
        return []
    data = load_yaml(path) or {}
    entries = data.get("packages") if isinstance(data, dict) else None
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise UserError("`packages` must be a list", path=path, line=line_of(data, "packages"))
    return [_requirement(entry, path) for entry in entries]


def _requirement(entry: Any, path: Path) -> Requirement:
    line = line_of(entry)
    example = 'e.g. `- package: dbt-labs/dbt_utils` with `version: [">=1.0.0", "<2.0.0"]`, `- git: <url>` or `- local: ../folder`'
    if not isinstance(entry, dict):
        raise UserError("a package entry must be a mapping", path=path, line=line, hint=example)
    subdirectory = entry.get("subdirectory")
    if "local" in entry:
        return Requirement("local", str(entry["local"]), None, None, path, line)
    if "git" in entry:
        revision = entry.get("revision")
        return Requirement(
            "git", str(entry["git"]), str(revision) if revision is not None else None,
            str(subdirectory) if subdirectory else None, path, line,
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
        return Requirement("hub", str(entry["package"]), ",".join(str(v) for v in ranges), None, path, line)
    raise UserError(
        "a package entry needs `local:`, `git:` or `package:`", path=path, line=line, hint=example
    )


def install(
    root: Path, settings: dict[str, Any], hub_url: str | None = None
) -> list[tuple[Requirement, Package]]:
    """Install every requirement of the project in `root` into its install folder (replacing what
    was there) and return what each became. Nothing is replaced unless every package was fetched."""
    # Imported here, as in the fetchers: every command reads the installed packages, only deps installs.
    import shutil
    import tempfile

    wanted = requirements(root)
    destination = install_path(root, settings)
    _check_install_path(root, settings, destination)
    with tempfile.TemporaryDirectory(prefix=".sqlflow-deps-", dir=root) as scratch:
        fetched = [
            _fetch(requirement, root, Path(scratch) / str(index), hub_url, destination)
            for index, requirement in enumerate(wanted)
        ]
        names: dict[str, Requirement] = {}
        for requirement, package in zip(wanted, fetched, strict=True):
            if package.name in names:
                raise requirement.error(
                    f"two entries install a package named {package.name!r}",
                    hint=f"the other is on line {names[package.name].line}; keep one",
                )
            names[package.name] = requirement
            if package.name == settings.get("name"):
                raise requirement.error(
                    f"package {requirement.location!r} has the project's own name {package.name!r}",
                    hint="a project cannot depend on itself",
                )
        # Assembled next to the install folder, then swapped in: a failure before the swap leaves
        # the installed packages as they were.
        assembled = destination.with_name(f".{destination.name}.new")
        shutil.rmtree(assembled, ignore_errors=True)
        assembled.mkdir(parents=True)
        try:
            installed_now = []
            for requirement, package in zip(wanted, fetched, strict=True):
                target = assembled / package.name
                if requirement.kind == "local":
                    # As dbt does: a link, so that edits to a local package need no new `deps`.
                    target.symlink_to(package.root.resolve(), target_is_directory=True)
                else:
                    shutil.move(str(package.root), target)
                installed_now.append((requirement, destination / package.name))
            _swap_in(assembled, destination)
        finally:
            shutil.rmtree(assembled, ignore_errors=True)
    return [(requirement, read_package(path)) for requirement, path in installed_now]


def _swap_in(assembled: Path, destination: Path) -> None:
    import shutil

    previous = destination.with_name(f".{destination.name}.old")
    shutil.rmtree(previous, ignore_errors=True)
    if destination.is_symlink() or destination.is_file():
        destination.unlink()
    elif destination.exists():
        destination.rename(previous)
    assembled.rename(destination)
    shutil.rmtree(previous, ignore_errors=True)  # links in it are removed, never followed


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


def _fetch(
    requirement: Requirement, root: Path, scratch: Path, hub_url: str | None, destination: Path
) -> Package:
    if requirement.kind == "local":
        folder = Path(requirement.location)
        folder = folder if folder.is_absolute() else root / folder
        if folder.resolve() == destination.resolve() or destination.resolve() in folder.resolve().parents:
            raise requirement.error(
                f"local package {requirement.location!r} is inside the install folder, which `deps` replaces",
                hint="keep local packages outside packages-install-path (dbt_packages/)",
            )
        if not (folder / "dbt_project.yml").is_file():
            raise requirement.error(
                f"local package {requirement.location!r}: {folder} has no dbt_project.yml",
                hint="`local:` is a folder holding a dbt project, relative to the project",
            )
        return read_package(folder)
    if requirement.kind == "git":
        return _fetch_git(requirement, scratch)
    return _fetch_hub(requirement, scratch, hub_url or os.environ.get("SQLFLOW_HUB_URL") or DEFAULT_HUB_URL)


def _fetch_git(requirement: Requirement, scratch: Path) -> Package:
    import shutil
    import subprocess

    clone = scratch / "clone"

    def git(*args: str, cwd: Path | None = None) -> None:
        try:
            subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
        except FileNotFoundError as exc:
            raise requirement.error(
                "git is not installed", hint="install git, or use a `local:` or dbt Hub entry"
            ) from exc
        except subprocess.CalledProcessError as exc:
            said = exc.stderr.strip().splitlines()
            raise requirement.error(
                f"git {args[0]} of {requirement.location} failed: {said[-1] if said else exc}",
                hint="check the URL and `revision:`, and that this machine can reach the repository",
            ) from exc

    git("clone", "--quiet", "--", requirement.location, str(clone))
    if requirement.revision:
        git("checkout", "--quiet", requirement.revision, cwd=clone)
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
    return read_package(root)


def _fetch_hub(requirement: Requirement, scratch: Path, hub_url: str) -> Package:
    import shutil
    import tarfile
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
    ranges = [r.strip() for r in str(requirement.revision).split(",") if r.strip()]
    matching = [v for v in versions if _is_release(v) and all(_satisfies(v, r) for r in ranges)]
    if not matching:
        raise requirement.error(
            f"no version of {requirement.location} matches {ranges}",
            hint="versions available: " + ", ".join(sorted(versions, key=_version_key)[-8:]),
        )
    chosen = max(matching, key=_version_key)
    tarball = (versions[chosen].get("downloads") or {}).get("tarball")
    if not tarball:
        raise requirement.error(f"{index_url} gives no download for version {chosen}")
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
            f"cannot download {requirement.location} {chosen} from {tarball}: {exc}"
        ) from exc
    roots = [p.parent for p in (scratch / "unpacked").glob("*/dbt_project.yml")] + [
        p.parent for p in (scratch / "unpacked").glob("dbt_project.yml")
    ]
    if not roots:
        raise requirement.error(f"the archive of {requirement.location} {chosen} holds no dbt_project.yml")
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
