"""The example project builds to the same data on every warehouse.

The project at the repository root (DuckDB SQL) is built with `sqlflow build` on DuckDB,
PostgreSQL, SQLite and Spark (local mode), twice (the second build swaps tables under views,
merges the incremental model, or overwrites its partitions on Spark, and updates the snapshot).
Every model, seed and the snapshot must then have the same row count and the same
order-insensitive checksum of its contents everywhere. A warehouse joins the comparison by adding
an entry to WAREHOUSES (an output for profiles.yml, and whether it needs the PostgreSQL server).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from spark_support import spark_available
from spark_support import spark_session as spark_session  # a fixture
from warehouses import Postgres, copy_project, read_relation, require_postgres
from warehouses import postgres as postgres  # a fixture

from sqlflow import commands
from sqlflow.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent
# The snapshot's own columns hold the time of each build; its data columns are compared.
SNAPSHOT_META = ("dbt_scd_id", "dbt_updated_at", "dbt_valid_from", "dbt_valid_to")


def _duckdb(_: Postgres | None) -> str:
    return "    duckdb:\n      type: duckdb\n      path: shop.duckdb\n      threads: 4\n"


def _sqlite(_: Postgres | None) -> str:
    return "    sqlite:\n      type: sqlite\n      path: shop.sqlite\n      threads: 4\n"


def _postgres(pg: Postgres | None) -> str:
    assert pg is not None
    return pg.output("postgres")


def _spark(pg: Postgres | None) -> str:
    # The schema of the PostgreSQL test, unique per test (Spark's session is shared by the process).
    schema = pg.schema if pg is not None else "sqlflow_test_shop"
    return (
        f"    spark:\n      type: spark\n      master: local[2]\n      schema: {schema}\n      threads: 4\n"
    )


# name -> (profiles.yml output, needs the PostgreSQL server)
WAREHOUSES: dict[str, tuple[Callable[[Postgres | None], str], bool]] = {
    "duckdb": (_duckdb, False),
    "postgres": (_postgres, True),
    "sqlite": (_sqlite, False),
    "spark": (_spark, False),
}


def _build(root: Path, target: str) -> str:
    result = CliRunner().invoke(main, ["build", "--target", target, "--project-dir", str(root)])
    assert result.exit_code == 0, f"build on {target} failed:\n{result.output}"
    return result.output


def _checksums(root: Path, target: str) -> dict[str, tuple[int, str]]:
    """(rows, checksum) of every relation the build made: models, seeds and the snapshot."""
    with commands.open_session(root, target=target) as session:
        found = {}
        for node in session.manifest.nodes.values():
            if node.resource_type not in ("model", "seed", "snapshot") or node.is_ephemeral:
                continue
            exclude = SNAPSHOT_META if node.resource_type == "snapshot" else ()
            found[node.name] = read_relation(session, node.relation.schema, node.relation.identifier, exclude)
        return found


def test_the_example_project_has_the_same_data_on_every_warehouse(tmp_path, request):
    pg = None
    if any(needs_server for _, needs_server in WAREHOUSES.values()):
        require_postgres()
        pg = request.getfixturevalue("postgres")
    # Spark joins when it can run here (always in CI); its session is the one of the test process.
    targets = [name for name in WAREHOUSES if name != "spark" or spark_available()]
    if "spark" in targets:
        spark = request.getfixturevalue("spark_session")
        request.addfinalizer(lambda: spark.sql(f"drop schema if exists {pg.schema} cascade").collect())
    root = copy_project(REPO_ROOT, tmp_path / "shop")
    outputs = "".join(WAREHOUSES[name][0](pg) for name in targets)
    (root / "profiles.yml").write_text(f"shop:\n  target: duckdb\n  outputs:\n{outputs}")

    for build in ("first", "second"):
        sums = {}
        for target in targets:
            output = _build(root, target)
            assert "38 nodes" in output and "ERROR" not in output and "FAIL" not in output
            sums[target] = _checksums(root, target)
        reference = sums["duckdb"]
        assert set(reference) == {
            "raw_customers",
            "raw_orders",
            "raw_payments",
            "stg_customers",
            "stg_orders",
            "stg_payments",
            "int_customer_orders",
            "orders",
            "customers",
            "payments_daily",
            "customers_snapshot",
        }
        assert reference["orders"][0] == 600 and reference["customers_snapshot"][0] == 200
        for target, found in sums.items():
            different = {
                name: (reference[name], found.get(name))
                for name in reference
                if found.get(name) != reference[name]
            }
            assert not different, f"{build} build: {target} differs from duckdb in {sorted(different)}"


@pytest.mark.parametrize("target", ["postgres", "sqlite"])
def test_compile_shows_the_sql_transpiled_for_the_target(tmp_path, request, target):
    pg = None
    if WAREHOUSES[target][1]:
        require_postgres()
        pg = request.getfixturevalue("postgres")
    root = copy_project(REPO_ROOT, tmp_path / "shop")
    outputs = "".join(WAREHOUSES[name][0](pg) for name in ("duckdb", target))
    (root / "profiles.yml").write_text(f"shop:\n  target: duckdb\n  outputs:\n{outputs}")
    result = CliRunner().invoke(
        main, ["compile", "--target", target, "-s", "stg_payments", "--project-dir", str(root)]
    )
    assert result.exit_code == 0, result.output
    # DuckDB's `/` divides as a double: said so explicitly for the target
    cast = "DOUBLE PRECISION" if target == "postgres" else "REAL"
    assert f"CAST(CAST(amount AS {cast}) / 100.0" in result.output
    duckdb = CliRunner().invoke(main, ["compile", "-s", "stg_payments", "--project-dir", str(root)])
    assert "cast(amount / 100.0 as decimal(18, 2))" in duckdb.output
