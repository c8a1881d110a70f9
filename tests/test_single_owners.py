"""What only one module may do: speak MQTT, spell a topic, create a database engine, touch
a table.

Read from every file's syntax, as the import rules are: one module owns each of these so a
reconnect rule, a topic layout, a pool setting or a table's queries change in one place.
Tests are not checked.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.db.models import Base
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


SERVICES = ROOT / "core" / "services"
# Each ORM model's home: the module or package that alone reads and writes its table, so a
# column, an index or a lock order is changed and reviewed in one place. None: no home yet,
# so nothing may touch the table until one is named here.
TABLE_HOMES: dict[str, Path | None] = {
    "User": SERVICES / "users.py",
    "UserRole": SERVICES / "users.py",
    "Role": SERVICES / "roles.py",
    "Permission": SERVICES / "roles.py",
    "RolePermission": SERVICES / "roles.py",
    "UserIdentity": SERVICES / "identities.py",
    "AuthSession": SERVICES / "sessions.py",
    "RefreshToken": SERVICES / "sessions.py",
    "Device": SERVICES / "devices.py",
    "DeviceConfig": SERVICES / "device_configs.py",
    "Command": SERVICES / "commands",
    "DeviceConfigVersion": SERVICES / "config_history.py",
    "Alarm": SERVICES / "alarms.py",
    "OfflineEvent": SERVICES / "offline_events.py",
    "TelemetrySample": SERVICES / "telemetry",
    "TelemetryRollup": SERVICES / "telemetry",
    "TelemetryStream": SERVICES / "telemetry",
    "QuarantinedSample": SERVICES / "telemetry",
    "TelemetryGap": SERVICES / "telemetry",
    "IngestHour": SERVICES / "telemetry",
    "AuditEntry": SERVICES / "audit.py",
    "SyncChange": SERVICES / "sync_log.py",
    "SyncConflict": SERVICES / "sync_conflicts.py",
    "DeviceSync": SERVICES / "sync_peers.py",
}
# (model, file) -> why that file still touches a table another module owns, and whether its
# xfail is strict: moving the access home then fails the case, asking for its line to go.
# Not strict while a fix is under way elsewhere, so landing it breaks nothing here.
SECOND_HOMES: dict[tuple[str, str], tuple[str, bool]] = {
    ("Role", "core/services/users.py"): (
        "a user's role names, permissions and the active-admin count join roles in one "
        "query, and roles are looked up by name when granted",
        True,
    ),
    ("Permission", "core/services/users.py"): (
        "a user's permissions are one join from user_roles through role_permissions",
        True,
    ),
    ("RolePermission", "core/services/users.py"): (
        "a user's permissions are one join from user_roles through role_permissions",
        True,
    ),
}
# Model -> why its home on record may no longer touch it: the table is moving to the home
# listed in SECOND_HOMES, and both layouts pass until the move lands and the lines change.
LEAVING: dict[str, str] = {}
# Building a statement: every model named in the call's arguments is read or written.
STATEMENTS = {"select", "insert", "update", "delete", "exists", "aliased"}
# Clauses of a statement built in steps (``query.where(...)``): their models count too.
CLAUSES = {
    "select_from",
    "join",
    "outerjoin",
    "join_from",
    "where",
    "filter",
    "order_by",
    "group_by",
    "having",
    "returning",
    "correlate",
}
# Session calls that load or stage rows: ``get(Model, key)``, ``add(Model(...))``.
SESSION_CALLS = {"get", "get_one", "add", "add_all", "merge"}
# Raw SQL (asyncpg, ``text``) naming a table after one of these keywords.
SQL_KEYWORDS = r"(?:FROM|INTO|UPDATE|JOIN|TABLE)"


def _model_names(path: Path) -> tuple[dict[str, str], set[str]]:
    """Local names bound to models (``Role`` or an alias) and to the models module itself."""
    bound: dict[str, str] = {}
    modules: set[str] = set()
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.ImportFrom) and node.module == "core.db.models":
            for alias in node.names:
                if alias.name in TABLE_HOMES:
                    bound[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module == "core.db":
            modules.update(a.asname or a.name for a in node.names if a.name == "models")
        elif isinstance(node, ast.Import):
            modules.update(a.asname or a.name for a in node.names if a.name == "core.db.models")
    return bound, modules


def _table_uses(path: Path) -> Iterator[tuple[str, str]]:
    """(model, where and how) for each model ``path`` names in a statement or session call.

    A model only imported for a type hint, or read as an attribute of a loaded row, is not a
    use: the rows came from the table's home.
    """
    where = relative(path)
    tables = {model.__tablename__: name for name, model in _models().items()}
    for line, text in strings(path):
        for table in re.findall(rf"\b{SQL_KEYWORDS}\s+(\w+)\b", text):
            if table in tables:
                yield tables[table], f"{where}:{line} names {table} in SQL"
    bound, modules = _model_names(path)
    if not bound and not modules:
        return

    def model_of(node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return bound.get(node.id)
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) in modules:
            return node.attr if node.attr in TABLE_HOMES else None
        return None

    def built(node: ast.AST) -> str | None:
        """The model a ``Model(...)`` call constructs."""
        return model_of(node.func) if isinstance(node, ast.Call) else None

    staged: dict[str, str] = {}  # variables bound to ``Model(...)``, later added
    for node in ast.walk(tree(path)):
        if isinstance(node, ast.Assign) and (model := built(node.value)):
            staged.update((t.id, model) for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree(path)):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
        arguments: list[ast.AST] = [*node.args, *(k.value for k in node.keywords)]
        if name in STATEMENTS and isinstance(function, ast.Attribute):
            arguments.append(function.value)  # ``Model.__table__.delete()``
        if name in STATEMENTS | CLAUSES or (name in ("get", "get_one") and arguments):
            models = {m for a in arguments for n in ast.walk(a) if (m := model_of(n))}
        elif name in SESSION_CALLS and isinstance(function, ast.Attribute):
            models = {
                m
                for a in arguments
                for n in ast.walk(a)
                if (m := built(n) or (staged.get(n.id) if isinstance(n, ast.Name) else None))
            }
        else:
            continue
        for model in sorted(models):
            yield model, f"{where}:{node.lineno} {name}({model}…)"


def _models() -> dict[str, type[Base]]:
    """Every ORM model class by name."""
    return {mapper.class_.__name__: mapper.class_ for mapper in Base.registry.mappers}


def _at_home(path: Path, model: str) -> bool:
    home = TABLE_HOMES[model]
    return home is not None and (path == home or home in path.parents)


@pytest.mark.parametrize("path", [pytest.param(p, id=relative(p)) for p in files(*PACKAGES)])
def test_only_its_home_touches_a_table(path: Path) -> None:
    """Every statement on a table comes from the module or package that owns it."""
    found = [
        how
        for model, how in _table_uses(path)
        if not _at_home(path, model) and (model, relative(path)) not in SECOND_HOMES
    ]
    assert not found, "\n".join(found)


def _second_homes() -> list[object]:
    cases: list[object] = []
    for (model, where), (why, strict) in SECOND_HOMES.items():
        mark = pytest.mark.xfail(strict=strict, reason=why)
        cases.append(pytest.param(model, ROOT / where, marks=[mark], id=f"{model}-{where}"))
    return cases


@pytest.mark.parametrize(("model", "path"), _second_homes())
def test_a_known_second_home_is_gone(model: str, path: Path) -> None:
    """A table's known second home, until its statements move to the owner."""
    found = [how for used, how in _table_uses(path) if used == model] if path.exists() else []
    assert not found, "\n".join(found)


def test_every_model_has_a_home_on_record() -> None:
    """A new model is given its home here; a home is a module or package that exists."""
    assert set(TABLE_HOMES) == set(_models())
    for home in TABLE_HOMES.values():
        assert home is None or home.exists(), home


def _homes() -> list[object]:
    return [
        pytest.param(
            model,
            marks=[pytest.mark.xfail(strict=False, reason=LEAVING[model])]
            if model in LEAVING
            else [],
            id=model,
        )
        for model, home in TABLE_HOMES.items()
        if home is not None
    ]


@pytest.mark.parametrize("model", _homes())
def test_each_home_is_found_touching_its_table(model: str) -> None:
    """The owners are seen by the same check, so the check is not vacuous."""
    home = TABLE_HOMES[model]
    assert home is not None
    homes = [home] if home.is_file() else sorted(home.rglob("*.py"))
    found = any(used == model for path in homes for used, _ in _table_uses(path))
    assert found, f"{relative(home)} no longer touches {model}: name its new home above"
