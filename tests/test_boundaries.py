"""Who may import whom: the dependency direction of STYLE.md, read from every file's syntax.

``webui`` and ``desktop`` stand on ``core``; ``core`` imports neither, nor a UI toolkit;
the front ends never import each other; ``broker`` is configuration, not UI; ``demo``
composes them all and nothing imports it. Imports count wherever they are: module level,
inside functions, under ``TYPE_CHECKING``. Module-level imports inside ``core`` and
``webui`` form no cycle.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.source_code import PACKAGES, ROOT, TOOLS, files, imports, module_name, relative

QT = {"PySide6", "qasync", "pyqtgraph"}
WEB = {"nicegui", "fastapi"}
# What each package must never import, by top-level name.
FORBIDDEN = {
    "core": {"webui", "desktop", "broker", "demo"} | QT | WEB,
    "webui": {"desktop", "demo"} | QT,
    "desktop": {"webui", "demo"} | WEB,
    "broker": {"webui", "desktop", "demo"} | QT | WEB,
}
# Known breaches, (rule, file) -> why not fixed yet, rule being "direction" or "demo". Each is
# a strict xfail: once the file is fixed its case fails as XPASS, and its line here must go.
KNOWN: dict[tuple[str, str], str] = {}
# Import cycles being broken now, package -> the cycle; remove each once it is gone.
KNOWN_CYCLES: dict[str, str] = {}
KNOWN_DEFERRED_CYCLES = {**KNOWN_CYCLES}


def _cases(rule: str, forbidden: dict[str, set[str]]) -> list[object]:
    """One case per file of each package in ``forbidden``, xfail where a known breach sits."""
    cases: list[object] = []
    for package, names in forbidden.items():
        for path in files(package):
            why = KNOWN.get((rule, relative(path)))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            cases.append(pytest.param(path, names, marks=marks, id=relative(path)))
    return cases


def _breaches(path: Path, forbidden: set[str]) -> list[str]:
    return [
        f"{relative(path)}:{found.line} imports {found.module}"
        for found in imports(path)
        if found.top in forbidden
    ]


@pytest.mark.parametrize(("path", "forbidden"), _cases("direction", FORBIDDEN))
def test_package_imports_only_what_it_stands_on(path: Path, forbidden: set[str]) -> None:
    """Each file of core, webui, desktop and broker keeps its package's dependency rule."""
    found = _breaches(path, forbidden)
    assert not found, "\n".join(found)


NOT_DEMO = {package: {"demo"} for package in (*PACKAGES, *TOOLS) if package != "demo"}


@pytest.mark.parametrize(("path", "forbidden"), _cases("demo", NOT_DEMO))
def test_nothing_imports_the_demo(path: Path, forbidden: set[str]) -> None:
    """The demo composes everything, so nothing may stand on it (tests aside)."""
    found = _breaches(path, forbidden)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("package", [*PACKAGES, *TOOLS])
def test_each_package_has_files_to_check(package: str) -> None:
    """The walk finds every package's modules, so the rules above are not vacuous."""
    found = files(package)
    assert len(found) >= 2 and all(path.suffix == ".py" for path in found)


def test_the_walk_sees_imports_wherever_they_are() -> None:
    """Module level, inside a function and under TYPE_CHECKING: all three are found."""
    launch = {(i.module, i.where) for i in imports(ROOT / "demo" / "launch.py")}
    assert ("desktop.agent.fleet", "module") in launch
    cli = {(i.module, i.where) for i in imports(ROOT / "demo" / "cli.py")}
    assert ("demo.launch", "function") in cli
    station = {(i.module, i.where) for i in imports(ROOT / "desktop" / "cli.py")}
    assert ("desktop.agent.config", "type_checking") in station


def test_a_breach_is_reported_with_its_file_and_import() -> None:
    """The demo, held to core's rule, breaks it: so the rule can fail."""
    found = _breaches(ROOT / "demo" / "launch.py", FORBIDDEN["core"])
    assert any(line.endswith(" imports desktop.agent.fleet") for line in found)
    assert all(line.startswith("demo/launch.py:") for line in found)
    assert any(line.endswith("imports nicegui") for line in found)


def _graph(package: str, *, deferred: bool) -> dict[str, set[str]]:
    """Module -> the modules of ``package`` it imports on load (or ``deferred``: ever runs)."""
    modules = {module_name(path): path for path in files(package)}
    wanted = {"module", "function"} if deferred else {"module"}
    return {
        name: {i.module for i in imports(path) if i.where in wanted and i.module in modules}
        - {name}
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _cycle_cases(known: dict[str, str]) -> list[object]:
    return [
        pytest.param(
            package,
            marks=[pytest.mark.xfail(strict=False, reason=known[package])]
            if package in known
            else [],
            id=package,
        )
        for package in ("core", "webui")
    ]


@pytest.mark.parametrize("package", _cycle_cases(KNOWN_CYCLES))
def test_no_import_cycles(package: str) -> None:
    """No module of the package imports itself back, through others, when it loads."""
    graph = _graph(package, deferred=False)
    assert sum(len(targets) for targets in graph.values()) > 20  # edges found: not vacuous
    cycles = _cycles(graph)
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("package", _cycle_cases(KNOWN_DEFERRED_CYCLES))
def test_no_cycle_hidden_in_a_function(package: str) -> None:
    """Nor through an import moved into a function: that hides a cycle, it does not break it."""
    cycles = _cycles(_graph(package, deferred=True))
    assert not cycles, "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_finder_finds_a_cycle() -> None:
    """The finder itself: a three-module loop is reported, a tail into it is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
