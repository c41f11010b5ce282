"""One stream of events for the terminal and for `--log-format json`; no other module prints.

Library functions take an `on_event` callable; the CLI passes a reporter. Every text a reporter
writes goes through the project's secret mask first.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from .runner import NodeResult, now_iso


@dataclass
class Event:
    name: str
    message: str = ""
    level: str = "info"
    data: dict[str, Any] = field(default_factory=dict)


def node_started(index: int, total: int, uid: str, name: str, kind: str) -> Event:
    return Event(
        "node_started",
        data={"index": index, "total": total, "unique_id": uid, "name": name, "materialized": kind},
    )


def node_finished(index: int, total: int, name: str, kind: str, result: NodeResult) -> Event:
    return Event(
        "node_finished",
        message=result.message,
        level="error" if result.failed else "info",
        data={"index": index, "total": total, "name": name, "materialized": kind, **_result_data(result)},
    )


def _result_data(result: NodeResult) -> dict[str, Any]:
    data = asdict(result)
    data.pop("extra")
    return data


EventHandler = Callable[[Event], None]


def ignore(event: Event) -> None:
    """An event handler that drops everything (the default for library callers)."""


STATUS_STYLE = {
    "success": "green",
    "pass": "green",
    "error": "red",
    "fail": "red",
    "runtime error": "red",
    "warn": "yellow",
    "skipped": "yellow",
}
STATUS_WORD = {
    "success": "OK",
    "pass": "PASS",
    "error": "ERROR",
    "fail": "FAIL",
    "runtime error": "ERROR",  # a query that failed in `source freshness`, counted with errors as in dbt
    "warn": "WARN",
    "skipped": "SKIP",
}


Segment = tuple[str, str]  # text, and its rich style ("" for none)


class Printer:
    """Lines of styled text on a stream: through rich on a terminal (colours, a progress line),
    as plain text elsewhere. Off a terminal rich is never imported: 25-50 ms of every command's
    start, a tenth of an unchanged compile."""

    def __init__(self, stream: IO[str], force_terminal: bool | None = None) -> None:
        self.stream = stream
        self.is_terminal = _is_terminal(stream) if force_terminal is None else force_terminal
        self._console: Any = None

    @property
    def console(self) -> Any:
        """rich's Console on this stream (on a terminal)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.stream, force_terminal=self.is_terminal, highlight=False, soft_wrap=True
            )
        return self._console

    def line(self, *segments: Segment) -> None:
        if self.is_terminal:
            from rich.text import Text

            # A Text is printed as it is: no markup or emoji codes read in names and messages.
            self.console.print(Text.assemble(*segments))
        else:
            self.stream.write("".join(text for text, _ in segments) + "\n")
            self.stream.flush()  # stdout and stderr lines stay in the order they were written


def _is_terminal(stream: IO[str]) -> bool:
    if os.environ.get("FORCE_COLOR"):  # as rich reads it
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class ConsoleReporter:
    """Human output: one line per finished node, then a summary; colours and progress on a TTY."""

    def __init__(
        self,
        mask: Callable[[str], str] = str,
        stream: IO[str] | None = None,
        force_terminal: bool | None = None,
    ) -> None:
        self.out = Printer(stream or sys.stdout, force_terminal)
        self.errors = Printer(sys.stderr if stream is None else stream, force_terminal)
        self.mask = mask
        self._lock = threading.Lock()
        self._status: Any = None
        self.closed = False

    def __call__(self, event: Event) -> None:
        with self._lock:
            if self.closed:
                return
            try:
                self._handle(event)
            except (BrokenPipeError, SystemExit):
                # `sqlflow run | head`: the reader left. Keep building; stop printing.
                # (rich turns a broken pipe into SystemExit.)
                self.closed = True

    def _handle(self, event: Event) -> None:
        handler = getattr(self, f"_on_{event.name}", None)
        if handler:
            handler(event)
        elif event.message:
            style = {"warning": "yellow", "error": "red"}.get(event.level, "")
            # Warnings and errors go to stderr so that stdout stays parseable (ls --output json).
            target = self.errors if event.level in ("error", "warning") else self.out
            target.line((self.mask(event.message), style))

    def _on_run_started(self, event: Event) -> None:
        self.out.line((self.mask(event.message), ""))
        if self.out.is_terminal and event.data.get("total"):
            self._status = self.out.console.status(f"0/{event.data['total']} done")
            self._status.start()

    def _on_node_started(self, event: Event) -> None:
        pass

    def _on_node_finished(self, event: Event) -> None:
        d = event.data
        status = d["status"]
        width = len(str(d["total"]))
        rows = f" {d['rows']} rows" if d.get("rows") is not None else ""
        timing = f"{d['execution_time']:.2f}s" if status not in ("skipped",) else ""
        self.out.line(
            (f"{d['index']:>{width}}/{d['total']} ", ""),
            (f"{STATUS_WORD.get(status, status):<5}", STATUS_STYLE.get(status, "")),
            (f" {d['materialized']:<11} {d['name']}{rows} ", ""),
            (timing, "dim"),
        )
        if status in ("error", "fail", "runtime error", "warn") and event.message:
            style = "yellow" if status == "warn" else "red"
            for text in self.mask(event.message).splitlines():
                self.out.line(("      ", ""), (text, style))
        if self._status is not None:
            self._status.update(f"{d['index']}/{d['total']} done")

    def _on_run_finished(self, event: Event) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None
        counts = event.data.get("counts", {})
        words: dict[str, int] = {}  # statuses shown with the same word are counted together
        for status, count in counts.items():
            word = STATUS_WORD.get(status, status)
            words[word] = words.get(word, 0) + count
        parts = "".join(f" {word}={count}" for word, count in words.items() if count)
        style = "red" if event.level == "error" else "green"
        self.out.line(
            (self.mask(event.message), style), (f"{parts} in {event.data.get('elapsed', 0):.2f}s", "")
        )


class JsonReporter:
    """One JSON object per event and line: {"ts", "event", "level", "msg", "data"}."""

    def __init__(self, mask: Callable[[str], str] = str, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stdout
        self.mask = mask
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        record = {
            "ts": now_iso(),
            "event": event.name,
            "level": event.level,
            "msg": event.message,
            "data": event.data,
        }
        line = self.mask(json.dumps(record, default=str))
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except BrokenPipeError:
                pass  # the reader left; the run goes on
