"""How the window acts for its operator: read them again, check, work in a thread, say how.

Every action goes through ``Acting.run``: the operator is read again from the replica at
the moment of acting (``Session.require``), so a sync that demoted or disabled them since
they signed in stops them here; the work (argon2, SQLite) runs in a thread; a refusal or a
failure becomes a sentence in the window, never an exception out of a Qt slot. An edit then
asks the agent's sync to send it (``kick``) at once, on the event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from desktop.agent.sign_in import Person
from desktop.window.session import SignedOutError, sentence
from desktop.window.sign_in_controller import SignInController

log = logging.getLogger(__name__)
T = TypeVar("T")


class Say(Protocol):
    """Where an action's outcome is shown."""

    def __call__(self, text: str, *, error: bool = False) -> None:
        """Show ``text``; ``error`` for a refusal or a failure."""


class Acting:
    """Runs the operator's actions for one window."""

    def __init__(self, gate: SignInController, kick: Callable[[], object]) -> None:
        self.gate = gate
        self._kick = kick  # the agent's sync: send pending edits now if connected

    async def run(
        self, doing: str, permission: str | None, work: Callable[[Person], T], say: Say
    ) -> T | None:
        """``work`` for the operator as they are now, if they hold ``permission`` (None: any
        active operator); its result, or None once ``say`` has said why not."""
        session = self.gate.session
        if session is None:
            say("Nobody is signed in.", error=True)
            return None

        def act() -> T:
            if permission is None:
                return work(session.current())
            return work(session.require(permission, doing))

        try:
            return await asyncio.to_thread(act)
        except SignedOutError as gone:
            self.gate.sign_out(gone.reason)
        except (PermissionError, ValueError) as refused:
            say(sentence(str(refused)), error=True)
        except Exception as error:  # the replica's file, say: shown, logged, never a crash
            log.exception("%s failed", doing)
            say(f"{doing} failed: {error}", error=True)
        return None

    async def edit(
        self, doing: str, permission: str | None, work: Callable[[Person], T], say: Say
    ) -> T | None:
        """Like ``run``, for work that records an edit: the sync is kicked to send it, and
        the operator read again."""
        done = await self.run(doing, permission, work, say)
        if done is not None:
            await self.kick()
            await self.gate.check()  # the bar shows the edit at once (a new name, fewer roles)
        return done

    async def kick(self) -> None:
        """Ask the sync to send pending edits now; a failure is logged (the sync retries)."""
        try:
            kicked = self._kick()
            if inspect.isawaitable(kicked):
                await kicked
        except Exception:
            log.exception("could not ask the sync to send the edit now")
