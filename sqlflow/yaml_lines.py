"""YAML files read into plain dicts and lists that remember their lines (for file:line errors).

PyYAML's C parser is fast, but composing its events into node objects resolves every scalar
through Python and builds a node, with marks, per value: two thirds of loading a large
properties file. Most project YAML is plain mappings, lists and scalars, which are built here
straight from the parser's events. A file that uses anything else (anchors, aliases, merge keys,
tags, several documents) goes through PyYAML's full loader, which gives the same result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import UserError


class LineDict(dict):
    """A mapping that remembers the line it starts on and the line of each key."""

    line: int | None = None
    key_lines: dict[Any, int]


def load_yaml(path: Path, text: str | None = None) -> Any:
    """Parse a YAML file; mappings are `LineDict`s. A syntax error names the file and line."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}", path=path) from exc
    try:
        try:
            return _from_events(text)
        except _NotPlain:
            return yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(
            f"invalid YAML: {problem}",
            path=path,
            line=mark.line + 1 if mark else None,
            hint="check indentation and quoting near that line",
        ) from exc


def line_of(mapping: Any, key: Any = None) -> int | None:
    if isinstance(mapping, LineDict):
        return mapping.key_lines.get(key, mapping.line) if key is not None else mapping.line
    return None


# --------------------------------------------------------------------------- the full loader


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> LineDict:
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        # Keys are names (folders, settings): keep `off:` or `yes:` as written, not as booleans.
        if not isinstance(key_node, yaml.ScalarNode):
            # `{{ x }}: ...` unquoted is a mapping used as a key: never what was meant.
            raise yaml.constructor.ConstructorError(
                None,
                None,
                "a key must be a plain name, not a list or mapping (quote Jinja)",
                key_node.start_mark,
            )
        key = key_node.value
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
    return mapping


class _LineLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    pass


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# --------------------------------------------------------------------------- from events


class _NotPlain(Exception):
    """The file uses YAML the event builder leaves to the full loader."""


_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
_resolver = _LineLoader("")  # resolves plain scalars' tags; never parses
_resolver.dispose()


def _scalar(event: yaml.ScalarEvent) -> Any:
    if not event.implicit[0]:  # quoted (or a block scalar): always a string
        return event.value
    tag = _resolver.resolve(yaml.ScalarNode, event.value, event.implicit)
    if tag == _STR:
        return event.value
    construct = _resolver.yaml_constructors.get(tag)
    if construct is None or tag == _MERGE:
        raise _NotPlain
    return construct(
        _resolver, yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    )


def _from_events(text: str) -> Any:
    """The document in `text` as the full loader builds it, or _NotPlain."""
    parser = yaml.CSafeLoader(text) if hasattr(yaml, "CSafeLoader") else None
    if parser is None:
        raise _NotPlain
    try:
        document: list[Any] = []
        # Each open collection: (the container, the key awaiting its value or None, expecting a key)
        stack: list[list[Any]] = []
        documents = 0
        while True:
            event = parser.get_event()
            kind = type(event)
            if kind is yaml.StreamEndEvent:
                break
            if kind is yaml.ScalarEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _NotPlain
                if stack:
                    top = stack[-1]
                    if top[2]:  # a key: kept as written (`off:` stays "off")
                        if event.value == "<<" and event.implicit[0]:
                            raise _NotPlain  # a merge key
                        top[1] = event.value
                        top[0].key_lines[event.value] = event.start_mark.line + 1
                        top[2] = False
                        continue
                    value = _scalar(event)
                else:
                    document.append(_scalar(event))
                    continue
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if event.anchor is not None or event.tag is not None:
                    raise _NotPlain
                if stack and stack[-1][2]:
                    raise _NotPlain  # a collection used as a key: the full loader reports it
                if kind is yaml.MappingStartEvent:
                    mapping = LineDict()
                    mapping.line = event.start_mark.line + 1
                    mapping.key_lines = {}
                    stack.append([mapping, None, True])
                else:
                    stack.append([[], None, False])
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                value = stack.pop()[0]
                if not stack:
                    document.append(value)
                    continue
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _NotPlain  # several documents: the full loader's error
                continue
            elif kind is yaml.AliasEvent:
                raise _NotPlain
            else:  # stream and document boundaries
                continue
            top = stack[-1]
            if isinstance(top[0], list):
                top[0].append(value)
            else:
                top[0][top[1]] = value
                top[2] = True
        return document[0] if document else None
    finally:
        parser.dispose()
