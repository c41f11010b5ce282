"""DELETE and UPDATE for Spark tables whose format has neither (plain parquet, ORC, CSV).

Such a statement becomes the SELECT of the rows the table holds after it, which the Spark adapter
writes into a new table that then replaces the old one (see `SparkAdapter.rewrite`). Pure
functions of sqlglot expressions: no warehouse here.

sqlflow sends these statements for its own bookkeeping (the state tables) and for snapshots.
An UPDATE ... FROM must find at most one source row per target row (snapshots check their keys
are unique); the adapter refuses a rewrite that would change the number of rows.
"""

from __future__ import annotations

from ..lazy import exp

MATCHED = "__sqlflow_matched"


def target_of(statement: exp.Delete | exp.Update) -> exp.Table:
    """The table a DELETE or UPDATE changes, without its alias."""
    table = statement.this.copy()
    table.set("alias", None)
    return table


def rows_after(statement: exp.Delete | exp.Update, columns: list[tuple[str, str]]) -> exp.Select:
    """The rows of the target table once `statement` has run, in the table's column order.

    `columns` are the table's (name, Spark type): updated values are cast back to their column's
    type, as UPDATE would store them.
    """
    target = statement.this.copy()
    condition = _condition(statement)
    if isinstance(statement, exp.Delete):
        return exp.select("*").from_(target).where(exp.not_(_holds(condition)))
    source = statement.args.get("from_") or statement.args.get("from")
    qualifier = _qualifier(target)
    if source is not None:
        # A LEFT JOIN on the UPDATE's condition finds each target row's source row, if any.
        joined = source.this.copy()
        alias = joined.alias_or_name
        joined.set("alias", None)
        flagged = exp.select(exp.Star(), exp.alias_(exp.true(), MATCHED, quoted=True)).from_(joined)
        hit = exp.func("coalesce", exp.column(MATCHED, table=alias, quoted=True), exp.false())
        subquery = exp.Subquery(
            this=flagged, alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True))
        )
        select = exp.select().from_(target).join(subquery, on=condition, join_type="left")
    else:
        hit = _holds(condition)
        select = exp.select().from_(target)
    assignments = {
        assignment.this.name.lower(): assignment.expression for assignment in statement.expressions
    }
    outputs = []
    for name, data_type in columns:
        current = _qualified(name, qualifier)
        value = assignments.get(name.lower())
        if value is None:
            outputs.append(current)
            continue
        updated = exp.If(this=hit.copy(), true=value.copy(), false=current.copy())
        outputs.append(
            exp.alias_(
                exp.cast(updated, exp.DataType.build(data_type, dialect="spark", udt=True)), name, quoted=True
            )
        )
    return select.select(*outputs)


def affected(statement: exp.Delete | exp.Update) -> exp.Select:
    """SELECT count(*) of the target rows `statement` deletes or updates."""
    target = statement.this.copy()
    condition = _condition(statement)
    source = statement.args.get("from_") or statement.args.get("from")
    if isinstance(statement, exp.Update) and source is not None:
        matching = exp.select("1").from_(source.this.copy()).where(condition)
        condition = exp.Exists(this=matching)
    return exp.select(exp.func("count", exp.Star())).from_(target).where(condition)


def _condition(statement: exp.Delete | exp.Update) -> exp.Expression:
    where = statement.args.get("where")
    return where.this.copy() if where is not None else exp.true()


def _holds(condition: exp.Expression) -> exp.Expression:
    # A NULL condition deletes or updates nothing.
    return exp.func("coalesce", exp.paren(condition.copy()), exp.false())


def _qualifier(target: exp.Table) -> exp.Table:
    """What columns of the target are qualified with: its alias, else its own name."""
    if target.alias:
        return exp.Table(this=exp.to_identifier(target.alias, quoted=True))
    table = target.copy()
    table.set("alias", None)
    return table


def _qualified(name: str, qualifier: exp.Table) -> exp.Column:
    return exp.Column(
        this=exp.to_identifier(name, quoted=True),
        table=qualifier.this.copy(),
        db=qualifier.args["db"].copy() if qualifier.args.get("db") else None,
        catalog=qualifier.args["catalog"].copy() if qualifier.args.get("catalog") else None,
    )
