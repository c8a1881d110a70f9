"""An audit entry as a table row: time in the browser's zone, names with links, change in words.

Names come from one bulk lookup per page (``core.services.audit_names.resolve``); a name
links to the page where that thing is shown: a device to its page, a command to its
device's page (where its state shows), users and roles to their lists.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any
from urllib.parse import quote

from core.db.models import AuditEntry
from core.services import audit_names
from core.services.audit_diff import change_lines
from core.services.audit_names import Key, Named
from webui.components.browser_time import named

NO_CHANGE = "—"  # an entry that records an event, not a change (a sign-in)
# Where each kind of thing is shown; None: it has no page of its own.
ROUTES = {"user": "/users", "role": "/roles", "device": "/devices/{}", "command": "/devices/{}"}


def href(thing: Named) -> str | None:
    """The page that shows ``thing`` (None for one that no longer resolves)."""
    route = ROUTES.get(thing.kind)
    if route is None or not thing.known:
        return None
    return route.format(quote(thing.key, safe=""))


def _cell(thing: Named | None) -> dict[str, Any]:
    if thing is None:
        return {"label": NO_CHANGE, "href": None}
    return {"label": thing.label, "href": href(thing)}


def row(entry: AuditEntry, names: dict[Key, Named], zone: tzinfo) -> dict[str, Any]:
    """The cells of ``entry``: ``actor``/``target`` as ``{label, href}``, ``change`` as lines."""
    lines = change_lines(entry.before, entry.after, lambda moment: named(moment, zone))
    return {
        "id": entry.id,
        "at": named(entry.at, zone),
        "actor": _cell(audit_names.actor(names, entry)),
        "action": entry.action,
        "target": _cell(audit_names.target(names, entry)),
        "change": lines or [NO_CHANGE],
    }
