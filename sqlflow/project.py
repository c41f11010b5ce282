"""Finding and reading a project: settings, profile and target, vars, and its files.

A sqlflow project has `sqlflow.yml`; a dbt project has `dbt_project.yml` and is read the same
way. Profiles use dbt's format (profile -> target -> outputs).
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import jinja2
import yaml

from .errors import UserError
from .yaml_lines import LineDict, line_of, load_yaml

SETTINGS_FILES = ("sqlflow.yml", "dbt_project.yml")
SECRET_FIELD_NAMES = ("password", "token", "secret", "private_key", "pass")
SECRET_ENV_MARKERS = ("PASSWORD", "SECRET", "TOKEN", "KEY")
# Values rendered later, in the context of a node or of the run (dbt defers these too): `vars`
# when var() reads them, so a var may hold `{{ source('shop', 'orders') }}`.
DEFERRED_KEYS = {
    *("pre-hook", "post-hook", "+pre-hook", "+post-hook", "pre_hook", "post_hook"),
    *("on-run-start", "on-run-end"),
    "vars",
}


# --------------------------------------------------------------------------- env_var / vars


@dataclass
class Secrets:
    """Values that must never be shown; filled while reading profiles and env_var()."""

    values: set[str] = field(default_factory=set)

    def add(self, value: Any) -> None:
        if isinstance(value, str) and len(value) >= 3:
            self.values.add(value)

    def mask(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "*****")
        return text


def make_env_var(secrets: Secrets):
    """The `env_var(name, default)` Jinja function; secret-looking variables are remembered."""

    def env_var(name: str, default: Any = None) -> Any:
        if name in os.environ:
            value = os.environ[name]
        elif default is not None:
            value = default
        else:
            raise UserError(
                f"environment variable {name!r} is not set and env_var() has no default",
                hint=f"export {name}=... or call env_var('{name}', 'default')",
            )
        if any(marker in name.upper() for marker in SECRET_ENV_MARKERS):
            secrets.add(str(value))
        return value

    return env_var


def render_yaml_values(data: Any, context: dict[str, Any], path: Path, key: Any = None) -> Any:
    """Render Jinja inside the string values of settings/profiles YAML (env_var, var)."""
    if isinstance(data, dict):
        out = LineDict()
        out.line = getattr(data, "line", None)
        out.key_lines = getattr(data, "key_lines", {})
        for k, v in data.items():
            out[k] = v if k in DEFERRED_KEYS else render_yaml_values(v, context, path, k)
        return out
    if isinstance(data, list):
        return [render_yaml_values(v, context, path, key) for v in data]
    if isinstance(data, str) and ("{{" in data or "{%" in data):
        try:
            rendered = _YAML_ENV.from_string(data).render(context)
        except UserError as exc:  # e.g. env_var() without default: name the file
            exc.location.path = exc.location.path or path
            raise
        except jinja2.TemplateError as exc:
            raise UserError(f"cannot render {key!r}: {exc}", path=path) from exc
        except RecursionError as exc:
            raise UserError(f"cannot render {key!r}: a macro calls itself without end", path=path) from exc
        except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as exc:
            raise UserError(f"cannot render {key!r}: {type(exc).__name__}: {exc}", path=path) from exc
        return _coerce_scalar(rendered)
    return data


_YAML_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined)


def _coerce_scalar(text: str) -> Any:
    # `port: "{{ env_var('PORT') }}"` must give an int, as in dbt's `as_number` shorthand.
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return text


def parse_vars(text: str | None, option: str = "--vars") -> dict[str, Any]:
    """`--vars` (and `run-operation --args`) accept YAML or JSON; it must be a mapping."""
    if not text:
        return {}
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(
            f"{option} is not valid YAML or JSON: {exc}",
            hint=f"example: {option} '{{start_date: 2024-01-01}}'",
        ) from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UserError(
            f"{option} must be a mapping, got {type(value).__name__}: {text!r}",
            hint=f"example: {option} '{{start_date: 2024-01-01, limit: 10}}'",
        )
    return dict(value)


# --------------------------------------------------------------------------- project


@dataclass
class Target:
    """The resolved profile output a run connects to."""

    profile_name: str
    name: str
    type: str
    schema: str
    database: str | None
    threads: int
    settings: dict[str, Any]
    profiles_path: Path

    def public_settings(self) -> dict[str, Any]:
        return {
            k: "*****" if k.lower() in SECRET_FIELD_NAMES else _hide_url_password(v) if k == "url" else v
            for k, v in self.settings.items()
        }


@dataclass
class Project:
    root: Path
    name: str
    settings_path: Path
    is_dbt: bool
    settings: dict[str, Any]
    vars: dict[str, Any]
    cli_vars: dict[str, Any]
    target: Target
    secrets: Secrets
    dialect: str = "duckdb"

    def paths(self, key: str, default: list[str]) -> list[Path]:
        return [self.root / p for p in self.settings.get(key, default) or []]

    # Cached: the loader asks for them for every file, and building Paths costs microseconds each.
    @functools.cached_property
    def model_paths(self) -> list[Path]:
        return self.paths("model-paths", ["models"])

    @functools.cached_property
    def seed_paths(self) -> list[Path]:
        return self.paths("seed-paths", ["seeds"])

    @functools.cached_property
    def macro_paths(self) -> list[Path]:
        return self.paths("macro-paths", ["macros"])

    @functools.cached_property
    def test_paths(self) -> list[Path]:
        # The repository's tests/ is often a Python suite, so sqlflow projects default elsewhere.
        return self.paths("test-paths", ["tests"] if self.is_dbt else ["data_tests"])

    @functools.cached_property
    def snapshot_paths(self) -> list[Path]:
        return self.paths("snapshot-paths", ["snapshots"])

    @functools.cached_property
    def docs_paths(self) -> list[Path]:
        """Where `{% docs %}` blocks are read from: dbt's default is every resource folder."""
        if self.settings.get("docs-paths"):
            return self.paths("docs-paths", [])
        folders = [
            *self.model_paths,
            *self.seed_paths,
            *self.paths("analysis-paths", ["analyses"]),
            *self.macro_paths,
            *self.test_paths,
            *self.snapshot_paths,
        ]
        return list(dict.fromkeys(folders))

    @functools.cached_property
    def target_path(self) -> Path:
        return self.root / self.settings.get("target-path", "target")

    @functools.cached_property
    def _root_prefix(self) -> str:
        return folder_prefix(self.root)

    @functools.cached_property
    def resource_prefixes(self) -> dict[str, tuple[str, ...]]:
        """The model and seed folders as prefixes of project-relative paths ("models/"), which
        manifest.json's `path` is relative to."""
        return {
            "model": tuple(self.relpath(folder) + "/" for folder in self.model_paths),
            "seed": tuple(self.relpath(folder) + "/" for folder in self.seed_paths),
        }

    def relpath(self, path: Path) -> str:
        # String arithmetic on normalised absolute paths: Path.relative_to costs ~10 µs a call, and
        # this runs several times per node.
        text, prefix = str(path), self._root_prefix
        if text.startswith(prefix):
            return text[len(prefix) :].replace(os.sep, "/")
        return "." if text == str(self.root) else path.as_posix()


def folder_prefix(folder: Path) -> str:
    """The folder's path with a trailing separator, what the paths of its files start with
    (os.path.join(folder, "") at a twentieth of the cost: it runs for every node)."""
    text = str(folder)
    return text if text.endswith(os.sep) else text + os.sep


def find_settings(project_dir: Path) -> Path:
    for name in SETTINGS_FILES:
        candidate = project_dir / name
        if candidate.is_file():
            return candidate
    raise UserError(
        f"no sqlflow.yml or dbt_project.yml in {project_dir}",
        hint="run sqlflow from a project folder, pass --project-dir, or create one with `sqlflow init NAME`",
    )


def load_project(
    project_dir: Path | str = ".",
    *,
    profiles_dir: Path | str | None = None,
    target: str | None = None,
    vars: dict[str, Any] | None = None,
    threads: int | None = None,
) -> Project:
    root = Path(project_dir).resolve()
    if not root.is_dir():
        raise UserError(f"project directory {root} does not exist", hint="check --project-dir")
    secrets = Secrets()
    cli_vars = dict(vars or {})
    settings_path, settings = read_settings(root, secrets, cli_vars)
    is_dbt = settings_path.name == "dbt_project.yml"
    # Vars are used rendered (`region: "{{ env_var('REGION', 'eu') }}"`), as in dbt.
    project_vars = dict(settings.get("vars") or {})
    name = settings.get("name")
    if not name or not isinstance(name, str):
        raise UserError(
            "the settings file has no `name`", path=settings_path, line=1, hint="add `name: my_project`"
        )
    profile_name = settings.get("profile") or name
    resolved_target = load_target(
        root, str(profile_name), target, profiles_dir, is_dbt=is_dbt, secrets=secrets
    )
    if threads:
        resolved_target.threads = threads
    # sqlflow models are DuckDB SQL unless declared otherwise (transpiled for other warehouses);
    # a dbt project's models are written for its warehouse.
    dialect = str(settings.get("dialect") or (resolved_target.type if is_dbt else "duckdb"))
    return Project(
        root=root,
        name=name,
        settings_path=settings_path,
        is_dbt=is_dbt,
        settings=settings,
        vars={**_flatten_project_vars(project_vars, name), **cli_vars},
        cli_vars=cli_vars,
        target=resolved_target,
        secrets=secrets,
        dialect=_check_dialect(dialect, settings, settings_path),
    )


def read_settings(
    root: Path, secrets: Secrets | None = None, cli_vars: dict[str, Any] | None = None
) -> tuple[Path, dict[str, Any]]:
    """The settings file of the project in `root` and its values, `env_var()`/`var()` rendered
    (what commands that need no profile, `deps` and `clean`, read too)."""
    settings_path = find_settings(root)
    raw = load_yaml(settings_path)
    if not isinstance(raw, dict):
        raise UserError("the settings file must be a mapping", path=settings_path, line=1)
    _check_settings_keys(raw, settings_path)
    project_vars = dict(raw.get("vars") or {})
    context = {
        "env_var": make_env_var(secrets or Secrets()),
        "var": make_var({**project_vars, **(cli_vars or {})}),
    }
    return settings_path, render_yaml_values(raw, context, settings_path)


# dbt_project.yml's top-level keys (dbt rejects any other) and sqlflow's own (`dialect`).
SETTINGS_KEYS = frozenset(
    {
        "name", "version", "config-version", "profile", "dialect", "require-dbt-version",
        "model-paths", "seed-paths", "test-paths", "analysis-paths", "macro-paths", "snapshot-paths",
        "docs-paths", "asset-paths", "function-paths", "target-path", "log-path", "packages-install-path",
        "clean-targets", "query-comment", "quoting", "vars", "flags", "dispatch", "restrict-access",
        "on-run-start", "on-run-end", "models", "seeds", "snapshots", "sources", "tests", "data_tests",
        "unit_tests", "analyses", "exposures", "metrics", "semantic-models", "saved-queries",
        "functions", "dbt-cloud",
    }
)  # fmt: skip


def _check_settings_keys(raw: dict[str, Any], path: Path) -> None:
    for key in raw:
        if key not in SETTINGS_KEYS:
            close = difflib.get_close_matches(str(key), SETTINGS_KEYS, n=1)
            raise UserError(
                f"unknown key {key!r} in {path.name}",
                path=path,
                line=line_of(raw, key),
                hint=f"did you mean {close[0]!r}?" if close else "see docs/configuration.md for the keys",
            )


_KNOWN_DIALECTS = {"duckdb", "postgres", "sqlite", "spark", "databricks", "snowflake", "bigquery", "trino"}


def _check_dialect(dialect: str, settings: dict[str, Any], path: Path) -> str:
    if dialect in _KNOWN_DIALECTS:
        return dialect
    if "dialect" not in settings:
        return "duckdb"  # the target type has no SQL dialect of its own name; models are DuckDB SQL
    raise UserError(
        f"unknown dialect {dialect!r}",
        path=path,
        line=line_of(settings, "dialect"),
        hint="use one of: " + ", ".join(sorted(_KNOWN_DIALECTS)),
    )


def make_var(values: dict[str, Any], settings_name: str = "the settings file"):
    """The `var(name, default)` Jinja function over `values`.

    A string value holding Jinja is rendered where var() is called, with that template's names,
    as dbt renders vars: `vars: {orders: "{{ source('shop', 'orders') }}"}` makes `var('orders')`
    the source's relation (and, at load time, a dependency on it). A default is never rendered."""

    @jinja2.pass_context
    def var(context: Any, name: str, default: Any = None) -> Any:
        if name in values:
            value = values[name]
            return render_var(context, value) if is_template(value) else value
        if default is not None:
            return default
        raise UserError(
            f"var {name!r} is not defined",
            hint=f"set it under `vars:` in {settings_name} or pass --vars '{{{name}: ...}}'",
        )

    return var


def is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def render_var(context: Any, value: str) -> str:
    """`value` rendered with the names of `context`: the calling template's Jinja context, or the
    mapping the static interpreter renders with."""
    if isinstance(context, jinja2.runtime.Context):
        environment, names = context.environment, context.parent
    else:
        environment, names = _YAML_ENV, context
    template = environment.from_string(value)
    return environment.concat(template.root_render_func(template.new_context(names, shared=True)))


def _flatten_project_vars(project_vars: dict[str, Any], project_name: str) -> dict[str, Any]:
    # dbt allows vars scoped by project name: `vars: {my_project: {x: 1}}`.
    flat = {k: v for k, v in project_vars.items() if k != project_name}
    scoped = project_vars.get(project_name)
    if isinstance(scoped, dict):
        flat.update(scoped)
    return flat


def profile_dirs(root: Path, profiles_dir: Path | str | None, *, is_dbt: bool) -> list[Path]:
    if profiles_dir:
        return [Path(profiles_dir).expanduser()]
    candidates = []
    for variable in ("SQLFLOW_PROFILES_DIR", *(("DBT_PROFILES_DIR",) if is_dbt else ())):
        if os.environ.get(variable):
            candidates.append(Path(os.environ[variable]).expanduser())
    candidates += [root, Path.home() / ".sqlflow"]
    if is_dbt:
        candidates.append(Path.home() / ".dbt")
    return candidates


def load_target(
    root: Path,
    profile_name: str,
    target_name: str | None,
    profiles_dir: Path | str | None,
    *,
    is_dbt: bool,
    secrets: Secrets,
) -> Target:
    searched = profile_dirs(root, profiles_dir, is_dbt=is_dbt)
    path = next((d / "profiles.yml" for d in searched if (d / "profiles.yml").is_file()), None)
    if path is None:
        raise UserError(
            "no profiles.yml found (looked in " + ", ".join(str(d) for d in searched) + ")",
            hint="create profiles.yml in the project folder or pass --profiles-dir",
        )
    profiles = load_yaml(path) or {}
    if not isinstance(profiles, dict) or profile_name not in profiles:
        available = ", ".join(k for k in profiles if k != "config") if isinstance(profiles, dict) else ""
        raise UserError(
            f"profile {profile_name!r} not found in profiles.yml",
            path=path,
            hint=f"available profiles: {available or 'none'}; the settings file's `profile:` names it",
        )
    profile = profiles[profile_name]
    outputs = profile.get("outputs") if isinstance(profile, dict) else None
    if not isinstance(outputs, dict) or not outputs:
        raise UserError(
            f"profile {profile_name!r} has no `outputs`",
            path=path,
            line=line_of(profile),
            hint="see docs/configuration.md for the profile format",
        )
    name = target_name or profile.get("target") or next(iter(outputs))
    if name not in outputs:
        raise UserError(
            f"target {name!r} not found in profile {profile_name!r}",
            path=path,
            line=line_of(profile, "outputs"),
            hint="available targets: " + ", ".join(outputs),
        )
    context = {"env_var": make_env_var(secrets), "var": make_var({})}
    raw_output = outputs[name]
    if not isinstance(raw_output, dict):
        raise UserError(f"target {name!r} must be a mapping", path=path, line=line_of(outputs, name))
    output = dict(render_yaml_values(raw_output, context, path))
    for key, value in output.items():
        if key.lower() in SECRET_FIELD_NAMES:
            secrets.add(str(value))
    if isinstance(output.get("url"), str):
        _add_url_password(output["url"], secrets)
    adapter_type = str(output.get("type") or "")
    if not adapter_type:
        raise UserError(
            f"target {name!r} has no `type`", path=path, line=line_of(raw_output), hint="e.g. type: duckdb"
        )
    if adapter_type in ("duckdb", "sqlite") and output.get("path") not in (None, ":memory:"):
        db_path = Path(str(output["path"])).expanduser()
        output["path"] = str(db_path if db_path.is_absolute() else (root / db_path))
    if adapter_type == "spark" and output.get("warehouse_dir"):
        warehouse = Path(str(output["warehouse_dir"])).expanduser()
        output["warehouse_dir"] = str(warehouse if warehouse.is_absolute() else (root / warehouse))
    try:
        threads = int(output.get("threads") or 4)
    except (TypeError, ValueError) as exc:
        raise UserError(
            f"threads must be a whole number, got {output.get('threads')!r}",
            path=path,
            line=line_of(raw_output, "threads"),
        ) from exc
    default_schema = {"duckdb": "main", "sqlite": "main", "spark": "default"}.get(adapter_type, "public")
    return Target(
        profile_name=profile_name,
        name=str(name),
        type=adapter_type,
        schema=str(output.get("schema") or default_schema),
        # Spark calls a schema a database; what holds schemas is its catalog.
        database=output.get("catalog")
        if adapter_type == "spark"
        else output.get("database") or output.get("dbname"),
        threads=max(1, threads),
        settings=output,
        profiles_path=path,
    )


def _add_url_password(url: str, secrets: Secrets) -> None:
    """A password inside a connection URL (`postgresql://user:pw@host/db`) is a secret, as written and decoded."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        secrets.add(password)
        secrets.add(unquote(password))


def _hide_url_password(url: Any) -> Any:
    try:
        parts = urlsplit(url) if isinstance(url, str) else None
        password = parts.password if parts else None
    except ValueError:
        return url
    if not parts or not password:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{password}@", ":*****@", 1)))


def iter_files(folders: list[Path], suffixes: tuple[str, ...]) -> Iterator[Path]:
    """Files under `folders` with one of `suffixes`, in a stable order, skipping hidden folders."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            base = Path(dirpath)
            for filename in sorted(filenames):
                if filename.endswith(suffixes) and not filename.startswith("."):
                    yield base / filename
