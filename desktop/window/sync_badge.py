"""What the outbox's sync badge says and in which tone: is the server up to date (no Qt here)."""

from __future__ import annotations

from core.mqtt.link import LinkState
from desktop.agent.state import AgentState
from desktop.window.theme import Tone


def sync_words(state: AgentState) -> tuple[str, Tone]:
    """Connected and not replaying reads "in sync" (a sample or two always await their ack);
    replaying a backlog, "catching up"; rows held while the link is down, a warning that
    recovers by itself once the link is back."""
    connected = state.link is not None and state.link.state is LinkState.CONNECTED
    if connected:
        if state.replay_sent < state.replay_total:
            return "catching up", Tone.BUSY
        return "in sync", Tone.OK
    if state.depth:
        return f"{state.depth:,} held until the link is back", Tone.WARN
    return "nothing waiting", Tone.NEUTRAL
