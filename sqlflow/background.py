"""Writes that nothing in this process waits for, done by forked children while it goes on.

A cold compile of 5,000 models creates 5,000 files in target/compiled/: kernel time that varied
from 0.15 to 1.6 s on one disk. In a thread, the writes fought the main thread for the GIL; done
in line, they were a third of the compile. A child process forked once the files' contents are
known writes them on another core; `wait()` before relying on them.

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
        self._children: list[tuple[str, int, int]] = []  # (what, pid, read end of its error pipe)

    def start(self, what: str, work: Callable[[], None]) -> None:
        """Run `work` in a child process; `what` names it in an error."""
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
        self._children.append((what, pid, reader))

    def wait(self) -> None:
        """Wait for every child; a failed one is a UserError with its message."""
        children, self._children = self._children, []
        failures = []
        for what, pid, reader in children:
            with os.fdopen(reader, "rb") as pipe:
                message = pipe.read().decode(errors="replace")
            _, status = os.waitpid(pid, 0)
            if os.waitstatus_to_exitcode(status) != 0:
                failures.append(f"writing {what} failed: {message or 'the writer process died'}")
        if failures:
            raise UserError(failures[0], hint="check that target/ can be written (space, permissions)")
