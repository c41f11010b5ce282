"""dbt's exposures: the dashboards, notebooks and applications downstream of the project.

Declared under `exposures:` in properties YAML, they are vertices of the graph that are never
built: `sqlflow build -s +exposure:weekly_kpis` builds and tests everything a dashboard reads,
and manifest.json and the docs site show who depends on what.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jinja2

from .errors import UserError
from .nodes import Exposure, RefCall, SourceCall, merge_config
from .yaml_lines import line_of

TYPES = ("dashboard", "notebook", "analysis", "ml", "application")
MATURITIES = ("low", "medium", "high")
_NAME = re.compile(r"\w+")


def read_exposure(
    entry: dict[str, Any],
    path: Path,
    *,
    package: str,
    original_file_path: str,
    folders: list[str],
    folder_config: dict[str, Any],
    description: str,
    env: jinja2.Environment,
) -> Exposure:
    """An `exposures:` entry as a node; its `depends_on` calls recorded, not yet resolved.

    `folder_config` is what dbt_project.yml's `exposures:` block sets for it; `description` is the
    entry's, rendered."""
    name = entry.get("name")
    line = line_of(entry)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UserError(
            f"exposure name {name!r} is not a plain name" if name else "an `exposures` entry has no name",
            path=path,
            line=line,
            hint="use letters, digits and underscores; put the display name in `label:`",
        )

    def fail(problem: str, key: str, hint: str) -> UserError:
        return UserError(f"exposure {name!r}: {problem}", path=path, line=line_of(entry, key), hint=hint)

    kind = entry.get("type")
    if kind not in TYPES:
        raise fail(f"type {kind!r} is not one of {', '.join(TYPES)}", "type", "set `type:` to one of them")
    owner = entry.get("owner")
    if not isinstance(owner, dict) or not (owner.get("name") or owner.get("email")):
        raise fail("has no owner", "owner", "add `owner:` with a `name:` or an `email:`")
    maturity = entry.get("maturity")
    if maturity is not None and maturity not in MATURITIES:
        raise fail(
            f"maturity {maturity!r} is not one of {', '.join(MATURITIES)}", "maturity", "fix `maturity:`"
        )
    config = entry.get("config") or {}
    if not isinstance(config, dict):
        raise fail("`config` must be a mapping", "config", "write `config: {enabled: false}`")
    top_level = {"tags": _strings(entry.get("tags")), "meta": entry.get("meta") or {}}
    config = merge_config(merge_config(folder_config, dict(config)), top_level)
    refs, sources = _depends_on(entry, path, name, env)
    return Exposure(
        unique_id=f"exposure.{package}.{name}",
        name=name,
        package_name=package,
        path=path,
        original_file_path=original_file_path,
        fqn=[package, *folders, name],
        type=kind,
        owner=dict(owner),
        refs=refs,
        sources=sources,
        description=description,
        label=_optional_str(entry.get("label")),
        maturity=maturity,
        url=_optional_str(entry.get("url")),
        meta=dict(config.get("meta") or {}),
        tags=list(config.get("tags", [])),
        config=config,
        line=line,
    )


def _depends_on(
    entry: dict[str, Any], path: Path, name: str, env: jinja2.Environment
) -> tuple[list[RefCall], list[SourceCall]]:
    """The `ref()`, `source()` and `metric()` calls of `depends_on`, rendered as dbt does: each
    item is a Jinja expression."""
    items = entry.get("depends_on") or []
    line = line_of(entry, "depends_on") or line_of(entry)
    if not isinstance(items, list):
        raise UserError(
            f"exposure {name!r}: `depends_on` must be a list",
            path=path,
            line=line,
            hint="list what it reads: - ref('model') or - source('source', 'table')",
        )
    refs: list[RefCall] = []
    sources: list[SourceCall] = []

    def ref(*args: str, **_: Any) -> str:  # `v=` (a model version) is accepted and ignored
        if len(args) not in (1, 2) or not all(isinstance(a, str) for a in args):
            raise ValueError("ref() takes a model name, or a package and a model name")
        refs.append(RefCall(args[-1], line, args[0] if len(args) == 2 else None))
        return ""

    def source(source_name: str, table_name: str) -> str:
        sources.append(SourceCall(str(source_name), str(table_name), line))
        return ""

    def metric(*_: Any, **__: Any) -> str:  # metrics are not modelled: nothing to depend on
        return ""

    for item in items:
        try:
            env.from_string(f"{{{{ {item} }}}}").render(ref=ref, source=source, metric=metric)
        except (jinja2.TemplateError, ValueError, TypeError) as exc:
            raise UserError(
                f"exposure {name!r}: cannot read depends_on item {item!r}: {exc}",
                path=path,
                line=line,
                hint="write each item as ref('model'), ref('package', 'model') or source('source', 'table')",
            ) from exc
    return refs, sources


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
