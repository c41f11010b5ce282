"""The event-built YAML loader gives exactly what PyYAML's full loader gives, lines included."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml

from sqlflow.errors import UserError
from sqlflow.yaml_lines import LineDict, _from_events, _LineLoader, _NotPlain, line_of, load_yaml

ROOT = Path(__file__).resolve().parent.parent

PLAIN = {
    "scalars": """
a: 1
b: -2.5
c: true
d: off
e: ~
f:
g: "quoted: 1"
h: '2'
i: 0x1f
j: 2024-01-02
k: 2024-01-02 03:04:05
l: .inf
m: 1_000
n: plain text with spaces
""",
    "nested": """
version: 2
models:
  - name: orders
    description: >
      folded
      text
    config: {materialized: table, tags: [a, b]}
    columns:
      - name: id
        data_tests: [unique, not_null]
      - name: status
        data_tests:
          - accepted_values:
              values: ['placed', "shipped", 3]
  - name: customers
    meta:
      owner: |
        literal
        block
""",
    "keys kept as written": "yes: 1\nno: 2\non: [1, 2]\n1: one\nnull: x\n",
    "duplicate keys, last wins": "a: 1\nb: 2\na: 3\n",
    "a scalar document": "just text\n",
    "a list document": "- 1\n- a\n- {b: c}\n",
    "empty": "",
    "comments only": "# nothing here\n",
    "explicit document": "---\na: 1\n...\n",
    "flow and empty collections": "a: {}\nb: []\nc: [{}, []]\n",
    "jinja in values": "sql: \"{{ ref('x') }}\"\nwhere: \"{{ var('d', 1) }} > 0\"\n",
}

NOT_PLAIN = {
    "anchors and aliases": "base: &b {x: 1}\nother: *b\n",
    "merge key": "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
    "explicit tag": "a: !!str 1\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "a mapping as a key": "? {a: 1}\n: 2\n",
}


def _same(events: object, full: object) -> None:
    assert type(events) is type(full)
    if isinstance(full, dict):
        assert list(events) == list(full)  # type: ignore[arg-type]
        assert line_of(events) == line_of(full)
        assert events.key_lines == full.key_lines  # type: ignore[union-attr]
        for key in full:
            _same(events[key], full[key])  # type: ignore[index]
    elif isinstance(full, list):
        assert len(events) == len(full)  # type: ignore[arg-type]
        for a, b in zip(events, full, strict=True):  # type: ignore[call-overload]
            _same(a, b)
    else:
        assert events == full


def _full(text: str) -> object:
    return yaml.load(text, Loader=_LineLoader)


@pytest.mark.parametrize("text", PLAIN.values(), ids=PLAIN.keys())
def test_plain_yaml_is_built_from_events_exactly_as_the_full_loader_builds_it(text: str) -> None:
    _same(_from_events(text), _full(text))


def test_every_yaml_file_of_the_repository_loads_the_same_both_ways() -> None:
    files = [p for p in ROOT.rglob("*.yml") if ".git" not in p.parts and "target" not in p.parts]
    assert len(files) >= 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            built = _from_events(text)
        except _NotPlain:
            continue
        _same(built, _full(text))


def test_types_and_lines_of_the_event_builder() -> None:
    data = _from_events(PLAIN["scalars"])
    assert isinstance(data, LineDict)
    assert data["a"] == 1 and data["c"] is True and data["d"] is False and data["e"] is None
    assert data["g"] == "quoted: 1" and data["h"] == "2" and data["i"] == 31
    assert data["j"] == datetime.date(2024, 1, 2)
    assert line_of(data) == 2 and line_of(data, "n") == 15


@pytest.mark.parametrize("text", NOT_PLAIN.values(), ids=NOT_PLAIN.keys())
def test_other_yaml_goes_to_the_full_loader(text: str, tmp_path: Path) -> None:
    with pytest.raises(_NotPlain):
        _from_events(text)
    path = tmp_path / "x.yml"
    path.write_text(text)
    try:
        expected = _full(text)
    except yaml.YAMLError:
        with pytest.raises(UserError):
            load_yaml(path)
        return
    _same(load_yaml(path), expected)


def test_a_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text("models:\n  - name: a\n    description: [unclosed\n  - name: b\n")
    with pytest.raises(UserError) as error:
        load_yaml(path)
    assert "invalid YAML" in str(error.value) and error.value.location.line == 4
