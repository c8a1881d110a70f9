"""The project's own source read as syntax trees: its files, module names and imports.

The architecture tests use this to check who may import whom without importing anything,
so a forbidden import is found even in a function nobody calls or under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "webui", "desktop", "broker", "demo")  # what the wheel ships
TOOLS = ("bench", "alembic")  # run from the checkout; they stand on the packages too
# Where an import sits: it runs on import (module level, class body), when its function
# is called, or never (types only).
Where = Literal["module", "function", "type_checking"]


@dataclass(frozen=True)
class Import:
    """One module a file imports, by absolute dotted name, and where the import sits."""

    module: str
    line: int
    where: Where

    @property
    def top(self) -> str:
        """The top-level package or distribution: ``core`` for ``core.db.engine``."""
        return self.module.split(".")[0]


def files(*packages: str) -> list[Path]:
    """Every ``.py`` file under the given top-level directories, sorted."""
    return sorted(path for package in packages for path in (ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    """``path`` as the repository spells it: ``core/db/engine.py``."""
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    """The dotted name ``path`` is imported as: ``core.db.engine``, ``webui.pages``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def tree(path: Path) -> ast.Module:
    """The parsed file (cached: several rules walk each file)."""
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


@cache
def known_modules() -> frozenset[str]:
    """Dotted names of every module in the checkout, to tell ``from p import m`` apart."""
    return frozenset(module_name(path) for path in files(*PACKAGES, *TOOLS))


def imports(path: Path) -> list[Import]:
    """Everything ``path`` imports: module level, in functions, under ``TYPE_CHECKING``.

    ``from p import m`` counts as importing ``p.m`` when ``m`` is one of our modules, else
    ``p``; ``importlib.import_module("x")`` with a literal name counts as importing ``x``.
    A package's ``__init__`` that Python runs implicitly before a submodule is no edge.
    """
    return list(_Collector(path).found)


class _Collector(ast.NodeVisitor):
    """Walks one file, knowing at each import whether it runs at import time."""

    def __init__(self, path: Path) -> None:
        name = module_name(path)
        self.package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        self.found: list[Import] = []
        self.functions = 0  # how many function bodies enclose the node being visited
        self.type_checking = 0  # how many ``if TYPE_CHECKING:`` blocks do
        self.visit(tree(path))

    def _add(self, module: str, node: ast.AST) -> None:
        where: Where = "module"
        if self.type_checking:
            where = "type_checking"
        elif self.functions:
            where = "function"
        self.found.append(Import(module, getattr(node, "lineno", 0), where))

    def _in_function(self, nodes: list[ast.stmt] | ast.expr) -> None:
        self.functions += 1
        for node in nodes if isinstance(nodes, list) else [nodes]:
            self.visit(node)
        self.functions -= 1

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:  # decorators and defaults run at definition
            self.visit(decorator)
        self.visit(node.args)
        self._in_function(node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._in_function(node.body)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.type_checking += 1
            for statement in node.body:
                self.visit(statement)
            self.type_checking -= 1
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            package = self.package.split(".")
            anchor = ".".join(package[: len(package) - node.level + 1])
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            self._add(submodule if submodule in known_modules() else base, node)

    def visit_Call(self, node: ast.Call) -> None:
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        if name in ("import_module", "__import__") and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self._add(first.value, node)
        self.generic_visit(node)


def _is_type_checking(test: ast.expr) -> bool:
    """``if TYPE_CHECKING:`` or ``if typing.TYPE_CHECKING:``."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def strings(path: Path) -> Iterator[tuple[int, str]]:
    """Every string literal in ``path``, f-strings' literal parts included, with its line."""
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value
