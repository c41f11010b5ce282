"""Shared fixtures: throwaway projects on real DuckDB files, and the CLI as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from sqlflow.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_SETTINGS = """\
name: proj
profile: proj
"""

DEFAULT_PROFILES = """\
proj:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: warehouse.duckdb
      threads: 4
"""


@dataclass
class Result:
    exit_code: int
    output: str  # stdout and stderr together


@dataclass
class Project:
    """A project folder under tmp_path, with helpers to run the CLI and query its DuckDB file."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "warehouse.duckdb"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def remove(self, relative: str) -> None:
        (self.root / relative).unlink()

    def cli(self, *args: str) -> Result:
        """Run `sqlflow ARGS --project-dir ROOT` in-process (fast)."""
        runner = CliRunner()
        result = runner.invoke(main, [*args, "--project-dir", str(self.root)], catch_exceptions=False)
        return Result(result.exit_code, result.output)

    def subprocess(self, *args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
        """Run the real `sqlflow` executable, as a user would."""
        return subprocess.run(
            [sys.executable, "-m", "sqlflow.cli", *args, "--project-dir", str(self.root)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            **kwargs,
        )

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.db_path), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()

    def scalar(self, sql: str):
        return self.query(sql)[0][0]


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """make_project({"models/a.sql": "select 1 as x"}, settings=..., profiles=...) -> Project."""

    def make(
        files: dict[str, str] | None = None,
        *,
        settings: str = DEFAULT_SETTINGS,
        profiles: str = DEFAULT_PROFILES,
        name: str = "proj",
    ) -> Project:
        project = Project(tmp_path / name)
        project.root.mkdir(parents=True, exist_ok=True)
        project.write("sqlflow.yml", settings)
        if profiles is not None:
            project.write("profiles.yml", profiles)
        for relative, text in (files or {}).items():
            project.write(relative, text)
        return project

    return make


@pytest.fixture
def hub(monkeypatch):
    """A dbt Hub on localhost (package_support.FakeHub) that `sqlflow deps` reads."""
    from package_support import FakeHub

    server = FakeHub()
    monkeypatch.setenv("SQLFLOW_HUB_URL", server.url)
    yield server
    server.close()
