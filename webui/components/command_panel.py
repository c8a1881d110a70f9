"""Send a command to one device: choose a kind, fill its arguments, give it a timeout.

Only people holding ``commands:send`` get the panel (and only those also holding
``config:write`` are offered ``UpdateConfig``, which makes a configuration version); the
send itself checks both again, as whoever is signed in at that moment. Each argument is
checked as it is typed, in the configuration card's words (``config_words``) and then by
the protocol's own checks, so a bad value shows a sentence under its field before anything
is sent; whatever the service still refuses (a disabled
device, a setting that clashes with the rest of the configuration) shows in words too.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import Command
from core.protocol import commands as protocol
from core.services import commands
from core.services.actor import Actor
from webui.components import command_words as words
from webui.components import config_words
from webui.components.command_list import CommandList, Filters
from webui.forms import ErrorPlace, submit

# UpdateConfig's fields this panel offers: setting, label. Units and alarm thresholds are
# edited on the configuration card, where the whole configuration is in view.
SETTINGS = (
    ("interval_s", config_words.INTERVAL_LABEL),
    ("heartbeat_s", config_words.HEARTBEAT_LABEL),
)
# Why a value cannot be each setting, as the configuration card says it.
_PROBLEMS = {
    "interval_s": config_words.interval_problem,
    "heartbeat_s": config_words.heartbeat_problem,
}


def setting_value(name: str, value: Any) -> Any:
    """A typed number as the protocol takes it: whole heartbeats are ints, not floats."""
    if name == "heartbeat_s" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def setting_error(name: str, value: Any) -> str | None:
    """Why ``value`` cannot be the setting ``name`` (None: it can, or it is left empty).

    Said in words first; the protocol's check stays behind them, so what the words let
    through is never sent unless the station would take it too.
    """
    if value is None:
        return None
    problem = _PROBLEMS[name](value) if name in _PROBLEMS else None
    if problem is not None:
        return problem
    try:
        protocol.check_args(protocol.UPDATE_CONFIG, {name: setting_value(name, value)})
    except protocol.ArgsError as error:
        return str(error)
    return None


def timeout_error(value: Any) -> str | None:
    """Why ``value`` cannot be a command's timeout in seconds (None: it can)."""
    low, high = protocol.MIN_TIMEOUT_S, protocol.MAX_TIMEOUT_S
    if value is None or not low <= value <= high:
        return f"the timeout must be {low}-{high} s (up to 7 days)"
    return None


class CommandPanel:
    """The kind, its arguments and timeout, and Send."""

    def __init__(self, database: Database, actor: Actor, device_id: str) -> None:
        self.database = database
        self.device_id = device_id
        kinds = [k for k in protocol.KINDS if k != protocol.UPDATE_CONFIG]
        if actor.can("config:write"):
            kinds.insert(1, protocol.UPDATE_CONFIG)
        self.kinds = kinds
        self.settings: dict[str, ui.number] = {}

    def build(self) -> None:
        """Lay the panel out: Ping chosen, its explanation under it."""
        with ui.row().classes("items-start gap-4 w-full"):
            self.kind = ui.select(
                {kind: words.kind_label(kind) for kind in self.kinds},
                value=protocol.PING,
                label="Command",
            ).classes("min-w-48")
            self.kind.mark("command-kind-select")
            for name, label in SETTINGS:
                field = ui.number(
                    label, suffix="s", validation=partial(setting_error, name)
                ).classes("w-56")
                field.mark(f"command-{name}")
                field.bind_visibility_from(
                    self.kind, "value", lambda k: k == protocol.UPDATE_CONFIG
                )
                self.settings[name] = field
            self.timeout = ui.number(
                "Timeout", value=protocol.DEFAULT_TIMEOUT_S, suffix="s", validation=timeout_error
            ).classes("w-32")
            self.timeout.mark("command-timeout")
            ui.button("Send", icon="send", on_click=self.send).classes("mt-2").mark("command-send")
        explanation = ui.label().classes("text-sm text-slate-600").mark("command-explanation")
        explanation.bind_text_from(self.kind, "value", _explanation)
        self.error = ui.label().classes("text-negative").mark("command-error")

    async def send(self) -> None:
        """Queue the command as whoever is signed in now, if every field holds."""
        kind = str(self.kind.value)
        fields: dict[str, ErrorPlace] = {"timeout_s": self.timeout, "": self.error}
        args: dict[str, Any] = {}
        if kind == protocol.UPDATE_CONFIG:
            for name, field in self.settings.items():
                fields[f"args.{name}"] = field
                if field.value is not None:
                    args[name] = setting_value(name, field.value)
        if not all(field.validate() for field in fields.values() if isinstance(field, ui.number)):
            self.error.text = "Nothing was sent: correct the fields marked in red."
            return
        timeout_s = float(self.timeout.value)

        async def work(session: AsyncSession, actor: Actor) -> Command:
            return await commands.create(
                session,
                actor=actor,
                device_id=self.device_id,
                kind=kind,
                args=args,
                timeout_s=timeout_s,
            )

        done = f"{words.kind_label(kind)} queued for {self.device_id}"
        await submit(self.database, "commands:send", work, fields, done=done)


def _explanation(kind: object) -> str:
    known = words.KINDS.get(str(kind))
    return "" if known is None else known.explanation


def device_commands(database: Database, actor: Actor, device_id: str) -> None:
    """The device page's commands card: the panel for those who may send, and the list."""
    if not actor.can("devices:read"):  # the list needs it; the page itself asks less
        return
    with ui.card().classes("w-full").mark("commands"):
        ui.label("Commands").classes("font-semibold")
        if actor.can("commands:send"):
            CommandPanel(database, actor, device_id).build()
            ui.separator()
        CommandList(database, actor, Filters(device_id=device_id)).build()
