"""`sqlflow init`: a new project that builds as soon as it is created."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import UserError

FILES = {
    "sqlflow.yml": """\
name: {name}
profile: {name}

model-paths: ["models"]
seed-paths: ["seeds"]
macro-paths: ["macros"]

models:
  {name}:
    +materialized: view
""",
    "profiles.yml": """\
{name}:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: {name}.duckdb
      threads: 4
""",
    "models/example/first_model.sql": """\
-- A model is one SELECT. sqlflow creates the view or table around it.
{{{{ config(materialized='table') }}}}

select id, upper(name) as name
from {{{{ ref('people') }}}}
""",
    "models/example/second_model.sql": """\
-- ref() both names the relation and tells sqlflow to build first_model before this one.
select count(*) as people
from {{{{ ref('first_model') }}}}
""",
    "models/example/schema.yml": """\
version: 2

models:
  - name: first_model
    description: People, with names in capitals.
  - name: second_model
    description: How many people there are.
""",
    "seeds/people.csv": "id,name\n1,ada\n2,grace\n3,edsger\n",
    "macros/.gitkeep": "",
    ".gitignore": "target/\n*.duckdb\n*.duckdb.wal\n",
}


def create(path: Path) -> Path:
    name = path.name
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise UserError(
            f"{name!r} is not a valid project name",
            hint="use letters, digits and underscores, starting with a letter",
        )
    if path.exists() and any(path.iterdir()):
        raise UserError(f"{path} already exists and is not empty", hint="choose another name or folder")
    for relative, template in FILES.items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(template.format(name=name), encoding="utf-8")
    return path.resolve()
