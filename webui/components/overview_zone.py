"""The browser's time zone for one page: the one remembered at once, the one it names soon after."""

from __future__ import annotations

from datetime import tzinfo

from nicegui import Client, background_tasks, context

from webui.components.browser_time import ask_zone, known_zone


class PageZone:
    """Times on the page read in ``zone``; ``learnt`` grows when the browser names a new one,
    so whatever shows times knows to draw them again."""

    def __init__(self) -> None:
        self.zone: tzinfo = known_zone()
        self.learnt = 0
        self._asked = False

    def update(self) -> None:
        """Ask the browser once it is connected (asking earlier sends half a page)."""
        client = context.client
        if not self._asked and client.has_socket_connection:
            self._asked = True
            background_tasks.create(self._learn(client), name="ask the browser's time zone")

    async def _learn(self, client: Client) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone:
            self.zone = zone
            self.learnt += 1
