"""The overview's headline numbers: each a card that links to the list it counts, live.

The fleet narrows itself with ``/fleet?status=…`` (``fleet_filter`` names the values and
keeps the devices each card counts), so a number and the list behind it say the same thing.
"""

from __future__ import annotations

from nicegui import ui

from webui.components.fleet_filter import ALL, CHOICES
from webui.components.overview_watch import Glance

# What the fleet is asked to show for each number (``/fleet?status=<value>``).
FLEET_FILTERS = tuple(choice for choice in CHOICES if choice != ALL)
# Tailwind colours that read on white; a number takes its colour only when it is news.
_ACCENT = {
    "online": "text-green-700",
    "stale": "text-amber-700",
    "alarms": "text-red-700",
    "backlog": "text-amber-700",
    "conflicts": "text-red-700",
}


def fleet_link(status: str) -> str:
    """The fleet narrowed to ``status`` (one of ``FLEET_FILTERS``)."""
    if status not in FLEET_FILTERS:
        msg = f"the fleet has no filter {status!r}"
        raise ValueError(msg)
    return f"/fleet?status={status}"


def plural(count: int, one: str, *, zero: str = "0") -> str:
    """``1 device``, ``1,200 devices``, and for none ``0 devices`` (or ``zero`` given)."""
    word = one if count == 1 else f"{one}s"
    return f"{count:,} {word}" if count else f"{zero} {word}"


class NumberCard:
    """A big number with what it counts and a line of detail, the whole card a link."""

    def __init__(self, key: str, label: str, target: str) -> None:
        self.key = key
        self._shown: tuple[int, str] | None = None
        with (
            ui.link(target=target).classes("no-underline text-inherit").mark(f"count {key}"),
            ui.card().classes("h-full gap-0 hover:shadow-lg"),
        ):
            self.number = (
                ui.label()
                .classes("text-4xl font-semibold")
                .props(f"data-count={key}")
                .mark(f"number {key}")
            )
            ui.label(label).classes("font-medium")
            self.detail = ui.label().classes("text-sm text-slate-500").mark(f"detail {key}")

    def show(self, count: int, detail: str) -> None:
        """Show ``count`` and ``detail`` (sends nothing to the browser when unchanged)."""
        if (count, detail) == self._shown:
            return
        self._shown = (count, detail)
        self.number.text = f"{count:,}"
        self.detail.text = detail
        accent = _ACCENT.get(self.key, "")
        if accent and count:
            self.number.classes(add=accent)
        elif accent:
            self.number.classes(remove=accent)


class Numbers:
    """The row of number cards."""

    def __init__(self) -> None:
        # As many in a row as fit, all of one width: six in a row on a laptop beside the menu.
        grid = "w-full max-w-5xl grid grid-cols-[repeat(auto-fill,minmax(8.5rem,1fr))] gap-4"
        with ui.element("div").classes(grid):
            self.online = NumberCard("online", "Online", fleet_link("online"))
            self.stale = NumberCard("stale", "Stale", fleet_link("stale"))
            self.offline = NumberCard("offline", "Offline", fleet_link("offline"))
            self.alarms = NumberCard("alarms", "Active alarms", fleet_link("alarm"))
            self.backlog = NumberCard("backlog", "With a backlog", fleet_link("backlog"))
            self.conflicts = NumberCard("conflicts", "With a conflict", fleet_link("conflict"))

    def show(self, glance: Glance) -> None:
        """Show ``glance``."""
        tally = glance.tally
        self.online.show(tally.online, f"of {plural(tally.total, 'device')}")
        self.stale.show(tally.stale, "missed heartbeats")
        self.offline.show(tally.offline, "or not heard yet")
        alarmed = len({alarm.device_id for alarm in glance.alarms})
        self.alarms.show(len(glance.alarms), f"on {plural(alarmed, 'device')}")
        queued = [a.queued for a in glance.attention if a.queued]
        self.backlog.show(len(queued), f"{plural(sum(queued), 'sample', zero='no')} queued")
        conflicted = [a for a in glance.attention if a.sharing or a.sync_conflicts]
        self.conflicts.show(len(conflicted), "identity or sync")
