"""The repository's example project ("shop"), copied for tests that need a realistic project."""

from __future__ import annotations

import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("sqlflow.yml", "profiles.yml", "models", "seeds", "snapshots", "macros", "data_tests")


def copy_example(destination: Path) -> Path:
    """The example project's files (no target/, no warehouse) in `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, destination / name)
        elif path.exists():
            shutil.copy(path, destination / name)
    return destination
