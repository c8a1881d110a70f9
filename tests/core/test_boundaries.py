"""core/ stands alone: it imports no UI toolkit and neither front end."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = {"nicegui", "PySide6", "webui", "desktop"}
FILES = sorted(CORE.rglob("*.py"))


def _imported(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (relative imports stay in core)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_has_modules_to_check() -> None:
    """The walk finds core's modules, so the test below is not vacuous."""
    assert len(FILES) > 10 and CORE / "services" / "auth.py" in FILES


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_no_forbidden_imports(path: Path) -> None:
    """Not at module level, not inside a function."""
    assert _imported(path) & FORBIDDEN == set()
