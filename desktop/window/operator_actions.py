"""What the signed-in operator does from the bar: replay now, the interval, users, their account.

Each action is checked at the moment of acting (``Acting``) against the permission
``session`` names for it; the bar greys out what the operator's roles did not allow
at the last check, but a click is never trusted for that. Dialogs close when the operator
signs out.
"""

from __future__ import annotations

import asyncio
import logging

from PySide6.QtCore import QObject

from core.mqtt.link import NotConnectedError
from core.tasks import TaskSet
from desktop.agent.agent import Agent
from desktop.agent.replay import Flush
from desktop.agent.sign_in import Person
from desktop.window.account_controller import AccountController
from desktop.window.acting import Acting
from desktop.window.interval_controller import IntervalController
from desktop.window.session import REPLAY
from desktop.window.sign_in_controller import SignInController
from desktop.window.users_controller import UsersController

log = logging.getLogger(__name__)
# How long "Replay outbox now" waits for the server's acks: a deep backlog replays at
# tens of thousands of samples a second, and the replay bar shows progress meanwhile.
FLUSH_WAIT_S = 60.0


def flush_words(flush: Flush) -> str:
    """What a replay now did, in words."""
    if flush.complete:
        return f"Replayed {flush.sent} samples: the server has every one up to seq {flush.target}."
    return (
        f"Replayed {flush.sent} samples; the server acknowledged up to seq {flush.acked_seq}"
        f" of {flush.target} so far, and the rest goes on replaying."
    )


class OperatorActions(QObject):
    """Binds the operator bar's buttons to the agent, as the signed-in operator."""

    def __init__(self, agent: Agent, gate: SignInController) -> None:
        super().__init__(gate)
        self.agent = agent
        self.gate = gate
        self.bar = bar = gate.view.operator_bar
        self.acting = Acting(gate, lambda: agent.sync.kick())
        self.tasks = TaskSet("station window actions")
        self.users = UsersController(agent.replica, self.acting, parent=gate.view)
        self.account = AccountController(agent.replica, self.acting, parent=gate.view)
        self.interval = IntervalController(agent, self.acting, bar)
        bar.replay_now.clicked.connect(lambda: self.tasks.spawn(self.replay_now()))
        bar.set_interval.clicked.connect(
            lambda: self.tasks.spawn(self.set_interval(bar.interval.value()))
        )
        bar.users.clicked.connect(lambda: self.tasks.spawn(self.users.open(bar.say)))
        bar.account.clicked.connect(lambda: self.tasks.spawn(self.account.open()))
        gate.signed_in.connect(self._on_signed_in)
        gate.signed_out.connect(self._on_signed_out)

    def _on_signed_in(self, person: Person) -> None:
        self.bar.say("")
        self.interval.show_in_effect()

    def _on_signed_out(self, reason: str) -> None:
        self.users.close()
        self.account.close()
        self.interval.forget()  # the next operator did not ask for it
        self.bar.say("")

    @property
    def waiting_for(self) -> float | None:
        """An interval sent, not yet in effect."""
        return self.interval.waiting_for

    async def replay_now(self) -> Flush | None:
        """Replay the outbox now (``commands:send``) and say what the server acknowledged."""
        bar = self.bar
        person = await self.acting.run("Replaying the outbox", REPLAY, lambda p: p, bar.say)
        if person is None:
            return None
        bar.hold(bar.replay_now)
        bar.say("Replaying the outbox…", busy=True)
        deadline = asyncio.get_running_loop().time() + FLUSH_WAIT_S
        try:
            flush = await self.agent.replay.flush(deadline=deadline)
        except NotConnectedError as error:
            bar.say(f"Not replayed: {error}.", error=True)
            return None
        except Exception as error:
            log.exception("replay now failed")
            bar.say(f"Replaying the outbox failed: {error}", error=True)
            return None
        finally:
            bar.release(bar.replay_now)
        bar.say(flush_words(flush), error=not flush.complete)
        self.agent.events.record("operator", f"{person.username} replayed the outbox now")
        return flush

    async def set_interval(self, seconds: float) -> bool:
        """Send an override of the sampling interval up (``config:write``); True if recorded."""
        return await self.interval.set_interval(seconds)

    def look_for_interval(self) -> bool:
        """If the configuration in effect has the interval sent, say so; True if it has."""
        return self.interval.look_for_interval()

    async def stop(self) -> None:
        """Close the dialogs and end what is under way (the app closes the window)."""
        await self.interval.stop()
        self.users.close()
        self.account.close()
        for tasks in (self.tasks, self.users.tasks, self.account.tasks):
            await tasks.cancel()
