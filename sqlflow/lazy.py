"""sqlglot, imported on first use rather than with sqlflow.

Importing sqlglot costs ~0.1 s, a sixth of compiling 5,000 unchanged models, which parses no SQL
(nor do `ls`, `--version` or a run with nothing to do). Modules take `sqlglot` and `exp` from here:
stand-ins that import the real module at the first attribute read and take over its namespace,
so every later read costs what a module attribute does.
"""

from __future__ import annotations

import importlib
import types
from typing import TYPE_CHECKING, Any


class _ImportedOnFirstUse(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        # Only reached for a name the stand-in lacks: before the import, or a missing attribute.
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)
        return getattr(module, name)


if TYPE_CHECKING:  # type checkers and editors see the real modules
    import sqlglot
    from sqlglot import exp
else:
    sqlglot = _ImportedOnFirstUse("sqlglot")
    exp = _ImportedOnFirstUse("sqlglot.expressions")
