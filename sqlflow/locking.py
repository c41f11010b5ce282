"""One writer per target: the lock a run holds while it builds.

A second `sqlflow run` on the same target waits up to `--lock-timeout` seconds for the first to
finish, then stops with exit code 2 naming the holder (pid, host, start time); it never builds
alongside the first. Each adapter supplies its lock (`Adapter.run_lock`): a file lock next to the
database file for DuckDB and SQLite, an advisory lock for PostgreSQL. Both are released by the
operating system or the server when the holding process dies, so a killed run never blocks the
next one for long: its leftover record is reported as a stale lock and taken over.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .errors import UserError

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Holder:
    """Who holds (or held) a lock."""

    pid: int | None
    host: str
    started: str  # ISO 8601, UTC

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "an unknown process"
        return f"{who} on host {self.host or 'unknown'}, started {self.started or 'at an unknown time'}"

    def is_dead(self) -> bool:
        """True only when the holder ran on this host and its process is gone."""
        if self.pid is None or self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def this_process() -> Holder:
    return Holder(os.getpid(), socket.gethostname(), datetime.now(timezone.utc).isoformat(timespec="seconds"))


class TargetLocked(UserError):
    """Another run holds the target's lock and did not release it in time (exit code 2)."""


class RunLock(ABC):
    """A lock on one target. `try_acquire` never blocks; `hold` does the waiting."""

    #: What is locked, for messages ("/data/shop.duckdb", "schema analytics of db@host").
    subject: str = ""

    @abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock if it is free; a stale lock of a dead process counts as free."""

    @abstractmethod
    def holder(self) -> Holder | None:
        """Who holds the lock now, if that can be told."""

    @abstractmethod
    def release(self) -> None: ...

    #: The holder of a stale lock this process took over, set by a successful `try_acquire`.
    stale: Holder | None = None


class NoLock(RunLock):
    """For targets nothing else can write to (an in-memory database)."""

    def try_acquire(self) -> bool:
        return True

    def holder(self) -> Holder | None:
        return None

    def release(self) -> None:
        pass


def hold(lock: RunLock, timeout: float, target: str, cancel: threading.Event | None = None) -> None:
    """Acquire `lock`, waiting up to `timeout` seconds; raise `TargetLocked` naming the holder."""
    deadline = time.monotonic() + max(0.0, timeout)
    while not lock.try_acquire():
        if time.monotonic() >= deadline or (cancel is not None and cancel.is_set()):
            holder = lock.holder()
            who = holder.describe() if holder else "another process"
            waited = f"after waiting {timeout:g}s" if timeout > 0 else "(--lock-timeout 0: not waiting)"
            raise TargetLocked(
                f"target {target!r} is locked by another sqlflow run: {who}; gave up {waited}",
                hint=f"{lock.subject}: let that run finish, or pass --lock-timeout SECONDS to wait for it",
            )
        time.sleep(POLL_SECONDS)


# --------------------------------------------------------------------------- file lock


class FileLock(RunLock):
    """An exclusive `flock` on `<database file>.sqlflow-lock`, holding the holder's pid, host, time.

    The kernel drops the lock when the process dies; a file still naming a holder when the lock is
    free is what a killed run left behind (a stale lock).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.subject = f"lock file {path}"
        self._handle: IO[str] | None = None

    def try_acquire(self) -> bool:
        import fcntl  # POSIX only; imported here so that importing sqlflow works everywhere

        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        self.stale = _parse_holder(handle.read())
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_holder_json(this_process())))
        handle.flush()
        self._handle = handle
        return True

    def holder(self) -> Holder | None:
        try:
            return _parse_holder(self.path.read_text(encoding="utf-8"))
        except OSError:
            return None

    def release(self) -> None:
        if self._handle is None:
            return
        import fcntl

        with contextlib.suppress(OSError):
            # Emptied before unlocking: a clean exit leaves no holder behind (only a kill does).
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
        self._handle.close()
        self._handle = None


def _holder_json(holder: Holder) -> dict[str, Any]:
    return {"pid": holder.pid, "host": holder.host, "started": holder.started}


def _parse_holder(text: str) -> Holder | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    pid = data.get("pid")
    return Holder(
        pid if isinstance(pid, int) else None, str(data.get("host") or ""), str(data.get("started") or "")
    )
