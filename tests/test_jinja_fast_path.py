"""The fast template scanner must mean exactly what Jinja means, on every template it accepts."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlflow.jinja import (
    RenderContext,
    _segments,
    _static_calls,
    make_environment,
    parse_program,
    render,
    scan_simple_template,
)

ENV = make_environment()
GENERATOR = Path(__file__).resolve().parents[2] / "shared" / "bench" / "gen_project.py"


def _context(incremental: bool) -> RenderContext:
    return RenderContext(
        {
            "ref": lambda *a: f"<ref {'.'.join(a)}>",
            "source": lambda s, t: f"<source {s}.{t}>",
            "config": lambda *a, **k: "",
            "var": lambda name, default=None: f"<var {name}={default}>",
            "env_var": lambda name, default=None: f"<env {name}={default}>",
            "this": "<this>",
            "is_incremental": lambda: incremental,
        },
        None,
    )


def _assert_same_as_jinja(source: str) -> None:
    fast = scan_simple_template(source)
    if fast is None:
        return
    _segments_unused, refs, sources, config = fast
    ast = ENV.parse(source)
    jinja_refs, jinja_sources, jinja_config, dynamic = _static_calls(ast)
    assert not dynamic
    assert _segments(ast.body) is not None, "the scanner accepted a template Jinja's subset rejects"
    assert [(r.name, r.line, r.package) for r in refs] == [(r.name, r.line, r.package) for r in jinja_refs]
    assert sources == jinja_sources
    assert config == jinja_config
    fast_program = parse_program(ENV, source, Path("m.sql"))
    for incremental in (False, True):
        expected = ENV.from_string(source).render(_context(incremental))
        assert render(fast_program, ENV, _context(incremental)) == expected


TEXT = st.sampled_from(
    [
        "select a",
        " ",
        "\n",
        "\r\n",
        "  from ",
        "where x = 'y'",
        "-- note\n",
        "{ not a tag }",
        "%}",
        "}}",
        ")",
        "\t",
    ]
)
TAGS = st.sampled_from(
    [
        "{{ ref('a') }}",
        '{{ref("b_2")}}',
        "{{ ref('pkg', 'c') }}",
        "{{ source('raw', 'events') }}",
        "{{ config(materialized='table', tags=['x', 'y'], unique_key=['a', 'b']) }}",
        "{{ config(enabled=True, meta={'owner': 'me'}) }}",
        "{{ var('start', '2024-01-01') }}",
        "{{ env_var('HOME') }}",
        "{{ this }}",
        "{% if is_incremental() %}",
        "{% else %}",
        "{% endif %}",
        "{{ ref(name) }}",
        "{{ other('x') }}",
        "{# comment #}",
        "{%- if is_incremental() %}",
        "{{ ref('a') -}}",
        "{% set x = 1 %}",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(TEXT, TAGS), max_size=14))
def test_scanner_agrees_with_jinja_on_random_templates(pieces: list[str]) -> None:
    source = "".join(pieces)
    try:
        ENV.parse(source)
    except Exception:  # not a valid template: the scanner must not accept it either
        assert scan_simple_template(source) is None
        return
    _assert_same_as_jinja(source)


@pytest.mark.parametrize(
    "source",
    [
        "select 1\n",
        "select 1\n\n",
        "select * from {{ ref('a') }}\n{% if is_incremental() %}\nwhere x > (select max(x) from {{ this }})\n{% endif %}\n",
        "{% if is_incremental() %}a{% else %}b{% endif %}",
        "{% if is_incremental() %}{% if is_incremental() %}x{% endif %}{% endif %}",
        "line1\r\nline2\r\n{{ ref('a') }}",
    ],
)
def test_scanner_agrees_with_jinja_on_known_cases(source: str) -> None:
    assert scan_simple_template(source) is not None
    _assert_same_as_jinja(source)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ref(x) }}",
        "{# c #}",
        "{% for x in y %}{% endfor %}",
        "{{ ref('a') | upper }}",
        # Python warns of (and will reject) escapes Jinja reads without a word.
        "{{ config(tags=['a\\-b']) }}select 1",
    ],
)
def test_scanner_leaves_the_rest_to_jinja(source: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert scan_simple_template(source) is None
    assert not caught


@pytest.mark.skipif(not GENERATOR.exists(), reason="shared/bench/gen_project.py not beside the repo")
def test_scanner_agrees_with_jinja_on_a_generated_project(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(GENERATOR), str(tmp_path / "p"), "--models", "300"],
        check=True,
        capture_output=True,
    )
    files = sorted((tmp_path / "p" / "models").rglob("*.sql"))
    assert len(files) == 300
    accepted = 0
    for path in files:
        source = path.read_text()
        accepted += scan_simple_template(source) is not None
        _assert_same_as_jinja(source)
    assert accepted == 300


def test_simple_models_do_not_go_through_jinjas_parser(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("Jinja's parser was used for a template the scanner accepts")

    env = make_environment()
    monkeypatch.setattr(env, "parse", refuse)
    program = parse_program(env, "select * from {{ ref('a') }}", Path("m.sql"))
    assert [r.name for r in program.refs] == ["a"]
