"""dbt's doc blocks: `{% docs name %}...{% enddocs %}` in `.md` files under the docs paths, and
`{{ doc('name') }}` in YAML descriptions, which is replaced by the block's text.

A block's text is rendered as Jinja when it holds any (as dbt does, with nothing in its context)
and stripped of surrounding blank space. `__overview__` is the docs site's front page.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import jinja2

from .errors import UserError
from .nodes import Doc

OVERVIEW = "__overview__"

_OPEN = re.compile(r"{%-?\s*docs\s+([^\s%}]*)\s*-?%}")
_CLOSE = re.compile(r"{%-?\s*enddocs\s*-?%}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# A description that is a single `{{ doc('name') }}`; group 2 is the name.
ONLY_DOC_CALL = re.compile(r"""{{-?\s*doc\(\s*(["'])([A-Za-z_][A-Za-z0-9_]*)\1\s*\)\s*-?}}""")


def read_doc_blocks(
    path: Path, text: str, env: jinja2.Environment, project_name: str, relpath: str
) -> list[Doc]:
    """The doc blocks of one `.md` file; text outside them is ignored, as in dbt."""
    docs, position = [], 0
    while (opening := _OPEN.search(text, position)) is not None:
        line = text.count("\n", 0, opening.start()) + 1
        name = opening.group(1)
        if not _NAME.match(name):
            raise UserError(
                f"doc block name {name!r} is not a valid name",
                path=path,
                line=line,
                hint="write {% docs my_name %}: letters, digits and underscores",
            )
        closing = _CLOSE.search(text, opening.end())
        if closing is None:
            raise UserError(
                f"doc block {name!r} has no {{% enddocs %}}",
                path=path,
                line=line,
                hint="close it with {% enddocs %}",
            )
        contents = text[opening.end() : closing.start()]
        nested = _OPEN.search(contents)
        if nested is not None:
            raise UserError(
                f"doc block {name!r} holds another doc block",
                path=path,
                line=line + contents.count("\n", 0, nested.start()),
                hint="close the first with {% enddocs %} before opening the next",
            )
        if "{{" in contents or "{%" in contents:
            contents = _render_block(contents, env, path, line, name)
        docs.append(Doc(f"doc.{project_name}.{name}", name, path, relpath, contents.strip(), line))
        position = closing.end()
    return docs


def _render_block(contents: str, env: jinja2.Environment, path: Path, line: int, name: str) -> str:
    try:
        return env.from_string(contents).render()
    except jinja2.TemplateError as exc:
        raise UserError(
            f"doc block {name!r}: {exc}",
            path=path,
            line=line + (getattr(exc, "lineno", 1) or 1) - 1,
            hint="a doc block's text is rendered as Jinja when it holds {{ or {%: wrap literal braces "
            "in {% raw %}...{% endraw %}",
        ) from exc


def doc_function(docs: dict[str, Doc], project_name: str, path: Any, line: int | None) -> Callable[..., str]:
    """`doc('name')` (or `doc('package', 'name')`) for rendering a description written at `path`,
    `line` (where an unknown name is reported)."""

    def doc(*args: str) -> str:
        if len(args) not in (1, 2):
            raise UserError(
                "doc() takes a name, or a package and a name",
                path=path,
                line=line,
                hint="e.g. '{{ doc(\"orders_status\") }}'",
            )
        name = args[-1]
        package = args[0] if len(args) == 2 else None
        found = docs.get(name)
        if found is None or package not in (None, project_name):
            close = difflib.get_close_matches(name, list(docs), n=1)
            raise UserError(
                f"doc({', '.join(repr(a) for a in args)}): there is no doc block named {name!r}"
                + (f" in package {package!r}" if package not in (None, project_name) else ""),
                path=path,
                line=line,
                hint=f"did you mean {close[0]!r}?"
                if close
                else "define it in a .md file under the model folders: {% docs "
                + name
                + " %}...{% enddocs %}",
            )
        return found.block_contents

    return doc


def index_docs(found: Iterable[Doc], relpath: Callable[[Path], str]) -> dict[str, Doc]:
    """Name -> doc block; a name defined twice is an error naming both files."""
    docs: dict[str, Doc] = {}
    for doc in found:
        other = docs.get(doc.name)
        if other is not None:
            raise UserError(
                f"two doc blocks are named {doc.name!r}",
                path=doc.path,
                line=doc.line,
                hint=f"the other is in {relpath(other.path)}:{other.line}; rename one",
            )
        docs[doc.name] = doc
    return docs
