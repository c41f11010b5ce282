"""incremental_strategy='insert_overwrite' off Spark: the partitions of the new rows are replaced
(their old rows deleted, the new ones inserted), the others left alone. Spark's own INSERT OVERWRITE
is tested in test_spark.py."""

from __future__ import annotations

import json

MODEL = (
    "{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by=['day']) }}\n"
    "select day, count(*) as n from {{ ref('events') }}\n"
    "{% if is_incremental() %} where day >= (select max(day) from {{ this }}) {% endif %}\n"
    "group by day"
)


def test_insert_overwrite_replaces_the_partitions_of_the_new_rows(make_project):
    events = "day,id\n2024-01-01,1\n2024-01-02,2\n"
    project = make_project({"seeds/events.csv": events, "models/daily.sql": MODEL})
    assert project.cli("build").exit_code == 0
    project.write("seeds/events.csv", events + "2024-01-02,3\n2024-01-03,4\n")
    result = project.cli("build")
    assert result.exit_code == 0, result.output
    results = json.loads((project.root / "target" / "run_results.json").read_text())["results"]
    assert [r["message"] for r in results if r["unique_id"] == "model.proj.daily"] == ["INSERT_OVERWRITE"]
    rows = project.query("select cast(day as varchar), n from daily order by day")
    assert rows == [("2024-01-01", 1), ("2024-01-02", 2), ("2024-01-03", 1)]


def test_insert_overwrite_needs_partition_by(make_project):
    model = "{{ config(materialized='incremental', incremental_strategy='insert_overwrite') }} select 1 as id"
    result = make_project({"models/m.sql": model}).cli("run")
    assert result.exit_code == 2
    assert "'insert_overwrite' needs partition_by" in result.output
