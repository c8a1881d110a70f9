"""Every handler of every page asks who is acting at the moment it acts.

Read from the source, so a page added tomorrow is held to it too: each function a page or
component hands to an event (``on_click=``, ``on_change=``, ``.on(...)``) must go through
``webui.forms.submit`` or ``webui.forms.allowed`` (which re-read the session and the
permission from the database) and must not act as the actor the page was built for
(``self.actor``). What changes nothing and shows nothing (closing a dialog), handlers marked
``@view_only`` (sorting, paging, searching what a page already holds) and signing in itself
are the only exceptions.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted(
    [
        *(ROOT / "webui" / "pages").glob("*.py"),
        *(ROOT / "webui" / "components").glob("*.py"),
        ROOT / "webui" / "layout.py",
    ]
)
CHECKS = {"submit", "allowed"}  # webui.forms: the only ways to act
HARMLESS = {"close"}  # dialog.close: changes nothing, shows nothing
# (module, handler): signing in is how a session begins, so there is none to check yet.
EXEMPT = {
    ("login.py", "attempt"),
    # app.on_page_exception: NiceGUI draws a failed page with it; no person acts.
    ("page_error.py", "page_failed"),
}


@dataclass(frozen=True)
class Handler:
    """One function handed to an event, and what is wrong with it (empty: nothing)."""

    where: str
    name: str
    problems: tuple[str, ...]


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _handler_expressions(tree: ast.AST) -> list[ast.expr]:
    """What each event registration hands over: ``on_*=`` keywords and ``.on(event, f)``."""
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "timer":
            continue  # a timer is the page's own, not something a person does
        found += [k.value for k in node.keywords if k.arg and k.arg.startswith("on_")]
        if isinstance(func, ast.Attribute) and func.attr == "on" and len(node.args) >= 2:
            found.append(node.args[1])
        if isinstance(func, ast.Attribute) and func.attr.startswith("on_") and node.args:
            found.append(node.args[0])
    return found


Function = ast.FunctionDef | ast.AsyncFunctionDef


def _resolve(
    expression: ast.expr, parents: dict[ast.AST, ast.AST], tree: ast.Module
) -> Function | str:
    """The function an event will call, or a name saying why it needs no check."""
    if isinstance(expression, ast.Lambda):
        body = expression.body
        return _resolve(body.func, parents, tree) if isinstance(body, ast.Call) else "lambda"
    if isinstance(expression, ast.Attribute):
        if isinstance(expression.value, ast.Name) and expression.value.id == "self":
            scope: ast.AST | None = expression
            while scope is not None and not isinstance(scope, ast.ClassDef):
                scope = parents.get(scope)
            methods = [] if scope is None else scope.body
            for method in methods:
                if isinstance(method, Function) and method.name == expression.attr:
                    return method
            return f"self.{expression.attr}"
        return expression.attr
    if isinstance(expression, ast.Name):
        scope = parents.get(expression)
        while scope is not None:
            for node in ast.walk(scope):
                if isinstance(node, Function) and node.name == expression.id:
                    return node
            scope = parents.get(scope)
        return expression.id
    return ast.dump(expression)


def _calls(function: Function) -> set[str]:
    return {
        node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
    }


def _own_methods_called(function: Function, methods: dict[str, Function]) -> list[Function]:
    """The methods of its own class ``function`` calls as ``self.name(…)``."""
    return [
        methods[node.func.attr]
        for node in ast.walk(function)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "self"
        and node.func.attr in methods
    ]


def _checks(function: Function, methods: dict[str, Function], seen: set[str]) -> bool:
    """Whether ``function`` goes through a check itself or through a method of its own class
    that does (``self._read(…)`` that calls ``submit``): one rule, followed where it leads."""
    if _calls(function) & CHECKS:
        return True
    seen.add(function.name)
    return any(
        _checks(method, methods, seen)
        for method in _own_methods_called(function, methods)
        if method.name not in seen
    )


def _problems(function: Function, methods: dict[str, Function] | None = None) -> tuple[str, ...]:
    problems = []
    if not _checks(function, methods or {}, set()):
        problems.append("does not go through forms.submit or forms.allowed")
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "actor"
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        ):
            problems.append(f"acts as the page's actor (self.actor, line {node.lineno})")
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "session"
            and "database" in ast.unparse(node.value)
        ):
            problems.append(f"opens its own database session (line {node.lineno})")
    return tuple(problems)


def _methods(function: Function, parents: dict[ast.AST, ast.AST]) -> dict[str, Function]:
    """The methods of the class ``function`` belongs to (none for a plain function)."""
    scope: ast.AST | None = function
    while scope is not None and not isinstance(scope, ast.ClassDef):
        scope = parents.get(scope)
    if scope is None:
        return {}
    return {m.name: m for m in scope.body if isinstance(m, Function)}


def _view_only(function: Function) -> bool:
    """Whether the handler is marked ``@view_only`` (webui.forms): it sorts, pages or copies
    what the page already shows, and may not read the database (checked here too)."""
    marked = any(
        (isinstance(d, ast.Name) and d.id == "view_only")
        or (isinstance(d, ast.Attribute) and d.attr == "view_only")
        for d in function.decorator_list
    )
    if marked:
        text = ast.unparse(function)
        assert "database" not in text and "session" not in text, (
            f"{function.name} is marked view_only but reaches the database"
        )
    return marked


def handlers(source: str, where: str) -> list[Handler]:
    """Every event handler in ``source``, checked."""
    tree = ast.parse(source)
    parents = _parents(tree)
    found = []
    for expression in _handler_expressions(tree):
        target = _resolve(expression, parents, tree)
        if isinstance(target, str):
            problems = () if target in HARMLESS else (f"'{target}' cannot be checked",)
            found.append(Handler(where, target, problems))
        elif (where, target.name) in EXEMPT or _view_only(target):
            found.append(Handler(where, target.name, ()))
        else:
            found.append(Handler(where, target.name, _problems(target, _methods(target, parents))))
    return found


def test_every_page_action_checks_the_session_and_permission_when_it_acts() -> None:
    found = [h for path in SOURCES for h in handlers(path.read_text(), path.name)]
    wrong = [f"{h.where}: {h.name}: {'; '.join(h.problems)}" for h in found if h.problems]
    assert not wrong, "\n".join(wrong)
    # The walk found the pages' actions (so it cannot pass by finding nothing).
    names = {(h.where, h.name) for h in found}
    for expected in [
        ("devices.py", "create"),
        ("devices.py", "toggle"),
        ("users.py", "_edit"),
        ("users.py", "save"),
        ("users.py", "delete"),
        ("roles.py", "save"),
        ("history.py", "export"),
        ("config_card.py", "save"),
        ("layout.py", "logout"),
    ]:
        assert expected in names, expected
    assert len(found) >= 15


def test_the_check_catches_a_handler_that_acts_with_the_pages_actor() -> None:
    """The rule itself: a page written the old way is named, with what is wrong."""
    source = """
class View:
    def build(self):
        async def create():
            async with self.database.session() as session:
                await devices.create_device(session, actor=self.actor, device_id="x")

        ui.button("Register", on_click=create)
        ui.button("Show", on_click=self.show)
        ui.switch("on", on_change=lambda e: self.toggle(e))
        ui.button("Done", on_click=dialog.close)

    async def show(self):
        async def work(session, actor):
            return await history.downsample(session, actor=actor)
        await submit(self.database, "telemetry:read", work)

    def toggle(self, event):
        pass
"""
    found = {h.name: h.problems for h in handlers(source, "new_page.py")}
    assert set(found) == {"create", "show", "toggle", "close"}
    assert found["show"] == () and found["close"] == ()
    assert len(found["create"]) == 3  # no check, the page's actor, its own session
    assert found["toggle"] == ("does not go through forms.submit or forms.allowed",)


def test_a_handler_may_check_through_a_method_of_its_own_class() -> None:
    """``self._read(…)`` that goes through ``submit`` checks for the handler calling it;
    a method that checks nothing, or one of another object, does not."""
    source = """
class Table:
    def build(self):
        ui.table().on("request", self.page)
        ui.button("Again", on_click=self.again)
        ui.button("Loop", on_click=self.ping)
        ui.button("Other", on_click=self.other)

    async def page(self, event):
        await self._read(event.args)

    async def _read(self, pagination):
        await submit(self.database, "audit:read", work)

    async def again(self):
        self._draw()

    def _draw(self):
        self.table.update()

    async def ping(self):
        await self.pong()

    async def pong(self):
        await self.ping()

    async def other(self):
        await self.table.show()
"""
    found = {h.name: h.problems for h in handlers(source, "table.py")}
    assert found["page"] == ()
    unchecked = ("does not go through forms.submit or forms.allowed",)
    assert found["again"] == unchecked
    assert found["ping"] == unchecked  # calls that go round in a circle end, unchecked
    assert found["other"] == unchecked
