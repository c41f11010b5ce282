"""The `sqlflow` command line: parses options and calls `sqlflow.commands`.

Exit codes: 0 success, 1 a model failed, 2 a project/config/command-line error, 130 interrupted.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import gc
import json
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__, artifacts, commands, scaffold, selection
from .errors import UserError
from .events import ConsoleReporter, EventHandler, JsonReporter, Printer
from .microbatch import Backfill
from .project import parse_vars, read_settings

EXIT_OK, EXIT_FAILED, EXIT_USER_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--project-dir",
            type=click.Path(file_okay=False),
            default=".",
            show_default=True,
            help="Folder with sqlflow.yml or dbt_project.yml.",
        ),
        click.option(
            "--profiles-dir",
            type=click.Path(file_okay=False),
            default=None,
            help="Folder with profiles.yml (default: $SQLFLOW_PROFILES_DIR, the project, ~/.sqlflow).",
        ),
        click.option(
            "--target", "-t", default=None, help="Profile target to use (default: the profile's `target`)."
        ),
        click.option(
            "--vars", "vars_text", default=None, help="YAML or JSON mapping, e.g. '{start: 2024-01-01}'."
        ),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="Models built at once."),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="json: one JSON object per event and line.",
        ),
        click.option("--no-cache", is_flag=True, help="Parse every file again, ignoring target/ caches."),
        click.option("--debug", is_flag=True, help="Show Python tracebacks for errors."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class _ManyValues(click.Option):
    """An option that takes every following word up to the next option, as dbt's `-s a b`."""

    def add_to_parser(self, parser, ctx):
        result = super().add_to_parser(parser, ctx)
        for name in self.opts:
            option = parser._long_opt.get(name) or parser._short_opt.get(name)
            if option is None:
                continue
            process = option.process

            def greedy(value, state, process=process):
                process(value, state)
                while state.rargs and not state.rargs[0].startswith("-"):
                    process(state.rargs.pop(0), state)

            option.process = greedy
        return result


def _selection(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--exclude", multiple=True, cls=_ManyValues, help="Selectors of nodes to leave out.")(
        func
    )
    return click.option(
        "--select",
        "-s",
        "--models",
        "-m",
        "select",
        multiple=True,
        cls=_ManyValues,
        help="Selectors: name, +name, name+, +name+, tag:x, path:..., ...; several may follow.",
    )(func)


def _state_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--state",
        "state_dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Compare state: and result: selectors with this earlier run's target/ (default: the warehouse's state).",
    )(func)
    return click.option("--selector", default=None, help="A named selector from selectors.yml.")(func)


def _lock_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-timeout",
        type=click.FloatRange(min=0),
        default=0,
        show_default=True,
        metavar="SECONDS",
        help="How long to wait for another run holding the target's lock before giving up (exit 2).",
    )(func)


def _handled(func: Callable[..., int | None]) -> Callable[..., None]:
    """Turn errors into a message and an exit code; tracebacks only with --debug."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        debug = kwargs.get("debug", False)
        err = Printer(sys.stderr)
        try:
            code = func(*args, **kwargs) or EXIT_OK
        except UserError as exc:
            if debug:
                traceback.print_exc()
            err.line(("Error:", "red"), (f" {exc}", ""))
            code = exc.exit_code
        except KeyboardInterrupt:
            err.line(("Interrupted.", ""))
            code = EXIT_INTERRUPTED
        except Exception as exc:
            if debug:
                traceback.print_exc()
            err.line(("Internal error:", "red"), (f" {type(exc).__name__}: {exc}", ""))
            if not debug:
                err.line(("Run again with --debug for the traceback, and please report it.", ""))
            code = EXIT_FAILED
        sys.exit(code)

    return wrapper


def _reporter(log_format: str, mask: Callable[[str], str] = str) -> EventHandler:
    return JsonReporter(mask) if log_format == "json" else ConsoleReporter(mask)


def _session(options: dict[str, Any], *, fingerprints: bool = False) -> commands.Session:
    vars_ = parse_vars(options.get("vars_text"))
    holder: dict[str, EventHandler] = {}

    def forward(event):
        holder["handler"](event)

    holder["handler"] = _reporter(options["log_format"])
    session = commands.open_session(
        options["project_dir"],
        profiles_dir=options.get("profiles_dir"),
        target=options.get("target"),
        vars=vars_,
        threads=options.get("threads"),
        on_event=forward,
        use_cache=not options.get("no_cache"),
        fingerprints=fingerprints,
    )
    holder["handler"] = _reporter(options["log_format"], session.project.secrets.mask)
    return session


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sqlflow")
def main() -> None:
    """Build, test and document a warehouse from a folder of SQL SELECT files."""
    # A command holds tens of thousands of long-lived objects (nodes, programs, YAML), which every
    # full garbage collection walks again: a quarter of a 5,000-model compile (docs/benchmarks.md).
    # Young collections still free short-lived cycles (sqlglot trees), so memory stays flat. Put
    # back afterwards: main() also runs inside other processes (tests, CliRunner).
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], 1_000_000)
    click.get_current_context().call_on_close(lambda: gc.set_threshold(*thresholds))


def _run_command(kind: str):
    def command(
        select,
        exclude,
        fail_fast,
        state_dir,
        selector,
        full_refresh=False,
        event_time_start=None,
        event_time_end=None,
        lock_timeout=0.0,
        **options,
    ):
        selection.methods_used(select, exclude)  # a malformed selector stops here, before anything is kept
        backfill = Backfill.from_options(event_time_start, event_time_end)
        _record_invocation(
            options,
            which=kind,
            select=list(select),
            exclude=list(exclude),
            selector=selector,
            state=state_dir,
            full_refresh=full_refresh,
            fail_fast=fail_fast,
            event_time_start=event_time_start,
            event_time_end=event_time_end,
        )
        with _session(options, fingerprints=True) as session, _cancel_on_sigint() as cancel:
            function = {
                "run": commands.run,
                "seed": commands.seed,
                "build": commands.build,
                "test": commands.test,
                "snapshot": commands.snapshot,
            }[kind]
            outcome = function(
                session,
                select,
                exclude,
                full_refresh=full_refresh,
                fail_fast=fail_fast,
                cancel=cancel,
                state_dir=state_dir,
                selector=selector,
                backfill=backfill,
                lock_timeout=lock_timeout,
            )
        if outcome.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if outcome.failed else EXIT_OK

    return command


@contextlib.contextmanager
def _cancel_on_sigint():
    """The first Ctrl-C asks the run to stop (an event, not an exception); a second one forces it."""
    cancel = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def handle(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handle)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


for _kind, _help in (
    ("run", "Build the selected models (views, tables, incremental) in dependency order."),
    ("seed", "Load the CSV files in seeds/ into tables."),
    (
        "build",
        "Load seeds, build models and run their tests in one DAG; a failed test skips what is downstream.",
    ),
    ("test", "Run the data tests of the selected nodes against what is built."),
    ("snapshot", "Record what changed in the rows of each snapshot's query (type-2 history)."),
):
    _cmd = _run_command(_kind)
    _cmd.__name__ = _kind
    _cmd.__doc__ = _help
    _cmd = _handled(_cmd)
    _cmd = _common(_cmd)
    _cmd = _selection(_cmd)
    _cmd = _state_options(_cmd)
    _cmd = click.option("--fail-fast", "-x", is_flag=True, help="Stop at the first failure.")(_cmd)
    if _kind != "test":
        _cmd = _lock_option(_cmd)
    if _kind not in ("test", "snapshot"):
        _cmd = click.option(
            "--full-refresh", "-f", is_flag=True, help="Rebuild incremental models from scratch."
        )(_cmd)
    if _kind in ("run", "build"):
        _cmd = click.option(
            "--event-time-end",
            metavar="TIME",
            help="End (excluded) of the window microbatch models build; needs --event-time-start.",
        )(_cmd)
        _cmd = click.option(
            "--event-time-start",
            metavar="TIME",
            help="Start of the window microbatch models build, e.g. 2024-03-01 (UTC).",
        )(_cmd)
    main.command(name=_kind, help=_help)(_cmd)


@main.group(name="source")
def source_group() -> None:
    """Commands on sources."""


@source_group.command(name="freshness")
@_selection
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the results to this file instead of target/sources.json.",
)
@_common
@_handled
def source_freshness(select, exclude, output, **options):
    """Check how long ago the selected sources were loaded against their freshness thresholds."""
    with _session(options) as session, _cancel_on_sigint() as cancel:
        outcome = commands.source_freshness(session, select, exclude, output, cancel=cancel)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcome.failed else EXIT_OK


@main.command()
@_lock_option
@_common
@_handled
def retry(lock_timeout, **options):
    """Run again what errored, failed or was skipped in the last run, with the same command and options."""
    last = commands.last_invocation(_target_path(options["project_dir"]))["args"]
    # The last run's target, vars and threads, unless given again here.
    options["target"] = options.get("target") or last.get("target")
    options["threads"] = options.get("threads") or last.get("threads")
    if not options.get("vars_text") and last.get("vars"):
        options["vars_text"] = json.dumps(last["vars"])
    with _session(options, fingerprints=True) as session, _cancel_on_sigint() as cancel:
        outcome = commands.retry(session, cancel=cancel, lock_timeout=lock_timeout)
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if outcome.failed else EXIT_OK


def _record_invocation(options: dict[str, Any], **args: Any) -> None:
    """The command as given, kept before the project loads (a load error is retried too)."""
    try:
        target_path = _target_path(options["project_dir"])
    except (UserError, OSError):
        return  # no readable settings: the session reports that
    args.update(
        target=options.get("target"),
        threads=options.get("threads"),
        vars=parse_vars(options.get("vars_text")),
    )
    if target_path.parent.is_dir():
        artifacts.write_invocation(target_path, args)


def _target_path(project_dir: str) -> Path:
    root = Path(project_dir).resolve()
    _, settings = read_settings(root)
    return root / str(settings.get("target-path", "target"))


@main.command()
@_selection
@_common
@_handled
def compile(select, exclude, **options):
    """Render the selected models to target/compiled/ and check their SQL."""
    with _session(options) as session:
        compiled = commands.compile(session, select, exclude)
        if len(select) == 1 and len(compiled) == 1 and options["log_format"] == "text":
            click.echo(session.project.secrets.mask(next(iter(compiled.values())).sql))
        else:
            session.emit(
                "compiled",
                f"Compiled {len(compiled)} models to "
                f"{session.project.relpath(session.project.target_path / 'compiled')}/",
            )


@main.group(name="docs")
def docs_group() -> None:
    """The documentation site: lineage graph, column lineage, model pages."""


@docs_group.command(name="generate")
@_selection
@_common
@_handled
def docs_generate(select, exclude, **options):
    """Write the docs site (with column-level lineage) to target/docs/."""
    with _session(options) as session:
        commands.docs_generate(session, select, exclude)


@docs_group.command(name="serve")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface)."
)
@click.option("--open", "open_browser", is_flag=True, help="Open the site in a web browser.")
@click.option("--project-dir", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option("--debug", is_flag=True, hidden=True)
@_handled
def docs_serve(port, host, open_browser, project_dir, debug):
    """Serve target/docs/ over HTTP until Ctrl-C."""
    from . import docs_site  # imported here: http.server and the site cost every other command 40 ms

    server = docs_site.make_server(_target_path(project_dir) / "docs", host, port)
    url = docs_site.url_of(server)
    click.echo(f"Serving the docs at {url} (Ctrl-C to stop)")
    if open_browser:
        docs_site.open_in_browser(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("Stopped.")
    finally:
        server.server_close()


@main.command(name="ls")
@_selection
@_state_options
@click.option(
    "--resource-type",
    "resource_types",
    multiple=True,
    type=click.Choice(["model", "seed", "snapshot", "test", "unit_test", "source", "exposure"]),
    help="Only these kinds (repeatable).",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["name", "path", "json", "selector"]),
    default="selector",
    show_default=True,
)
@_common
@_handled
def ls_command(select, exclude, resource_types, output, state_dir, selector, **options):
    """List the nodes a selector picks."""
    with _session(options) as session:
        kinds = resource_types or ("model", "seed", "snapshot", "test", "unit_test", "source", "exposure")
        for resource in commands.ls(session, select, exclude, kinds, state_dir=state_dir, selector=selector):
            is_source = hasattr(resource, "source_name")
            kind = "source" if is_source else resource.resource_type
            if output == "name":
                click.echo(f"{resource.source_name}.{resource.name}" if is_source else resource.name)
            elif output == "path":
                click.echo(resource.path if is_source else resource.original_file_path)
            elif output == "json":
                click.echo(
                    json.dumps(
                        {
                            "unique_id": resource.unique_id,
                            "name": resource.name,
                            "resource_type": kind,
                            "path": resource.path if is_source else resource.original_file_path,
                            "materialized": getattr(resource, "materialized", None),
                            "tags": resource.tags,
                        }
                    )
                )
            else:  # dbt's form: sources and exposures carry their kind
                fqn = ".".join(resource.fqn)
                click.echo(f"{kind}:{fqn}" if kind in ("source", "exposure") else fqn)


@main.command()
@_selection
@click.option("--limit", type=click.IntRange(min=0), default=10, show_default=True, help="Rows to show.")
@_common
@_handled
def show(select, exclude, limit, **options):
    """Preview the rows of one model without building it."""
    with _session(options) as session:
        columns, rows = commands.show(session, select, limit, exclude)
    if options["log_format"] == "json":
        click.echo(json.dumps({"columns": columns, "rows": [list(r) for r in rows]}, default=str))
        return
    # Only `show` draws a table: rich is imported here, not by every command's start.
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*("NULL" if v is None else str(v) for v in row))
    Console(highlight=False).print(table)


@main.command()
@_common
@_handled
def debug(**options):
    """Show settings, profile and target (secrets masked) and check the connection."""
    with _session(options) as session:
        report = commands.debug(session)
    for key, value in report.items():
        if isinstance(value, dict):
            click.echo(f"{key}:")
            for k, v in value.items():
                click.echo(f"  {k}: {v}")
        else:
            click.echo(f"{key}: {value}")
    return EXIT_OK if str(report["connection"]).startswith("OK") else EXIT_USER_ERROR


@main.command()
@click.argument("name")
@click.option("--debug", is_flag=True, hidden=True)
@_handled
def init(name, debug):
    """Create a new project in the folder NAME."""
    path = scaffold.create(Path(name))
    click.echo(f"Created {path}. Next: cd {name} && sqlflow build")


@main.command(name="run-operation")
@click.argument("macro")
@click.option(
    "--args",
    "macro_args",
    default=None,
    metavar="YAML",
    help="The macro's keyword arguments, a YAML or JSON mapping.",
)
@_lock_option
@_common
@_handled
def run_operation(macro, macro_args, lock_timeout, **options):
    """Run the macro MACRO (package.macro for a package's) against the warehouse."""
    args = parse_vars(macro_args, "--args")
    with _session(options) as session:
        commands.run_operation(session, macro, args, lock_timeout=lock_timeout)


@main.command()
@click.option("--project-dir", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option(
    "--upgrade",
    is_flag=True,
    help="Ignore package-lock.yml: resolve packages.yml again (newest matching versions) and rewrite it.",
)
@click.option(
    "--lock",
    "lock_only",
    is_flag=True,
    help="Resolve the packages and write package-lock.yml; install nothing.",
)
@click.option("--debug", is_flag=True, hidden=True)
@_handled
def deps(project_dir, upgrade, lock_only, debug):
    """Install the packages of packages.yml, and theirs, into dbt_packages/ (pinned by package-lock.yml)."""
    root = Path(project_dir).resolve()
    _, settings = read_settings(root)
    done = commands.deps(root, settings, upgrade=upgrade, lock_only=lock_only)
    if not done.pins and not done.from_lock:
        click.echo("no packages to install: packages.yml (or dependencies.yml) lists none", err=True)
        return
    if done.from_lock:
        if lock_only:
            click.echo(
                "package-lock.yml is current for packages.yml: nothing to do (--upgrade resolves again)"
            )
            return
        click.echo("installing the packages package-lock.yml pins (--upgrade resolves packages.yml again)")
    for pin, package in done.installed:
        click.echo(f"installed {package.name} ({pin.describe()}) in {package.root}")
    if done.lock_written:
        names = ", ".join(f"{pin.name} ({pin.describe()})" for pin in done.pins)
        click.echo(f"wrote package-lock.yml: {names}" + ("; nothing installed (--lock)" if lock_only else ""))


@main.command()
@click.option("--project-dir", type=click.Path(file_okay=False), default=".", show_default=True)
@click.option("--debug", is_flag=True, hidden=True)
@_handled
def clean(project_dir, debug):
    """Delete target/ and the other clean-targets."""
    root = Path(project_dir).resolve()
    _, settings = read_settings(root)
    for path in commands.clean(root, settings):
        click.echo(f"removed {path}")


def entry() -> None:
    """The `sqlflow` executable: main(), then an exit without the interpreter's teardown.

    Freeing a loaded project object by object at exit costs ~80 ms at 5,000 models, a tenth of a
    `run` with nothing to do (docs/benchmarks.md); the operating system frees it all at once.
    Output is flushed and the atexit handlers registered after this one (thread pools, process
    pools) still run. main() stays an ordinary click command for tests and Python callers.
    """
    status = [1]  # an exception other than SystemExit: Python's traceback, then exit status 1

    def exit_now() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):  # a closed pipe must not stop the exit
                stream.flush()
        os._exit(status[0])

    atexit.register(exit_now)  # handlers run last registered first: this one runs last
    try:
        main()
    except SystemExit as exc:
        code = exc.code
        status[0] = 0 if code is None else code if isinstance(code, int) else 1
        raise


if __name__ == "__main__":
    entry()
