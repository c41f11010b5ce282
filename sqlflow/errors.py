"""Errors a user can act on.

A `UserError` is a problem with the project, the configuration or the command line: the CLI
prints it (file, line, what is wrong, what to do) and exits 2. Failures of individual models at
run time are not exceptions: they are results (see `runner.NodeResult`) and make the CLI exit 1.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Location:
    path: Path | str | None = None
    line: int | None = None

    def __str__(self) -> str:
        if self.path is None:
            return ""
        path = Path(self.path)
        with contextlib.suppress(ValueError, OSError, RuntimeError):  # RuntimeError: a symlink loop
            path = path.resolve().relative_to(Path.cwd())  # as the user typed it, where possible
        return f"{path}:{self.line}" if self.line else str(path)


class UserError(Exception):
    """A project, configuration or command-line problem (exit code 2)."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = Location(path, line)
        self.hint = hint

    def __str__(self) -> str:
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class HookFailed(UserError):
    """An `on-run-start`/`on-run-end` statement failed in the warehouse: exit 1, as a failed model."""

    exit_code = 1


class OperationFailed(UserError):
    """A statement of `run-operation`'s macro failed in the warehouse: exit 1, as a failed model."""

    exit_code = 1


class CompilationError(UserError):
    """A model could not be rendered or parsed (Jinja or SQL)."""


class CompilationErrors(CompilationError):
    """Several nodes failed to compile: every one is reported, not only the first."""

    SHOWN = 20  # a broken macro can fail thousands of models: the first ones say enough

    def __init__(self, errors: list[UserError]) -> None:
        super().__init__(f"{len(errors)} nodes failed to compile")
        self.errors = errors

    def __str__(self) -> str:
        lines = [f"{len(self.errors)} nodes failed to compile:"]
        for error in self.errors[: self.SHOWN]:
            lines += ["  " + line for line in str(error).splitlines()]
        if len(self.errors) > self.SHOWN:
            lines.append(f"  ... and {len(self.errors) - self.SHOWN} more")
        return "\n".join(lines)


class SelectorError(UserError):
    """A malformed --select/--exclude expression."""


class WarehouseError(Exception):
    """An error raised by the warehouse while running a statement."""


class Interrupted(Exception):
    """The run was cancelled (Ctrl-C)."""
