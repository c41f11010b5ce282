"""The Jinja layer: one parse per template, two contexts.

Each template is parsed once into a `Program`. Most models only call `ref`, `source`, `config`,
`var` and `this` with constant arguments, and `{% if is_incremental() %}` blocks: for those the
program keeps a flat list of segments that is interpreted directly, which is two orders of
magnitude cheaper than compiling the template to Python. Anything else is compiled by Jinja on
first use. Refs and sources are read from the AST where their arguments are constants; the
loader renders the rest with a recording `ref()` (see manifest.py).

At load time the context records; at run time the same names resolve relations. This module
knows neither: the caller passes the functions.
"""

from __future__ import annotations

import ast as pyast
import datetime
import functools
import hashlib
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
import jinja2.nodes as jn
import yaml
from jinja2.ext import Extension

from . import cross_db, dispatch
from .errors import CompilationError, Location, UserError
from .nodes import RefCall, SourceCall, merge_config

STATIC_CALLS = frozenset({"ref", "source", "config", "var", "env_var"})


class _TestBlockExtension(Extension):
    """`{% test name(model, column_name) %}…{% endtest %}` defines the macro `test_<name>`, as in dbt."""

    tags = {"test"}

    def parse(self, parser: jinja2.parser.Parser) -> jn.Node:
        lineno = next(parser.stream).lineno
        node = jn.Macro(lineno=lineno)
        node.name = "test_" + parser.parse_assign_target(name_only=True).name
        parser.parse_signature(node)
        node.body = parser.parse_statements(("name:endtest",), drop_needle=True)
        return node


def make_environment() -> jinja2.Environment:
    return jinja2.Environment(
        extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols", _TestBlockExtension],
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


_SNAPSHOT_BLOCK = re.compile(r"\{%-?\s*snapshot\s+(\w+)\s*-?%\}(.*?)\{%-?\s*endsnapshot\s*-?%\}", re.S)


def snapshot_blocks(source: str) -> list[tuple[str, str, int]]:
    """(name, body, line) of each `{% snapshot name %}…{% endsnapshot %}` block in a file.

    The body is padded with the newlines before it, so a line in it is the line in the file.
    """
    blocks = []
    for match in _SNAPSHOT_BLOCK.finditer(source):
        before = source[: match.start(2)]
        line = source.count("\n", 0, match.start()) + 1
        blocks.append((match.group(1), "\n" * before.count("\n") + match.group(2), line))
    return blocks


# --------------------------------------------------------------------------- programs


@dataclass
class Program:
    """A parsed template. `segments` is set when the static interpreter can render it."""

    path: Path
    source: str
    segments: list[Any] | None
    refs: list[RefCall]
    sources: list[SourceCall]
    static_config: dict[str, Any]
    # True when a render at load time is needed to find every ref/source/config.
    needs_load_render: bool
    code: Any = field(default=None, repr=False)  # compiled Jinja code, built on first use

    def __getstate__(self) -> dict[str, Any]:
        # Code objects are rebuilt on demand: compiling is cheaper than unpickling them is unsafe.
        return {**self.__dict__, "code": None}


def parse_template(env: jinja2.Environment, source: str, path: Path) -> jn.Template:
    """Jinja's AST of a file; a syntax error names the file and line."""
    try:
        return env.parse(source, name=path.name, filename=str(path))
    except jinja2.TemplateSyntaxError as exc:
        raise CompilationError(
            f"Jinja syntax error: {exc.message}",
            path=path,
            line=exc.lineno,
            hint="check the {{ }} and {% %} tags near that line",
        ) from exc


def parse_program(env: jinja2.Environment, source: str, path: Path) -> Program:
    fast = scan_simple_template(source)
    if fast is not None:
        segments, refs, sources, config = fast
        return Program(path, source, segments, refs, sources, config, needs_load_render=False)
    ast = parse_template(env, source, path)
    refs, sources, config, dynamic_calls = _static_calls(ast)
    segments = _segments(ast.body)
    program = Program(
        path=path,
        source=source,
        segments=segments,
        refs=refs,
        sources=sources,
        static_config=config,
        needs_load_render=segments is None or dynamic_calls,
    )
    if segments is None:
        program.code = env.compile(ast, name=path.name, filename=str(path))
    return program


def as_jinja_program(env: jinja2.Environment, program: Program) -> Program:
    """`program` rendered by Jinja rather than the static interpreter, and at load time too."""
    code = env.compile(program.source, name=program.path.name, filename=str(program.path))
    return replace(program, segments=None, needs_load_render=True, code=code)


# --------------------------------------------------------------------------- the fast scanner

_TAG = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_NEWLINES = re.compile(r"\r\n|\r|\n")
_LITERAL_TYPES = (str, int, float, bool, type(None))
# ref('m'), source('s', 't'), var('x'), env_var('X'): plain string arguments, the usual call.
_STRING = r"""('[^'\\]*'|"[^"\\]*")"""
_STRING_CALL = re.compile(rf"(ref|source|var|env_var)\(\s*{_STRING}\s*(?:,\s*{_STRING}\s*)?\)\Z")


Scanned = tuple[list[Any], list[RefCall], list[SourceCall], dict[str, Any]]


def scan_simple_template(source: str) -> Scanned | None:
    """The program of a simple template (see `_scan`), or None for anything else."""
    try:
        return _scan(source)
    except _NotSimple:
        return None


def _scan(source: str) -> Scanned | None:
    """The program of a template in the simple subset, without Jinja's parser; None otherwise.

    The subset: text, `{{ this }}`, `{{ ref|source|config|var|env_var(<literals>) }}` and
    `{% if is_incremental() %}…{% else %}…{% endif %}`. Anything else (comments, whitespace
    control, other tags or expressions) returns None and goes through Jinja, which gives the
    same result for the subset (tests/test_jinja_fast_path.py checks that).
    """
    if "{#" in source or "-%}" in source or "{%-" in source or "{{-" in source or "-}}" in source:
        return None
    lines = _NEWLINES.split(source)
    if lines[-1] == "":
        lines.pop()  # Jinja drops one trailing newline (keep_trailing_newline=False)
    text = "\n".join(lines)
    refs: list[RefCall] = []
    sources: list[SourceCall] = []
    config: dict[str, Any] = {}
    stack: list[list[Any]] = [[]]  # segment lists being filled; if-blocks push two
    branches: list[tuple[list[Any], list[Any]]] = []
    position = 0
    for match in _TAG.finditer(text):
        if match.start() > position:
            stack[-1].append(_plain_text(text[position : match.start()]))
        position = match.end()
        line = text.count("\n", 0, match.start()) + 1
        expression, statement = match.group(1), match.group(2)
        if expression is not None:
            segment = _scan_expression(expression.strip(), line)
            if segment is None:
                return None
            stack[-1].append(segment)
            if segment[0] == "call":
                _, name, args, kwargs, _ = segment
                if name == "ref" and 1 <= len(args) <= 2 and not kwargs:
                    refs.append(RefCall(str(args[-1]), line, args[0] if len(args) == 2 else None))
                elif name == "source" and len(args) == 2 and not kwargs:
                    sources.append(SourceCall(str(args[0]), str(args[1]), line))
                elif name == "config" and not args:
                    config = merge_config(config, dict(kwargs))
                elif name in ("ref", "source", "config"):
                    return None
            continue
        words = statement.split()
        if words == ["if", "is_incremental()"]:
            then: list[Any] = []
            otherwise: list[Any] = []
            stack[-1].append(("if_incremental", then, otherwise))
            branches.append((then, otherwise))
            stack.append(then)
        elif words == ["else"] and branches and stack[-1] is branches[-1][0]:
            stack[-1] = branches[-1][1]
        elif words == ["endif"] and branches:
            stack.pop()
            branches.pop()
        else:
            return None
    if branches:
        return None
    if position < len(text):
        stack[-1].append(_plain_text(text[position:]))
    return stack[0], refs, sources, config


class _NotSimple(Exception):  # control flow inside the scanner
    pass


def _plain_text(text: str) -> str:
    # An opening delimiter left in the text is an unclosed tag: Jinja must report it.
    if "{{" in text or "{%" in text or "{#" in text:
        raise _NotSimple
    return text


def _scan_expression(expression: str, line: int) -> Any:
    if expression == "this":
        return ("this",)
    simple = _STRING_CALL.match(expression)
    if simple:  # what Python's parser below would make of it, at a tenth of the cost
        name, first, second = simple.groups()
        args = (first[1:-1],) if second is None else (first[1:-1], second[1:-1])
        return ("call", name, args, (), line)
    name, _, rest = expression.partition("(")
    # Backslashes are left to Jinja: Python warns of escapes it does not know (and will reject them).
    if name.strip() not in STATIC_CALLS or not rest.endswith(")") or "\\" in expression:
        return None
    try:
        call = pyast.parse(expression, mode="eval").body
    except SyntaxError:
        return None
    if not isinstance(call, pyast.Call) or not isinstance(call.func, pyast.Name):
        return None
    try:
        args = tuple(_literal(a) for a in call.args)
        kwargs = tuple((k.arg, _literal(k.value)) for k in call.keywords if k.arg is not None)
    except ValueError:
        return None
    if len(kwargs) != len(call.keywords):
        return None
    return ("call", call.func.id, args, kwargs, line)


def _literal(node: pyast.expr) -> Any:
    """A Python literal that means the same in Jinja: strings, numbers, booleans, lists, dicts."""
    if isinstance(node, pyast.Starred):
        raise ValueError("starred")
    value = pyast.literal_eval(node)
    _check_literal(value)
    return value


def _check_literal(value: Any) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_literal(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_literal(key)
            _check_literal(item)
    elif not isinstance(value, _LITERAL_TYPES):
        raise ValueError(type(value).__name__)


def _static_calls(ast: jn.Template) -> tuple[list[RefCall], list[SourceCall], dict[str, Any], bool]:
    refs: list[RefCall] = []
    sources: list[SourceCall] = []
    config: dict[str, Any] = {}
    dynamic = False
    for call in ast.find_all(jn.Call):
        if not isinstance(call.node, jn.Name) or call.node.name not in ("ref", "source", "config"):
            continue
        try:
            args = [a.as_const() for a in call.args]
            kwargs = {k.key: k.value.as_const() for k in call.kwargs}
        except jn.Impossible:
            dynamic = True
            continue
        if call.dyn_args or call.dyn_kwargs:
            dynamic = True
        elif call.node.name == "ref" and 1 <= len(args) <= 2:
            package = args[0] if len(args) == 2 else None
            refs.append(RefCall(name=str(args[-1]), line=call.lineno, package=package))
        elif call.node.name == "source" and len(args) == 2:
            sources.append(SourceCall(str(args[0]), str(args[1]), line=call.lineno))
        elif call.node.name == "config":
            config = merge_config(config, kwargs)  # hooks and tags of every call, as dbt
    return refs, sources, config, dynamic


def _segments(body: list[jn.Node]) -> list[Any] | None:
    """Flatten a template body into text and calls, or None if it needs real Jinja."""
    out: list[Any] = []
    for node in body:
        if isinstance(node, jn.Output):
            for child in node.nodes:
                if isinstance(child, jn.TemplateData):
                    out.append(child.data)
                elif isinstance(child, jn.Name) and child.name == "this":
                    out.append(("this",))
                elif _is_static_call(child):
                    args = tuple(a.as_const() for a in child.args)
                    kwargs = tuple((k.key, k.value.as_const()) for k in child.kwargs)
                    out.append(("call", child.node.name, args, kwargs, child.lineno))
                else:
                    return None
        elif (
            isinstance(node, jn.If)
            and not node.elif_
            and isinstance(node.test, jn.Call)
            and isinstance(node.test.node, jn.Name)
            and node.test.node.name == "is_incremental"
            and not node.test.args
        ):
            then, otherwise = _segments(node.body), _segments(node.else_)
            if then is None or otherwise is None:
                return None
            out.append(("if_incremental", then, otherwise))
        else:
            return None
    return out


def _is_static_call(node: jn.Node) -> bool:
    if not (isinstance(node, jn.Call) and isinstance(node.node, jn.Name)):
        return False
    if node.node.name not in STATIC_CALLS or node.dyn_args or node.dyn_kwargs:
        return False
    try:
        for arg in [*node.args, *(k.value for k in node.kwargs)]:
            arg.as_const()
    except jn.Impossible:
        return False
    return True


# --------------------------------------------------------------------------- rendering


class MacroReturn(Exception):
    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class MacroLibrary:
    """All macros of a project and its packages, compiled once; instantiated per render so they
    see its context. The root project's macros are called by name; a package's by
    `package.name`, or by name from the package's own macros."""

    env: jinja2.Environment
    files: dict[Path, Any] = field(default_factory=dict)  # path -> compiled code
    owner: dict[str, Path] = field(default_factory=dict)  # the root project's macro name -> file
    lines: dict[tuple[str | None, str], int] = field(default_factory=dict)  # (package, name) -> line
    sources: dict[Path, str] = field(default_factory=dict)
    packages: dict[str, dict[str, Path]] = field(default_factory=dict)  # package -> macro name -> file
    package_of: dict[Path, str] = field(default_factory=dict)  # a package's macro file -> package
    root_name: str = ""
    # adapter.dispatch's settings: the project's `dispatch:` search orders, the target's type.
    dispatch: dict[str, list[str]] = field(default_factory=dict)
    adapter_type: str = ""
    dialect: str = "duckdb"

    @functools.cached_property
    def package_env(self) -> jinja2.Environment:
        """The environment of packages' macros: an undefined name renders as nothing, as in dbt
        (dbt_utils relies on it), where the project's own templates stop with an error."""
        return self.env.overlay(undefined=jinja2.Undefined)

    def add_file(self, path: Path, source: str, package: str | None = None) -> list[tuple[str, int]]:
        self.sources[path] = source
        self.__dict__.pop("digest", None)
        env = self.env if package is None else self.package_env
        ast = parse_template(env, source, path)
        found = [(m.name, m.lineno) for m in ast.find_all(jn.Macro)]
        _call_through_context(ast, {name for name, _ in found})
        names = self.owner if package is None else self.packages.setdefault(package, {})
        if package is not None:
            self.package_of[path] = package
        for name, line in found:
            if name in names and names[name] != path:
                raise UserError(
                    f"macro {name!r} is defined twice" + (f" in package {package!r}" if package else ""),
                    path=path,
                    line=line,
                    hint=f"also defined in {names[name]}:{self.lines[(package, name)]}; rename one",
                )
            names[name] = path
            self.lines[(package, name)] = line
        self.files[path] = env.compile(ast, name=path.name, filename=str(path))
        return found

    def find(self, name: str, package: str | None = None) -> Path | None:
        """The file defining macro `name` of `package` (None or the root's name: the root project)."""
        if package is None or package == self.root_name:
            return self.owner.get(name)
        return self.packages.get(package, {}).get(name)

    @property
    def names(self) -> set[str]:
        return set(self.owner)

    @functools.cached_property
    def digest(self) -> str:
        """Changes whenever any macro file does: a cached render may depend on any of them."""
        text = "\0".join(f"{path}\0{source}" for path, source in sorted(self.sources.items()))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


# Calls between macros of one file are renamed to this prefix plus the macro's name (see below).
_SAME_FILE = "__sqlflow_same_file__"


def _call_through_context(ast: jn.Template, names: set[str]) -> None:
    """Make calls to macros of the same file go through the render context.

    Jinja binds such a call to the raw macro, so a `return()` in the callee would end the caller
    too; through the context (RenderContext.__missing__) every call gets dbt's `return()`."""
    for call in ast.find_all(jn.Call):
        if isinstance(call.node, jn.Name) and call.node.name in names:
            call.node.name = _SAME_FILE + call.node.name


class RenderContext(dict):
    """A Jinja context whose macros are instantiated on first use, bound to this same context.

    Besides the values given, it answers the root project's macros by name, each package by its
    name (`dbt_utils.star`), `dbt` (dbt's cross-database macros, which also answer unprefixed),
    `adapter` and `api` (dispatch.py). A package's macros run in a view of the context
    (`package`) where that package's own macros come first, as in dbt."""

    def __init__(
        self,
        values: dict[str, Any],
        macros: MacroLibrary | None,
        *,
        package: str | None = None,
        root: RenderContext | None = None,
    ) -> None:
        # A shared Jinja context gets no globals: add range, dict, namespace... here.
        super().__init__({**(macros.env.globals if macros else {}), **values})
        self._macros = macros
        self._package = package
        self._root = root if root is not None else self
        self._modules: dict[Path, dict[str, Any]] = (
            root._modules if root is not None else {}
        )  # file -> its macros
        self._views: dict[str, RenderContext] = {}
        self._found: set[str] = set()  # keys __missing__ added: a package's view looks them up again

    def __contains__(self, key: object) -> bool:
        if super().__contains__(key):
            return True
        macros = self._macros
        if not macros or not isinstance(key, str):
            return False
        return (
            key in macros.owner
            or key.startswith(_SAME_FILE)
            or (self._package is not None and key in macros.packages.get(self._package, {}))
            or key in macros.packages
            or key in ("adapter", "api", "dbt", macros.root_name)
            or key in cross_db.names()
        )

    def __missing__(self, key: str) -> Any:
        macros = self._macros
        if not macros:
            raise KeyError(key)
        if key.startswith(_SAME_FILE):
            value = self.macro(key[len(_SAME_FILE) :], self._package)
        elif self._package is not None and key in macros.packages.get(self._package, {}):
            value = self.macro(key, self._package)
        elif key in macros.owner:
            value = self._root.macro(key)
        elif key in macros.packages or key == macros.root_name:
            value = dispatch.PackageMacros(self._root, key)
        elif key == "dbt":
            value = dispatch.DbtMacros(self._root)
        elif key == "adapter":
            value = dispatch.Adapter(self._root)
        elif key == "api":
            value = dispatch.Api(macros.dialect)
        elif key in cross_db.names():  # dbt's global macros answer without the `dbt.` prefix too
            value = getattr(dispatch.DbtMacros(self._root), key)
        else:
            raise KeyError(key)
        self[key] = value
        self._found.add(key)
        return value

    @property
    def library(self) -> MacroLibrary | None:
        return self._macros

    def macro(self, name: str, package: str | None = None) -> Callable[..., Any] | None:
        """Macro `name` of `package` (None: the root project), bound to the context it runs in;
        None where there is none."""
        macros = self._macros
        path = macros.find(name, package) if macros else None
        if macros is None or path is None:
            return None
        owner = macros.package_of.get(path)
        defined = self._modules.get(path)
        if defined is None:
            env = macros.env if owner is None else macros.package_env
            template = env.template_class.from_code(env, macros.files[path], env.globals)
            context = self._root if owner is None else self._root._view(owner)
            # What make_module() does, keeping the private macros (`_name`) it would not export.
            module_context = template.new_context(context, shared=True)
            for _ in template.root_render_func(module_context):
                pass
            defined = self._modules[path] = module_context.vars
        return _returning(defined[name])

    def _view(self, package: str) -> RenderContext:
        view = self._views.get(package)
        if view is None:
            values = {k: v for k, v in dict.items(self) if k not in self._found}
            view = self._views[package] = RenderContext(values, self._macros, package=package, root=self)
        return view

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]  # goes through __missing__, so macros are found too
        except KeyError:
            return default


def _returning(macro: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return macro(*args, **kwargs)
        except MacroReturn as returned:
            return returned.value

    call.__name__ = getattr(macro, "name", "macro")
    return call


def render(program: Program, env: jinja2.Environment, context: RenderContext) -> str:
    """Render a program; Jinja errors become a CompilationError at the template's file and line."""
    try:
        if program.segments is not None:
            return _interpret(program.segments, context)
        if program.code is None:
            program.code = env.compile(program.source, name=program.path.name, filename=str(program.path))
        template = env.template_class.from_code(env, program.code, env.globals)
        return env.concat(template.root_render_func(template.new_context(context, shared=True)))
    except UserError as exc:
        if exc.location.path is None:
            exc.location.path = program.path
            exc.location.line = _template_line(exc.__traceback__, program.path) or exc.location.line
        raise
    except MacroReturn as returned:
        return str(returned.value)
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None) or _template_line(exc.__traceback__, program.path)
        message = getattr(exc, "message", None) or str(exc)
        raise CompilationError(
            f"cannot render: {message}{in_macro(exc.__traceback__, program.path)}",
            path=program.path,
            line=line,
            hint=_hint_for(message),
        ) from exc
    except RecursionError as exc:
        raise CompilationError(
            "cannot render: macro recursion too deep",
            path=program.path,
            line=_template_line(exc.__traceback__, program.path),
            hint="a macro calls itself without end",
        ) from exc
    except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as exc:
        raise CompilationError(
            f"cannot render: {type(exc).__name__}: {exc}{in_macro(exc.__traceback__, program.path)}",
            path=program.path,
            line=_template_line(exc.__traceback__, program.path),
        ) from exc


# What calling a macro can raise besides a UserError: Jinja's errors and Python's own.
MACRO_ERRORS = (jinja2.TemplateError, ValueError, LookupError, AttributeError, ArithmeticError)


def macro_error(exc: BaseException, what: str, caller: Path | None = None, **where: Any) -> CompilationError:
    """`exc`, raised by a macro called directly (not from a template), as a CompilationError saying
    `what` failed, with the macro's file and line unless they are `caller`'s."""
    message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    return CompilationError(f"{what}: {message}{in_macro(exc.__traceback__, caller or Path())}", **where)


def _interpret(segments: list[Any], context: dict[str, Any]) -> str:
    parts: list[str] = []
    for segment in segments:
        if isinstance(segment, str):
            parts.append(segment)
        elif segment[0] == "call":
            _, name, args, kwargs, line = segment
            function = context[name]
            if getattr(function, "jinja_pass_arg", None) is not None:  # var(): renders in the context
                args = (context, *args)
            try:
                parts.append(str(function(*args, **dict(kwargs))))
            except UserError as exc:  # e.g. env_var()/var() undefined: report the call's line
                exc.location.line = exc.location.line or line
                raise
        elif segment[0] == "this":
            parts.append(str(context["this"]))
        else:
            _, then, otherwise = segment
            parts.append(_interpret(then if context["is_incremental"]() else otherwise, context))
    return "".join(parts)


def _template_line(tb: TracebackType | None, path: Path) -> int | None:
    # Jinja rewrites tracebacks so that template frames carry the template's file and line.
    line = None
    filename = str(path)
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            # tb_lineno is a line of the generated Python; map it back to the template's line.
            template = tb.tb_frame.f_globals.get("__jinja_template__")
            line = template.get_corresponding_lineno(tb.tb_lineno) if template else tb.tb_lineno
        tb = tb.tb_next
    return line


def in_macro(tb: TracebackType | None, path: Path) -> str:
    """` (in macros/x.sql:12)` when the error arose in another template (a macro) than `path`,
    the model being rendered, whose line is the macro call's."""
    innermost = None
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            innermost = (tb.tb_frame.f_code.co_filename, template.get_corresponding_lineno(tb.tb_lineno))
        tb = tb.tb_next
    if innermost is None or innermost[0] == str(path):
        return ""
    return f" (in {Location(*innermost)})"


def _hint_for(message: str) -> str | None:
    match = re.search(r"'(\w+)' is undefined", message)
    if match:
        return f"`{match.group(1)}` is not a variable, macro or function known here; check its spelling"
    return None


# --------------------------------------------------------------------------- the shared context


def base_context(
    *,
    project_name: str,
    target: dict[str, Any],
    var: Callable[..., Any],
    env_var: Callable[..., Any],
    run_started_at: datetime.datetime,
    invocation_id: str,
    log: Callable[[str], None],
    execute: bool,
) -> dict[str, Any]:
    """What every render sees, whatever the node: dbt's common context."""

    def raise_compiler_error(message: str) -> None:
        raise CompilationError(str(message))

    def warn(message: str) -> str:
        log(f"warning: {message}")
        return ""

    def do_log(message: Any, info: bool = False) -> str:
        log(str(message))
        return ""

    def do_return(value: Any) -> None:
        raise MacroReturn(value)

    return {
        "project_name": project_name,
        "target": target,
        "var": var,
        "env_var": env_var,
        "run_started_at": run_started_at,
        "invocation_id": invocation_id,
        "log": do_log,
        "print": do_log,
        "return": do_return,
        "execute": execute,
        "exceptions": _Namespace(raise_compiler_error=raise_compiler_error, warn=warn),
        "modules": _Namespace(datetime=datetime, re=re, itertools=itertools, time=time, json=json),
        "tojson": lambda value, **kw: json.dumps(value, default=str, **kw),
        "fromjson": lambda text, default=None: _safe(json.loads, text, default),
        "toyaml": lambda value, **kw: yaml.safe_dump(value, sort_keys=False, **kw),
        "fromyaml": lambda text, default=None: _safe(yaml.safe_load, text, default),
        "zip": zip,
        "set": set,
        "local_md5": lambda text: hashlib.md5(str(text).encode()).hexdigest(),
        "flags": _Namespace(FULL_REFRESH=False, WHICH="run"),
    }


def _safe(function: Callable[[str], Any], text: str, default: Any) -> Any:
    try:
        return function(text)
    except (ValueError, yaml.YAMLError):
        return default


class _Namespace:
    def __init__(self, **members: Any) -> None:
        self.__dict__.update(members)
