"""What the connection badge says and in which colour, from the supervisor's last link event."""

from __future__ import annotations

from dataclasses import dataclass

from core.mqtt.supervisor import LinkEvent, LinkState

GREEN, AMBER, RED = "#2e7d32", "#ef8f00", "#c62828"


@dataclass(frozen=True)
class Badge:
    """The badge's word, its colour, since when, and why (empty when there is nothing to say)."""

    text: str
    colour: str
    since: str
    detail: str = ""


def badge_for(link: LinkEvent | None) -> Badge:
    """Connected is green; (re)connecting amber; refused, stopped or not started red."""
    if link is None:
        return Badge("offline", RED, "", "not started")
    since = f"since {link.since.astimezone():%H:%M:%S}"
    if link.state is LinkState.CONNECTED:
        return Badge("connected", GREEN, since, link.detail)
    if link.state is LinkState.RECONNECTING:
        return Badge("reconnecting", AMBER, since, link.detail)
    if link.state is LinkState.STARTING:
        return Badge("connecting", AMBER, since, link.detail)
    if link.state is LinkState.AUTH_FAILED:
        return Badge("offline", RED, since, link.detail or "the broker refused the credentials")
    return Badge("offline", RED, since, link.detail or "stopped")
