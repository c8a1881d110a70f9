"""What the connection badge says and in which tone, from the supervisor's last link event."""

from __future__ import annotations

from dataclasses import dataclass

from core.mqtt.link import LinkEvent, LinkState
from desktop.window.theme import Tone

# Every state, said out loud: OK (green) is for CONNECTED alone, since only then does a sample
# reach the server. A state added later falls to "offline" (BAD, red), never to "connected".
WORDS = {
    LinkState.CONNECTED: ("connected", Tone.OK),
    LinkState.STARTING: ("connecting", Tone.WARN),
    LinkState.RECONNECTING: ("reconnecting", Tone.WARN),
    # Red, like refused credentials: it lasts until a person stops the other station.
    LinkState.CONFLICT: ("credentials in use elsewhere", Tone.BAD),
    LinkState.AUTH_FAILED: ("offline", Tone.BAD),
    LinkState.STOPPED: ("offline", Tone.BAD),
}
DEFAULT_DETAIL = {
    LinkState.CONFLICT: "another station uses this device's credentials",
    LinkState.AUTH_FAILED: "the broker refused the credentials",
    LinkState.STOPPED: "stopped",
}


@dataclass(frozen=True)
class Badge:
    """The badge's word, its tone, since when, and why (empty when there is nothing to say)."""

    text: str
    tone: Tone
    since: str
    detail: str = ""


def badge_for(link: LinkEvent | None) -> Badge:
    """Connected is green; (re)connecting amber; a conflict, refused or stopped link red."""
    if link is None:
        return Badge("offline", Tone.BAD, "", "not started")
    text, tone = WORDS.get(link.state, ("offline", Tone.BAD))
    since = f"since {link.since.astimezone():%H:%M:%S %Z}"  # local time, and which zone
    return Badge(text, tone, since, link.detail or DEFAULT_DETAIL.get(link.state, ""))
