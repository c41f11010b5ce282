"""Warehouse adapters, chosen by the profile's `type`."""

from __future__ import annotations

from importlib import import_module

from ..errors import UserError
from ..project import Target
from .base import Adapter

# type -> (module, class); modules are imported on use, so a missing driver only matters when used.
ADAPTERS = {
    "duckdb": (".duckdb", "DuckDBAdapter"),
    "postgres": (".postgres", "PostgresAdapter"),
    "sqlite": (".sqlite", "SQLiteAdapter"),
    "sqlalchemy": (".sqlalchemy", "SQLAlchemyAdapter"),
    "spark": (".spark", "SparkAdapter"),
}


def adapter_for(target: Target) -> Adapter:
    if target.type not in ADAPTERS:
        raise UserError(
            f"warehouse type {target.type!r} is not supported",
            path=target.profiles_path,
            hint="supported types: " + ", ".join(ADAPTERS),
        )
    module, name = ADAPTERS[target.type]
    try:
        adapter_class = getattr(import_module(module, __name__), name)
    except ImportError as exc:
        raise UserError(
            f"the {target.type} adapter cannot be loaded: {exc}",
            path=target.profiles_path,
            hint="install the driver, e.g. pip install 'psycopg[binary]' for postgres",
        ) from exc
    return adapter_class(target)


__all__ = ["ADAPTERS", "Adapter", "adapter_for"]
