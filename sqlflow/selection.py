"""Selector expressions: a tokenizer, a parser and their evaluation on the graph.

Grammar (dbt's):

    expression   := intersection (SPACE intersection)*        -- union
    intersection := criterion ("," criterion)*                 -- intersection
    criterion    := "@" atom | [N] "+"? atom "+"? [N]
    atom         := [method ":"] value                          -- value may use * and ? globs

A malformed expression raises `SelectorError` showing the offending token and the valid forms.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .errors import SelectorError
from .graph import Graph

FORMS = (
    "valid forms: name, +name (and ancestors), name+ (and descendants), 2+name, name+1, +name+, "
    "@name, tag:x, path:models/staging, fqn:staging.*, config.materialized:table, source:src.tbl, "
    "exposure:dashboard, resource_type:model, package:p, test_type:unit, test_name:unique, state:modified, result:error; "
    "a space means union, a comma means intersection"
)


@dataclass(frozen=True)
class Token:
    kind: str  # WORD, PLUS, AT, COMMA, SPACE
    text: str
    position: int
    depth: int | None = None  # for PLUS: "2+" / "+3"


_TOKEN = re.compile(r"(?P<SPACE>\s+)|(?P<COMMA>,)|(?P<AT>@)|(?P<PLUS>\d*\+\d*)|(?P<WORD>[^\s,+@]+)")


def tokenize(text: str) -> list[Token]:
    tokens = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or ""
        value = match.group()
        depth = None
        if kind == "PLUS":
            digits = value.replace("+", "")
            depth = int(digits) if digits else None
        tokens.append(Token(kind, value, match.start(), depth))
    return tokens


@dataclass(frozen=True)
class Criterion:
    method: str
    value: str
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    childrens_parents: bool = False  # "@"


@dataclass(frozen=True)
class Expression:
    """A union of intersections of criteria."""

    groups: tuple[tuple[Criterion, ...], ...]


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [t for t in tokenize(text)]
        self.pos = 0

    def error(self, token: Token | None, message: str) -> SelectorError:
        position = token.position if token else len(self.text)
        caret = " " * position + "^"
        return SelectorError(f"invalid selector: {message}\n  {self.text}\n  {caret}", hint=FORMS)

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token | None:
        token = self.peek()
        self.pos += 1
        return token

    def parse(self) -> Expression:
        groups = []
        self._skip_spaces()
        if self.peek() is None:
            raise self.error(None, "empty selector")
        while self.peek() is not None:
            groups.append(self._intersection())
            self._skip_spaces()
        return Expression(tuple(groups))

    def _skip_spaces(self) -> None:
        while (token := self.peek()) is not None and token.kind == "SPACE":
            self.pos += 1

    def _intersection(self) -> tuple[Criterion, ...]:
        criteria = [self._criterion()]
        while (token := self.peek()) is not None and token.kind == "COMMA":
            self.take()
            nxt = self.peek()
            if nxt is None or nxt.kind in ("SPACE", "COMMA"):
                raise self.error(nxt or token, "',' needs a selector on both sides")
            criteria.append(self._criterion())
        return tuple(criteria)

    def _criterion(self) -> Criterion:
        token = self.take()
        at = parents = False
        parents_depth = None
        operator_token = token
        if token is not None and token.kind == "AT":
            at = True
            token = self.take()
        elif token is not None and token.kind == "PLUS":
            if token.text.endswith(tuple("0123456789")) and not token.text.startswith(tuple("0123456789")):
                raise self.error(token, f"{token.text!r}: a depth goes before a leading '+', as in 2+name")
            parents, parents_depth = True, token.depth
            token = self.take()
        if token is None or token.kind != "WORD":
            operator = "@" if at else "+" if parents else None
            if operator and (token is None or token.kind == "SPACE"):
                raise self.error(operator_token, f"dangling {operator!r}: expected a name right after it")
            what = f"unexpected {token.text.strip() or 'space'!r}" if token else "the selector ends too early"
            raise self.error(token, f"{what}: expected a name")
        method, value = _split_method(token, self)
        children, children_depth = False, None
        after = self.peek()
        if after is not None and after.kind == "PLUS":
            if after.text.startswith(tuple("0123456789")):
                raise self.error(after, f"{after.text!r}: a depth goes after a trailing '+', as in name+2")
            self.take()
            children, children_depth = True, after.depth
        if at and (parents or children):
            raise self.error(token, "'@' cannot be combined with '+'")
        following = self.peek()
        if following is not None and following.kind in ("WORD", "AT"):
            raise self.error(following, f"unexpected {following.text!r}")
        if following is not None and following.kind == "PLUS":
            raise self.error(following, "dangling '+'")
        return Criterion(method, value, parents, parents_depth, children, children_depth, at)


def _split_method(token: Token, parser: _Parser) -> tuple[str, str]:
    text = token.text
    if ":" not in text:
        return "default", text
    method, _, value = text.partition(":")
    base = method.split(".", 1)[0]
    if base not in METHODS:
        raise parser.error(token, f"unknown method {method!r} (known: {', '.join(sorted(METHODS))})")
    if base == "config" and "." not in method:
        raise parser.error(token, "config needs a key, as in config.materialized:table")
    if not value:
        raise parser.error(token, f"{method}: needs a value")
    allowed = {"state": STATE_VALUES, "result": RESULT_VALUES}.get(method)
    if allowed and value.split(".", 1)[0] not in allowed:
        raise parser.error(
            token, f"{method}:{value} is not one of {', '.join(f'{method}:{v}' for v in allowed)}"
        )
    return method, value


def parse(text: str) -> Expression:
    return _Parser(text).parse()


# --------------------------------------------------------------------------- evaluation


def _glob(pattern: str, value: str) -> bool:
    return _compiled_glob(pattern)(value) is not None


@functools.lru_cache(maxsize=4096)
def _compiled_glob(pattern: str) -> Callable[[str], re.Match[str] | None]:
    return re.compile(fnmatch.translate(pattern)).match


@functools.lru_cache(maxsize=1024)
def _path_pattern(pattern: str) -> tuple[str, ...] | None:
    """The parts of a relative glob, for PurePosixPath.match's rule; None for an absolute one."""
    if pattern.startswith("/"):
        return None
    return PurePosixPath(pattern).parts


def _path_match(path: str, pattern: str) -> bool:
    """PurePosixPath(path).match(pattern) on a normalised path, without building a path object
    (which costs more than the rest of evaluating `path:` on thousands of nodes)."""
    parts = _path_pattern(pattern)
    if parts is None or path.startswith("/"):
        return PurePosixPath(path).match(pattern)
    names = [name for name in path.split("/") if name not in ("", ".")]
    if not parts or len(parts) > len(names):
        return False
    return all(_glob(part, name) for part, name in zip(reversed(parts), reversed(names), strict=False))


@functools.lru_cache(maxsize=1024)
def _fqn_pattern(pattern: str) -> tuple[tuple[Callable[[str], Any], ...], bool, str | None]:
    parts = pattern.split(".")
    first = None if any(c in parts[0] for c in "*?[") else parts[0]
    return tuple(_compiled_glob(part) for part in parts), parts[-1] == "*", first


def _fqn_match(pattern: str, fqn: list[str]) -> bool:
    matchers, open_ended, first = _fqn_pattern(pattern)
    # A literal first part (`staging.*`) names the fqn's first or second part: most nodes fail
    # that comparison, which costs a tenth of matching the parts.
    if first is not None and not (fqn[:1] == [first] or fqn[1:2] == [first]):
        return False
    for candidate in (fqn, fqn[1:]):
        if len(matchers) > len(candidate):
            continue
        pairs = zip(matchers[:-1] if open_ended else matchers, candidate, strict=False)
        if (open_ended or len(matchers) == len(candidate)) and all(m(c) is not None for m, c in pairs):
            return True
    return False


def _method_default(resource: Any, value: str, ctx: Context) -> bool:
    if "/" in value or value.endswith((".sql", ".csv")):
        return _method_path(resource, value, ctx)
    if "." in value:
        return _fqn_match(value, resource.fqn)
    return _glob(value, resource.name) or value == getattr(resource, "package_name", None)


def _method_path(resource: Any, value: str, ctx: Context) -> bool:
    path = getattr(resource, "original_file_path", None) or getattr(resource, "path", "")
    path = str(path)
    value = value.rstrip("/")
    if path == value or path.startswith(value + "/"):
        return True
    return _path_match(path, value) or _glob(value, path)


def _method_tag(resource: Any, value: str, ctx: Context) -> bool:
    tags = resource.tags
    return any(_glob(value, tag) for tag in tags)


def _method_fqn(resource: Any, value: str, ctx: Context) -> bool:
    return _fqn_match(value, resource.fqn)


def _method_source(resource: Any, value: str, ctx: Context) -> bool:
    if getattr(resource, "source_name", None) is None:
        return False
    name, _, table = value.partition(".")
    return _glob(name, resource.source_name) and (not table or _glob(table, resource.name))


def _method_exposure(resource: Any, value: str, ctx: Context) -> bool:
    return getattr(resource, "resource_type", None) == "exposure" and _glob(value, resource.name)


def _method_resource_type(resource: Any, value: str, ctx: Context) -> bool:
    kind = "source" if hasattr(resource, "source_name") else resource.resource_type
    return kind == value


def _method_package(resource: Any, value: str, ctx: Context) -> bool:
    return _glob(value, getattr(resource, "package_name", "") or "")


@dataclass
class Context:
    """What some methods compare with: build state (`state:`) and the last run's results (`result:`)."""

    state: Any = None  # has .status(uid) -> "new" | "modified" | "unmodified" | None
    results: dict[str, str] | None = None  # unique id -> status


STATE_VALUES = ("modified", "new", "unmodified", "old")
RESULT_VALUES = ("success", "error", "fail", "warn", "pass", "skipped")


def _method_state(resource: Any, value: str, ctx: Context) -> bool:
    if ctx.state is None:
        raise SelectorError("state: selectors need build state", hint="use them from run, build, ls, test...")
    status = ctx.state.status(resource.unique_id)
    if status is None:
        return False
    base = value.split(".", 1)[0]  # dbt's state:modified.body / .configs count as modified
    if base == "old":
        return status != "new"
    if base == "modified":
        return status in ("new", "modified")
    return status == base


def _method_result(resource: Any, value: str, ctx: Context) -> bool:
    return (ctx.results or {}).get(resource.unique_id) == value


def _method_test_type(resource: Any, value: str, ctx: Context) -> bool:
    kind = getattr(resource, "resource_type", None)
    if kind == "unit_test":
        return value == "unit"
    if kind != "test":
        return False
    if value == "data":
        return True
    return value == ("generic" if resource.test_metadata is not None else "singular")


def _method_test_name(resource: Any, value: str, ctx: Context) -> bool:
    if getattr(resource, "resource_type", None) != "test" or resource.test_metadata is None:
        return False
    return _glob(value, resource.test_metadata["name"])


METHODS: dict[str, Callable[[Any, str, str], bool]] = {
    "default": _method_default,
    "path": _method_path,
    "tag": _method_tag,
    "fqn": _method_fqn,
    "source": _method_source,
    "exposure": _method_exposure,
    "resource_type": _method_resource_type,
    "package": _method_package,
    "test_type": _method_test_type,
    "state": _method_state,
    "result": _method_result,
    "test_name": _method_test_name,
    "config": lambda resource, value, ctx: False,  # dispatched below with its key
}


def _config_matches(resource: Any, key: str, value: str) -> bool:
    config = getattr(resource, "config", {})
    actual = (
        resource.materialized
        if key == "materialized" and hasattr(resource, "materialized")
        else config.get(key)
    )
    if isinstance(actual, list):
        return any(_glob(value, str(v)) for v in actual)
    return actual is not None and _glob(
        value, str(actual).lower() if isinstance(actual, bool) else str(actual)
    )


def _matcher(criterion: Criterion, ctx: Context) -> Callable[[Any], bool]:
    """A test for one resource, with what depends only on the criterion worked out once."""
    method, value = criterion.method, criterion.value
    if method.startswith("config."):
        key = method.split(".", 1)[1]
        return lambda resource: _config_matches(resource, key, value)
    if method == "default":  # what _method_default decides for every resource, decided once
        if "/" in value or value.endswith((".sql", ".csv")):
            method = "path"
        elif "." in value:
            method = "fqn"
        else:
            name_matches = _compiled_glob(value)
            return lambda resource: (
                name_matches(resource.name) is not None or value == getattr(resource, "package_name", None)
            )
    function = METHODS[method]
    return lambda resource: function(resource, value, ctx)


def _evaluate_criterion(criterion: Criterion, graph: Graph, ctx: Context) -> set[str]:
    matches = _matcher(criterion, ctx)
    matched = {uid for uid, resource in graph.resources() if matches(resource)}
    selected = set(matched)
    # One search from all matched nodes at once (graph.upstream/downstream), not one per node.
    if criterion.parents:
        selected |= graph.upstream(matched, criterion.parents_depth)
    if criterion.children or criterion.childrens_parents:
        selected |= graph.downstream(matched, criterion.children_depth)
    if criterion.childrens_parents:
        # A test is not a child whose parents are wanted: `@orders` must not pull in every
        # model a relationships test on orders happens to read.
        selected |= graph.upstream(uid for uid in selected if not _is_test(graph.resource(uid)))
    return selected


def evaluate(expression: Expression, graph: Graph, ctx: Context | None = None) -> set[str]:
    ctx = ctx or Context()
    result: set[str] = set()
    for group in expression.groups:
        members = _evaluate_criterion(group[0], graph, ctx)
        for criterion in group[1:]:
            members &= _evaluate_criterion(criterion, graph, ctx)
        result |= members
    return result


TEST_TYPES = frozenset({"test", "unit_test"})


def _is_test(resource: Any) -> bool:
    return getattr(resource, "resource_type", None) in TEST_TYPES


def _tests_of(chosen: set[str], excluded: set[str], graph: Graph) -> set[str]:
    """dbt's eager indirect selection: a test goes with any node it reads, unless one is excluded."""
    found = set()
    # A test that reads a chosen node is one of its children: no need to look at every node.
    for uid in {child for parent in chosen for child in graph.children(parent)}:
        if uid in chosen or uid in excluded or not _is_test(graph.resource(uid)):
            continue
        parents = graph.parents(uid)
        if any(p in chosen for p in parents) and not any(p in excluded for p in parents):
            found.add(uid)
    return found


def methods_used(*selectors: Sequence[str] | None) -> set[str]:
    """The methods a set of selector texts uses (to know whether state must be read first)."""
    used = set()
    for texts in selectors:
        if texts:
            for group in parse(" ".join(texts)).groups:
                used |= {c.method.split(".", 1)[0] for c in group}
    return used


def select(
    graph: Graph,
    select: tuple[str, ...] | list[str] | None = None,
    exclude: tuple[str, ...] | list[str] | None = None,
    resource_types: tuple[str, ...] = ("model", "seed"),
    context: Context | None = None,
    chosen: set[str] | None = None,
) -> list[str]:
    """Unique ids picked by --select minus --exclude, restricted to `resource_types`, in DAG order.

    `chosen` replaces --select with a set already evaluated (a named selector, or a retry).
    """
    if chosen is None:
        chosen = evaluate(parse(" ".join(select)), graph, context) if select else set(graph)
    excluded = evaluate(parse(" ".join(exclude)), graph, context) if exclude else set()
    chosen -= excluded
    kinds = set(resource_types)
    if kinds & TEST_TYPES:
        chosen |= _tests_of(chosen, excluded, graph)
    return graph.topological(
        uid for uid in chosen if getattr(graph.resource(uid), "resource_type", "source") in kinds
    )


# --------------------------------------------------------------------------- named selectors (selectors.yml)


def named_selector(
    definitions: dict[str, Any], name: str, graph: Graph, context: Context | None = None
) -> set[str]:
    """The nodes a `selectors.yml` entry picks (dbt's format: a string, a method, union/intersection)."""
    if name not in definitions:
        known = ", ".join(sorted(definitions)) or "none"
        raise SelectorError(
            f"no selector named {name!r} (known: {known})", hint="selectors are defined in selectors.yml"
        )
    return _definition(definitions[name], graph, context or Context(), name)


def _definition(definition: Any, graph: Graph, ctx: Context, name: str) -> set[str]:
    if isinstance(definition, str):
        return evaluate(parse(definition), graph, ctx)
    if not isinstance(definition, dict):
        raise SelectorError(
            f"selector {name!r}: a definition must be a string or a mapping, not {definition!r}"
        )
    for operator in ("union", "intersection"):
        if operator in definition:
            items = definition[operator]
            if not isinstance(items, list) or not items:
                raise SelectorError(f"selector {name!r}: `{operator}` must be a non-empty list")
            included = [i for i in items if not (isinstance(i, dict) and "exclude" in i)]
            excluded: set[str] = set()
            for item in items:
                if isinstance(item, dict) and "exclude" in item:
                    for sub in item["exclude"] or []:
                        excluded |= _definition(sub, graph, ctx, name)
            sets = [_definition(i, graph, ctx, name) for i in included]
            result = set.union(*sets) if operator == "union" else set.intersection(*sets) if sets else set()
            return result - excluded
    if "method" in definition:
        method, value = str(definition["method"]), str(definition.get("value", ""))
        if method == "selector":
            raise SelectorError(
                f"selector {name!r}: method `selector` is not supported; repeat the definition"
            )
        text = value if method in ("fqn", "default") else f"{method}:{value}"
        if definition.get("childrens_parents"):
            text = "@" + text
        else:
            if definition.get("parents"):
                text = f"{definition.get('parents_depth') or ''}+{text}"
            if definition.get("children"):
                text = f"{text}+{definition.get('children_depth') or ''}"
        return evaluate(parse(text), graph, ctx)
    raise SelectorError(
        f"selector {name!r}: cannot read {definition!r}",
        hint="use a selector string, {method: tag, value: x}, or union:/intersection: lists",
    )
