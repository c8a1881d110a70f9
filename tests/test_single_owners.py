"""What only one module may do: speak MQTT, spell a topic, create a database engine.

Read from every file's syntax, as the import rules are: one module owns each of these so a
reconnect rule, a topic layout or a pool setting changes in one place. Tests are not checked.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.protocol import topics
from tests.source_code import PACKAGES, ROOT, TOOLS, files, imports, relative, strings, tree

SUPERVISOR = ROOT / "core" / "mqtt" / "supervisor.py"
TOPICS = ROOT / "core" / "protocol" / "topics.py"
ENGINE = ROOT / "core" / "db" / "engine.py"
# MQTT client libraries: a second one would sidestep the supervisor's reconnect and registry.
MQTT_CLIENTS = ("aiomqtt", "paho", "amqtt.client", "gmqtt")
# SQLAlchemy's engine factories; core.db.engine.create_engine wraps them and may be called.
ENGINE_FACTORIES = {
    "create_engine",
    "create_async_engine",
    "engine_from_config",
    "async_engine_from_config",
}
# (rule, file) -> why it is not fixed yet: a strict xfail, so a fix turns it into a failure
# that asks for its line here to go.
KNOWN: dict[tuple[str, str], str] = {}


def _cases(rule: str, packages: tuple[str, ...], owner: Path) -> list[object]:
    """One case per file but the owner, strict xfail where a known breach sits."""
    cases: list[object] = []
    for path in files(*packages):
        if path == owner:
            continue
        why = KNOWN.get((rule, relative(path)))
        marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
        cases.append(pytest.param(path, marks=marks, id=relative(path)))
    return cases


def _mqtt_clients(path: Path) -> list[str]:
    return [
        f"{relative(path)}:{found.line} imports {found.module}"
        for found in imports(path)
        if any(found.module == c or found.module.startswith(f"{c}.") for c in MQTT_CLIENTS)
    ]


# bench is left out on purpose: its bare aiomqtt publishers are the baseline it measures
# the supervisor and the agents against.
@pytest.mark.parametrize("path", _cases("mqtt", PACKAGES, SUPERVISOR))
def test_only_the_supervisor_speaks_mqtt(path: Path) -> None:
    """Every other module goes through core.mqtt's supervisor, never a client library."""
    found = _mqtt_clients(path)
    assert not found, "\n".join(found)


def test_the_supervisor_is_found_speaking_mqtt() -> None:
    """The owner is seen by the same check, so the check is not vacuous."""
    assert _mqtt_clients(SUPERVISOR)


def _topic_spellings(path: Path) -> Iterator[str]:
    """Topic strings built outside topics.py: its root spelled, used, or a topic extended."""
    where = relative(path)
    for line, text in strings(path):
        if topics.ROOT in text:
            yield f"{where}:{line} spells {text!r}"
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module == "core.protocol.topics":
            for alias in node.names:
                if alias.name == "ROOT" or alias.name.startswith("_"):
                    yield f"{where}:{node.lineno} imports topics.{alias.name}"
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "topics"
            and (node.attr == "ROOT" or node.attr.startswith("_"))
        ):
            yield f"{where}:{node.lineno} uses topics.{node.attr}"
        elif isinstance(node, ast.JoinedStr) and _extends_a_topic(node):
            yield f"{where}:{node.lineno} extends a topic with '/'"


def _extends_a_topic(text: ast.JoinedStr) -> bool:
    """An f-string that puts ``/`` next to a ``topics.`` value: a topic built by hand."""
    uses_topics = any(
        isinstance(part, ast.FormattedValue)
        and any(isinstance(n, ast.Name) and n.id == "topics" for n in ast.walk(part.value))
        for part in text.values
    )
    slashes = any(isinstance(part, ast.Constant) and "/" in str(part.value) for part in text.values)
    return uses_topics and slashes


@pytest.mark.parametrize("path", _cases("topics", (*PACKAGES, "bench"), TOPICS))
def test_only_topics_spells_a_topic(path: Path) -> None:
    """Topics come from core/protocol/topics.py's builders and filters, nowhere else."""
    found = list(_topic_spellings(path))
    assert not found, "\n".join(found)


def test_topics_is_found_spelling_topics() -> None:
    """The owner is seen by the same check, so the check is not vacuous."""
    assert list(_topic_spellings(TOPICS))


def _engine_creations(path: Path) -> list[str]:
    """Calls of SQLAlchemy's engine factories, imported by name or through a module alias."""
    where = relative(path)
    found = []
    aliases = set()  # local names bound to a sqlalchemy module
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlalchemy":
                    aliases.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            for alias in node.names:
                if alias.name in ENGINE_FACTORIES:
                    found.append(f"{where}:{node.lineno} imports {node.module}.{alias.name}")
                aliases.add(alias.asname or alias.name)  # maybe a submodule: ext, asyncio
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Attribute) and node.attr in ENGINE_FACTORIES:
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in aliases:
                found.append(f"{where}:{node.lineno} calls {ast.unparse(node)}")
    return found


# alembic/env.py needs an engine too, and gets it from core.db.engine like everyone else.
@pytest.mark.parametrize("path", _cases("engine", (*PACKAGES, *TOOLS), ENGINE))
def test_only_the_engine_module_creates_engines(path: Path) -> None:
    """Pool and dialect settings live in core/db/engine.py; others ask it for an engine."""
    found = _engine_creations(path)
    assert not found, "\n".join(found)


def test_the_engine_module_is_found_creating_engines() -> None:
    """The owner is seen by the same check, so the check is not vacuous."""
    assert _engine_creations(ENGINE)
