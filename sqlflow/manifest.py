"""From files to nodes: models, seeds, sources and macros with resolved config and dependencies.

Config precedence is dbt's: a `config()` call in the file wins over the properties YAML, which
wins over folder config in the settings file. Parsing results are cached per file, keyed by its
content and everything a parse can depend on, so an unchanged project loads without rendering.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

from . import (
    data_tests,
    doc_blocks,
    exposures,
    introspection,
    manifest_cache,
    packages,
    parse_pool,
    snapshots,
    unit_tests,
)
from .errors import CompilationError, CompilationErrors, UserError
from .jinja import (
    MacroLibrary,
    Program,
    RenderContext,
    as_jinja_program,
    base_context,
    make_environment,
    parse_program,
    render,
    snapshot_blocks,
)
from .lazy import exp, sqlglot
from .microbatch import MicrobatchConfig
from .nodes import (
    INCREMENTAL_STRATEGIES,
    ON_SCHEMA_CHANGE,
    Column,
    Doc,
    Exposure,
    Macro,
    Node,
    RefCall,
    Relation,
    RelationName,
    Source,
    SourceCall,
    merge_config,
    partition_columns,
    relation_name,
)
from .packages import Package
from .parse_cache import ParseCache
from .project import (
    SECRET_ENV_MARKERS,
    Project,
    _flatten_project_vars,
    folder_prefix,
    is_template,
    iter_files,
    make_env_var,
    make_var,
    render_yaml_values,
)
from .resolution import Resolver, resolve_dependencies
from .yaml_lines import line_of, load_yaml

if TYPE_CHECKING:
    from .background import Background

PROPERTIES_SUFFIXES = (".yml", ".yaml")
KNOWN_RESOURCE_KEYS = {
    "models",
    "seeds",
    "sources",
    "version",
    "macros",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "unit_tests",
    "snapshots",
    "analyses",
    "data_tests",
    "groups",
}


@dataclass
class Manifest:
    """Everything loaded from a project; the input of the graph."""

    project: Project
    nodes: dict[str, Node]
    sources: dict[str, Source]
    macros: dict[str, Macro]
    macro_library: MacroLibrary
    env: jinja2.Environment
    invocation_id: str
    run_started_at: datetime.datetime
    warnings: list[str] = field(default_factory=list)
    docs: dict[str, Doc] = field(default_factory=dict)  # doc blocks by name (doc_blocks.py)
    exposures: dict[str, Exposure] = field(default_factory=dict)  # never built (exposures.py)
    # The digest of every input of the load (manifest_cache.inputs_key); None without caches.
    inputs_key: str | None = None
    # New models' SQL being parsed while the project loaded (a cold load); the compiler takes it.
    early_parse: parse_pool.EarlyParse | None = None
    # Writing the load caches for the next command, not done yet (see save_caches).
    unsaved_caches: Callable[[], None] | None = field(default=None, repr=False)
    # The graph's parents, children and topological order (graph.py), cached with the nodes.
    graph_lists: tuple[dict[str, list[str]], dict[str, list[str]], list[str]] | None = field(
        default=None, repr=False
    )
    # The vars each installed package's templates see (package_vars()); none without packages.
    package_vars: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    # The installed packages whose models and seeds are built, by name.
    packages: dict[str, Package] = field(default_factory=dict, repr=False)
    _resolver: Resolver | None = field(default=None, repr=False)

    def save_caches(self, background: Background | None = None) -> None:
        """Write the load caches a cold load left to write, in a `background` child if given.

        Deferred so that a cold compile writes them once both cores are free, beside the
        compiled files, rather than on the path of its parse."""
        save, self.unsaved_caches = self.unsaved_caches, None
        if save is None:
            return
        if background is None:
            save()
        else:
            background.start("the load caches in target/", save)

    def by_name(self) -> dict[str, Node]:
        """The root project's nodes that `ref()` can name (tests cannot be referenced)."""
        return self.resolver().nodes

    def resolver(self) -> Resolver:
        """What `ref()` and `source()` name (built once)."""
        if self._resolver is None:
            self._resolver = Resolver.of(self)
        return self._resolver

    def log(self, message: str) -> None:
        self.warnings.append(message)


def load_manifest(project: Project, *, use_cache: bool = True, fingerprints: bool = False) -> Manifest:
    """Load the project's nodes, from the whole-project cache when none of its inputs changed.
    What a cold load would cache is written by `Manifest.save_caches()`. `fingerprints`: the
    command will fingerprint models, so the early parse of a cold load normalizes their SQL too."""
    if not use_cache:
        return _Loader(project, use_cache=False).load()
    sql_read: dict[str, bytes] = {}
    key = manifest_cache.inputs_key(project, sql_read)
    snapshot = manifest_cache.read(project, key)
    if snapshot is not None:
        manifest = _Loader(project, use_cache=False).restore(snapshot)
        env_reads = snapshot.env_reads
    else:
        loader = _Loader(project, use_cache=True, sql_read=sql_read, fingerprints=fingerprints)
        manifest = loader.load()
        env_reads = loader.env_reads
        snapshot = manifest_cache.Snapshot(
            key,
            manifest.nodes,
            manifest.sources,
            manifest.macros,
            list(manifest.warnings),
            env_reads,
            docs=manifest.docs,
            exposures=manifest.exposures,
        )
        parse_cache = loader.cache
        assert parse_cache is not None

        def save() -> None:
            snapshot.graph_lists = manifest.graph_lists  # built since, by the session's Graph
            manifest_cache.write(project, snapshot)
            parse_cache.save()

        manifest.unsaved_caches = save
    manifest.inputs_key = manifest_cache.loaded_key(key, env_reads)
    return manifest


@dataclass
class _Scope:
    """The project a part of the load reads: the root project, or an installed package whose
    models, seeds, sources and tests are built as dbt builds them (named `<kind>.<package>.<name>`,
    configured by its dbt_project.yml under the root project's, its refs searched as dbt does)."""

    name: str
    model_paths: list[Path]
    seed_paths: list[Path]
    test_paths: list[Path]
    relpath: Callable[[Path], str]  # a file's path as manifest.json writes it
    # Settings whose `models:`/`seeds:`/`data_tests:` blocks configure its nodes, lowest first:
    # a package's own dbt_project.yml (rendered), then the root project's.
    settings: list[dict[str, Any]]
    vars: dict[str, Any]
    docs: dict[str, Doc]
    package: Package | None = None  # None: the root project
    # Added to the macros' digest in the parse cache's key: a package's vars change its renders.
    cache_salt: str = ""
    # Vars whose value is Jinja, rendered where var() is called (project.render_var).
    template_vars: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.template_vars = frozenset(name for name, value in self.vars.items() if is_template(value))

    def config(self, resource_type: str, parts: list[str]) -> dict[str, Any]:
        """The settings' config of a node at `parts` (folders, then its name)."""
        if len(self.settings) == 1:
            return _folder_config(_settings_tree(self.settings[0], resource_type), self.name, parts)
        config: dict[str, Any] = {}
        for settings in self.settings:
            config = merge_config(
                config, _folder_config(_settings_tree(settings, resource_type), self.name, parts)
            )
        return config


def _settings_tree(settings: dict[str, Any], resource_type: str) -> Any:
    if resource_type == "test":
        return settings.get("data_tests", settings.get("tests"))
    return settings.get(f"{resource_type}s")


def package_vars(project: Project, package: Package) -> dict[str, Any]:
    """The vars a package's templates see, as dbt merges them: the package's own `vars:`
    (global, then scoped under its name), under the root project's (global, then scoped under
    the package's name), under --vars."""
    own = package.settings.get("vars") or {}
    root = project.settings.get("vars") or {}
    return {
        **(_flatten_project_vars(own, package.name) if isinstance(own, dict) else {}),
        **(_flatten_project_vars(root, package.name) if isinstance(root, dict) else {}),
        **project.cli_vars,
    }


class _Loader:
    def __init__(
        self,
        project: Project,
        *,
        use_cache: bool,
        sql_read: dict[str, bytes] | None = None,
        fingerprints: bool = False,
    ) -> None:
        self.project = project
        self._sql_read = sql_read or {}  # files computing the cache key read: not read again
        self.env = make_environment()
        self.macros = MacroLibrary(self.env)
        self.warnings: list[str] = []
        self.cache = ParseCache(project) if use_cache else None
        self.run_started_at = datetime.datetime.now(datetime.timezone.utc)
        self.invocation_id = str(uuid.uuid4())
        self._folders: dict[Path, list[str]] = {}
        self.env_reads: dict[str, str | None] = {}  # every env_var() the load read, with its value
        self.early_parse = parse_pool.EarlyParse(project.dialect, normalize=fingerprints)
        self.docs: dict[str, Doc] = {}
        self._description_context: dict[str, Any] | None = None  # built for the first that needs it
        self._description_templates: dict[str, jinja2.Template] = {}
        self._placeholders: dict[str, Any] | None = None  # built on first use: a cache hit needs none
        self.packages: list[Package] = []  # installed (read by _load_macros)
        self._root_scope: _Scope | None = None

    # ----------------------------------------------------------------- orchestration

    def _read(self, path: Path) -> str:
        content = self._sql_read.pop(str(path), None)
        if content is None:
            return _read(path)
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(f"file is not UTF-8 text: {exc}", path=path, hint="save it as UTF-8") from exc
        # As read_text() reads: universal newlines.
        return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text

    def restore(self, snapshot: manifest_cache.Snapshot) -> Manifest:
        """The manifest of a whole-project cache hit; only the macros are read again (rendering
        needs them compiled)."""
        macros = self._load_macros()
        return Manifest(
            project=self.project,
            package_vars={package.name: package_vars(self.project, package) for package in self._built()},
            packages={package.name: package for package in self._built()},
            nodes=snapshot.nodes,
            sources=snapshot.sources,
            macros=macros,
            macro_library=self.macros,
            env=self.env,
            invocation_id=self.invocation_id,
            run_started_at=self.run_started_at,
            warnings=list(snapshot.warnings),
            docs=snapshot.docs,
            exposures=snapshot.exposures,
            graph_lists=snapshot.graph_lists,
        )

    def load(self) -> Manifest:
        try:
            return self._load()
        except BaseException:
            self.early_parse.close()
            raise

    def _load(self) -> Manifest:
        project = self.project
        macros = self._load_macros()
        self.docs = self._load_docs()
        root = self.root_scope
        scopes = [root, *(self._package_scope(package) for package in self._built())]
        # Models' templates first: the early parse of their SQL starts while the YAML is read.
        models = [
            (scope, path, self._parse_file(path, scope))
            for scope in scopes
            for path in iter_files(scope.model_paths, (".sql",))
        ]
        properties = {scope.name: self._load_properties(scope) for scope in scopes}
        sources: dict[str, Source] = {}
        for scope in scopes:
            sources.update(self._build_sources(properties[scope.name], scope))
        nodes: dict[str, Node] = {}
        seen: dict[str, dict[str, Path]] = {scope.name: {} for scope in scopes}  # per project, by name
        failures: list[UserError] = []  # every model that cannot be loaded is reported, not the first
        for scope, path, parsed in models:
            try:
                node = self._model_node(path, properties[scope.name], parsed=parsed, scope=scope)
            except UserError as exc:
                failures.append(exc)
                continue
            self._check_unique(node, seen[scope.name])
            if node.config.get("enabled", True) is not False:
                nodes[node.unique_id] = node
        if failures:
            raise failures[0] if len(failures) == 1 else CompilationErrors(failures)
        for scope in scopes:
            for path in iter_files(scope.seed_paths, (".csv",)):
                node = self._seed_node(path, properties[scope.name], scope)
                self._check_unique(node, seen[scope.name])
                if node.config.get("enabled", True) is not False:
                    nodes[node.unique_id] = node
        for node in self._snapshot_nodes(properties[root.name]):
            self._check_unique(node, seen[root.name])
            if node.config.get("enabled", True) is not False:
                nodes[node.unique_id] = node
        for scope in scopes:
            self._warn_unused_properties(properties[scope.name], seen[scope.name])
        tests: dict[str, Node] = {}
        for scope in scopes:
            for path in iter_files(scope.test_paths, (".sql",)):
                if not self._is_generic_test_file(path, scope):
                    self._add_test(self._model_node(path, properties[scope.name], "test", scope=scope), tests)
            in_scope = (
                nodes
                if len(scopes) == 1
                else {u: n for u, n in nodes.items() if n.package_name == scope.name}
            )
            for node in self._generic_tests(properties[scope.name], in_scope, scope):
                self._add_test(node, tests)
        for entry, path in properties[root.name]["unit_tests"].values():
            unit = self._unit_test_node(entry, path, nodes, seen[root.name])
            if unit is not None:
                self._add_test(unit, tests)
        nodes.update(tests)
        exposure_nodes = self._exposures(properties[root.name])
        manifest = Manifest(
            project=project,
            nodes=nodes,
            sources=sources,
            macros=macros,
            macro_library=self.macros,
            env=self.env,
            invocation_id=self.invocation_id,
            run_started_at=self.run_started_at,
            warnings=self.warnings,
            docs=self.docs,
            exposures=exposure_nodes,
            early_parse=self.early_parse,
            package_vars={scope.name: scope.vars for scope in scopes[1:]},
            packages={scope.name: scope.package for scope in scopes[1:] if scope.package is not None},
        )
        for node in nodes.values():
            node.relation = self._relation(node, manifest)
        if len(scopes) > 1:
            _check_relations_unique(nodes.values(), self.project)
        if len(scopes) == 1:
            disabled = {(root.name, name) for name in set(seen[root.name]) - {n.name for n in nodes.values()}}
        else:
            enabled = {(n.package_name, n.name) for n in nodes.values()}
            disabled = {(p, name) for p, names in seen.items() for name in names} - enabled
        resolve_dependencies(manifest, disabled)
        return manifest

    @property
    def root_scope(self) -> _Scope:
        if self._root_scope is None:
            project = self.project
            self._root_scope = _Scope(
                name=project.name,
                model_paths=project.model_paths,
                seed_paths=project.seed_paths,
                test_paths=project.test_paths,
                relpath=project.relpath,
                settings=[project.settings],
                vars=project.vars,
                docs=self.docs,
            )
        return self._root_scope

    def _built(self) -> list[Package]:
        """The installed packages that have model or seed folders: their nodes are built too."""
        return [p for p in self.packages if any(f.is_dir() for f in (*p.model_paths, *p.seed_paths))]

    def _package_scope(self, package: Package) -> _Scope:
        project = self.project
        prefix = folder_prefix(package.root)

        def relpath(path: Path) -> str:
            text = str(path)
            return text[len(prefix) :].replace(os.sep, "/") if text.startswith(prefix) else path.as_posix()

        variables = package_vars(project, package)
        # The load's env_var(), which records what it reads: the rendered config is in the cached
        # nodes, and the load cache's key has the package's file, not the variables it reads.
        context = {
            "env_var": self._context(execute=False)["env_var"],
            "var": make_var(variables, package.settings_path.name),
        }
        # Its config blocks are rendered as the root's settings are (`+schema: "{{ var('x') }}"`);
        # hooks when they run. Its `vars:` are defaults, rendered by nobody (as dbt reads them).
        own = {
            key: render_yaml_values(package.settings[key], context, package.settings_path, key)
            for key in ("models", "seeds", "data_tests", "tests")
            if key in package.settings
        }
        found = []
        for path in iter_files([*package.model_paths, *package.seed_paths, *package.macro_paths], (".md",)):
            found += doc_blocks.read_doc_blocks(path, _read(path), self.env, package.name, relpath(path))
        docs = {**doc_blocks.index_docs(found, relpath), **self.docs}  # the root's first, as dbt searches
        return _Scope(
            name=package.name,
            model_paths=list(package.model_paths),
            seed_paths=list(package.seed_paths),
            test_paths=list(package.test_paths),
            relpath=relpath,
            settings=[own, project.settings],
            vars=variables,
            docs=docs,
            package=package,
            cache_salt=hashlib.sha256(repr(variables).encode()).hexdigest(),
        )

    def _exposures(self, properties: dict[str, Any]) -> dict[str, Exposure]:
        """The root project's exposures (a package's are not read, as its snapshots are not)."""
        scope = self.root_scope
        found: dict[str, Exposure] = {}
        for entry, path in properties["exposures"].values():
            folders = self._yaml_folders(path, scope)
            exposure = exposures.read_exposure(
                entry,
                path,
                package=scope.name,
                original_file_path=scope.relpath(path),
                folders=folders,
                folder_config=scope.config("exposure", [*folders, str(entry.get("name"))]),
                description=self._description(entry, path, scope),
                env=self.env,
            )
            if exposure.config.get("enabled", True) is not False:
                found[exposure.unique_id] = exposure
        return found

    def _add_test(self, node: Node, tests: dict[str, Node]) -> None:
        if node.config.get("enabled", True) is False:
            return
        other = tests.get(node.unique_id)
        if other is not None:
            where = f"{other.original_file_path}:{other.line}" if other.line else other.original_file_path
            raise UserError(
                f"two tests are named {node.name!r}",
                path=node.path,
                line=node.line,
                hint=f"the other is in {where}; give one a `name:` of its own, or remove the duplicate",
            )
        tests[node.unique_id] = node

    def _is_generic_test_file(self, path: Path, scope: _Scope) -> bool:
        # `<test-path>/generic/` holds `{% test %}` macros and `fixtures/` unit test rows (dbt's layout).
        return any(
            path.is_relative_to(folder / sub)
            for folder in scope.test_paths
            for sub in ("generic", "fixtures")
        )

    def _check_unique(self, node: Node, seen: dict[str, Path]) -> None:
        if node.name in seen:
            raise UserError(
                f"two nodes are named {node.name!r}: {self.project.relpath(seen[node.name])} and "
                f"{node.original_file_path}",
                path=node.path,
                hint="a model's name is its file name; rename one of the files",
            )
        seen[node.name] = node.path

    # ----------------------------------------------------------------- macros

    def _load_macros(self) -> dict[str, Macro]:
        """The root project's macros, then those of each installed package (packages.py)."""
        project, library = self.project, self.macros
        library.root_name = project.name
        library.adapter_type = project.target.type
        library.dialect = project.dialect
        library.dispatch = _dispatch_orders(project)
        macros = {}
        folders = project.macro_paths + [folder / "generic" for folder in project.test_paths]
        for path in iter_files(folders, (".sql",)):
            source = self._read(path)
            for name, line in library.add_file(path, source):
                uid = f"macro.{project.name}.{name}"
                macros[uid] = Macro(uid, name, path, project.relpath(path), source, line)
        self.packages = packages.installed(project)
        for package in self.packages:
            for path in iter_files(package.macro_folders, (".sql",)):
                source = self._read(path)
                relative = path.relative_to(package.root).as_posix()
                for name, line in library.add_file(path, source, package.name):
                    uid = f"macro.{package.name}.{name}"
                    macros[uid] = Macro(uid, name, path, relative, source, line, package.name)
        return macros

    # ----------------------------------------------------------------- doc blocks and descriptions

    def _load_docs(self) -> dict[str, Doc]:
        found = []
        for path in iter_files(self.project.docs_paths, (".md",)):
            found += doc_blocks.read_doc_blocks(
                path, _read(path), self.env, self.project.name, self.project.relpath(path)
            )
        return doc_blocks.index_docs(found, self.project.relpath)

    def _description(
        self, entry: dict[str, Any], path: Path | str | None, scope: _Scope | None = None
    ) -> str:
        """An entry's `description`, with `{{ doc('name') }}` (and other Jinja) rendered."""
        text = str(entry.get("description") or "")
        if "{{" not in text and "{%" not in text:
            return text
        line = line_of(entry, "description")
        docs, name = (self.docs, self.project.name) if scope is None else (scope.docs, scope.name)
        doc = doc_blocks.doc_function(docs, name, path, line)
        only_doc = doc_blocks.ONLY_DOC_CALL.fullmatch(text.strip())
        if only_doc:  # most are just `{{ doc('name') }}`: no template to compile
            return doc(only_doc.group(2))
        if self._description_context is None:
            self._description_context = self._context(execute=False)
        try:
            template = self._description_templates.get(text)
            if template is None:
                template = self._description_templates[text] = self.env.from_string(text)
            return template.render({**self._description_context, "doc": doc})
        except UserError:
            raise
        except jinja2.TemplateError as exc:
            raise UserError(
                f"description: {exc}",
                path=path,
                line=line,
                hint="quote Jinja in YAML, e.g. description: '{{ doc(\"orders\") }}'",
            ) from exc

    def _columns(
        self, entry: dict[str, Any], path: Path | str | None, scope: _Scope | None = None
    ) -> dict[str, Column]:
        if scope is None or scope.package is None:
            return _columns(entry, path, self._description)
        return _columns(entry, path, lambda column, where: self._description(column, where, scope))

    # ----------------------------------------------------------------- properties YAML

    def _load_properties(self, scope: _Scope) -> dict[str, dict[str, tuple[dict[str, Any], Path]]]:
        """name -> (entry, file) for models and seeds; sources keep their own list."""
        found: dict[str, dict[str, Any]] = {
            "models": {},
            "seeds": {},
            "snapshots": {},
            "sources": {},
            "unit_tests": {},
            "exposures": {},
        }
        folders = scope.model_paths + scope.seed_paths
        if scope.package is None:
            folders += self.project.snapshot_paths
        for path in iter_files(folders, PROPERTIES_SUFFIXES):
            data = self.cache.yaml(path) if self.cache else load_yaml(path)
            if data is None:
                continue
            if not isinstance(data, dict):
                raise UserError("a properties file must be a mapping", path=path, line=1)
            for key in ("models", "seeds", "snapshots"):
                for entry in _entries(data, key, path):
                    name = entry.get("name")
                    if not isinstance(name, str):
                        raise UserError(f"a `{key}` entry has no name", path=path, line=line_of(entry))
                    if name in found[key]:
                        previous = found[key][name][1]
                        raise UserError(
                            f"{key[:-1]} {name!r} is described twice",
                            path=path,
                            line=line_of(entry),
                            hint=f"also in {scope.relpath(previous)}; keep one entry",
                        )
                    found[key][name] = (entry, path)
            for entry in _entries(data, "sources", path):
                name = entry.get("name")
                if not isinstance(name, str):
                    raise UserError("a `sources` entry has no name", path=path, line=line_of(entry))
                found["sources"][name] = (entry, path)
            for entry in _entries(data, "unit_tests", path):
                key = (str(entry.get("model")), str(entry.get("name")))
                self._add_once(found["unit_tests"], key, entry, path, f"unit test {key[1]!r} of {key[0]}")
            for entry in _entries(data, "exposures", path):
                name = str(entry.get("name"))
                self._add_once(found["exposures"], name, entry, path, f"exposure {name!r}")
        return found

    def _add_once(
        self, found: dict[Any, Any], key: Any, entry: dict[str, Any], path: Path, what: str
    ) -> None:
        if key in found:
            raise UserError(
                f"{what} is defined twice",
                path=path,
                line=line_of(entry),
                hint=f"also in {self.project.relpath(found[key][1])}; rename one",
            )
        found[key] = (entry, path)

    def _warn_unused_properties(self, properties: dict[str, Any], seen: dict[str, Path]) -> None:
        for key in ("models", "seeds", "snapshots"):
            for name, (entry, path) in properties[key].items():
                if name not in seen:
                    self.warnings.append(
                        f"{self.project.relpath(path)}:{line_of(entry)}: properties for {key[:-1]} "
                        f"{name!r}, which does not exist"
                    )

    def _build_sources(self, properties: dict[str, Any], scope: _Scope) -> dict[str, Source]:
        sources: dict[str, Source] = {}
        for source_name, (entry, path) in properties["sources"].items():
            # Rendered as dbt renders them: `schema: "{{ var('stripe_schema', 'stripe') }}"`.
            schema = self._source_field(entry, "schema", scope, path) or source_name
            database = self._source_field(entry, "database", scope, path)
            for table in entry.get("tables") or []:
                if not isinstance(table, dict) or not isinstance(table.get("name"), str):
                    raise UserError(
                        f"source {source_name!r} has a table without a name", path=path, line=line_of(table)
                    )
                name = table["name"]
                uid = f"source.{scope.name}.{source_name}.{name}"
                sources[uid] = Source(
                    unique_id=uid,
                    source_name=source_name,
                    name=name,
                    relation=Relation(
                        self._source_field(table, "database", scope, path) or database,
                        str(self._source_field(table, "schema", scope, path) or schema),
                        str(self._source_field(table, "identifier", scope, path) or name),
                    ),
                    path=scope.relpath(path),
                    line=line_of(table),
                    description=self._description(table, path, scope),
                    columns=self._columns(table, path, scope),
                    loaded_at_field=table.get("loaded_at_field") or entry.get("loaded_at_field"),
                    freshness=table.get("freshness", entry.get("freshness")),
                    event_time=((table.get("config") or {}).get("event_time"))
                    or (entry.get("config") or {}).get("event_time"),
                    meta={**(entry.get("meta") or {}), **(table.get("meta") or {})},
                    external_location=_external_location(entry, table, str(schema), path),
                    tags=list(dict.fromkeys([*(entry.get("tags") or []), *(table.get("tags") or [])])),
                    fqn=[scope.name, source_name, name],
                    package_name=None if scope.package is None else scope.name,
                )
        return sources

    def _source_field(self, entry: dict[str, Any], key: str, scope: _Scope, path: Path) -> Any:
        """A source's or table's `database`, `schema` or `identifier`, Jinja rendered with the
        vars of the project that declares it (empty: None)."""
        value = entry.get(key)
        if not isinstance(value, str) or ("{{" not in value and "{%" not in value):
            return value
        context = {**self._context(execute=False), "var": make_var(scope.vars, "the settings file")}
        try:
            rendered = self.env.from_string(value).render(context).strip()
        except UserError as exc:  # an undefined var, an env_var() without default
            exc.location.path, exc.location.line = path, line_of(entry, key)
            raise
        except jinja2.TemplateError as exc:
            raise UserError(
                f"source {key}: {exc}", path=path, line=line_of(entry, key), hint="check the Jinja in it"
            ) from exc
        return rendered or None

    # ----------------------------------------------------------------- models and seeds

    def _parse_file(self, path: Path, scope: _Scope) -> _ParsedFile:
        """A model file's text and template, from the parse cache where unchanged; a new one's SQL
        goes to the early parse (the root project's: the placeholders render with its vars)."""
        raw = self._read(path)
        cached = self.cache.program(path, raw, self.macros.digest + scope.cache_salt) if self.cache else None
        if cached is not None:
            return _ParsedFile(raw, *cached)
        program = self._program(raw, path, scope)
        if scope.package is None:
            self._parse_early(f"model.{self.project.name}.{path.stem}", program)
        return _ParsedFile(raw, program, None)

    def _program(self, raw: str, path: Path, scope: _Scope) -> Program:
        """The file's template. One whose static calls read a var holding Jinja is left to Jinja,
        and rendered at load time: what that var refs or sources is known only once rendered."""
        program = parse_program(self.env, raw, path)
        if (
            scope.template_vars
            and program.segments is not None
            and _reads_vars(program.segments, scope.template_vars)
        ):
            program = as_jinja_program(self.env, program)
        return program

    def _model_node(
        self,
        path: Path,
        properties: dict[str, Any],
        resource_type: str = "model",
        block: tuple[str, str, int] | None = None,
        parsed: _ParsedFile | None = None,
        scope: _Scope | None = None,
    ) -> Node:
        """A node from a SQL file: a model, a singular test, or one `{% snapshot %}` block (`block`)."""
        project = self.project
        scope = scope or self.root_scope
        name, raw, line = block if block else (path.stem, parsed.raw if parsed else self._read(path), None)
        rel = scope.relpath(path)
        base_paths = {
            "model": scope.model_paths,
            "test": scope.test_paths,
            "snapshot": project.snapshot_paths,
        }
        folders = _folders_within(path, base_paths[resource_type])
        fqn = [scope.name, *folders, name]
        # A file holds several snapshot blocks; the cache keeps one program per file.
        cache = self.cache if block is None else None
        macros_digest = self.macros.digest + scope.cache_salt
        if parsed is not None:
            program, loaded = parsed.program, parsed.loaded
        else:
            hit = cache.program(path, raw, macros_digest) if cache else None
            program, loaded = hit if hit else (self._program(raw, path, scope), None)
        # dbt matches settings config by fqn: folders, then the model's own name.
        folder_config = scope.config(resource_type, [*folders, name])
        entry, patch_path = (
            properties[f"{resource_type}s"].get(name, ({}, None)) if resource_type != "test" else ({}, None)
        )
        config = merge_config(folder_config, dict(entry.get("config") or {}))
        refs, sources = list(program.refs), list(program.sources)
        file_config = dict(program.static_config)
        if program.needs_load_render:
            if loaded is None:
                loaded = self._load_render(program, name, config, scope)
            loaded_refs, loaded_sources, loaded_config, env_reads = loaded
            self.env_reads.update(env_reads)  # also when the render came from the parse cache
            refs = list(dict.fromkeys([*refs, *loaded_refs]))
            sources = list(dict.fromkeys([*sources, *loaded_sources]))
            file_config.update(loaded_config)
        if cache:
            # A load render that read a secret env var is not cached: the pickle would hold the value
            # in clear, and a cache hit would skip env_var(), leaving the value unknown to the mask.
            reads_secret = loaded is not None and any(
                marker in name.upper() for name in loaded[3] for marker in SECRET_ENV_MARKERS
            )
            cache.remember(
                path,
                raw,
                macros_digest,
                program,
                loaded if program.needs_load_render and not reads_secret else None,
            )
        config = merge_config(config, file_config)
        if resource_type == "model":
            _check_config(config, path)
            _check_contract(name, config, entry, patch_path, path, project.dialect)
        elif resource_type == "snapshot":
            _check_retries(config, path)
            problem = snapshots.check_snapshot_config(config, dialect=project.dialect)
            if problem:
                raise UserError(
                    f"snapshot {name}: {problem}",
                    path=path,
                    line=line,
                    hint="set it in the snapshot's config(...), its YAML entry, or `snapshots:` in the settings file",
                )
        else:
            problem = data_tests.check_config(config)
            if problem:
                raise UserError(f"test {name}: {problem}", path=path)
        return Node(
            unique_id=f"{resource_type}.{scope.name}.{name}",
            resource_type=resource_type,
            name=name,
            package_name=scope.name,
            path=path,
            original_file_path=rel,
            fqn=fqn,
            raw_code=raw,
            checksum=hashlib.sha256(raw.encode()).hexdigest(),
            config=config,
            refs=refs,
            sources=sources,
            description=self._description(entry, patch_path, scope),
            columns=self._columns(entry, patch_path, scope),
            patch_path=scope.relpath(patch_path) if patch_path else None,
            program=program,
            line=line,
        )

    def _parse_early(self, unique_id: str, program: Program) -> None:
        """Hand a new model's SQL to the early parse, relations named by placeholders (a name
        never changes whether a query parses); is_incremental() is false in it."""
        if program.segments is None or program.needs_load_render or _reads_env(program.segments):
            return
        try:
            if self._placeholders is None:
                self._placeholders = _placeholder_context(self.project)
            sql = render(program, self.env, self._placeholders)  # type: ignore[arg-type]
        except UserError:
            return  # e.g. an undefined var: compiling reports it
        self.early_parse.add(unique_id, sql)

    def _snapshot_nodes(self, properties: dict[str, Any]) -> list[Node]:
        """Snapshots from `{% snapshot %}` blocks in snapshots/, and from YAML entries with `relation:`."""
        found = []
        for path in iter_files(self.project.snapshot_paths, (".sql",)):
            blocks = snapshot_blocks(self._read(path))
            if not blocks:
                raise UserError(
                    "no snapshot in this file",
                    path=path,
                    hint="wrap the query in {% snapshot name %} ... {% endsnapshot %}",
                )
            found += [self._model_node(path, properties, "snapshot", block) for block in blocks]
        defined = {n.name for n in found}
        for name, (entry, path) in properties["snapshots"].items():
            relation = entry.get("relation")
            if name in defined or relation is None:
                continue
            if not isinstance(relation, str) or data_tests.kwarg_template(relation) is None:
                raise UserError(
                    f"snapshot {name}: `relation` must be ref('model') or source('src', 'table')",
                    path=path,
                    line=line_of(entry, "relation"),
                )
            # dbt 1.9's YAML snapshots: every column of the relation, as if written in a block.
            body = "\n" * ((line_of(entry) or 1) - 1) + f"select * from {{{{ {relation} }}}}"
            found.append(self._model_node(path, properties, "snapshot", (name, body, line_of(entry) or 1)))
        return found

    # ----------------------------------------------------------------- generic tests

    def _generic_tests(self, properties: dict[str, Any], nodes: dict[str, Node], scope: _Scope) -> list[Node]:
        """Nodes for the tests declared in YAML on models, seeds and source tables."""
        by_name = {n.name: n for n in nodes.values()}
        tests: list[Node] = []
        for key in ("models", "seeds", "snapshots"):
            for name, (entry, path) in properties[key].items():
                target = by_name.get(name)
                if target is None:
                    continue  # missing (warned above) or disabled: its tests go with it, as in dbt
                parent = (RefCall(name, line_of(entry)), None)
                tests += self._tests_of(entry, path, name, parent, target.unique_id, target.tags, scope)
        for source_name, (entry, path) in properties["sources"].items():
            for table in entry.get("tables") or []:
                table_name = str(table["name"])
                uid = f"source.{scope.name}.{source_name}.{table_name}"
                parent = (None, SourceCall(source_name, table_name, line_of(table)))
                tags = [*(entry.get("tags") or []), *(table.get("tags") or [])]
                tests += self._tests_of(
                    table, path, f"source_{source_name}_{table_name}", parent, uid, tags, scope
                )
        return tests

    def _tests_of(
        self,
        entry: dict[str, Any],
        path: Path,
        target_name: str,
        parent: tuple[RefCall | None, SourceCall | None],
        attached: str,
        tags: list[str],
        scope: _Scope,
    ) -> list[Node]:
        found: list[tuple[Any, str | None, int | None, bool, list[str]]] = []
        for column in entry.get("columns") or []:
            if not isinstance(column, dict) or not column.get("name"):
                continue
            key = "data_tests" if "data_tests" in column else "tests"
            for raw in _test_list(column, key, path):
                found.append(
                    (
                        raw,
                        str(column["name"]),
                        line_of(raw) or line_of(column, key),
                        bool(column.get("quote")),
                        list(column.get("tags") or []),
                    )
                )
        key = "data_tests" if "data_tests" in entry else "tests"
        for raw in _test_list(entry, key, path):
            found.append((raw, None, line_of(raw) or line_of(entry, key), False, []))
        nodes = []
        for raw, column_name, line, quote, column_tags in found:
            spec = data_tests.parse_entry(raw, column_name=column_name, path=path, line=line, quote=quote)
            nodes.append(
                self._test_node(spec, path, target_name, parent, attached, [*tags, *column_tags], scope)
            )
        return nodes

    def _test_node(
        self,
        spec: data_tests.TestSpec,
        path: Path,
        target_name: str,
        parent: tuple[RefCall | None, SourceCall | None],
        attached: str,
        tags: list[str],
        scope: _Scope,
    ) -> Node:
        project = self.project
        full_name = f"{spec.namespace}.{spec.test_name}" if spec.namespace else spec.test_name
        builtin = spec.namespace is None and spec.test_name in data_tests.BUILTIN_TESTS
        if not builtin and _test_macro(self.macros, spec.test_name, spec.namespace, scope.name) is None:
            raise UserError(
                f"unknown test {full_name!r}",
                path=path,
                line=spec.line,
                hint="built-in tests are " + ", ".join(data_tests.BUILTIN_TESTS) + "; define others with "
                f"`{{% test {spec.test_name}(model, column_name) %}}` in macros/ or "
                f"{project.relpath(project.test_paths[0]) if project.test_paths else 'data_tests'}/generic/"
                + (
                    f" (is package {spec.namespace!r} installed? `sqlflow deps` installs packages.yml)"
                    if spec.namespace and spec.namespace not in self.macros.packages
                    else ""
                ),
            )
        name = data_tests.node_name(spec, target_name)
        folders = self._yaml_folders(path, scope)
        config = scope.config("test", [*folders, name])
        config = merge_config(merge_config(config, {"tags": tags}), spec.config)
        problem = data_tests.check_config(config)
        if problem:
            raise UserError(f"test {name!r}: {problem}", path=path, line=spec.line)
        ref, source = parent
        refs, sources = ([ref] if ref else []), ([source] if source else [])
        for template in data_tests.kwarg_templates(spec.kwargs):
            program = parse_program(self.env, template, path)
            refs += [RefCall(r.name, spec.line, r.package) for r in program.refs]
            sources += [SourceCall(s.source_name, s.table_name, spec.line) for s in program.sources]
        identity = json.dumps([full_name, target_name, spec.kwargs, spec.config], sort_keys=True, default=str)
        return Node(
            unique_id=f"test.{scope.name}.{name}",
            resource_type="test",
            name=name,
            package_name=scope.name,
            path=path,
            original_file_path=scope.relpath(path),
            fqn=[scope.name, *folders, name],
            raw_code=f"{{{{ {spec.namespace + '.' if spec.namespace else ''}test_{spec.test_name}(**_dbt_generic_test_kwargs) }}}}",
            checksum=hashlib.sha256(identity.encode()).hexdigest(),
            config=config,
            refs=refs,
            sources=sources,
            description=spec.description,
            line=spec.line,
            test_metadata={"name": spec.test_name, "namespace": spec.namespace, "kwargs": spec.kwargs},
            column_name=spec.kwargs.get("column_name"),
            attached_node=attached,
        )

    def _unit_test_node(
        self, entry: dict[str, Any], path: Path, nodes: dict[str, Node], seen: dict[str, Path]
    ) -> Node | None:
        project = self.project
        metadata = unit_tests.parse_unit_test(entry, path, project.test_paths)
        name, model_name, line = str(entry["name"]), metadata["model"], line_of(entry)
        model = next((n for n in nodes.values() if n.name == model_name and n.resource_type == "model"), None)
        if model is None:
            other = next((n for n in nodes.values() if n.name == model_name), None)
            if other is not None:
                raise UserError(
                    f"unit test {name!r} tests {model_name!r}, which is a {other.resource_type}; unit tests test models",
                    path=path,
                    line=line,
                )
            if model_name in seen:
                return None  # the model is disabled, and its unit tests with it
            raise UserError(
                f"unit test {name!r} tests model {model_name!r}, which does not exist", path=path, line=line
            )
        given = {i["name"] for i in metadata["inputs"]}
        needed = {r.name for r in model.refs} | {f"{s.source_name}.{s.table_name}" for s in model.sources}
        if needed - given:
            missing = sorted(needed - given)
            raise UserError(
                f"unit test {name!r} gives no rows for {', '.join(missing)}, which {model_name} reads",
                path=path,
                line=line_of(entry, "given") or line,
                hint="add a `given:` input for each: "
                + ", ".join(
                    f"ref('{m}')" if "." not in m else "source('{}', '{}')".format(*m.split(".", 1))
                    for m in missing
                ),
            )
        unknown = given - needed - {"this"}
        if unknown:
            raise UserError(
                f"unit test {name!r} gives rows for {', '.join(sorted(unknown))}, which {model_name} does not read",
                path=path,
                line=line_of(entry, "given") or line,
            )
        config = merge_config(
            self.root_scope.config("unit_test", [model_name, name]), dict(entry.get("config") or {})
        )
        folders = self._yaml_folders(path, self.root_scope)
        identity = json.dumps(metadata, sort_keys=True, default=repr)
        return Node(
            unique_id=f"unit_test.{project.name}.{model_name}.{name}",
            resource_type="unit_test",
            name=name,
            package_name=project.name,
            path=path,
            original_file_path=project.relpath(path),
            fqn=[project.name, *folders, model_name, name],
            raw_code="",
            checksum=hashlib.sha256(identity.encode()).hexdigest(),
            config=config,
            refs=[RefCall(model_name, line)],
            description=self._description(entry, path),
            line=line,
            test_metadata=metadata,
            attached_node=model.unique_id,
        )

    def _yaml_folders(self, path: Path, scope: _Scope) -> list[str]:
        """The folders of a properties file inside its resource folder (the fqn of what it declares).

        Cached: every test declared in a file needs it, and pathlib is slow at thousands of calls."""
        if path not in self._folders:
            roots = scope.model_paths + scope.seed_paths + self.project.snapshot_paths
            base = next((p for p in roots if path.is_relative_to(p)), path.parent)
            self._folders[path] = list(path.relative_to(base).parent.parts)
        return self._folders[path]

    def _seed_node(self, path: Path, properties: dict[str, Any], scope: _Scope) -> Node:
        base = next(p for p in scope.seed_paths if path.is_relative_to(p))
        folders = list(path.relative_to(base).parent.parts)
        entry, patch_path = properties["seeds"].get(path.stem, ({}, None))
        config = merge_config(scope.config("seed", [*folders, path.stem]), dict(entry.get("config") or {}))
        _check_retries(config, path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return Node(
            unique_id=f"seed.{scope.name}.{path.stem}",
            resource_type="seed",
            name=path.stem,
            package_name=scope.name,
            path=path,
            original_file_path=scope.relpath(path),
            fqn=[scope.name, *folders, path.stem],
            raw_code="",
            checksum=digest,
            config=config,
            description=self._description(entry, patch_path, scope),
            columns=self._columns(entry, patch_path, scope),
            patch_path=scope.relpath(patch_path) if patch_path else None,
        )

    def _load_render(self, program: Program, name: str, config: dict[str, Any], scope: _Scope):
        """Render once with recording functions to find what the static pass could not."""
        refs: list[RefCall] = []
        sources: list[SourceCall] = []
        recorded: dict[str, Any] = {}
        env_reads: dict[str, str | None] = {}

        def ref(*args: str, **_: Any) -> str:
            if not args:
                raise UserError("ref() needs the name of a model", hint="e.g. {{ ref('orders') }}")
            refs.append(RefCall(name=str(args[-1]), package=args[0] if len(args) > 1 else None))
            return _placeholder(args[-1])

        def source(source_name: str, table_name: str) -> str:
            sources.append(SourceCall(source_name, table_name))
            return relation_name(None, source_name, table_name, dialect=None)

        def config_fn(*args: Any, **kwargs: Any) -> str:
            # Each call merged as dbt merges them: hooks and tags of every call kept.
            merged = merge_config(
                recorded, {**(args[0] if args and isinstance(args[0], dict) else {}), **kwargs}
            )
            recorded.clear()
            recorded.update(merged)
            return ""

        values = self._context(execute=False)
        if scope.package is not None:
            values["var"] = make_var(scope.vars, scope.package.settings_path.name)
        read_env = values["env_var"]

        def env_var(name: str, default: Any = None) -> Any:
            # What a load render read from the environment decides whether its cache entry holds.
            env_reads[name] = os.environ.get(name)
            return read_env(name, default)

        values.update(
            env_var=env_var,
            ref=ref,
            source=source,
            config=ConfigAccessor(config_fn, {**config, **recorded}),
            this=_placeholder(str(config.get("alias") or name)),
            is_incremental=lambda: False,
            model={
                "name": name,
                "unique_id": f"model.{scope.name}.{name}",
                "config": config,
                "resource_type": "model",
                "package_name": scope.name,
                # As configured so far; a generate_alias_name/generate_schema_name macro runs later.
                "alias": str(config.get("alias") or name),
                "schema": self.project.target.schema,
                # Unknown while loading (config() may not have run yet); only refs matter here.
                "batch": {
                    "id": "",
                    "event_time_start": self.run_started_at,
                    "event_time_end": self.run_started_at,
                },
            },
            schema=self.project.target.schema,
        )
        package = None if scope.package is None else scope.name
        render(program, self.env, RenderContext(values, self.macros, package=package))
        return refs, sources, recorded, env_reads

    def _context(self, *, execute: bool) -> dict[str, Any]:
        project = self.project
        read_env = make_env_var(project.secrets)

        def env_var(name: str, default: Any = None) -> Any:
            self.env_reads[name] = os.environ.get(name)  # the whole-project cache checks these
            return read_env(name, default)

        return {
            **base_context(
                project_name=project.name,
                target=target_context(project),
                var=make_var(project.vars, project.settings_path.name),
                env_var=env_var,
                run_started_at=self.run_started_at,
                invocation_id=self.invocation_id,
                log=self.warnings.append,
                execute=execute,
            ),
            # No warehouse while loading: run_query() and the adapter's questions answer nothing.
            **introspection.context(introspection.Warehouse(None, live=False, execute=False)),
        }

    # ----------------------------------------------------------------- naming

    def _relation(self, node: Node, manifest: Manifest) -> Relation:
        project = self.project
        if node.resource_type == "snapshot" and node.config.get("target_schema"):
            # dbt's older snapshot config names the schema exactly, without generate_schema_name.
            database = node.config.get("target_database") or node.config.get("database")
            return Relation(
                database, str(node.config["target_schema"]), str(node.config.get("alias") or node.name)
            )
        custom_schema = node.config.get("schema")
        if node.resource_type == "test":
            custom_schema = custom_schema or data_tests.AUDIT_SCHEMA  # where store_failures writes
        alias = node.config.get("alias")
        if "generate_schema_name" in self.macros.owner or "generate_alias_name" in self.macros.owner:
            context = RenderContext(self._context(execute=True), self.macros)
            node_info = {
                "name": node.name,
                "config": node.config,
                "resource_type": node.resource_type,
                "fqn": node.fqn,
                "original_file_path": node.original_file_path,
            }
            schema = (
                _call_macro(context, "generate_schema_name", custom_schema, node_info, node)
                if "generate_schema_name" in self.macros.owner
                else default_schema_name(project, custom_schema)
            )
            identifier = (
                _call_macro(context, "generate_alias_name", alias, node_info, node)
                if "generate_alias_name" in self.macros.owner
                else alias or node.name
            )
        else:
            schema = default_schema_name(project, custom_schema)
            identifier = alias or node.name
        return Relation(node.config.get("database"), str(schema).strip(), str(identifier).strip())


def _check_relations_unique(nodes: Any, project: Project) -> None:
    """Two nodes may not build one relation (dbt's rule); checked where packages add nodes
    (within the project, names are unique and aliases rarely collide)."""
    built: dict[Relation, Node] = {}
    for node in nodes:
        if node.resource_type in ("test", "unit_test") or node.is_ephemeral or node.relation is None:
            continue
        other = built.setdefault(node.relation, node)
        if other is not node:
            relation = ".".join(
                p for p in (node.relation.database, node.relation.schema, node.relation.identifier) if p
            )
            raise UserError(
                f"{other.unique_id} and {node.unique_id} both build {relation}",
                path=node.path,
                hint="give one an alias or a schema of its own (for a package's node: `models: <package>: "
                "+schema: ...` in the project's settings)",
            )


def _test_macro(macros: MacroLibrary, test_name: str, namespace: str | None, package: str) -> Path | None:
    """The file of a generic test's macro: in `namespace` if named, else the root project's,
    then (for a test in a package's YAML) the package's own."""
    found = macros.find(f"test_{test_name}", namespace)
    if found is None and namespace is None and package != macros.root_name:
        found = macros.find(f"test_{test_name}", package)
    return found


def _external_location(source: dict[str, Any], table: dict[str, Any], schema: str, path: Path) -> str | None:
    """dbt-duckdb's `meta: {external_location: ...}` (the table's, else its source's): what the
    table's `source()` renders as, e.g. `'data/{name}.parquet'` or `read_csv('{name}.csv')`, with
    `{schema}`, `{name}` and `{identifier}` filled in; a bare path is quoted."""
    table_meta, source_meta = table.get("meta") or {}, source.get("meta") or {}
    template = table_meta.get("external_location") or source_meta.get("external_location")
    if not template:
        return None
    name = str(table["name"])
    try:
        location = str(template).format(
            schema=schema, name=name, identifier=str(table.get("identifier") or name)
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise UserError(
            f"source table {name!r}: external_location {template!r} cannot be filled in: {exc}",
            path=path,
            line=line_of(table),
            hint="it may use {schema}, {name} and {identifier}; write other braces twice: {{ }}",
        ) from exc
    return location if "(" in location or location.startswith("'") else f"'{location}'"


def _dispatch_orders(project: Project) -> dict[str, list[str]]:
    """The settings' `dispatch:` as namespace -> search order."""
    entries = project.settings.get("dispatch") or []
    orders = {}
    for entry in entries if isinstance(entries, list) else [entries]:
        namespace = entry.get("macro_namespace") if isinstance(entry, dict) else None
        order = entry.get("search_order") if isinstance(entry, dict) else None
        if not isinstance(namespace, str) or not isinstance(order, list) or not order:
            raise UserError(
                "each `dispatch:` entry needs a `macro_namespace` and a non-empty `search_order` list",
                path=project.settings_path,
                line=line_of(entry) or line_of(project.settings, "dispatch"),
                hint="e.g. `dispatch: [{macro_namespace: dbt_utils, search_order: [my_project, dbt_utils]}]`",
            )
        orders[namespace] = [str(name) for name in order]
    return orders


def _placeholder_context(project: Project) -> dict[str, Any]:
    """What a static program reads, relations named by placeholders (see _parse_early and
    placeholder_relation)."""
    dialect = sqlglot.Dialect.get_or_raise(project.dialect)
    start, end = dialect.IDENTIFIER_START, dialect.IDENTIFIER_END

    def quote(name: str) -> str:
        # Pasted, not generated: sqlglot's generator cost more than the rest of loading a model.
        if end in name or "\\" in name:
            return exp.to_identifier(name, quoted=True).sql(dialect)
        return start + name + end

    def placeholder(*parts: str) -> str:
        return ".".join(quote(part) for part in parts)

    return {
        "ref": lambda *args, **_: placeholder(*placeholder_relation("ref", str(args[-1]))) if args else "",
        "source": lambda source_name, table_name: placeholder(
            *placeholder_relation("source", source_name, table_name)
        ),
        "config": lambda *args, **kwargs: "",
        "var": make_var(project.vars, project.settings_path.name),
        "this": placeholder(*placeholder_relation("this")),
        "is_incremental": lambda: False,
    }


def placeholder_relation(kind: str, *names: str) -> tuple[str, ...]:
    """The parts of the placeholder for `ref(name)`, `source(source, table)` or `this` in the
    early parse: a schema of its own per kind, so that no two can be confused."""
    return (f"__sqlflow_{kind}__", *names) if names else (f"__sqlflow_{kind}__", kind)


def _reads_vars(segments: list[Any], names: frozenset[str]) -> bool:
    for segment in segments:
        if isinstance(segment, str) or segment[0] == "this":
            continue
        if segment[0] == "call" and segment[1] == "var" and segment[2] and segment[2][0] in names:
            return True
        if segment[0] == "if_incremental" and (
            _reads_vars(segment[1], names) or _reads_vars(segment[2], names)
        ):
            return True
    return False


def _reads_env(segments: list[Any]) -> bool:
    for segment in segments:
        if isinstance(segment, str) or segment[0] == "this":
            continue
        if segment[0] == "call" and segment[1] == "env_var":
            return True
        if segment[0] == "if_incremental" and (_reads_env(segment[1]) or _reads_env(segment[2])):
            return True
    return False


def default_schema_name(project: Project, custom_schema: str | None) -> str:
    """dbt's default: a custom schema is appended to the target's schema."""
    if not custom_schema:
        return project.target.schema
    return f"{project.target.schema}_{str(custom_schema).strip()}"


def _call_macro(context: RenderContext, name: str, value: Any, node_info: dict[str, Any], node: Node) -> str:
    try:
        return str(context[name](value, node_info)).strip()
    except (jinja2.TemplateError, TypeError) as exc:
        raise CompilationError(
            f"macro {name} failed for {node.name}: {exc}",
            path=node.path,
            hint="check the macro's arguments: (custom_name, node)",
        ) from exc


# --------------------------------------------------------------------------- helpers


MATERIALIZATIONS = ("view", "table", "incremental", "ephemeral")


def _check_config(config: dict[str, Any], path: Path) -> None:
    materialized = config.get("materialized", "view")
    if materialized not in MATERIALIZATIONS:
        raise UserError(
            f"unknown materialization {materialized!r}",
            path=path,
            hint="use one of: " + ", ".join(MATERIALIZATIONS),
        )
    _check_retries(config, path)
    on_schema_change = config.get("on_schema_change")
    if on_schema_change is not None and on_schema_change not in ON_SCHEMA_CHANGE:
        raise UserError(
            f"unknown on_schema_change {on_schema_change!r}",
            path=path,
            hint="use one of: " + ", ".join(ON_SCHEMA_CHANGE),
        )
    if materialized != "incremental":
        return
    strategy = config.get("incremental_strategy")
    if strategy is not None and strategy not in INCREMENTAL_STRATEGIES:
        raise UserError(
            f"unknown incremental_strategy {strategy!r}",
            path=path,
            hint="use one of: " + ", ".join(INCREMENTAL_STRATEGIES),
        )
    if strategy in ("merge", "delete+insert") and not config.get("unique_key"):
        raise UserError(
            f"incremental_strategy {strategy!r} needs a unique_key",
            path=path,
            hint="add unique_key='id' (or a list of columns) to the model's config",
        )
    if strategy == "insert_overwrite" and not partition_columns(config):
        raise UserError(
            "incremental_strategy 'insert_overwrite' needs partition_by",
            path=path,
            hint="add partition_by='day' (a column or a list of columns) to the model's config: "
            "the partitions of the new rows are what gets replaced",
        )
    if strategy == "microbatch":
        MicrobatchConfig.of(config, path)


def _check_retries(config: dict[str, Any], path: Path) -> None:
    """`retries` and `retry_delay` (seconds) are whole numbers, zero or more; `timeout` (seconds)
    is a positive number."""
    timeout = config.get("timeout")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
    ):
        raise UserError(
            f"timeout must be a number of seconds greater than 0, not {timeout!r}",
            path=path,
            hint="e.g. config(timeout=600): cancel the model's query after 10 minutes",
        )
    for key in ("retries", "retry_delay"):
        value = config.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise UserError(
                f"{key} must be a whole number, zero or more, not {value!r}",
                path=path,
                hint="e.g. config(retries=2, retry_delay=5): retry transient warehouse errors twice, "
                "5 seconds apart",
            )


def _check_contract(
    name: str, config: dict[str, Any], entry: dict[str, Any], yaml_path: Path | None, path: Path, dialect: str
) -> None:
    """An enforced contract needs every column declared with a data_type sqlglot can read."""
    contract = config.get("contract")
    if contract is None:
        return
    if not isinstance(contract, dict) or not isinstance(contract.get("enforced", False), bool):
        in_yaml = yaml_path is not None and contract == (entry.get("config") or {}).get("contract")
        raise UserError(
            f"model {name}: `contract` must be a mapping like {{enforced: true}}, not {contract!r}",
            path=yaml_path if in_yaml else path,
            line=line_of(entry.get("config"), "contract") if in_yaml else None,
            hint="write contract={'enforced': true} in config(), or `contract: {enforced: true}` in YAML",
        )
    if contract.get("enforced") is not True:
        return
    if config.get("materialized", "view") == "ephemeral":
        raise UserError(
            f"model {name} is ephemeral and has an enforced contract",
            path=path,
            hint="an ephemeral model is never built, so there is nothing to check: materialize it as a "
            "view, table or incremental model, or remove the contract",
        )
    columns = _columns(entry, yaml_path, lambda column, _: str(column.get("description") or ""))
    if not columns:
        raise UserError(
            f"model {name} has an enforced contract but declares no columns",
            path=yaml_path or path,
            line=line_of(entry) if yaml_path else None,
            hint="list every column the model returns under `columns:` in its properties YAML, each with "
            "a `data_type`",
        )
    for column in columns.values():
        if column.data_type is None or not str(column.data_type).strip():
            raise UserError(
                f"column {column.name!r} of model {name} has no data_type; its contract is enforced",
                path=yaml_path,
                line=column.line,
                hint="add `data_type: <type>` to the column (e.g. `data_type: integer`)",
            )
        try:
            exp.DataType.build(str(column.data_type), dialect=dialect)
        except (sqlglot.errors.SqlglotError, ValueError) as exc:
            raise UserError(
                f"column {column.name!r} of model {name}: data_type {column.data_type!r} is not a "
                f"{dialect} type",
                path=yaml_path,
                line=column.line,
                hint="use a type of the project's dialect, e.g. integer, varchar, decimal(18, 2), timestamp",
            ) from exc


def _folder_config(tree: Any, project_name: str, folders: list[str]) -> dict[str, Any]:
    """Config from the settings file's nested `models:` / `seeds:` block along a node's folders and name."""
    if not isinstance(tree, dict):
        return {}
    config = _own_config(tree)
    level = tree.get(project_name)
    if not isinstance(level, dict):
        return config
    config = merge_config(config, _own_config(level))
    for folder in folders:
        level = level.get(folder)
        if not isinstance(level, dict):
            break
        config = merge_config(config, _own_config(level))
    return config


def _own_config(level: dict[str, Any]) -> dict[str, Any]:
    # `+key` is always config; a plain key is config unless it holds a nested folder block.
    own = {}
    for key, value in level.items():
        key = str(key)  # YAML reads `on:`, `off:`, `yes:` as booleans
        if key.startswith("+"):
            own[key[1:]] = value
        elif not isinstance(value, dict) or key in ("meta", "docs", "persist_docs", "contract", "grants"):
            own[key] = value
    return own


def _entries(data: dict[str, Any], key: str, path: Path) -> list[dict[str, Any]]:
    entries = data.get(key) or []
    if not isinstance(entries, list):
        raise UserError(f"`{key}` must be a list", path=path, line=line_of(data, key))
    for entry in entries:
        if not isinstance(entry, dict):
            raise UserError(f"each `{key}` entry must be a mapping", path=path, line=line_of(data, key))
    return entries


def _test_list(entry: dict[str, Any], key: str, path: Path) -> list[Any]:
    tests = entry.get(key) or []
    if not isinstance(tests, list):
        raise UserError(f"`{key}` must be a list of tests", path=path, line=line_of(entry, key))
    return tests


def _columns(
    entry: dict[str, Any], path: Path | str | None, describe: Callable[[dict[str, Any], Any], str]
) -> dict[str, Column]:
    """A YAML entry's `columns`; `describe(column, path)` gives a column's description."""
    columns = {}
    listed = entry.get("columns") or []
    if not isinstance(listed, list):
        raise UserError(
            "`columns` must be a list of columns",
            path=path,
            line=line_of(entry, "columns"),
            hint="- name: id",
        )
    for column in listed:
        if not isinstance(column, dict):
            raise UserError(
                "each column must be a mapping with a `name`", path=path, line=line_of(entry, "columns")
            )
        for key, kind in (("meta", dict), ("data_tests", list), ("tests", list)):
            if column.get(key) is not None and not isinstance(column[key], kind):
                raise UserError(
                    f"column `{key}` must be a {'mapping' if kind is dict else 'list'}",
                    path=path,
                    line=line_of(column, key),
                )
        if column.get("name"):
            name = str(column["name"])
            columns[name] = Column(
                name=name,
                description=describe(column, path),
                data_type=column.get("data_type"),
                meta=dict(column.get("meta") or {}),
                tests=list(column.get("data_tests") or column.get("tests") or []),
                line=line_of(column),
            )
    return columns


def _folders_within(path: Path, bases: list[Path]) -> list[str]:
    """The folders between the first of `bases` that holds `path` and the file (none if no base
    does). String arithmetic: pathlib's is_relative_to/relative_to cost ~20 µs for every file."""
    text = str(path)
    for base in bases:
        prefix = folder_prefix(base)
        if text.startswith(prefix):
            return text[len(prefix) :].split(os.sep)[:-1]
    return []


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"file is not UTF-8 text: {exc}", path=path, hint="save it as UTF-8") from exc


def _placeholder(name: str) -> RelationName:
    return relation_name(None, "__sqlflow_placeholder__", name, dialect=None)


class ConfigAccessor:
    """`config(...)` records; `config.get(key)` reads the config as resolved so far (dbt's API)."""

    def __init__(self, record: Any, current: dict[str, Any]) -> None:
        self._record = record
        self._current = current

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        self._current.update(kwargs)
        return self._record(*args, **kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self._current.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self._current:
            raise CompilationError(f"config {key!r} is required")
        return self._current[key]


def target_context(project: Project) -> dict[str, Any]:
    target = project.target
    return {
        **target.public_settings(),
        "name": target.name,
        "target_name": target.name,
        "type": target.type,
        "schema": target.schema,
        "database": target.database or _default_database(target),
        "threads": target.threads,
        "profile_name": target.profile_name,
    }


def _default_database(target: Any) -> str | None:
    """What dbt-duckdb calls a DuckDB target's database when none is set: the file's stem, the
    catalog name DuckDB gives it (`memory` in memory). Templates such as dbt_utils' read it."""
    if target.type != "duckdb":
        return None
    path = str(target.settings.get("path") or ":memory:")
    return "memory" if path == ":memory:" else Path(path).stem


# --------------------------------------------------------------------------- parse cache


@dataclass
class _ParsedFile:
    raw: str
    program: Program
    loaded: Any  # the load render's result from the parse cache (refs, sources, config, env reads)
