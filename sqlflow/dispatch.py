"""Macro namespaces as dbt's Jinja sees them: `package.macro`, `adapter.dispatch()` and `dbt.*`.

`adapter.dispatch('name', 'pkg')` returns the first of `<adapter>__name`, then `default__name`,
found in each package of the search order: the project's `dispatch:` setting for that
namespace, else the root project then `pkg` (dbt's rule). The `dbt` namespace is sqlflow's own
cross-database macros (cross_db.py); a project or package can shim any of them through dispatch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import introspection
from .errors import CompilationError

if TYPE_CHECKING:
    from .jinja import RenderContext

# Adapter prefixes tried by dispatch, most specific first (dbt's adapter inheritance).
ADAPTER_PREFIXES = {
    "duckdb": ["duckdb"],
    "postgres": ["postgres"],
    "sqlite": ["sqlite"],
    "spark": ["spark"],
    "databricks": ["databricks", "spark"],
    "redshift": ["redshift", "postgres"],
}

# adapter methods of dbt's that sqlflow does not offer (see the error's hint).
NOT_OFFERED = frozenset(
    {
        "list_relations_without_caching", "list_schemas", "check_schema_exists", "get_missing_columns",
        "expand_target_column_types", "execute", "already_exists", "drop_relation", "rename_relation",
        "create_schema", "drop_schema", "truncate_relation", "cache_added", "cache_dropped",
    }
)  # fmt: skip


class PackageMacros:
    """`dbt_utils` in `{{ dbt_utils.star(...) }}`: the macros of one package (or of the root
    project, by its name)."""

    def __init__(self, context: RenderContext, package: str) -> None:
        self._context = context
        self._package = package

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        macro = self._context.macro(name, self._package)
        if macro is None:
            raise CompilationError(
                f"package {self._package!r} has no macro {name!r}",
                hint="check the name, and that the installed version of the package has it (`sqlflow deps`)",
            )
        return macro

    def __repr__(self) -> str:
        return f"<macros of {self._package}>"


class Adapter:
    """dbt's `adapter` object, for what needs no warehouse: dispatch and quoting."""

    def __init__(self, context: RenderContext) -> None:
        self._context = context

    def dispatch(
        self, macro_name: str, macro_namespace: str | None = None, packages: Any = None
    ) -> Callable[..., Any]:
        library = self._context.library
        assert library is not None
        if "." in macro_name:
            namespace, _, name = macro_name.partition(".")
            raise CompilationError(
                f"adapter.dispatch got the macro name {macro_name!r}",
                hint=f"write adapter.dispatch({name!r}, macro_namespace={namespace!r})",
            )
        if macro_namespace is not None and macro_namespace in library.dispatch:
            search = list(library.dispatch[macro_namespace])
        else:
            search = [library.root_name, macro_namespace or "dbt"]
        prefixes = [*ADAPTER_PREFIXES.get(library.adapter_type, [library.adapter_type]), "default"]
        tried = []
        for package in dict.fromkeys(search):
            if package == "dbt":
                from . import cross_db  # imported on first use, as sqlglot, which it needs

                builtin = cross_db.namespace(library.dialect)
            elif package != library.root_name and package not in library.packages:
                raise CompilationError(
                    f"adapter.dispatch: no package {package!r} to look for {macro_name!r} in",
                    hint="install it (packages.yml, `sqlflow deps`) or fix the `dispatch:` search order",
                )
            for prefix in prefixes:
                name = f"{prefix}__{macro_name}"
                macro = self._context.macro(name, None if package == library.root_name else package)
                if macro is None and package == "dbt" and prefix == "default":
                    macro = builtin.lookup(macro_name)
                if macro is not None:
                    return macro
                tried.append(f"{package}.{name}")
        if macro_namespace == "dbt" and search == [library.root_name, "dbt"]:
            raise CompilationError(
                f"dbt.{macro_name} is not one of the dbt macros sqlflow provides",
                hint="write the SQL in the model, or define `default__" + macro_name + "` in macros/ "
                "(docs/packages.md lists the dbt macros there are)",
            )
        raise CompilationError(
            f"adapter.dispatch found no macro for {macro_name!r}",
            hint="looked for " + ", ".join(tried),
        )

    def quote(self, identifier: str) -> str:
        from .nodes import relation_name

        library = self._context.library
        assert library is not None
        return str(relation_name(None, None, str(identifier), dialect=library.dialect))

    # What reads the warehouse (introspection.py): a node that calls them is compiled when built.

    def get_columns_in_relation(self, relation: Any) -> list[introspection.Column]:
        return self._warehouse().columns(relation)

    def get_relation(self, database: str | None, schema: str, identifier: str) -> Any:
        from .nodes import relation_name

        library = self._context.library
        assert library is not None
        return self._warehouse().relation(
            relation_name(database, schema, identifier, dialect=library.dialect)
        )

    def load_relation(self, relation: Any) -> Any:
        return self._warehouse().relation(relation)

    def _warehouse(self) -> introspection.Warehouse:
        warehouse = self._context.get("_sqlflow_warehouse")
        # A render without one (none is expected) answers as dbt's parser: nothing.
        return warehouse or introspection.Warehouse(None, live=False, execute=False)

    def __getattr__(self, name: str) -> Any:
        if name in NOT_OFFERED:
            raise CompilationError(
                f"adapter.{name}() is not offered by sqlflow",
                hint="sqlflow's adapter object has dispatch, quote, get_columns_in_relation, get_relation "
                "and load_relation (docs/packages.md)",
            )
        raise AttributeError(name)


class DbtMacros:
    """`dbt` in `{{ dbt.concat([...]) }}`: each name dispatched in the `dbt` namespace, so that a
    project (or a package named in `dispatch:`) can shim it, else sqlflow's own (cross_db.py)."""

    def __init__(self, context: RenderContext) -> None:
        self._context = context

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        return Adapter(self._context).dispatch(name, "dbt")


class Api:
    """dbt's `api` object: `api.Relation.create(...)` names a relation, `api.Column` a column."""

    def __init__(self, dialect: str) -> None:
        self.Relation = _RelationFactory(dialect)
        self.Column = introspection.Column


class _RelationFactory:
    def __init__(self, dialect: str) -> None:
        self._dialect = dialect

    def create(
        self,
        database: str | None = None,
        schema: str | None = None,
        identifier: str | None = None,
        type: str | None = None,
        **_: Any,
    ) -> Any:
        from .nodes import relation_name

        return relation_name(database or None, schema, identifier, dialect=self._dialect)
