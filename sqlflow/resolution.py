"""What `ref()` and `source()` name: dbt's search order across the project and its installed
packages, shared by the loader (each node's `depends_on`) and the compiler (relation names)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from .errors import UserError
from .nodes import Node, RefCall, Source

if TYPE_CHECKING:
    from .manifest import Manifest


@dataclass
class Resolver:
    """What `ref()` and `source()` name, as dbt resolves them. With a package named
    (`ref('pkg', 'm')`), that package's; else the root project's, then the calling node's own
    package's, then the one other package that has it. Where several other packages have it,
    the call is ambiguous (dbt would take one of them silently): an error naming them."""

    root: str
    nodes: dict[str, Node]  # the root project's nodes that ref() can name, by name
    sources: dict[tuple[str, str], Source]  # the root project's source tables
    # Installed packages' nodes and source tables, by package; empty without package models.
    package_nodes: dict[str, dict[str, Node]] = field(default_factory=dict)
    package_sources: dict[str, dict[tuple[str, str], Source]] = field(default_factory=dict)

    @classmethod
    def of(cls, manifest: Manifest) -> Resolver:
        root = manifest.project.name
        refable = [n for n in manifest.nodes.values() if n.resource_type not in ("test", "unit_test")]
        sources = list(manifest.sources.values())
        if not manifest.package_vars:  # no package has nodes: the root project's alone
            return cls(root, {n.name: n for n in refable}, {(s.source_name, s.name): s for s in sources})
        resolver = cls(root, {}, {})
        for node in refable:
            if node.package_name == root:
                resolver.nodes[node.name] = node
            else:
                resolver.package_nodes.setdefault(node.package_name, {})[node.name] = node
        for source in sources:
            if source.package_name in (None, root):
                resolver.sources[(source.source_name, source.name)] = source
            else:
                key = (source.source_name, source.name)
                resolver.package_sources.setdefault(source.package_name, {})[key] = source
        return resolver

    def ref(self, name: str, package: str | None = None, caller: str | None = None) -> Node | None:
        """The node `ref([package,] name)` names in a node of package `caller` (None: the root
        project); None if there is none. A UserError (no location) if it is ambiguous."""
        return self._find(self.nodes, self.package_nodes, name, package, caller, "ref", (name,))

    def source(self, source_name: str, table_name: str, caller: str | None = None) -> Source | None:
        """The source table `source(source_name, table_name)` names in a node of `caller`."""
        key = (source_name, table_name)
        return self._find(self.sources, self.package_sources, key, None, caller, "source", key)

    def _find(
        self,
        root: dict[Any, Any],
        by_package: dict[str, dict[Any, Any]],
        key: Any,
        package: str | None,
        caller: str | None,
        function: str,
        args: tuple[str, ...],
    ) -> Any:
        if package is not None and package != self.root:
            return by_package.get(package, {}).get(key)
        found = root.get(key)
        if found is not None or package is not None or not by_package:
            return found
        if caller is not None and caller != self.root:
            found = by_package.get(caller, {}).get(key)
            if found is not None:
                return found
        having = sorted(name for name, items in by_package.items() if key in items)
        if len(having) > 1:
            quoted = ", ".join(f"'{arg}'" for arg in args)
            if function == "ref":
                hint = "name the package: " + " or ".join(f"ref('{name}', {quoted})" for name in having)
            else:  # source() has no package argument in dbt
                hint = "rename the source in one of the packages, or declare it in the project"
            raise UserError(
                f"{function}({quoted}) is ambiguous: packages {', '.join(having)} "
                + ("both" if len(having) == 2 else "all")
                + " have it",
                hint=hint,
            )
        return by_package[having[0]][key] if having else None


def resolve_dependencies(manifest: Manifest, disabled: set[tuple[str, str]]) -> None:
    """Each node's `depends_on`, from its refs and sources. `disabled`: (package, name) of the
    nodes left out by `enabled: false`, which a ref may not name."""
    resolver = manifest.resolver()
    root = manifest.project.name
    for node in [*manifest.nodes.values(), *manifest.exposures.values()]:
        depends: list[str] = []
        caller = node.package_name
        for ref in node.refs:
            try:
                target = resolver.ref(ref.name, ref.package, caller)
            except UserError as exc:  # ambiguous: the resolver's error has no place
                raise _at(exc, node, ref.line) from None
            if target is None:
                _missing_ref(node, ref, disabled, resolver, root)
            depends.append(target.unique_id)
        for call in node.sources:
            try:
                source = resolver.source(call.source_name, call.table_name, caller)
            except UserError as exc:
                raise _at(exc, node, call.line) from None
            if source is None:
                known = [f"{s}.{t}" for s, t in resolver.sources]
                known += [f"{s}.{t}" for items in resolver.package_sources.values() for s, t in items]
                close = difflib.get_close_matches(f"{call.source_name}.{call.table_name}", known, n=1)
                raise UserError(
                    f"{node.name} uses source {call.source_name!r}.{call.table_name!r}, which is not declared",
                    path=node.path,
                    line=call.line,
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + "declare it under `sources:` in a YAML file in models/",
                )
            depends.append(source.unique_id)
        node.depends_on = list(dict.fromkeys(depends))


def _at(exc: UserError, node: Any, line: int | None) -> UserError:
    """The resolver's error, placed at the node's call."""
    exc.message = f"{node.name}: {exc.message}"
    exc.location.path, exc.location.line = node.path, line
    return exc


def _missing_ref(
    node: Node, ref: RefCall, disabled: set[tuple[str, str]], resolver: Resolver, root: str
) -> NoReturn:
    """Raise the error for a ref that names no node: disabled, an unknown package, or unknown."""
    call = f"ref('{ref.package}', '{ref.name}')" if ref.package else repr(ref.name)
    unknown_package = ref.package is not None and ref.package not in (root, *resolver.package_nodes)
    if unknown_package and (ref.package, ref.name) not in disabled:
        raise UserError(
            f"{node.name} refs {call}: no package named {ref.package!r} has models",
            path=node.path,
            line=ref.line,
            hint=f"check the package's name (its dbt_project.yml `name`); the project is {root!r}, "
            "and `sqlflow deps` installs the packages of packages.yml",
        )
    packages = [ref.package or root] if ref.package else [root, node.package_name, *resolver.package_nodes]
    if any((package, ref.name) in disabled for package in packages):
        raise UserError(
            f"{node.name} refs {call}, which is disabled",
            path=node.path,
            line=ref.line,
            hint=f"enable {ref.name} or remove the ref",
        )
    names = list(resolver.nodes)
    if ref.package:
        names = list(resolver.package_nodes.get(ref.package, resolver.nodes if ref.package == root else {}))
    close = difflib.get_close_matches(ref.name, names, n=1)
    raise UserError(
        f"{node.name} refs {call}, which does not exist",
        path=node.path,
        line=ref.line,
        hint=f"did you mean {close[0]!r}?" if close else "check the model's file name",
    )
