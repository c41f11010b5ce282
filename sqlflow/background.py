"""Writes that nothing in this process waits for, done by forked children while it goes on.

A cold compile of 5,000 models creates 5,000 files in target/compiled/ (kernel time that varies
from 0.15 to 0.7 s on the same disk) and pickles its caches (CPU time): in a thread, either would
fight the main thread for the GIL, and done in line they were a third of the compile. A child
process forked after the work is known writes it on another core; `wait()` before relying on it.

Only on Linux (where parse_pool forks too); elsewhere the work runs in line.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from .errors import UserError


class Background:
    def __init__(self) -> None:
        self._children: dict[str, tuple[int, int]] = {}  # name -> (pid, read end of its error pipe)

    def start(self, name: str, work: Callable[[], None]) -> None:
        """Run `work` in a child; another job of the same name (the same file) is waited for first,
        so that the last one started is the one that lands."""
        self._wait_for(name)
        if not sys.platform.startswith("linux"):
            work()
            return
        reader, writer = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: do the work, report a failure through the pipe, never return
            os.close(reader)
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
            code = 0
            try:
                work()
            except BaseException as exc:
                os.write(writer, str(exc).encode()[:4000])
                code = 1
            os._exit(code)
        os.close(writer)
        self._children[name] = (pid, reader)

    def wait(self) -> None:
        """Wait for every child; a failed one is a UserError with its message."""
        failures = []
        for name in list(self._children):
            failure = self._wait_for(name)
            if failure:
                failures.append(failure)
        if failures:
            raise UserError(failures[0], hint="check that target/ can be written (space, permissions)")

    def _wait_for(self, name: str) -> str | None:
        child = self._children.pop(name, None)
        if child is None:
            return None
        pid, reader = child
        with os.fdopen(reader, "rb") as pipe:
            message = pipe.read().decode(errors="replace")
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            return f"writing {name} failed: {message or 'the writer process died'}"
        return None
