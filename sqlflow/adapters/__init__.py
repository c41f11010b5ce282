"""Warehouse adapters, chosen by the profile's `type`."""

from __future__ import annotations

from ..errors import UserError
from ..project import Target
from .base import Adapter


def adapter_for(target: Target) -> Adapter:
    if target.type == "duckdb":
        from .duckdb import DuckDBAdapter

        return DuckDBAdapter(target)
    raise UserError(
        f"warehouse type {target.type!r} is not supported",
        path=target.profiles_path,
        hint="supported types: duckdb",
    )


__all__ = ["Adapter", "adapter_for"]
