"""The operator bar's sampling interval: it follows the configuration, and an override sent
up is followed until the server has the last word.

Rules:
- The box shows the interval in effect. A new configuration moves it there, unless the
  operator is editing it: the box has the keyboard focus, or holds a number of theirs (one
  neither the window put there nor in effect until this configuration) not sent yet.
  Their number is never overwritten under their hands.
- "Set interval" records an override (``config:write``, checked at the moment of acting,
  ``Acting``) that the sync sends up. The bar then waits for the server's word:
  - a configuration that brings the interval sent: "in effect";
  - the edit answered (no longer pending in the replica) while the interval the replica
    holds for this station is another: the server refused it (the sync has reverted it and
    told the station's event log, kind "sync", with the server's reason, which the bar
    repeats) or a later change won there; either way the bar says so in words.
- What triggers a look is the agent's own news, not a timer: its events (a configuration
  applied, a sync refusal). The replica is read in a thread.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from PySide6.QtCore import QObject

from core.protocol.sync import Edit
from core.tasks import TaskSet
from desktop.agent import local_users
from desktop.agent.agent import Agent, AgentEvent
from desktop.window.acting import Acting
from desktop.window.operator_bar import OperatorBar
from desktop.window.session import SETTINGS, sentence

SETTING = "interval_s"
SYNC = "sync"  # the kind of the station's events that tell of a refused edit


class IntervalController(QObject):
    """Drives the bar's interval box and ``Set interval`` for the signed-in operator."""

    def __init__(self, agent: Agent, acting: Acting, bar: OperatorBar) -> None:
        super().__init__(bar)
        self.agent = agent
        self.acting = acting
        self.bar = bar
        self.tasks = TaskSet("station window interval")
        self.waiting_for: float | None = None  # an interval sent, not yet in effect
        self._sent: Edit | None = None
        self._shown = bar.interval.value()  # what the window last put in the box, or sent
        self._version = agent.state.config_version  # the configuration last seen
        self._in_effect = agent.state.interval_s  # its interval
        self._remove: Callable[[], None] | None = agent.add_listener(self._on_event)
        self.show_in_effect()

    @property
    def editing(self) -> bool:
        """Whether the operator is at the box: focused, or holding a number of theirs."""
        box = self.bar.interval
        if box.hasFocus() or box.lineEdit().hasFocus():
            return True
        return not any(math.isclose(box.value(), known) for known in (self._shown, self._in_effect))

    def show_in_effect(self) -> None:
        """Put the interval in effect in the box (whatever the operator typed)."""
        box = self.bar.interval
        box.setValue(self.agent.state.interval_s)
        self._shown = box.value()  # as the box rounds it

    def forget(self) -> None:
        """Stop waiting: the operator signed out, and the next one did not ask for it."""
        self.waiting_for, self._sent = None, None

    async def set_interval(self, seconds: float) -> bool:
        """Send an override of the sampling interval up (``config:write``); True if recorded."""
        device_id = self.agent.config.device_id
        edit = await self.acting.edit(
            "Changing the sampling interval",
            SETTINGS,
            lambda person: local_users.override_setting(
                self.agent.replica, person, device_id, SETTING, seconds
            ),
            self.bar.say,
        )
        if edit is None:
            return False
        self.waiting_for, self._sent = seconds, edit
        self._shown = self.bar.interval.value()  # sent: no longer the operator's draft
        self.bar.say(f"Interval {seconds:g} s sent: waiting for the server.", busy=True)
        self.agent.events.record("operator", f"{edit.username} asked for a {seconds:g} s interval")
        self.tasks.spawn(self.look_for_answer())  # the server may have answered already
        return True

    def _on_event(self, event: AgentEvent) -> None:
        """A new configuration moves the box and may end the wait; a sync event may too."""
        state = self.agent.state
        if state.config_version != self._version:
            if not self.editing:
                self.show_in_effect()
            self._version, self._in_effect = state.config_version, state.interval_s
            if self.look_for_interval():
                return
        elif event.kind != SYNC:
            return
        if self._sent is not None:
            self.tasks.spawn(self.look_for_answer())

    def look_for_interval(self) -> bool:
        """If the configuration in effect has the interval sent, say so; True if it has."""
        wanted, state = self.waiting_for, self.agent.state
        if wanted is None or not math.isclose(state.interval_s, wanted):
            return False
        self.forget()
        self.bar.say(
            f"Interval {wanted:g} s in effect (configuration version {state.config_version})."
        )
        return True

    async def look_for_answer(self) -> None:
        """If the server answered the interval sent and the replica does not hold it, say how
        it ended (refused, with the server's reason, or overtaken by a later change)."""
        sent, wanted = self._sent, self.waiting_for
        if sent is None or wanted is None:
            return
        replica, device_id = self.agent.replica, self.agent.config.device_id

        def read() -> tuple[bool, object]:
            pending = any(edit.change_id == sent.change_id for edit in replica.pending())
            return pending, replica.directory().desired(device_id).get(SETTING)

        pending, held = await asyncio.to_thread(read)
        if pending or self._sent is not sent or self.look_for_interval():
            return
        if isinstance(held, int | float) and math.isclose(held, wanted):
            return  # accepted: its configuration is on the way
        self.forget()
        answer = self.agent.sync.answer_of(sent.change_id)
        reason = answer.reason if answer is not None and not answer.accepted else None
        if reason is None:
            said = f"The {wanted:g} s interval sent did not take effect"
            said += ": a later change won on the server."
        else:
            said = f"The server refused the {wanted:g} s interval: {sentence(reason)}"
        if not self.editing:
            self.show_in_effect()
        in_effect = self.agent.state.interval_s
        self.bar.say(f"{said} The interval in effect is {in_effect:g} s.", error=True)

    async def stop(self) -> None:
        """Stop listening to the agent and end what is under way."""
        if self._remove is not None:
            self._remove()
            self._remove = None
        await self.tasks.cancel()
