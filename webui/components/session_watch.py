"""Keeps an open page to its session: ended, it goes to sign-in; rights changed, it reloads."""

from __future__ import annotations

import logging

from nicegui import app, ui

from core.db.engine import Database
from core.services.actor import Actor
from webui import signin

log = logging.getLogger(__name__)
# An ended session leaves its open pages within this; each open tab costs one read of its
# session, user and roles this often: 2.6 ms measured (SQLite and PostgreSQL alike), so
# 50 tabs make 17 a second, ~4.5% of a core.
CHECK_EVERY_S = 3.0
NOTICE_KEY = "rights_changed"  # said once on the page reloaded for it
NOTICE = "Your roles changed: this page shows what they allow now."


class SessionWatch:
    """Re-reads the page's session on a slow timer; it does not stand in for the check each
    action makes (``webui.forms``), it only stops a page offering what is no longer allowed.
    """

    def __init__(self, database: Database, actor: Actor) -> None:
        self.database = database
        self.loaded = _rights(actor)
        self.timer: ui.timer | None = None
        notice = app.storage.user.pop(NOTICE_KEY, None)
        if notice:
            ui.notify(str(notice), type="warning")

    def start(self) -> None:
        """Start checking (after the page is laid out, like the ticker)."""
        if self.timer is None:
            self.timer = ui.timer(CHECK_EVERY_S, self.check)

    async def check(self) -> None:
        """Leave for sign-in if the session ended; reload if the actor's rights changed."""
        try:
            actor = await signin.current_actor(self.database)
        except Exception:  # the database away for a moment: the next check tries again
            log.warning("could not check the page's session", exc_info=True)
            return
        if actor is None:
            self._stop()
            ui.navigate.to("/login")
        elif _rights(actor) != self.loaded:
            self._stop()
            app.storage.user[NOTICE_KEY] = NOTICE
            ui.navigate.reload()

    def _stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


def _rights(actor: Actor) -> tuple[frozenset[str], frozenset[str]]:
    return actor.permissions, frozenset(actor.roles)
