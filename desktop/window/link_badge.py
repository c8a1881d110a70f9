"""What the connection badge says and in which colour, from the supervisor's last link event."""

from __future__ import annotations

from dataclasses import dataclass

from core.mqtt.link import LinkEvent, LinkState

GREEN, AMBER, RED = "#2e7d32", "#ef8f00", "#c62828"

# Every state, said out loud: green is for CONNECTED alone, since only then does a sample
# reach the server. A state added later falls to "offline" in red, never to "connected".
WORDS = {
    LinkState.CONNECTED: ("connected", GREEN),
    LinkState.STARTING: ("connecting", AMBER),
    LinkState.RECONNECTING: ("reconnecting", AMBER),
    # Red, like refused credentials: it lasts until a person stops the other station.
    LinkState.CONFLICT: ("credentials in use elsewhere", RED),
    LinkState.AUTH_FAILED: ("offline", RED),
    LinkState.STOPPED: ("offline", RED),
}
DEFAULT_DETAIL = {
    LinkState.CONFLICT: "another station uses this device's credentials",
    LinkState.AUTH_FAILED: "the broker refused the credentials",
    LinkState.STOPPED: "stopped",
}


@dataclass(frozen=True)
class Badge:
    """The badge's word, its colour, since when, and why (empty when there is nothing to say)."""

    text: str
    colour: str
    since: str
    detail: str = ""


def badge_for(link: LinkEvent | None) -> Badge:
    """Connected is green; (re)connecting amber; a conflict, refused or stopped link red."""
    if link is None:
        return Badge("offline", RED, "", "not started")
    text, colour = WORDS.get(link.state, ("offline", RED))
    since = f"since {link.since.astimezone():%H:%M:%S %Z}"  # local time, and which zone
    return Badge(text, colour, since, link.detail or DEFAULT_DETAIL.get(link.state, ""))
