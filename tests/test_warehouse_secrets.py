"""Passwords of warehouse profiles never show: not in output, JSON logs, error messages or target/.

The password comes from env_var(); PostgreSQL here trusts local connections, so any password
connects, and the models use it in their SQL so that it would leak everywhere it could.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from warehouses import Postgres
from warehouses import postgres as postgres  # a fixture

SECRET = "hunter2-very-secret-pw"
ENCODED = "hunter2%2Dvery%2Dsecret%2Dpw"  # the same, percent-encoded inside a URL


def sqlflow(root: Path, *args: str) -> str:
    process = subprocess.run(
        [sys.executable, "-m", "sqlflow.cli", *args, "--project-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SQLFLOW_TEST_PG_PASSWORD": SECRET},
    )
    return process.stdout + process.stderr + f"\n[exit {process.returncode}]"


def leaks(root: Path, outputs: list[str]) -> list[str]:
    found = [f"output of command {i}" for i, text in enumerate(outputs) if SECRET in text or ENCODED in text]
    for path in (root / "target").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if SECRET.encode() in data or ENCODED.encode() in data:
                found.append(str(path.relative_to(root)))
    return found


MODELS = {
    "models/uses_secret.sql": "select '{{ env_var(\"SQLFLOW_TEST_PG_PASSWORD\") }}' as leaked",
    # PostgreSQL quotes the bad value in its error: "invalid input syntax for type integer: ..."
    "models/fails_with_secret.sql": (
        "{{ config(materialized='table') }} select cast('{{ env_var(\"SQLFLOW_TEST_PG_PASSWORD\") }}' as int) as n"
    ),
}


def test_a_postgres_password_never_shows(make_project, postgres: Postgres):
    profiles = postgres.profiles(password="{{ env_var('SQLFLOW_TEST_PG_PASSWORD') }}")
    project = make_project(MODELS, profiles=profiles)
    outputs = [
        sqlflow(project.root, "build"),
        sqlflow(project.root, "run", "--log-format", "json"),
        sqlflow(project.root, "compile"),
        sqlflow(project.root, "compile", "-s", "uses_secret"),
        sqlflow(project.root, "debug"),
        sqlflow(project.root, "show", "-s", "fails_with_secret"),
        sqlflow(project.root, "retry"),
    ]
    assert "[exit 1]" in outputs[0] and "invalid input syntax" in outputs[0]
    assert "*****" in outputs[0] and "*****" in outputs[4]
    assert leaks(project.root, outputs) == []


@pytest.mark.parametrize(
    "url",
    [
        # nothing listens on port 1: the connection error must not quote the URL
        "postgresql+psycopg://postgres:{{ env_var('SQLFLOW_TEST_PG_PASSWORD') }}@127.0.0.1:1/test",
        # not a valid URL: SQLAlchemy's own error quotes what it was given
        "postgresql+psycopg://postgres:{{ env_var('SQLFLOW_TEST_PG_PASSWORD') }}@127.0.0.1:notaport/test",
    ],
)
def test_a_password_inside_a_sqlalchemy_url_never_shows(make_project, url):
    profiles = f'proj:\n  target: any\n  outputs:\n    any:\n      type: sqlalchemy\n      url: "{url}"\n'
    project = make_project({"models/a.sql": "select 1 as x"}, profiles=profiles)
    outputs = [sqlflow(project.root, "run"), sqlflow(project.root, "debug"), sqlflow(project.root, "compile")]
    assert "[exit 2]" in outputs[0] and "Traceback" not in outputs[0]
    assert leaks(project.root, outputs) == []
