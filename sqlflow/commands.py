"""One function per command, usable from Python; the CLI only parses options and calls these.

from sqlflow import commands
session = commands.open_session(project_dir="shop")
outcome = commands.run(session, select=["orders+"])
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from . import (
    artifacts,
    data_tests,
    freshness,
    locking,
    packages,
    selection,
    snapshots,
    state,
    unit_tests,
)
from .adapters import Adapter, adapter_for
from .background import Background
from .compiler import CompiledNode, Compiler
from .errors import CompilationErrors, HookFailed, UserError, WarehouseError
from .events import Event, EventHandler, ignore, node_finished, node_started
from .graph import Graph
from .lazy import exp
from .locking import RunLock
from .manifest import Manifest, load_manifest
from .materializations import (
    BatchesFailed,
    BuildError,
    Contract,
    Outcome,
    build_batches,
    materialize,
    replace_table,
    strategy_of,
)
from .microbatch import Backfill, Batch, Intervals, MicrobatchConfig, complete, event_time_expression, plan
from .nodes import Node, hook_list
from .plan import execution_plan
from .project import Project, load_project
from .runner import NodeResult, RunOutcome, now_iso, run_dag
from .transpile import Transpiler
from .yaml_lines import line_of, load_yaml

if TYPE_CHECKING:
    from . import docs_site


@dataclass
class Session:
    """A loaded project: settings, nodes and graph. Connects to the warehouse on demand."""

    project: Project
    manifest: Manifest
    graph: Graph
    on_event: EventHandler = ignore
    # Writes done by child processes (target/compiled/); waited for on close.
    background: Background = field(default_factory=Background, repr=False)
    _adapter: Adapter | None = field(default=None, repr=False)
    _lock: RunLock | None = field(default=None, repr=False)

    @property
    def adapter(self) -> Adapter:
        if self._adapter is None:
            self._adapter = adapter_for(self.project.target)
            self._adapter.open()
        return self._adapter

    def lock_target(self, timeout: float = 0, cancel: threading.Event | None = None) -> None:
        """Take the target's run lock (once per session; held until `close`), waiting up to
        `timeout` seconds for another run to release it; `locking.TargetLocked` if it does not."""
        if self._lock is not None:
            return
        lock = (self._adapter or adapter_for(self.project.target)).run_lock()
        locking.hold(lock, timeout, self.project.target.name, cancel)
        self._lock = lock
        if lock.stale is not None:
            self.emit(
                "warning",
                f"took over a stale lock on target {self.project.target.name!r} left by "
                f"{lock.stale.describe()}, which is no longer running",
                "warning",
            )

    def close(self) -> None:
        if self.manifest.early_parse is not None:
            self.manifest.early_parse.close()  # nothing compiled what it parsed
        try:
            self.manifest.save_caches()  # when no compile did
            self.background.wait()
        finally:
            if self._adapter is not None:
                self._adapter.close()
                self._adapter = None
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def emit(self, name: str, message: str = "", level: str = "info", **data: Any) -> None:
        self.on_event(Event(name, message, level, data))


def open_session(
    project_dir: str | Path = ".",
    *,
    profiles_dir: str | Path | None = None,
    target: str | None = None,
    vars: dict[str, Any] | None = None,
    threads: int | None = None,
    on_event: EventHandler = ignore,
    use_cache: bool = True,
    fingerprints: bool = False,
) -> Session:
    """A loaded project. `fingerprints`: the command will fingerprint what it builds (run, build,
    seed, snapshot, test, retry), which a cold load can prepare for while it loads."""
    project = load_project(project_dir, profiles_dir=profiles_dir, target=target, vars=vars, threads=threads)
    manifest = load_manifest(project, use_cache=use_cache, fingerprints=fingerprints)
    try:
        graph = Graph(manifest)
    except BaseException:
        if manifest.early_parse is not None:
            manifest.early_parse.close()
        raise
    session = Session(project, manifest, graph, on_event)
    for warning in manifest.warnings:
        session.emit("warning", warning, "warning")
    manifest.warnings.clear()
    return session


# --------------------------------------------------------------------------- list / compile


def ls(
    session: Session,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    resource_types: Sequence[str] = ("model", "seed", "snapshot", "test", "unit_test", "source", "exposure"),
    *,
    state_dir: str | Path | None = None,
    selector: str | None = None,
) -> list[Any]:
    """The nodes a selection picks; connects to the warehouse only for `state:` selectors."""
    needs_state = "state" in selection.methods_used(select, exclude) or selector is not None
    compiler = _compiler(session, connect=_warehouse_exists(session)) if needs_state else None
    chosen = _select(session, compiler, select, exclude, resource_types, state_dir, selector)  # type: ignore[arg-type]
    return [session.graph.resource(uid) for uid in chosen]


def _compiler(
    session: Session, *, full_refresh: bool = False, connect: bool = True, defer_introspection: bool = False
) -> Compiler:
    """With `defer_introspection` (commands that build), a node whose render reads the warehouse
    is compiled when it is built; otherwise it reads the warehouse now, if there is one."""
    # Without a connection (compile before the warehouse exists) nothing exists yet.
    adapter = session.adapter if connect else adapter_for(session.project.target)
    transpiler = Transpiler(
        session.project.dialect,
        adapter.dialect,
        functions=adapter.function_names,  # never creates a database that does not exist yet
        syntax_error=adapter.syntax_error,
    )
    return Compiler(
        session.manifest,
        background=session.background,
        target_dialect=adapter.dialect,
        existing=adapter.list_relations() if connect else {},
        key=adapter.key,
        full_refresh=full_refresh,
        transpiler=transpiler,
        unbuildable=adapter.unbuildable,
        warehouse=(lambda: session.adapter) if connect or defer_introspection else None,
        defer_introspection=defer_introspection,
    )


def _compile_all(
    session: Session, uids: Sequence[str], compiler: Compiler, *, digests: bool = False
) -> dict[str, CompiledNode]:
    """Compile `uids` in order (writing target/compiled/); `digests`: the caller will fingerprint them.
    Every node that fails to compile is reported (CompilationErrors), not only the first."""
    compiled = {}
    failures: dict[str, UserError] = {}  # message -> error: a broken ephemeral fails each reader alike
    compiler.validate_ahead(uids, digests=digests)
    for uid in uids:
        node = session.manifest.nodes[uid]
        try:
            compiled[uid] = compiler.compile(uid)
        except UserError as exc:
            failures.setdefault(str(exc), exc)
            continue
        if node.resource_type != "seed" and not compiled[uid].deferred:
            compiler.write_compiled(node, compiled[uid].sql)
    for warning in session.manifest.warnings:
        session.emit("warning", warning, "warning")
    session.manifest.warnings.clear()
    compiler.finish()
    if failures:
        errors = list(failures.values())
        raise errors[0] if len(errors) == 1 else CompilationErrors(errors)
    return compiled


def compile(
    session: Session, select: Sequence[str] = (), exclude: Sequence[str] = ()
) -> dict[str, CompiledNode]:
    """Render and validate the selected models; write target/compiled/ and target/manifest.json."""
    uids = selection.select(session.graph, select, exclude, ("model",))
    connect = _warehouse_exists(session)
    # Models that read the warehouse while compiling read it now; before the first run, there is
    # none to read, and they are left to the run that builds them.
    compiled = _compile_all(
        session, uids, _compiler(session, connect=connect, defer_introspection=not connect)
    )
    for uid, node_compiled in list(compiled.items()):
        if node_compiled.deferred:
            del compiled[uid]
            session.emit(
                "warning",
                f"{node_compiled.node.name}: not compiled: it reads the warehouse (run_query, "
                "adapter.get_columns_in_relation...), which does not exist yet; `sqlflow run` compiles it",
                "warning",
            )
    artifacts.write_manifest(session.manifest, session.graph, _compiled_sql(compiled))
    return compiled


def _warehouse_exists(session: Session) -> bool:
    # `compile` needs the warehouse only to evaluate is_incremental(); it never creates a database.
    if session._adapter is not None:
        return True
    return adapter_for(session.project.target).database_exists()


DOCUMENTED_KINDS = ("model", "seed", "snapshot", "test", "unit_test", "source", "exposure")


def docs_generate(
    session: Session, select: Sequence[str] = (), exclude: Sequence[str] = ()
) -> docs_site.SiteSummary:
    """Write the docs site to target/docs/ for the selected nodes (all by default).

    Compiles them (target/compiled/, manifest.json), reads their columns from the warehouse where
    built (catalog.json), traces column lineage, and takes statuses from the last run_results.json.
    Never creates the warehouse: before the first run, columns come from seeds and YAML.
    """
    # Imported here: the site's modules (http.server among them) cost every other command 40 ms.
    from . import catalog, docs_site, project_lineage

    connect = _warehouse_exists(session)
    # Before the first run, models that read the warehouse while compiling are left uncompiled.
    compiler = _compiler(session, connect=connect, defer_introspection=not connect)
    manifest = session.manifest
    # Everything, unless told otherwise; no need to order it (selecting 10,000 nodes costs 0.3 s).
    uids = (
        selection.select(session.graph, select, exclude, DOCUMENTED_KINDS)
        if select or exclude
        else list(session.graph)
    )
    # Generic tests are shown by their definition: compiling thousands of them costs seconds.
    to_compile = [
        u
        for u in uids
        if u in manifest.nodes
        and (
            manifest.nodes[u].resource_type in ("model", "snapshot")
            or (manifest.nodes[u].resource_type == "test" and manifest.nodes[u].test_metadata is None)
        )
    ]
    compiled = {u: c for u, c in _compile_all(session, to_compile, compiler).items() if not c.deferred}
    artifacts.write_manifest(manifest, session.graph, _compiled_sql(compiled))
    adapter = session.adapter if connect else None
    columns = catalog.read_catalog(manifest, uids, adapter, compiler.existing)
    catalog.write_catalog_json(manifest, columns)
    target = session.project.target_path
    traced = project_lineage.trace_project(
        manifest,
        compiled,
        columns,
        dialect=compiler.target_dialect,
        case_insensitive=(adapter or adapter_for(session.project.target)).case_insensitive,
        cache_path=target / "sqlflow_lineage_cache.pickle",
    )
    inputs = docs_site.SiteInputs(
        manifest,
        session.graph,
        uids,
        compiled,
        columns,
        traced,
        docs_site.read_run_results(target),
        compiler.target_dialect,
    )
    summary = docs_site.write_site(inputs, target / "docs")
    session.emit(
        "docs_generated",
        f"Wrote the docs site for {summary.nodes} nodes to {session.project.relpath(summary.path.parent)}/ "
        f"({summary.columns} columns, {summary.unresolved_columns} with unresolved lineage)",
        path=str(summary.path),
    )
    return summary


# --------------------------------------------------------------------------- run / seed / build


def run(
    session: Session,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    *,
    resource_types: Sequence[str] = ("model",),
    full_refresh: bool = False,
    fail_fast: bool = False,
    command: str = "run",
    cancel: threading.Event | None = None,
    state_dir: str | Path | None = None,
    selector: str | None = None,
    chosen: set[str] | None = None,
    backfill: Backfill | None = None,
    lock_timeout: float = 0,
) -> RunOutcome:
    """Build the selected nodes in dependency order, in parallel where the DAG allows.

    `state_dir` is another run's target/ for `state:` and `result:` selectors; `selector` names a
    selectors.yml entry; `chosen` is a set of unique ids picked already (retry); `backfill` gives
    microbatch models the windows to build (--event-time-start/--event-time-end). Commands that
    write take the target's lock first, waiting up to `lock_timeout` seconds for another run.
    """
    if command != "test":
        session.lock_target(lock_timeout, cancel)
    manifest = session.manifest
    started = time.perf_counter()
    args = {
        "which": command,
        "select": list(select),
        "exclude": list(exclude),
        "selector": selector,
        "state": str(state_dir) if state_dir else None,
        "full_refresh": full_refresh,
        "fail_fast": fail_fast,
        "event_time_start": backfill.start.isoformat() if backfill and backfill.start else None,
        "event_time_end": backfill.end.isoformat() if backfill and backfill.end else None,
        "target": session.project.target.name,
        "vars": session.project.cli_vars,
        "threads": session.project.target.threads,
    }
    # A DuckDB file that does not exist yet is not created before the project compiles cleanly.
    compiler = _compiler(
        session, full_refresh=full_refresh, connect=_warehouse_exists(session), defer_introspection=True
    )
    uids = _select(session, compiler, select, exclude, resource_types, state_dir, selector, chosen)
    # Written before anything can fail, so `retry` knows the command even if no node ran.
    artifacts.write_run_results(manifest, RunOutcome([], 0.0), args)
    if (select or selector) and not uids:
        session.emit(
            "warning",
            f"nothing to do: the selection matches no {' or '.join(resource_types)}",
            "warning",
        )
    executable = [u for u in uids if not manifest.nodes[u].is_ephemeral]
    compiled = _compile_all(session, uids, compiler, digests=True)
    fingerprints = {u: _fingerprint(manifest, compiler, u) for u in executable}
    compiler.finish()  # again: saves the SQL digests just computed, for the next `state:` selection
    artifacts.write_manifest(manifest, session.graph, _compiled_sql(compiled), fingerprints=fingerprints)
    recorder = state.WarehouseState(session.adapter)
    intervals = state.IntervalStore(session.adapter)
    adapter = session.adapter
    _create_schemas(
        adapter, [manifest.nodes[u] for u in executable if _writes_relation(manifest.nodes[u])], compiler
    )
    if executable:
        # Here, before any thread: the state writer and a microbatch model's intervals would
        # otherwise create it at once, which DuckDB's catalog fails as a write-write conflict.
        adapter.create_schema(state.STATE_RELATION.schema)
    total = len(executable)
    session.emit(
        "run_started",
        f"Running {total} node{'s' if total != 1 else ''} on {session.project.target.name} "
        f"({adapter.describe()}) with {session.project.target.threads} threads",
        total=total,
    )
    counter = _Counter()
    # Shared with run_dag, which sets it on Ctrl-C: a node waiting to retry stops waiting.
    cancel = cancel if cancel is not None else threading.Event()

    def work(uid: str) -> NodeResult:
        node = manifest.nodes[uid]
        session.on_event(node_started(0, total, uid, node.name, node.materialized))
        if compiled[uid].deferred:  # it reads the warehouse: compiled now that its parents are built
            try:
                compiled[uid] = compiler.compile_deferred(uid)
            except UserError as exc:
                result = NodeResult(uid, "error", str(exc), started_at=now_iso(), completed_at=now_iso())
                session.on_event(node_finished(counter.next(), total, node.name, node.materialized, result))
                return result
        if node.resource_type == "test":
            result = run_test(adapter, compiler, compiled[uid])
        elif node.resource_type == "unit_test":
            result = run_unit_test(adapter, compiler, compiled[uid])
        else:
            result = build_node(
                adapter,
                compiler,
                compiled[uid],
                full_refresh=full_refresh,
                on_retry=retrying,
                cancel=cancel,
                backfill=backfill,
                intervals=intervals,
            )
            if result.status == "success" and fingerprints.get(uid):
                recorder.record(node, fingerprints[uid], result.rows, manifest.invocation_id)
        session.on_event(node_finished(counter.next(), total, node.name, node.materialized, result))
        return result

    def retrying(node: Node, attempt: int, attempts: int, error: WarehouseError, delay: int) -> None:
        session.emit(
            "node_retry",
            f"{node.name}: attempt {attempt} of {attempts} failed: {error}; retrying in {delay}s",
            "warning",
            unique_id=node.unique_id,
            attempt=attempt,
            attempts=attempts,
            delay=delay,
        )

    def skipped(result: NodeResult) -> None:
        node = manifest.nodes[result.unique_id]
        session.on_event(node_finished(counter.next(), total, node.name, node.materialized, result))

    _run_project_hooks(session, compiler, "on-run-start", {})
    try:
        if not executable:  # e.g. state:modified+ with nothing modified: no scheduler
            outcome = RunOutcome([], 0.0)
        else:
            outcome = run_dag(
                execution_plan(session.graph, executable, tests_block_children=command == "build"),
                work,
                threads=session.project.target.threads,
                fail_fast=fail_fast,
                on_skip=skipped,
                on_interrupt=adapter.cancel,
                cancel=cancel,
            )
    finally:
        not_recorded = recorder.flush()  # builds are recorded in batches while the run goes on
        compiler.finish()  # the compiled files of nodes compiled while the run went on
    _report_not_recorded(session, outcome, not_recorded)
    outcome.elapsed = time.perf_counter() - started
    artifacts.write_run_results(manifest, outcome, args)
    _emit_summary(session, outcome)
    if session.project.settings.get("on-run-end"):
        _run_project_hooks(
            session, compiler, "on-run-end", _on_run_end_context(manifest, executable, outcome)
        )
    return outcome


def _compiled_sql(compiled: dict[str, CompiledNode]) -> dict[str, str]:
    """What manifest.json records as compiled code: not yet known for deferred nodes."""
    return {uid: c.sql for uid, c in compiled.items() if not c.deferred}


def _on_run_end_context(manifest: Manifest, executable: list[str], outcome: RunOutcome) -> dict[str, Any]:
    """What dbt's on-run-end sees: `results`, and the schemas the run built in."""
    built = [manifest.nodes[u].relation for u in executable if _writes_relation(manifest.nodes[u])]
    database_schemas = sorted({(r.database, r.schema) for r in built if r is not None}, key=str)
    results = [
        SimpleNamespace(
            node=manifest.nodes.get(r.unique_id),
            unique_id=r.unique_id,
            status=r.status,
            message=r.message,
            execution_time=r.execution_time,
            rows=r.rows,
        )
        for r in outcome.results
    ]
    schemas = sorted({schema for _, schema in database_schemas})
    return {"results": results, "schemas": schemas, "database_schemas": database_schemas}


def _run_project_hooks(session: Session, compiler: Compiler, key: str, extra: dict[str, Any]) -> None:
    """The settings file's `on-run-start` (before the first node) or `on-run-end` (after the last,
    whatever their results) statements, each on its own; all are rendered before any runs."""
    project = session.project
    hooks = hook_list(project.settings.get(key))
    if not hooks:
        return
    line = line_of(project.settings, key)
    statements = [
        compiler.render_project_hook(hook["sql"], extra, key=key, path=project.settings_path, line=line)
        for hook in hooks
    ]
    statements = [statement for statement in statements if statement]
    for number, statement in enumerate(statements, 1):
        try:
            session.adapter.execute(statement)
        except WarehouseError as exc:
            raise HookFailed(
                f"`{key}` statement {number} of {len(statements)} failed: {exc}",
                path=project.settings_path,
                line=line,
                hint="the run stopped before building anything" if key == "on-run-start" else None,
            ) from exc


def _report_not_recorded(session: Session, outcome: RunOutcome, not_recorded: dict[str, Exception]) -> None:
    """Nodes built whose state could not be written fail the run: the next `state:modified` would
    build them again, and the user should know why."""
    for result in outcome.results:
        if result.unique_id in not_recorded:
            error = not_recorded[result.unique_id]
            result.status, result.message = "error", f"built, but its state was not recorded: {error}"
            session.emit(
                "state_not_recorded",
                f"{session.manifest.nodes[result.unique_id].name}: {result.message}",
                "error",
                unique_id=result.unique_id,
            )


BUILT_TYPES = ("model", "seed", "snapshot")


def _fingerprint(manifest: Manifest, compiler: Compiler, uid: str) -> str | None:
    node = manifest.nodes.get(uid)
    if node is None or node.resource_type not in BUILT_TYPES or node.is_ephemeral:
        return None  # sources, tests and ephemerals have no state of their own
    return state.fingerprint(node, compiler.sql_digest(uid))


def _select(
    session: Session,
    compiler: Compiler,
    select: Sequence[str],
    exclude: Sequence[str],
    resource_types: Sequence[str],
    state_dir: str | Path | None,
    selector: str | None = None,
    chosen: set[str] | None = None,
) -> list[str]:
    """Evaluate the selection, reading build state and last results only when a selector needs them."""
    manifest = session.manifest
    used = selection.methods_used(select, exclude)
    if selector:
        used |= {"state", "result"}  # a named selector may use either; reading them is cheap enough
    context = selection.Context()
    if "state" in used:
        if state_dir:
            context.state = state.Comparison(
                lambda uid: _fingerprint(manifest, compiler, uid),
                manifest=state.read_manifest_state(Path(state_dir)),
                checksum_of=lambda uid: manifest.nodes[uid].checksum,
            )
        else:
            adapter = (
                adapter_for(session.project.target) if not _warehouse_exists(session) else session.adapter
            )
            context.state = state.Comparison(
                lambda uid: _fingerprint(manifest, compiler, uid),
                recorded=state.WarehouseState(adapter).read(compiler.existing)
                if _warehouse_exists(session)
                else {},
                relation_of=lambda uid: state.relation_name(manifest.nodes[uid].relation, adapter.dialect),
            )
    if "result" in used:
        context.results = state.read_results(Path(state_dir) if state_dir else session.project.target_path)
    if selector:
        chosen = selection.named_selector(_selectors(session.project), selector, session.graph, context)
    return selection.select(session.graph, select, exclude, tuple(resource_types), context, chosen)


def _selectors(project: Project) -> dict[str, Any]:
    """Named selectors from selectors.yml in the project folder (dbt's file)."""
    path = project.root / "selectors.yml"
    if not path.exists():
        raise UserError("--selector needs a selectors.yml in the project folder", path=path)
    data = load_yaml(path) or {}
    entries = data.get("selectors") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UserError("selectors.yml must have a `selectors:` list", path=path, line=1)
    found = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or "definition" not in entry:
            raise UserError("each selector needs a `name` and a `definition`", path=path, line=line_of(entry))
        found[entry["name"]] = entry["definition"]
    return found


def retry(session: Session, *, cancel: threading.Event | None = None, lock_timeout: float = 0) -> RunOutcome:
    """Run again what errored, failed or was skipped in the last run, with its command and options.

    A failed test in `build` also rebuilds the node it tests. When the last run stopped before any
    node ran, the whole command runs again.
    """
    last = last_invocation(session.project.target_path)
    args, results = last["args"], last["results"]
    which = args.get("which")
    kinds = RUN_KINDS.get(which)
    if kinds is None:
        raise UserError(
            f"the last command was {which!r}, which retry cannot repeat",
            hint="retry repeats run, build, seed, test and snapshot",
        )
    options = {
        "resource_types": kinds,
        "full_refresh": bool(args.get("full_refresh")),
        "fail_fast": bool(args.get("fail_fast")),
        "command": which,
        "cancel": cancel,
        "lock_timeout": lock_timeout,
        "backfill": Backfill.from_options(args.get("event_time_start"), args.get("event_time_end")),
    }
    if not results:
        return run(
            session,
            args.get("select") or (),
            args.get("exclude") or (),
            selector=args.get("selector"),
            state_dir=args.get("state"),
            **options,
        )
    todo = {
        r["unique_id"] for r in results if r.get("status") in ("error", "fail", "skipped", "runtime error")
    }
    for uid in list(todo):
        node = session.manifest.nodes.get(uid)
        if node is not None and node.resource_type in ("test", "unit_test") and which == "build":
            todo |= {p for p in node.depends_on if p in session.manifest.nodes and p != uid}
    todo &= set(session.manifest.nodes)
    # A microbatch model that failed in some batches builds just those again.
    failed_batches = {
        r["unique_id"]: tuple(Batch.from_json(b) for b in r["batch_results"]["failed"])
        for r in results
        if r["unique_id"] in todo and (r.get("batch_results") or {}).get("failed")
    }
    if failed_batches:
        window = options["backfill"] or Backfill()
        options["backfill"] = Backfill(window.start, window.end, failed_batches)
    if not todo:
        session.emit("run_finished", "Nothing to retry: the last run succeeded.", counts={}, elapsed=0.0)
        return RunOutcome([], 0.0)
    outcome = run(session, chosen=todo, **options)
    return outcome


RUN_KINDS: dict[str, tuple[str, ...]] = {
    "run": ("model",),
    "seed": ("seed",),
    "snapshot": ("snapshot",),
    "test": ("test", "unit_test"),
    "build": ("seed", "model", "snapshot", "test", "unit_test"),
}


def last_invocation(target_path: Path) -> dict[str, Any]:
    """The last command's args and results: target/run_results.json, unless the command line
    recorded by the CLI is newer (that command stopped before writing any results)."""
    path = target_path / "run_results.json"
    invocation = target_path / artifacts.INVOCATION_FILE
    if invocation.exists() and (not path.exists() or invocation.stat().st_mtime_ns > path.stat().st_mtime_ns):
        return {"args": _read_json(invocation).get("args") or {}, "results": []}
    if not path.exists():
        raise UserError("nothing to retry: no run_results.json from an earlier run", path=path)
    data = _read_json(path)
    return {"args": data.get("args") or {}, "results": data.get("results") or []}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read the last run's results: {exc}", path=path) from exc
    return data if isinstance(data, dict) else {}


def seed(
    session: Session, select: Sequence[str] = (), exclude: Sequence[str] = (), **options: Any
) -> RunOutcome:
    return run(session, select, exclude, resource_types=RUN_KINDS["seed"], command="seed", **options)


def build(
    session: Session, select: Sequence[str] = (), exclude: Sequence[str] = (), **options: Any
) -> RunOutcome:
    """Seeds, models and tests in one DAG; a failing test skips what depends on the tested node."""
    return run(session, select, exclude, resource_types=RUN_KINDS["build"], command="build", **options)


def snapshot(
    session: Session, select: Sequence[str] = (), exclude: Sequence[str] = (), **options: Any
) -> RunOutcome:
    """Record the changes of the selected snapshots' queries (type-2 history tables)."""
    return run(session, select, exclude, resource_types=RUN_KINDS["snapshot"], command="snapshot", **options)


def test(
    session: Session, select: Sequence[str] = (), exclude: Sequence[str] = (), **options: Any
) -> RunOutcome:
    """Run the selected tests against relations already built."""
    return run(session, select, exclude, resource_types=RUN_KINDS["test"], command="test", **options)


def _writes_relation(node: Any) -> bool:
    if node.resource_type == "unit_test":
        return False
    return node.resource_type != "test" or bool(node.config.get("store_failures"))


def source_freshness(
    session: Session,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    output: str | Path | None = None,
    *,
    cancel: threading.Event | None = None,
) -> RunOutcome:
    """Check how long ago the selected sources were loaded; write target/sources.json (or `output`)."""
    uids = selection.select(session.graph, select, exclude, ("source",))
    outcome = freshness.run(session, uids, select=select, output=output, cancel=cancel)
    _emit_summary(session, outcome)
    return outcome


# on_retry(node, attempt, attempts, error, delay): `attempt` of `attempts` failed; next in `delay` s.
RetryHook = Callable[[Node, int, int, WarehouseError, int], None]


def build_node(
    adapter: Adapter,
    compiler: Compiler,
    compiled: CompiledNode,
    *,
    full_refresh: bool,
    on_retry: RetryHook | None = None,
    cancel: threading.Event | None = None,
    backfill: Backfill | None = None,
    intervals: state.IntervalStore | None = None,
) -> NodeResult:
    """Build one model, seed or snapshot, retrying transient warehouse errors.

    An error `adapter.is_transient` accepts is retried up to the node's `retries` times,
    `retry_delay` seconds apart, calling `on_retry` before each wait; setting `cancel` ends the wait
    (and the node). Every materialization runs in one transaction, so a failed attempt leaves
    nothing behind.
    """
    node = compiled.node
    assert node.relation is not None
    started_at, clock = now_iso(), time.perf_counter()
    thread = threading.current_thread().name
    attempts = 1 + int(node.config.get("retries") or 0)
    delay = node.config.get("retry_delay")
    delay = 1 if delay is None else int(delay)
    failed: list[str] = []  # "attempt 1 of 3 failed: ..." for each attempt retried
    extra: dict[str, Any] = {}

    def batch_retry(batch: Batch, attempt: int, attempts: int, error: WarehouseError, delay: int) -> None:
        if on_retry is not None:
            on_retry(node, attempt, attempts, WarehouseError(f"batch {batch}: {error}"), delay)

    timeout = node.config.get("timeout")
    for attempt in range(1, attempts + 1):
        limit = _TimeLimit(adapter, timeout)
        try:
            with limit:
                _run_hooks(adapter, compiled.pre_hooks, "pre-hook")
                if _is_microbatch(node):
                    outcome = _build_microbatch(
                        adapter,
                        compiler,
                        compiled,
                        intervals or state.IntervalStore(adapter),
                        backfill=backfill,
                        on_retry=batch_retry,
                        cancel=cancel,
                    )
                else:
                    outcome = _materialize_node(adapter, compiler, compiled, full_refresh=full_refresh)
                _run_hooks(adapter, compiled.post_hooks, "post-hook")
        except (WarehouseError, BuildError) as raised:
            exc: WarehouseError | BuildError = raised
            if limit.expired.is_set():  # the interrupt's own error says nothing about why
                exc = BuildError(
                    f"cancelled after {timeout} s, its timeout (config timeout); the previous relation is unchanged"
                )
            status, message, rows = "error", str(exc), None
            if isinstance(exc, BatchesFailed):
                extra["batch_results"] = exc.batch_results
            if failed:
                message = "\n".join([*failed, f"attempt {attempt} of {attempts} failed: {exc}"])
            if isinstance(exc, WarehouseError) and attempt < attempts and adapter.is_transient(exc):
                failed.append(f"attempt {attempt} of {attempts} failed: {exc}")
                if on_retry is not None:
                    on_retry(node, attempt, attempts, exc, delay)
                if (cancel or threading.Event()).wait(delay):
                    message = "\n".join([*failed, "cancelled while waiting to retry"])
                    break
                continue
        else:
            status, message, rows = "success", outcome.message, outcome.rows
            if outcome.batch_results is not None:
                extra["batch_results"] = outcome.batch_results
            if failed:
                retried = f"{len(failed)} time{'s' if len(failed) > 1 else ''}"
                message += f" (retried {retried}; succeeded on attempt {attempt} of {attempts})"
        break
    return NodeResult(
        node.unique_id,
        status,
        message,
        rows,
        time.perf_counter() - clock,
        started_at,
        now_iso(),
        thread,
        extra={**extra, "retries": len(failed)} if failed else extra,
    )


class _TimeLimit:
    """Interrupts the calling thread's statements once `seconds` have passed, and again every
    0.2 s until the block ends: an interrupt that lands between two statements is lost."""

    def __init__(self, adapter: Adapter, seconds: float | None) -> None:
        self.adapter, self.seconds = adapter, seconds
        self.expired, self._finished = threading.Event(), threading.Event()
        self._watcher: threading.Thread | None = None

    def __enter__(self) -> _TimeLimit:
        if not self.seconds:
            return self
        cancel_statement = self.adapter.statement_canceller()
        if cancel_statement is None:
            raise BuildError(f"config timeout is not supported on {self.adapter.type} targets")

        def watch() -> None:
            if self._finished.wait(self.seconds):
                return
            self.expired.set()
            while True:
                cancel_statement()
                if self._finished.wait(0.2):
                    return

        self._watcher = threading.Thread(target=watch, name="sqlflow-timeout", daemon=True)
        self._watcher.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._finished.set()
        if self._watcher is not None:
            self._watcher.join()


def _is_microbatch(node: Node) -> bool:
    return (
        node.resource_type == "model"
        and node.materialized == "incremental"
        and strategy_of(node) == "microbatch"
    )


def _build_microbatch(
    adapter: Adapter,
    compiler: Compiler,
    compiled: CompiledNode,
    intervals: state.IntervalStore,
    *,
    backfill: Backfill | None,
    on_retry: Callable[[Batch, int, int, WarehouseError, int], None],
    cancel: threading.Event | None,
) -> Outcome:
    """Plan a microbatch model's batches from its recorded intervals and build them."""
    node = compiled.node
    assert node.relation is not None
    config = MicrobatchConfig.of(node.config, node.path)
    existing = compiler.relation_kind(node.relation)
    rebuild = not compiled.is_incremental
    now = compiler.manifest.run_started_at.replace(tzinfo=None)
    done = intervals.read(node)
    only = (backfill.batches or {}).get(node.unique_id) if backfill is not None else None
    if only is not None and not rebuild:
        batches = list(only)
    else:
        batches = plan(config, done, now, rebuild=rebuild, backfill=backfill)
    if not batches:
        if not rebuild:
            return Outcome("MICROBATCH nothing to do", 0, {"successful": [], "failed": []})
        # `begin` is in the future: an empty table, so that models reading it can build.
        batches = [Batch(config.begin, config.begin)]
    recorded = Intervals() if rebuild else done

    def record(built: Sequence[Batch]) -> None:
        for batch in built:
            if complete(batch, now):
                recorded.add(batch.start, batch.end)
        intervals.write(node, recorded)

    return build_batches(
        adapter,
        node,
        batches,
        lambda batch: compiler.batch_query(node.unique_id, batch),
        event_time_expression(config.event_time, compiler.dialect),
        record,
        rebuild=rebuild,
        existing_kind=existing,
        contract=Contract(node, compiled.dialect or adapter.dialect) if node.contract_enforced else None,
        on_retry=on_retry,
        cancel=cancel,
    )


def _run_hooks(adapter: Adapter, hooks: list[str], key: str) -> None:
    """A node's pre-hooks (before its build) or post-hooks (after it), each on its own, in order."""
    for number, hook in enumerate(hooks, 1):
        try:
            adapter.execute(hook)
        except WarehouseError as exc:
            raise BuildError(f"{key} {number} of {len(hooks)} failed: {exc}") from exc


def _materialize_node(
    adapter: Adapter, compiler: Compiler, compiled: CompiledNode, *, full_refresh: bool
) -> Outcome:
    node = compiled.node
    assert node.relation is not None
    existing = compiler.relation_kind(node.relation)
    if node.resource_type == "snapshot":
        return snapshots.materialize_snapshot(
            adapter,
            node.relation,
            compiled.sql,
            node.config,
            existing_kind=existing,
            dialect_of_select=compiler.dialect,
        )
    return materialize(adapter, compiled, existing, full_refresh=full_refresh)


def run_test(adapter: Adapter, compiler: Compiler, compiled: CompiledNode) -> NodeResult:
    """Count a test's failing rows (storing them first with store_failures) and judge the count."""
    node, config = compiled.node, compiled.config
    started_at, clock = now_iso(), time.perf_counter()
    thread = threading.current_thread().name
    rows_sql, stored, failures = compiled.sql, None, None
    try:
        if config.get("store_failures") and node.relation is not None:
            replace_table(
                adapter, node.relation, exp.Var(this=compiled.sql), compiler.relation_kind(node.relation)
            )
            stored = node.relation.sql(adapter.dialect)
            rows_sql = exp.select("*").from_(node.relation.table()).sql(dialect=adapter.dialect)
        query = data_tests.failures_query(rows_sql, config, adapter.dialect)
        value = adapter.execute(query, fetch=True).rows[0][0]
        failures = int(value or 0)
        verdict = data_tests.judge(failures, config)
        status, message = verdict.status, verdict.message
        if status != "pass":
            message += _reproduce(compiler, compiled, stored)
    except (WarehouseError, BuildError) as exc:
        status, message = "error", str(exc)
    return NodeResult(
        node.unique_id,
        status,
        message,
        None,
        time.perf_counter() - clock,
        started_at,
        now_iso(),
        thread,
        extra={"failures": failures},
    )


def run_unit_test(adapter: Adapter, compiler: Compiler, compiled: CompiledNode) -> NodeResult:
    """Run a model's SQL on the unit test's given rows and compare with the expected rows."""
    node = compiled.node
    started_at, clock = now_iso(), time.perf_counter()
    manifest = compiler.manifest
    model = manifest.nodes[node.attached_node]

    def columns_of(given: dict[str, Any]) -> list[tuple[str, str]] | None:
        if given["kind"] == "this":
            relation = model.relation
        elif given["kind"] == "source":
            source_name, table_name = given["name"].split(".", 1)
            relation = next(
                s.relation
                for s in manifest.sources.values()
                if (s.source_name, s.name) == (source_name, table_name)
            )
        else:
            # The node the model's ref names: a package's model when the project has none of that name.
            upstream = manifest.resolver().ref(given["name"], None, model.package_name)
            if upstream is None:
                return None
            relation = None if upstream.is_ephemeral else upstream.relation
        if relation is None or compiler.relation_kind(relation) is None:
            return None
        if not adapter.typed_columns:  # SQLite's affinities are no types to cast the given rows to
            return [(name, "") for name, _ in adapter.columns(relation)]
        return adapter.columns(relation)

    try:
        outcome = unit_tests.execute(adapter, compiled.sql, node.test_metadata, columns_of)
        status, message = outcome.status, outcome.message
    except (WarehouseError, BuildError, UserError) as exc:
        status, message = "error", str(exc)
    return NodeResult(
        node.unique_id,
        status,
        message,
        None,
        time.perf_counter() - clock,
        started_at,
        now_iso(),
        threading.current_thread().name,
    )


def _reproduce(compiler: Compiler, compiled: CompiledNode, stored: str | None) -> str:
    """How to look at the failing rows: the stored table, or the query and its compiled file."""
    if stored:
        return f"\nfailing rows stored in {stored}"
    path = compiler.project.relpath(artifacts.compiled_path(compiler.manifest, compiled.node))
    lines = compiled.sql.strip().splitlines()
    shown = "\n".join("  " + line for line in lines[:25])
    more = f"\n  ... ({len(lines) - 25} more lines)" if len(lines) > 25 else ""
    return f"\nfailing rows: run the query in {path}:\n{shown}{more}"


def _create_schemas(adapter: Adapter, nodes: list[Any], compiler: Compiler) -> None:
    existing_schemas = {schema for schema, _ in compiler.existing}
    wanted = {(n.relation.database, n.relation.schema) for n in nodes if n.relation is not None}
    for database, schema in sorted(wanted, key=str):
        if adapter.key(schema, "")[0] not in existing_schemas:
            try:
                adapter.create_schema(schema, database)
            except WarehouseError as exc:
                raise UserError(f"cannot create schema {schema!r}: {exc}") from exc


class _Counter:
    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            self._value += 1
            return self._value


def _emit_summary(session: Session, outcome: RunOutcome) -> None:
    counts: dict[str, int] = {}
    for result in outcome.results:
        counts[result.status] = counts.get(result.status, 0) + 1
    if outcome.interrupted:
        message, level = "Interrupted.", "error"
    elif outcome.failed:
        message, level = "Finished with errors.", "error"
    else:
        message, level = "Done.", "info"
    session.emit("run_finished", message, level, counts=counts, elapsed=outcome.elapsed)


# --------------------------------------------------------------------------- show / debug / clean


def show(
    session: Session, select: Sequence[str], limit: int = 10, exclude: Sequence[str] = ()
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Preview the rows a model returns (its compiled SELECT, limited), without building it."""
    uids = selection.select(session.graph, select, exclude, ("model", "seed"))
    if len(uids) != 1:
        raise UserError(
            f"--select must pick exactly one model for show; it picked {len(uids)}",
            hint="use the model's name, e.g. --select orders",
        )
    node = session.manifest.nodes[uids[0]]
    if node.resource_type == "seed":
        query: exp.Expression = exp.select("*").from_(node.relation.table()).limit(limit)
    else:
        compiled = _compile_all(session, uids, _compiler(session))[uids[0]]
        inner = exp.Subquery(
            this=exp.Var(this=compiled.sql), alias=exp.TableAlias(this=exp.to_identifier("preview"))
        )
        query = exp.select("*").from_(inner).limit(limit)
    try:
        result = session.adapter.execute(query, fetch=True)
    except WarehouseError as exc:
        raise UserError(session.project.secrets.mask(f"{node.name}: {exc}"), path=node.path) from exc
    return result.columns, result.rows


def debug(session: Session) -> dict[str, Any]:
    """Settings and a connection check; secrets are masked."""
    project = session.project
    report: dict[str, Any] = {
        "project": str(project.root),
        "settings": str(project.settings_path),
        "profiles": str(project.target.profiles_path),
        "profile": project.target.profile_name,
        "target": project.target.name,
        "target_settings": project.target.public_settings(),
        "models": sum(1 for n in session.manifest.nodes.values() if n.resource_type == "model"),
        "seeds": sum(1 for n in session.manifest.nodes.values() if n.resource_type == "seed"),
        "sources": len(session.manifest.sources),
        "macros": len(session.manifest.macros),
    }
    try:
        session.adapter.execute(exp.select(exp.Literal.number(1)), fetch=True)
        report["connection"] = f"OK ({session.adapter.describe()})"
    except (UserError, WarehouseError) as exc:
        report["connection"] = f"FAILED: {project.secrets.mask(str(exc))}"
    return report


def run_operation(session: Session, macro: str, args: dict[str, Any], *, lock_timeout: float = 0) -> None:
    """Run one macro on the warehouse, as dbt's run-operation: its log() lines are `log` events."""
    session.lock_target(lock_timeout)
    compiler = _compiler(session, connect=True)
    compiler.run_macro(macro, args, log=lambda message: session.emit("log", message))


def deps(
    root: Path, settings: dict[str, Any], *, upgrade: bool = False, lock_only: bool = False
) -> packages.Deps:
    """Install the packages of packages.yml, and theirs, into `packages-install-path`
    (dbt_packages/) as package-lock.yml pins them (`upgrade`: resolving them again; `lock_only`:
    writing the lock, installing nothing). None listed (or no packages.yml) installs nothing and
    leaves that folder alone, as dbt does."""
    return packages.install(root, settings, upgrade=upgrade, lock_only=lock_only)


def clean(root: Path, settings: dict[str, Any]) -> list[Path]:
    """Delete target/ and the settings' clean-targets (only folders inside the project)."""
    names = settings.get("clean-targets") or [settings.get("target-path", "target")]
    removed = []
    for name in names:
        path = (root / str(name)).resolve()
        if root not in path.parents:
            raise UserError(
                f"clean-targets entry {name!r} is outside the project",
                path=root / "sqlflow.yml",
                hint="list only folders inside the project",
            )
        if path.exists():
            shutil.rmtree(path)
            removed.append(path)
    return removed
