"""Compiling nodes: render with the run-time context, validate with sqlglot, inline ephemerals.

Compilation happens for every selected node before anything is written to the warehouse, so a
Jinja or SQL error stops the run with file and line while the warehouse is untouched.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import pickle
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__, artifacts, data_tests, introspection, parse_pool, sql, unit_tests
from .background import Background
from .errors import CompilationError, OperationFailed, UserError
from .introspection import NeedsWarehouse
from .jinja import MACRO_ERRORS, RenderContext, base_context, in_macro, macro_error, parse_program, render
from .lazy import exp
from .manifest import ConfigAccessor, Manifest, make_var, placeholder_relation, target_context
from .microbatch import (
    Batch,
    MicrobatchConfig,
    batch_context,
    event_time_expression,
    filter_upstream,
    window_condition,
)
from .nodes import Node, Relation, RelationName, Source
from .project import make_env_var
from .transpile import Transpiler

if TYPE_CHECKING:
    from .adapters.base import Adapter

CTE_PREFIX = "__sqlflow_cte__"


@dataclass
class CompiledNode:
    node: Node
    sql: str  # the SELECT to run, in the target's dialect
    is_incremental: bool = False
    ephemerals: list[str] = field(default_factory=list)  # unique ids inlined, in order
    dialect: str | None = None  # the project's, which contract data types are written in
    pre_hooks: list[str] = field(default_factory=list)  # rendered `pre-hook` statements, in order
    post_hooks: list[str] = field(default_factory=list)
    # A generic test's config() calls inside its macro: defaults under the node's config (dbt's
    # order), e.g. dbt_utils' `fail_calc`.
    config_defaults: dict[str, Any] = field(default_factory=dict)
    # Its render reads the warehouse (introspection.py): `sql` is known only once it is built.
    deferred: bool = False

    @property
    def config(self) -> dict[str, Any]:
        return {**self.config_defaults, **self.node.config} if self.config_defaults else self.node.config


# Fewer compiled files than this are written in line: forking a writer costs more than they do.
BACKGROUND_WRITES = 200


class Compiler:
    """Compiles nodes for one target, given which relations already exist there."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        target_dialect: str,
        existing: dict[tuple[str, str], str],
        key=lambda schema, name: (schema, name),
        full_refresh: bool = False,
        transpiler: Transpiler | None = None,
        unbuildable: Callable[[Node], tuple[str, str] | None] | None = None,
        background: Background | None = None,
        warehouse: Callable[[], Adapter] | None = None,
        defer_introspection: bool = False,
    ) -> None:
        """`warehouse` opens the adapter that run_query() and the adapter's introspection read
        (None: there is no warehouse yet). With `defer_introspection` (a run), a node whose render
        reads it is compiled when it is built (compile_deferred); otherwise it reads it now."""
        self.manifest = manifest
        self._warehouse = warehouse
        self._defer_introspection = defer_introspection
        # Per thread: `active` while compile_deferred() renders, `digesting` while sql_digest() does.
        self._building = threading.local()
        self._deferred_lock = threading.Lock()
        # What the warehouse cannot build as configured (Adapter.unbuildable): a compile error.
        self.unbuildable = unbuildable
        self.project = manifest.project
        self.dialect = manifest.project.dialect
        self.target_dialect = target_dialect
        # How models of the project's dialect become the warehouse's (and what it cannot take).
        self.transpiler = transpiler or Transpiler(self.dialect, target_dialect)
        self.existing = existing
        self.key = key
        self.full_refresh = full_refresh
        self.resolver = manifest.resolver()
        self.by_name = self.resolver.nodes  # the root project's
        self._sources = self.resolver.sources
        self._compiled: dict[str, CompiledNode] = {}
        self._normalized: dict[str, str] = {}
        self._queries: dict[str, exp.Query] = {}
        self._rendered: dict[str, str] = {}  # renders validate_ahead() did, for compile() to use
        self._validated: dict[str, list[str]] = {}  # and the bare tables of those it remembered
        self._base = base_context(
            project_name=self.project.name,
            target=target_context(self.project),
            var=make_var(self.project.vars, self.project.settings_path.name),
            env_var=make_env_var(self.project.secrets),
            run_started_at=manifest.run_started_at,
            invocation_id=manifest.invocation_id,
            log=manifest.log,
            execute=True,
        )
        self._base["graph"] = artifacts.GraphContext(manifest)
        # Each package's var(): its own vars' defaults under the project's (manifest.package_vars).
        self._vars = {
            package: make_var(values, "dbt_project.yml") for package, values in manifest.package_vars.items()
        }
        self._checked = _CheckedSQL(self.project.target_path)
        self.background = background
        self._unwritten: list[tuple[str, str]] = []  # (path, content) to write at finish()
        self._handed: dict[str, str] = {}  # unique id -> text written, or being written, by this compiler
        self._listed: dict[str, set[str]] = {}  # folder -> names of the files it held when first asked
        self._as_written: dict[Any, str] = {}  # a placeholder's parts or a relation -> as sqlglot writes it

    # ------------------------------------------------------------------ public

    def compile(self, uid: str) -> CompiledNode:
        """The node compiled, or deferred (see CompiledNode.deferred) when it reads the warehouse
        and this compiler defers those."""
        if uid in self._compiled:
            return self._compiled[uid]
        try:
            compiled = self._compile(uid)
        except NeedsWarehouse:
            compiled = CompiledNode(self.manifest.nodes[uid], "", deferred=True)
        self._compiled[uid] = compiled
        return compiled

    def compile_deferred(self, uid: str) -> CompiledNode:
        """Compile a deferred node now that its parents are built: its render reads the warehouse.
        Called from the runner's threads; its compiled file is written by the next finish()."""
        with self._deferred_lock:  # one at a time: they are few, and share the compiler's caches
            # Deferred ephemerals it inlines are compiled again too, now reading the warehouse.
            for other in [u for u, c in self._compiled.items() if c.deferred]:
                del self._compiled[other]
            self._building.active = True
            try:
                compiled = self.compile(uid)
            finally:
                self._building.active = False
            self.write_compiled(compiled.node, compiled.sql)
        return compiled

    def run_macro(self, name: str, kwargs: dict[str, Any], log: Callable[[str], None]) -> None:
        """`run-operation`: call macro `name` (`package.macro` for a package's) with `kwargs`; what
        it runs with run_query or statement runs on the warehouse as it goes, and `log()` goes to `log`."""
        library = self.manifest.macro_library
        package, _, macro_name = name.rpartition(".")
        namespace = package if package and package != library.root_name else None
        if namespace is not None and namespace not in library.packages:
            raise UserError(
                f"there is no package {namespace!r} installed to find {macro_name!r} in",
                hint="install it (packages.yml, `sqlflow deps`), or name a macro of the project",
            )

        def to_log(message: Any, info: bool = False) -> str:
            log(str(message))
            return ""

        def ref(*args: Any, **_: Any) -> RelationName:
            # As a model of the project would: the project's first, then the packages'.
            package = str(args[0]) if len(args) > 1 else None
            target = self.resolver.ref(str(args[-1]), package) if args else None
            if target is None or target.relation is None or target.is_ephemeral:
                raise UserError(
                    f"ref({', '.join(map(repr, args))}) names no model, seed or snapshot with a relation",
                    hint="run-operation can ref what is built in the warehouse (not ephemeral models)",
                )
            return target.relation.sql(self.dialect)

        def source(source_name: str, table_name: str) -> RelationName:
            found = self.resolver.source(source_name, table_name)
            if found is None:
                raise UserError(f"source({source_name!r}, {table_name!r}) is not declared")
            return found.relation.sql(self.dialect)

        warehouse = introspection.context(introspection.Warehouse(self._warehouse, live=True))
        values = {**self._base, **warehouse, "log": to_log, "print": to_log, "ref": ref, "source": source}
        context = RenderContext(values, library)
        if namespace is None and macro_name not in library.owner:
            # As dbt: a macro the project lacks is looked for in the packages (codegen's, ...).
            having = sorted(p for p, macros in library.packages.items() if macro_name in macros)
            if len(having) > 1:
                raise UserError(
                    f"packages {', '.join(having)} all have a macro {macro_name!r}",
                    hint=f"name the one to run, e.g. {having[0]}.{macro_name}",
                )
            namespace = having[0] if having else None
        macro, path = context.macro(macro_name, namespace), library.find(macro_name, namespace)
        if macro is None or path is None:
            known = library.owner if namespace is None else library.packages[namespace]
            close = difflib.get_close_matches(macro_name, list(known), n=1)
            raise UserError(
                f"there is no macro {name!r}",
                hint=f"did you mean {close[0]!r}?"
                if close
                else "macros are read from macro-paths (default macros/)",
            )
        try:
            macro(**kwargs)
        except introspection.QueryFailed as exc:
            failure = exc.__cause__ or exc.message
            raise OperationFailed(
                f"macro {name}: a query failed{in_macro(exc.__traceback__, Path())}: {failure}", path=path
            ) from exc
        except UserError:
            raise
        except TypeError as exc:
            raise CompilationError(f"macro {name} cannot take these arguments: {exc}", path=path) from exc
        except MACRO_ERRORS as exc:
            raise macro_error(exc, f"cannot run macro {name}", path=path) from exc

    def _introspection(self) -> dict[str, Any]:
        local = self._building
        if getattr(local, "active", False):
            live = True
        else:  # a digest never reads the warehouse: the same template keeps the same fingerprint
            live = not self._defer_introspection and not getattr(local, "digesting", False)
        return introspection.context(introspection.Warehouse(self._warehouse, live=live))

    def _compile(self, uid: str) -> CompiledNode:
        node = self.manifest.nodes[uid]
        problem = self.unbuildable(node) if self.unbuildable is not None else None
        if problem is not None:
            raise CompilationError(problem[0], path=node.path, hint=problem[1])
        if node.resource_type == "seed":
            compiled = CompiledNode(node, "")
        elif node.resource_type == "unit_test":
            compiled = self._compile_unit_test(node)
        elif node.test_metadata is not None:
            compiled = self._compile_generic_test(node)
        else:
            compiled = self._compile_model(node)
        if node.config.get("pre-hook") or node.config.get("post-hook"):
            compiled.pre_hooks = self._render_hooks(node, "pre-hook")
            compiled.post_hooks = self._render_hooks(node, "post-hook")
        return compiled

    def render_project_hook(
        self, text: str, extra: dict[str, Any], *, key: str, path: Any, line: int | None
    ) -> str:
        """An `on-run-start`/`on-run-end` statement, rendered with the project's context, its macros
        and `extra` (on-run-end's `results`, `schemas`)."""
        # Rendered when they run: what they ask the warehouse is answered now.
        warehouse = introspection.context(introspection.Warehouse(self._warehouse, live=True))
        context = RenderContext({**self._base, **warehouse, **extra}, self.manifest.macro_library)
        return self._render_hook(text, context, f"cannot render `{key}`", path, line)

    def _render_hooks(self, node: Node, key: str) -> list[str]:
        """A node's hooks, rendered in the node's run-time context; empty ones left out."""
        context = RenderContext(
            self._context(node, []), self.manifest.macro_library, package=self._package(node)
        )
        rendered = [
            self._render_hook(hook["sql"], context, f"{node.name}: cannot render its {key}", node.path, None)
            for hook in node.config.get(key) or []
        ]
        return [text for text in rendered if text]

    def _render_hook(self, text: str, context: RenderContext, what: str, path: Any, line: int | None) -> str:
        try:
            return self.manifest.env.from_string(text).render(context).strip()
        except (UserError, NeedsWarehouse):
            raise
        except Exception as exc:  # Jinja's errors, and what a macro raises
            raise CompilationError(
                f"{what}: {exc}",
                path=path,
                line=line,
                hint="a hook is Jinja like a model: check the names it uses, and quote the hook "
                "inside config() as a string",
            ) from exc

    def finish(self) -> None:
        """Write the compiled files (target/compiled/): in a child process with a `background`
        (the caller waits for it), else here. Save the cache."""
        self._start_writes()
        self._checked.save()

    def _start_writes(self) -> None:
        files, self._unwritten = self._unwritten, []
        if self.background is None or len(files) < BACKGROUND_WRITES:
            artifacts.write_files(files)
        else:
            self.background.start("target/compiled/", lambda: artifacts.write_files(files))
        # A child of its own: once the parent is done with manifest.json, the two run side by side.
        self.manifest.save_caches(self.background)

    def write_compiled(self, node: Node, text: str) -> None:
        """Write target/compiled/ for a model (at finish()), skipping files whose content is unchanged."""
        uid = node.unique_id
        if self._handed.get(uid) == text:
            return  # handed over already: validate_ahead() does, then the caller of compile()
        path, content, digest = artifacts.compiled_file(self.manifest, node, text)
        if digest == self._checked.written(uid) and (uid in self._handed or self._exists(path)):
            return
        self._handed[uid] = text
        self._unwritten.append((path, content))
        self._checked.record_written(uid, digest)

    def _exists(self, path: str) -> bool:
        # One listing per folder rather than a stat per file: most of checking 5,000 unchanged files.
        folder, name = os.path.split(path)
        names = self._listed.get(folder)
        if names is None:
            try:
                with os.scandir(folder) as entries:
                    names = self._listed[folder] = {entry.name for entry in entries}
            except OSError:
                names = self._listed[folder] = set()
        return name in names

    def sql_digest(self, uid: str) -> str:
        """A digest of the node's SQL as sqlglot writes it back (no comments, one spacing), rendered
        with is_incremental() false, ephemerals included: what a fingerprint hashes."""
        if uid in self._normalized:
            return self._normalized[uid]
        node = self.manifest.nodes[uid]
        if node.resource_type == "seed" or node.program is None:
            return ""
        # Digests from the last command on the same inputs: `state:modified` needs every model's,
        # and rendering them all again was most of a no-op `run -s state:modified+`.
        remembered = self._checked.digests(self.manifest.inputs_key)
        if uid in remembered:
            self._normalized[uid] = remembered[uid]
            return remembered[uid]
        ephemeral_refs: list[str] = []
        self._building.digesting = True
        try:
            rendered = self._render(node, ephemeral_refs, incremental=False)
        except NeedsWarehouse:  # its SQL depends on the warehouse: its template and macros stand for it
            self._normalized[uid] = "template:" + sql.text_digest(
                node.raw_code + self.manifest.macro_library.digest
            )
            return self._normalized[uid]
        finally:
            self._building.digesting = False
        dialect = self.source_dialect(node)
        digest = self._checked.normalized(rendered, dialect)
        if digest is None:
            digest = sql.normalized_digest(sql.parse(rendered, dialect, path=node.path), dialect)
            self._checked.put_normalized(rendered, dialect, digest)
        if ephemeral_refs:
            parts = [digest, *(self.sql_digest(e) for e in ephemeral_refs)]
            digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()
        self._normalized[uid] = digest
        # Only a render that the inputs decide can be remembered by them: a static program (no
        # macros, run_started_at...) that reads no environment variable, as are its ephemerals.
        remembered = self._checked.digests(self.manifest.inputs_key)  # now with the ephemerals'
        if _depends_only_on_inputs(node.program) and all(e in remembered for e in ephemeral_refs):
            self._checked.remember_digest(self.manifest.inputs_key, uid, digest)
        return digest

    def relation_kind(self, relation: Relation) -> str | None:
        return self.existing.get(self.key(relation.schema, relation.identifier))

    def is_incremental(self, node: Node) -> bool:
        if node.materialized != "incremental" or node.relation is None:
            return False
        full_refresh = self.full_refresh and node.config.get("full_refresh") is not False
        return not full_refresh and self.relation_kind(node.relation) == "table"

    def batch_query(self, uid: str, batch: Batch) -> exp.Query:
        """A microbatch model's SELECT for one batch (in the project's dialect): refs whose
        model declares `event_time` read only the batch's window, and of the model's own rows
        only those inside the window are kept, so a batch never writes outside it."""
        node = self.manifest.nodes[uid]
        ephemeral_refs: list[str] = []
        building, self._building.active = getattr(self._building, "active", False), True  # built now
        try:
            rendered = self._render(node, ephemeral_refs, batch)
        finally:
            self._building.active = building
        query = sql.parse(rendered, self.dialect, path=node.path)
        order = self._ephemeral_order(ephemeral_refs)
        query = sql.inline_ctes(
            query, [(CTE_PREFIX + self.manifest.nodes[e].name, self._ephemeral_query(e)) for e in order]
        )
        event_times = {}
        for reader in (node, *(self.manifest.nodes[e] for e in order)):
            for upstream_id in reader.depends_on:
                node_upstream = self.manifest.nodes.get(upstream_id)
                source_upstream = self.manifest.sources.get(upstream_id)
                if node_upstream is not None and not node_upstream.is_ephemeral:
                    event_time, relation = node_upstream.config.get("event_time"), node_upstream.relation
                elif source_upstream is not None:
                    event_time, relation = source_upstream.event_time, source_upstream.relation
                else:
                    continue
                if event_time and relation is not None:
                    event_times[self.key(relation.schema, relation.identifier)] = event_time_expression(
                        str(event_time), self.dialect
                    )
        query = filter_upstream(query, event_times, batch, self.key)
        own = event_time_expression(MicrobatchConfig.of(node.config, node.path).event_time, self.dialect)
        return (
            exp.select("*")
            .from_(query.subquery(exp.to_identifier("__sqlflow_batch", quoted=True)))
            .where(window_condition(own, batch))
        )

    # ------------------------------------------------------------------ models

    def source_dialect(self, node: Node) -> str:
        """The dialect a node's SQL is written in: the project's, or with `transpile=false` the warehouse's."""
        return self.target_dialect if node.config.get("transpile") is False else self.dialect

    def validate_ahead(self, uids: Sequence[str], *, digests: bool = False) -> None:
        """Render the static models among `uids` and, when many of them are SQL the cache has not
        seen (a cold compile), parse those on every core (parse_pool); compile() then finds them
        validated and their renders ready, and with `digests` sql_digest() finds their normalized
        digests too (a run fingerprints what it builds). Models that need their syntax tree
        (ephemerals, their readers, transpiling) are left to compile()."""
        nodes = self.manifest.nodes
        pending: dict[tuple[str, str], None] = {}
        fresh: list[tuple[str, str, bool]] = []  # (uid, rendered, incremental) not remembered
        # Renders from the last command on the same inputs (see _depends_only_on_inputs): for an
        # unchanged project they replace rendering and looking up every model.
        remembered = self._checked.renders(self.manifest.inputs_key)
        for uid in uids:
            node = nodes[uid]
            program = node.program
            if (
                program is None
                or program.segments is None
                or node.test_metadata is not None
                or node.resource_type in ("seed", "unit_test")
                or node.is_ephemeral
                or self.source_dialect(node) != self.target_dialect
                or any(parent in nodes and nodes[parent].is_ephemeral for parent in node.depends_on)
            ):
                continue
            dialect, incremental = self.target_dialect, self.is_incremental(node)
            memo = remembered.get(uid)
            if memo is not None and memo[0] == incremental:
                rendered = self._rendered[uid] = memo[1]
                self._validated[uid] = memo[2]
                if digests and self._checked.normalized(rendered, dialect) is None:
                    pending[(rendered, dialect)] = None
                continue
            try:
                rendered = self._rendered[uid] = self._render(node, [])
            except UserError:
                continue  # compile() renders it again and reports the error with the others
            fresh.append((uid, rendered, incremental))
        dialect = self.target_dialect
        for uid, rendered, incremental in fresh:
            tables = self._checked.get(rendered, dialect)
            if tables is None and not incremental:
                tables = self._parsed_early(uid, rendered)
            if tables is None or (digests and self._checked.normalized(rendered, dialect) is None):
                pending[(rendered, dialect)] = None
            elif _depends_only_on_inputs(nodes[uid].program):
                self._checked.remember_render(self.manifest.inputs_key, uid, (incremental, rendered, tables))
        self._parse_on_every_core(pending, remembered, digests)
        # Their compiled files are known now: a child writes them (and the load caches) while the
        # rest is compiled; not sooner, while both cores parse.
        for uid, rendered, _ in fresh:
            self.write_compiled(nodes[uid], sql.body(rendered))
        self._start_writes()

    def _parse_on_every_core(
        self, pending: dict[tuple[str, str], None], remembered: dict[str, Any], digests: bool
    ) -> None:
        if len(pending) < parse_pool.MIN_QUERIES or not parse_pool.available():
            return
        nodes = self.manifest.nodes
        parsed = parse_pool.parse_many(list(pending), digests=digests)
        for (text, dialect), result in zip(pending, parsed, strict=True):
            if result is None:
                continue  # a query that does not parse is reported by compile()
            tables, digest = result
            self._checked.put(text, dialect, [self.project.secrets.mask(t) for t in tables])
            if digest is not None:
                self._checked.put_normalized(text, dialect, digest)
        for uid, rendered in self._rendered.items():  # so that the next command needs no render
            tables = self._checked.get(rendered, self.target_dialect)
            if tables is not None and uid not in remembered and _depends_only_on_inputs(nodes[uid].program):
                render = (self.is_incremental(nodes[uid]), rendered, tables)
                self._checked.remember_render(self.manifest.inputs_key, uid, render)

    def _parsed_early(self, uid: str, rendered: str) -> list[str] | None:
        """The bare tables `rendered` reads, from the parse of the same SQL (relations named by
        placeholders) that the loader started (manifest.early_parse); None if there is none."""
        early = self.manifest.early_parse
        if early is None or early.dialect != self.target_dialect:
            return None
        parsed = early.results().get(uid)
        if parsed is None or self._reads_external_location(self.manifest.nodes[uid]):
            return None  # a file read in place of a table is not what the placeholder parsed as
        tables = [self.project.secrets.mask(t) for t in parsed[0]]
        self._checked.put(rendered, self.target_dialect, tables)
        if parsed[1] is not None:  # the normalized text, placeholders included
            digest = self._digest_of_placeholders(self.manifest.nodes[uid], parsed[1])
            if digest is not None:
                self._checked.put_normalized(rendered, self.target_dialect, digest)
        return tables

    def _reads_external_location(self, node: Node) -> bool:
        return any(
            (source := self._sources.get((call.source_name, call.table_name))) is not None
            and source.external_location is not None
            for call in node.sources
        )

    def _digest_of_placeholders(self, node: Node, normalized: str) -> str | None:
        """The digest of the node's normalized SQL, from that of its early parse: each relation's
        placeholder, as sqlglot writes it, replaced by the relation as sqlglot writes it (a table's
        text does not depend on where it stands). None where a placeholder is left over."""
        dialect = self.target_dialect
        resolvers = self._resolvers(node, [])
        assert node.relation is not None
        relations = [(placeholder_relation("this"), node.relation.sql(self.dialect))]
        if any(r.package for r in node.refs):
            return None  # the early parse's placeholders name refs by name alone
        try:
            relations += [(placeholder_relation("ref", r.name), resolvers["ref"](r.name)) for r in node.refs]
            relations += [
                (
                    placeholder_relation("source", s.source_name, s.table_name),
                    resolvers["source"](s.source_name, s.table_name),
                )
                for s in node.sources
            ]
        except UserError:
            return None  # compile() reports it
        written = self._as_written
        for parts, real in relations:
            # Both as sqlglot writes them, each worked out once per command (a parse and a generation).
            if parts not in written:
                written[parts] = exp.table_(parts[-1], *reversed(parts[:-1]), quoted=True).sql(
                    dialect=dialect
                )
            if real not in written:
                written[real] = exp.to_table(real, dialect=dialect).sql(dialect=dialect)
            normalized = normalized.replace(written[parts], written[real])
        return None if "__sqlflow_" in normalized else sql.text_digest(normalized)

    def _compile_model(self, node: Node) -> CompiledNode:
        ephemeral_refs: list[str] = []
        rendered = self._rendered.pop(node.unique_id, None) or self._render(node, ephemeral_refs)
        dialect = self.source_dialect(node)
        needs_ast = bool(ephemeral_refs) or node.is_ephemeral or dialect != self.target_dialect
        cached_tables = self._validated.pop(node.unique_id, None)
        if cached_tables is None and not needs_ast:
            cached_tables = self._checked.get(rendered, dialect)
        query = None
        if cached_tables is None:  # also whenever needs_ast, which the code below relies on
            compiled_path = self.project.relpath(artifacts.compiled_path(self.manifest, node))
            try:
                query = sql.parse(rendered, dialect, path=node.path, compiled_path=compiled_path)
            except CompilationError:
                if node.config.get("transpile") is False and not needs_ast:
                    # transpile=false: SQL sqlglot cannot parse goes to the warehouse as written.
                    return CompiledNode(node, sql.body(rendered), self.is_incremental(node), dialect=dialect)
                self.write_compiled(node, rendered)  # the error's hint names this file
                self.finish()
                raise
            if node.is_ephemeral:
                # Kept for inlining. Other ASTs are dropped: thousands of live trees make every
                # garbage collection pass slower, and compiling turned quadratic.
                self._queries[node.unique_id] = query
            tables = [t.name for t in sql.referenced_tables(query) if not t.db]
            # Stored in target/: a table named by a secret (env_var) must not be written in clear.
            masked = [self.project.secrets.mask(t) for t in tables]
            self._checked.put(rendered, dialect, masked)
            if not needs_ast and _depends_only_on_inputs(node.program):
                # As validate_ahead() does for what it parses: the next command renders nothing.
                render = (self.is_incremental(node), rendered, masked)
                self._checked.remember_render(self.manifest.inputs_key, node.unique_id, render)
        else:
            tables = cached_tables
        self._warn_bare_tables(node, tables)
        if not needs_ast:
            return CompiledNode(node, sql.body(rendered), self.is_incremental(node), dialect=dialect)
        assert query is not None
        order = self._ephemeral_order(ephemeral_refs)
        ctes = [(CTE_PREFIX + self.manifest.nodes[e].name, self._ephemeral_query(e)) for e in order]
        query = sql.inline_ctes(query, ctes)
        try:
            text = self.transpiler.generate(
                query, source=dialect, path=node.path, compiled_path=compiled_path
            )
        except CompilationError:
            self.write_compiled(node, rendered)
            self.finish()
            raise
        return CompiledNode(node, text, self.is_incremental(node), order, dialect)

    def _compile_generic_test(self, node: Node) -> CompiledNode:
        """The failing-rows query of a YAML test: a built-in built with sqlglot, or a `{% test %}` macro."""
        assert node.test_metadata is not None and node.attached_node is not None
        meta = node.test_metadata
        ephemeral_refs: list[str] = []
        context = RenderContext(
            self._context(node, ephemeral_refs), self.manifest.macro_library, package=self._package(node)
        )
        set_in_macro: dict[str, Any] = {}
        context["config"] = ConfigAccessor(lambda *a, **k: set_in_macro.update(k) or "", dict(node.config))

        def render_template(template: str) -> Any:
            program = parse_program(self.manifest.env, template, node.path)
            segments = program.segments or []
            if len(segments) == 1 and segments[0][0] == "call" and segments[0][1] in ("ref", "source"):
                # `compare_model: ref('x')` is the relation itself, as dbt passes it (not its text).
                _, name, args, kwargs, _ = segments[0]
                return context[name](*args, **dict(kwargs))
            return render(program, self.manifest.env, context)

        try:
            kwargs = data_tests.render_kwargs(
                {k: v for k, v in meta["kwargs"].items() if k != "column_name"}, render_template
            )
            if "column_name" in meta["kwargs"]:
                kwargs["column_name"] = meta["kwargs"]["column_name"]
            attached = (
                self.manifest.nodes.get(node.attached_node) or self.manifest.sources[node.attached_node]
            )
            if attached.unique_id.startswith("source."):
                tested = self._source_relation(attached)
            else:
                tested = context["ref"](attached.package_name, attached.name)
            table = sqlglot_table(tested, self.dialect)
            where = node.config.get("where")
            if isinstance(where, str):
                where = data_tests.render_kwargs(where, render_template)
            model = data_tests.model_expression(table, where, self.dialect)
            macro_name, namespace = f"test_{meta['name']}", meta.get("namespace")
            macro_path = self.manifest.macro_library.find(macro_name, namespace)
            if macro_path is None and namespace is None and self._package(node) is not None:
                namespace = node.package_name  # a test of the package's own, named in its YAML
                macro_path = self.manifest.macro_library.find(macro_name, namespace)
            if macro_path is not None:
                kwargs.pop("quote", None)
                macro = context.macro(macro_name, namespace)
                assert macro is not None
                try:
                    # The relation itself, as dbt passes it, unless a `where` made it a subquery.
                    text = macro(model=tested if not where else model.sql(self.dialect), **kwargs)
                except TypeError as exc:
                    raise CompilationError(
                        f"test {meta['name']} cannot take these arguments: {exc}",
                        hint=f"the macro is defined in {self.project.relpath(macro_path)}",
                    ) from exc
                except MACRO_ERRORS as exc:
                    raise macro_error(
                        exc,
                        f"test {meta['name']} cannot render",
                        node.path,
                        hint=f"the macro is defined in {self.project.relpath(macro_path)}",
                    ) from exc
                compiled_path = self.project.relpath(artifacts.compiled_path(self.manifest, node))
                query = sql.parse(str(text), self.dialect, path=node.path, compiled_path=compiled_path)
            else:
                query = data_tests.builtin_query(meta["name"], model, kwargs, self.dialect)
        except UserError as exc:
            # Errors inside the test point at its YAML entry, where the user can fix it.
            if exc.location.path is None or exc.location.path == node.path:
                exc.location.path, exc.location.line = node.path, exc.location.line or node.line
            raise
        defaults = {k: v for k, v in set_in_macro.items() if k not in node.config}
        problem = data_tests.check_config(defaults)
        if problem:
            raise CompilationError(
                f"test {meta['name']}: {problem} (set in its macro)", path=node.path, line=node.line
            )
        order = self._ephemeral_order(ephemeral_refs)
        ctes = [(CTE_PREFIX + self.manifest.nodes[e].name, self._ephemeral_query(e)) for e in order]
        text = self.transpiler.generate(sql.inline_ctes(query, ctes), path=node.path)
        return CompiledNode(node, text, False, order, config_defaults=defaults)

    def _compile_unit_test(self, node: Node) -> CompiledNode:
        """The tested model's query with every ref/source (and `this` if given) read from a mock CTE."""
        assert node.test_metadata is not None and node.attached_node is not None
        model = self.manifest.nodes[node.attached_node]
        metadata = node.test_metadata
        overrides = metadata["overrides"]
        dialect = self.source_dialect(model)
        given = {i["name"] for i in metadata["inputs"]}

        def mock(name: str) -> str:
            return exp.to_identifier(unit_tests.mock_name(name), quoted=True).sql(dialect=dialect)

        values = self._context(model, [])
        values.update(
            ref=lambda *args, **_: mock(str(args[-1])),
            source=lambda source_name, table_name: mock(f"{source_name}.{table_name}"),
            is_incremental=lambda: bool(overrides["macros"].get("is_incremental", False)),
        )
        if "this" in given:
            values["this"] = mock("this")
        if overrides["vars"]:
            values["var"] = make_var(
                {**self.project.vars, **overrides["vars"]}, self.project.settings_path.name
            )
        if overrides["env_vars"]:
            read_env = values["env_var"]
            fixed = {str(k): str(v) for k, v in overrides["env_vars"].items()}
            values["env_var"] = lambda name, default=None: (
                fixed[name] if name in fixed else read_env(name, default)
            )
        for macro, value in overrides["macros"].items():
            if macro != "is_incremental":
                values[macro] = lambda *args, _value=value, **kwargs: _value
        try:
            rendered = render(
                model.program, self.manifest.env, RenderContext(values, self.manifest.macro_library)
            )
            query = sql.parse(rendered, dialect, path=model.path)
        except UserError as exc:
            exc.message = f"unit test {node.name}: {exc.message}"
            raise
        return CompiledNode(node, self.transpiler.generate(query, source=dialect, path=model.path))

    def _ephemeral_query(self, uid: str) -> exp.Query:
        if self.compile(uid).deferred:
            raise NeedsWarehouse(uid)  # its readers are compiled when built, as it is
        return self._queries[uid]

    def _warn_bare_tables(self, node: Node, tables: list[str]) -> None:
        for name in tables:
            other = self.by_name.get(name)
            if other is not None and other is not node:
                self.manifest.log(
                    f"{node.original_file_path}: reads the table {name!r} by name, which bypasses the DAG; "
                    f"write {{{{ ref('{name}') }}}} so that it is built first"
                )

    def _ephemeral_order(self, direct: list[str]) -> list[str]:
        """Every ephemeral reached through `direct`, dependencies first, each once."""
        order: list[str] = []

        def visit(uid: str) -> None:
            if uid in order:
                return
            for parent in self.manifest.nodes[uid].depends_on:
                if parent in self.manifest.nodes and self.manifest.nodes[parent].is_ephemeral:
                    visit(parent)
            order.append(uid)

        for uid in direct:
            visit(uid)
        return order

    def _render(
        self,
        node: Node,
        ephemeral_refs: list[str],
        batch: Batch | None = None,
        *,
        incremental: bool | None = None,
    ) -> str:
        """`incremental` fixes what is_incremental() returns (the fingerprint renders with False)."""
        if node.program.segments is not None and batch is None:
            values: dict[str, Any] = self._static_context(node, ephemeral_refs)
        else:
            values = RenderContext(
                self._context(node, ephemeral_refs, batch),
                self.manifest.macro_library,
                package=self._package(node),
            )
        if incremental is not None:
            values["is_incremental"] = lambda: incremental
        try:
            return render(node.program, self.manifest.env, values)  # type: ignore[arg-type]
        except CompilationError:
            raise
        except UserError as exc:
            if exc.location.path is None:
                exc.location.path = node.path
            raise

    def _resolvers(self, node: Node, ephemeral_refs: list[str]) -> dict[str, Callable[..., str]]:
        """`ref` and `source` for rendering `node`: relation names (ephemerals become CTE names)."""
        dialect = self.dialect
        root = self.project.name

        def ref(*args: str, **_: Any) -> str:
            if not args:
                raise UserError(
                    "ref() needs the name of a model", path=node.path, hint="e.g. {{ ref('orders') }}"
                )
            name = str(args[-1])
            package = str(args[0]) if len(args) > 1 else None
            # The usual case first: the root project's ref of its own model, without a search.
            target = self.by_name.get(name) if package is None and node.package_name == root else None
            if target is None and (
                package is not None or node.package_name != root or self.resolver.package_nodes
            ):
                try:
                    target = self.resolver.ref(name, package, node.package_name)
                except UserError as exc:
                    exc.location.path = node.path
                    raise
            if target is None:
                raise UserError(f"{node.name} refs {name!r}, which does not exist", path=node.path)
            if target.unique_id not in node.depends_on:
                raise CompilationError(
                    f"{node.name} refs {name!r}, but that ref was not seen when the project was loaded "
                    "(it is probably behind `{% if execute %}` or another run-time condition), so "
                    f"{name} may not be built first",
                    path=node.path,
                    hint=f"add a line `-- depends_on: {{{{ ref('{name}') }}}}` to the model",
                )
            if target.is_ephemeral:
                if target.unique_id not in ephemeral_refs:
                    ephemeral_refs.append(target.unique_id)
                    if target.unique_id not in self._queries:
                        self.compile(target.unique_id)
                return exp.to_identifier(CTE_PREFIX + target.name, quoted=True).sql(dialect=dialect)
            assert target.relation is not None
            return target.relation.sql(dialect)

        def source(source_name: str, table_name: str) -> str:
            candidate = self._sources.get((source_name, table_name)) if node.package_name == root else None
            if candidate is None and (node.package_name != root or self.resolver.package_sources):
                try:
                    candidate = self.resolver.source(source_name, table_name, node.package_name)
                except UserError as exc:
                    exc.location.path = node.path
                    raise
            if candidate is not None:
                return self._source_relation(candidate)
            raise UserError(f"source {source_name}.{table_name} is not declared", path=node.path)

        return {"ref": ref, "source": source}

    def _source_relation(self, source: Source) -> RelationName:
        """What `source()` renders for a source table: its relation, or dbt-duckdb's external location."""
        if source.external_location:
            relation = source.relation
            return RelationName(
                source.external_location,
                relation.database,
                relation.schema,
                relation.identifier,
                self.dialect,
            )
        return source.relation.sql(self.dialect)

    def _package(self, node: Node) -> str | None:
        """The package whose macros a node's templates find first: its own (None: the root project)."""
        return None if node.package_name == self.project.name else node.package_name

    def _static_context(self, node: Node, ephemeral_refs: list[str]) -> dict[str, Any]:
        """All a static program (jinja.Program.segments) can read: a fraction of the cost of
        `_context` (and RenderContext's copy of Jinja's globals), which is most of compiling an
        unchanged model."""
        assert node.relation is not None
        return {
            **self._resolvers(node, ephemeral_refs),
            "config": _renders_nothing,
            "var": self._vars.get(node.package_name) or self._base["var"],
            "env_var": self._base["env_var"],
            "this": node.relation.sql(self.dialect),
            "is_incremental": lambda: self.is_incremental(node),
        }

    def _context(self, node: Node, ephemeral_refs: list[str], batch: Batch | None = None) -> dict[str, Any]:
        """The run-time Jinja context of a node: `ref` resolves relations (ephemerals to CTEs)."""
        dialect = self.dialect
        assert node.relation is not None
        values = dict(self._base)
        values.update(
            self._resolvers(node, ephemeral_refs),
            config=ConfigAccessor(lambda *a, **k: "", dict(node.config)),
            this=node.relation.sql(dialect),
            is_incremental=lambda: self.is_incremental(node),
            model={
                "name": node.name,
                "unique_id": node.unique_id,
                "package_name": node.package_name,
                "config": node.config,
                "original_file_path": node.original_file_path,
                "schema": node.relation.schema,
                "alias": node.relation.identifier,
                "batch": batch_context(node.config, batch),
            },
            schema=node.relation.schema,
            # dbt's global macro, which tests of packages (dbt_utils) call.
            should_store_failures=lambda: bool(node.config.get("store_failures")),
            **self._introspection(),
        )
        if node.package_name in self._vars:
            values["var"] = self._vars[node.package_name]
        if self.full_refresh:
            values["flags"] = type(values["flags"])(FULL_REFRESH=True, WHICH="run")
        return values


def _depends_only_on_inputs(program: Any) -> bool:
    """A static program that calls no env_var(): what it renders follows from the project's files,
    vars and target alone (what manifest.inputs_key digests)."""

    def reads_env(segments: list[Any]) -> bool:
        for segment in segments:
            if isinstance(segment, str):
                continue
            if segment[0] == "call" and segment[1] == "env_var":
                return True
            if segment[0] == "if_incremental" and (reads_env(segment[1]) or reads_env(segment[2])):
                return True
        return False

    return program.segments is not None and not reads_env(program.segments)


def _renders_nothing(*args: Any, **kwargs: Any) -> str:
    return ""  # config() at run time: the config was read when the project was loaded


def sqlglot_table(text: str, dialect: str) -> exp.Table:
    """A rendered relation name (`"main"."orders"`) as a table expression."""
    return exp.to_table(text, dialect=dialect)


class _CheckedSQL:
    """Rendered SQL already parsed without error, with the bare table names it reads."""

    FILE = "sqlflow_sql_cache.pickle"

    def __init__(self, target_path: Path) -> None:
        self.path = target_path / self.FILE
        self.entries: dict[str, list[str]] = {}
        self.dirty = False
        try:
            with self.path.open("rb") as handle:
                stored = pickle.load(handle)
            if stored.get("version") == __version__:
                self.entries = stored["entries"]
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError):
            self.entries = {}

    @staticmethod
    def _key(text: str, dialect: str) -> str:
        return hashlib.blake2b(f"{dialect}\0{text}".encode(), digest_size=16).hexdigest()

    def written(self, path: str) -> str | None:
        return self.entries.get(f"written:{path}")  # type: ignore[return-value]

    def record_written(self, path: str, digest: str) -> None:
        if self.entries.get(f"written:{path}") != digest:
            self.entries[f"written:{path}"] = digest  # type: ignore[assignment]
            self.dirty = True

    def get(self, text: str, dialect: str) -> list[str] | None:
        return self.entries.get(self._key(text, dialect))

    def normalized(self, text: str, dialect: str) -> str | None:
        return self.entries.get("normalized:" + self._key(text, dialect))  # type: ignore[return-value]

    def put_normalized(self, text: str, dialect: str, normalized: str) -> None:
        self.entries["normalized:" + self._key(text, dialect)] = normalized  # type: ignore[assignment]
        self.dirty = True

    def put(self, text: str, dialect: str, tables: list[str]) -> None:
        self.entries[self._key(text, dialect)] = tables
        self.dirty = True

    def renders(self, inputs_key: str | None) -> dict[str, tuple[bool, str, list[str]]]:
        """uid -> (is_incremental, rendered SQL, bare tables) remembered for these inputs; only
        the latest inputs' are kept."""
        stored = self.entries.get("renders")
        if inputs_key is None or not stored or stored[0] != inputs_key:  # type: ignore[index]
            return {}
        return stored[1]  # type: ignore[index,return-value]

    def remember_render(self, inputs_key: str | None, uid: str, render: tuple[bool, str, list[str]]) -> None:
        if inputs_key is None:
            return
        stored = self.entries.get("renders")
        if not stored or stored[0] != inputs_key:  # type: ignore[index]
            stored = self.entries["renders"] = (inputs_key, {})  # type: ignore[assignment]
        if stored[1].get(uid) != render:  # type: ignore[index,union-attr]
            stored[1][uid] = render  # type: ignore[index]
            self.dirty = True

    def digests(self, inputs_key: str | None) -> dict[str, str]:
        """uid -> sql_digest remembered for these inputs (manifest.inputs_key); only the latest
        inputs' are kept, so the cache does not grow with every edit."""
        stored = self.entries.get("digests")
        if inputs_key is None or not stored or stored[0] != inputs_key:  # type: ignore[index]
            return {}
        return stored[1]  # type: ignore[index,return-value]

    def remember_digest(self, inputs_key: str | None, uid: str, digest: str) -> None:
        if inputs_key is None:
            return
        stored = self.entries.get("digests")
        if not stored or stored[0] != inputs_key:  # type: ignore[index]
            stored = self.entries["digests"] = (inputs_key, {})  # type: ignore[assignment]
        stored[1][uid] = digest  # type: ignore[index]
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        with contextlib.suppress(OSError):  # a cache that cannot be written is only slower
            artifacts.write_pickle(self.path, {"version": __version__, "entries": self.entries})
            self.dirty = False
