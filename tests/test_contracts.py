"""Model contracts on a real DuckDB file: `contract: {enforced: true}` and declared column types.

A contract is checked at load time (every column has a readable data_type; exit 2) and on the
relation built under a temporary name before it is swapped in (exit 1, the old relation intact).
"""

from __future__ import annotations

import json

import pytest

from sqlflow.materializations import same_type

# --------------------------------------------------------------------------- helpers

CONTRACT_YAML = """\
version: 2
models:
  - name: orders
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: integer
      - name: customer
        data_type: varchar
      - name: amount
        data_type: decimal(18, 2)
"""

GOOD_SQL = "select range::integer as id, 'c' || range as customer, (range * 1.5)::decimal(18, 2) as amount from range(3)\n"
GOOD_ROWS = [(0, "c0"), (1, "c1"), (2, "c2")]


def model(sql: str, materialized: str = "table", extra: str = "") -> str:
    return f"{{{{ config(materialized='{materialized}'{extra}) }}}}\n{sql}"


def contract_project(
    make_project, sql: str = GOOD_SQL, materialized: str = "table", yaml: str = CONTRACT_YAML
):
    return make_project({"models/orders.sql": model(sql, materialized), "models/schema.yml": yaml})


def relation_type(project, name: str) -> str | None:
    found = project.query(f"select table_type from information_schema.tables where table_name = '{name}'")
    return found[0][0] if found else None


def assert_no_leftovers(project) -> None:
    names = [
        name
        for (name,) in project.query(
            "select table_name from information_schema.tables where table_schema != 'sqlflow_state'"
        )
    ]
    assert not [n for n in names if "__sqlflow" in n], names


def status(project, name: str = "orders") -> tuple[str, str]:
    data = json.loads((project.root / "target" / "run_results.json").read_text())
    result = next(r for r in data["results"] if r["unique_id"] == f"model.proj.{name}")
    return result["status"], result["message"]


def old_rows(project) -> list[tuple]:
    return sorted(project.query("select id, customer from orders"))


# --------------------------------------------------------------------------- matching contracts build


@pytest.mark.parametrize("materialized", ["table", "view", "incremental"])
def test_matching_contract_builds(make_project, materialized):
    project = contract_project(make_project, materialized=materialized)
    for _ in range(2):  # the second run replaces the relation (incremental: the incremental path)
        result = project.cli("run")
        assert result.exit_code == 0, result.output
        assert status(project)[0] == "success"
    assert relation_type(project, "orders") == ("VIEW" if materialized == "view" else "BASE TABLE")
    expected = GOOD_ROWS * 2 if materialized == "incremental" else GOOD_ROWS
    assert old_rows(project) == sorted(expected)
    assert_no_leftovers(project)


def test_matching_incremental_full_refresh(make_project):
    project = contract_project(make_project, materialized="incremental")
    assert project.cli("run").exit_code == 0
    result = project.cli("run", "--full-refresh")
    assert result.exit_code == 0, result.output
    assert old_rows(project) == GOOD_ROWS


# --------------------------------------------------------------------------- mismatches fail, old relation intact

TYPE_CHANGED = (
    "select 'x' || range as id, 'c' || range as customer, 1.5::decimal(18, 2) as amount from range(3)\n"
)
COLUMN_MISSING = "select range::integer as id, 'c' || range as customer from range(3)\n"
COLUMN_EXTRA = (
    "select range::integer as id, 'c' || range as customer, 1.5::decimal(18, 2) as amount, "
    "true as is_new from range(3)\n"
)


def rebuild_with(project, sql: str, materialized: str, *args: str):
    assert project.cli("run").exit_code == 0
    assert old_rows(project) == GOOD_ROWS
    project.write("models/orders.sql", model(sql, materialized))
    result = project.cli("run", *args)
    assert result.exit_code == 1, result.output
    assert status(project)[0] == "error"
    return result


def table_lines(output: str) -> list[list[str]]:
    """The rows of the expected-vs-actual table in a failure message, split on `|`."""
    return [
        [cell.strip() for cell in line.split("|")] for line in output.splitlines() if line.count("|") == 3
    ]


@pytest.mark.parametrize("materialized", ["table", "view", "incremental"])
def test_type_mismatch_fails_and_keeps_the_old_relation(make_project, materialized):
    project = contract_project(make_project, materialized=materialized)
    result = rebuild_with(project, TYPE_CHANGED, materialized)
    assert "contract not met" in result.output
    assert table_lines(result.output) == [
        ["column", "contract type", "actual type", "problem"],
        ["id", "integer", "VARCHAR", "type differs"],
    ]
    assert "schema.yml" in result.output and "cast(id as integer) as id" in result.output
    assert relation_type(project, "orders") == ("VIEW" if materialized == "view" else "BASE TABLE")
    assert old_rows(project) == GOOD_ROWS
    assert_no_leftovers(project)


def test_incremental_full_refresh_mismatch_keeps_the_old_table(make_project):
    project = contract_project(make_project, materialized="incremental")
    rebuild_with(project, TYPE_CHANGED, "incremental", "--full-refresh")
    assert old_rows(project) == GOOD_ROWS
    assert_no_leftovers(project)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (COLUMN_MISSING, ["amount", "decimal(18, 2)", "", "missing"]),
        (COLUMN_EXTRA, ["is_new", "", "BOOLEAN", "extra"]),
    ],
)
@pytest.mark.parametrize("materialized", ["table", "view"])
def test_missing_and_extra_columns(make_project, materialized, sql, expected):
    project = contract_project(make_project, materialized=materialized)
    result = rebuild_with(project, sql, materialized)
    assert table_lines(result.output)[1:] == [expected]
    assert old_rows(project) == GOOD_ROWS
    assert_no_leftovers(project)


def test_first_build_with_a_mismatch_creates_nothing(make_project):
    project = contract_project(make_project, sql=TYPE_CHANGED)
    result = project.cli("run")
    assert result.exit_code == 1
    assert relation_type(project, "orders") is None
    assert_no_leftovers(project)


def test_column_order_is_not_enforced(make_project):
    sql = "select 1.5::decimal(18, 2) as amount, 'c' as customer, 1 as id\n"
    project = contract_project(make_project, sql=sql)
    result = project.cli("run")
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- where the contract is configured


FOLDER_SETTINGS = """\
name: proj
profile: proj
models:
  proj:
    +contract: {enforced: true}
"""
COLUMNS_ONLY_YAML = CONTRACT_YAML.replace("    config:\n      contract: {enforced: true}\n", "")


@pytest.mark.parametrize("where", ["file", "yaml", "folder"])
def test_contract_config_levels(make_project, where):
    files = {
        "models/orders.sql": model(
            TYPE_CHANGED, extra=", contract={'enforced': true}" if where == "file" else ""
        ),
        "models/schema.yml": CONTRACT_YAML if where == "yaml" else COLUMNS_ONLY_YAML,
    }
    kwargs = {"settings": FOLDER_SETTINGS} if where == "folder" else {}
    project = make_project(files, **kwargs)
    result = project.cli("run")
    assert result.exit_code == 1, result.output
    assert "type differs" in result.output


def test_contract_not_enforced_is_not_checked(make_project):
    project = contract_project(make_project, sql=TYPE_CHANGED, yaml=CONTRACT_YAML.replace("true", "false"))
    result = project.cli("run")
    assert result.exit_code == 0, result.output


def test_file_config_can_switch_a_folder_contract_off(make_project):
    project = make_project(
        {
            "models/orders.sql": model(TYPE_CHANGED, extra=", contract={'enforced': false}"),
            "models/schema.yml": COLUMNS_ONLY_YAML,
        },
        settings=FOLDER_SETTINGS,
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output


# --------------------------------------------------------------------------- types and names


@pytest.mark.parametrize(
    ("declared", "expression"),
    [
        ("int", "1"),
        ("integer", "1"),
        ("int4", "1"),
        ("INTEGER", "1"),
        ("bigint", "1::bigint"),
        ("int8", "1::bigint"),
        ("varchar", "'a'"),
        ("text", "'a'"),
        ("string", "'a'"),
        ("varchar(20)", "'a'"),  # DuckDB ignores a varchar length
        ("decimal", "1.5::decimal(18, 2)"),
        ("numeric", "1.5::decimal(10, 4)"),
        ("decimal(18,2)", "1.5::decimal(18, 2)"),
        ("numeric(18, 2)", "1.5::decimal(18, 2)"),
        ("double", "1.5::double"),
        ("float8", "1.5::double"),
        ("real", "1.5::real"),
        ("float", "1.5::float"),
        ("boolean", "true"),
        ("bool", "true"),
        ("date", "current_date"),
        ("timestamp", "now()::timestamp"),
        ("timestamptz", "now()"),
        ("timestamp with time zone", "now()"),
        ("integer[]", "[1, 2]"),
        ("struct(k integer)", "{'k': 1}"),
    ],
)
def test_declared_types_that_match(make_project, declared, expression):
    project = make_project(
        {
            "models/m.sql": model(f"select {expression} as c"),
            "models/schema.yml": f"""\
                models:
                  - name: m
                    config: {{contract: {{enforced: true}}}}
                    columns: [{{name: c, data_type: "{declared}"}}]
                """,
        }
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("declared", "expression", "actual"),
    [
        ("bigint", "1", "INTEGER"),
        ("integer", "'1'", "VARCHAR"),
        ("decimal(10,2)", "1.5::decimal(18, 2)", "DECIMAL(18,2)"),
        ("decimal(18,3)", "1.5::decimal(18, 2)", "DECIMAL(18,2)"),
        ("double", "1.5::real", "FLOAT"),
        ("timestamp", "now()", "TIMESTAMP WITH TIME ZONE"),
        ("varchar[]", "[1]", "INTEGER[]"),
        ("struct(k varchar)", "{'k': 1}", "STRUCT(k INTEGER)"),
    ],
)
def test_declared_types_that_differ(make_project, declared, expression, actual):
    project = make_project(
        {
            "models/m.sql": model(f"select {expression} as c"),
            "models/schema.yml": f"""\
                models:
                  - name: m
                    config: {{contract: {{enforced: true}}}}
                    columns: [{{name: c, data_type: "{declared}"}}]
                """,
        }
    )
    result = project.cli("run")
    assert result.exit_code == 1, result.output
    assert table_lines(result.output)[1:] == [["c", declared, actual, "type differs"]]


def test_decimal_without_parameters_matches_any_precision():
    assert same_type("decimal", "duckdb", "DECIMAL(18,2)", "duckdb")
    assert same_type("numeric", "duckdb", "DECIMAL(38,10)", "duckdb")
    assert same_type("decimal(18,2)", "duckdb", "DECIMAL(18,2)", "duckdb")
    assert not same_type("decimal(18,3)", "duckdb", "DECIMAL(18,2)", "duckdb")
    assert not same_type("decimal", "duckdb", "DOUBLE", "duckdb")


def test_column_names_compare_without_case_on_duckdb(make_project):
    yaml = CONTRACT_YAML.replace("name: id", "name: ID").replace("name: customer", "name: Customer")
    project = contract_project(make_project, sql=GOOD_SQL.replace("as amount", 'as "AMOUNT"'), yaml=yaml)
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    # case-insensitive, but still a mismatch when the column is really missing
    project.write("models/orders.sql", model(COLUMN_MISSING.replace("as id", "as ID")))
    result = project.cli("run")
    assert result.exit_code == 1
    assert table_lines(result.output)[1:] == [["amount", "decimal(18, 2)", "", "missing"]]


# --------------------------------------------------------------------------- load-time errors (exit 2)


def assert_load_error(project, *fragments: str) -> None:
    result = project.cli("run")
    assert result.exit_code == 2, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert "hint:" in result.output
    assert not project.db_path.exists() or relation_type(project, "orders") is None


def test_missing_data_type_names_the_yaml_line(make_project):
    yaml = CONTRACT_YAML.replace("        data_type: varchar\n", "")
    project = contract_project(make_project, yaml=yaml)
    # `- name: customer` is on line 9
    assert_load_error(project, "schema.yml:9:", "column 'customer' of model orders has no data_type")


def test_missing_data_type_without_contract_is_fine(make_project):
    yaml = COLUMNS_ONLY_YAML.replace("        data_type: varchar\n", "")
    project = contract_project(make_project, yaml=yaml)
    assert project.cli("run").exit_code == 0


def test_unreadable_data_type_names_the_yaml_line(make_project):
    yaml = CONTRACT_YAML.replace("data_type: decimal(18, 2)", "data_type: decimal(18,")
    project = contract_project(make_project, yaml=yaml)
    assert_load_error(project, "schema.yml:11:", "data_type 'decimal(18,' is not a duckdb type")


def test_contract_without_columns(make_project):
    yaml = "models:\n  - name: orders\n    config:\n      contract: {enforced: true}\n"
    project = contract_project(make_project, yaml=yaml)
    assert_load_error(project, "schema.yml:2:", "declares no columns")


def test_contract_in_sql_without_any_yaml(make_project):
    project = make_project({"models/orders.sql": model(GOOD_SQL, extra=", contract={'enforced': true}")})
    assert_load_error(project, "orders.sql", "declares no columns")


def test_contract_on_an_ephemeral_model(make_project):
    project = contract_project(make_project, materialized="ephemeral")
    assert_load_error(project, "orders.sql", "ephemeral and has an enforced contract")


def test_contract_that_is_not_a_mapping(make_project):
    project = contract_project(make_project, yaml=CONTRACT_YAML.replace("{enforced: true}", "true"))
    assert_load_error(project, "schema.yml:5:", "`contract` must be a mapping")


def test_declared_types_are_read_in_the_project_dialect(make_project):
    # Snowflake's FLOAT is a double (DuckDB's FLOAT is a real): read in the project's dialect, it matches.
    project = make_project(
        {
            "models/m.sql": model("select cast(1.5 as double) as c, cast(2 as number(38, 0)) as n"),
            "models/schema.yml": """\
                models:
                  - name: m
                    config: {contract: {enforced: true}}
                    columns: [{name: c, data_type: float}, {name: n, data_type: "number(38,0)"}]
                """,
        },
        settings="name: proj\nprofile: proj\ndialect: snowflake\n",
    )
    result = project.cli("run")
    assert result.exit_code == 0, result.output
    assert project.query("select typeof(c), typeof(n) from m") == [("DOUBLE", "DECIMAL(38,0)")]


def test_contract_that_is_not_a_mapping_in_the_sql_file(make_project):
    project = contract_project(make_project, yaml=COLUMNS_ONLY_YAML)
    project.write("models/orders.sql", model(GOOD_SQL, extra=", contract=true"))
    assert_load_error(project, "orders.sql", "`contract` must be a mapping")
