"""Relation names as sqlflow writes them: each part quoted once, then joined."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlflow.nodes import Relation
from sqlflow.project import _KNOWN_DIALECTS

names = st.text(min_size=1, max_size=12).filter(lambda name: "\x00" not in name)


@pytest.mark.parametrize("dialect", sorted(_KNOWN_DIALECTS))
@settings(max_examples=60, deadline=None)
@given(database=st.none() | names, schema=names, identifier=names)
def test_a_relation_is_written_as_sqlglot_writes_its_table(dialect, database, schema, identifier):
    relation = Relation(database, schema, identifier)
    assert relation.sql(dialect) == relation.table().sql(dialect=dialect)


def test_names_are_quoted_and_quotes_escaped():
    assert Relation(None, "main", 'we"ird order').sql("duckdb") == '"main"."we""ird order"'
    assert Relation("db", "Mixed Case", "t").sql("spark") == "`db`.`Mixed Case`.`t`"
