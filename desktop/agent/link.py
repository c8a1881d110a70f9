"""The station's link: its supervisor, with birth, will and farewell, and link events told in
the station's log.

Presence names the station instance (its outbox's stream) as well as the device: when two
instances share one identity, the server sees two streams take turns.
"""

from __future__ import annotations

from core.mqtt.link import LinkEvent, LinkState, Options, Outgoing
from core.mqtt.supervisor import Supervisor
from core.protocol import topics
from core.protocol.messages import Status
from desktop.agent.config import AgentConfig
from desktop.agent.state import AgentState, EventLog

# Seconds of silence before a ping, and as long again for its answer: a station behind a dead
# network path (a partition, a NAT that dropped its state) notices after 2x this and
# reconnects. The library's 30 s made that a minute (chaos runs: recovery p99 52 s after a
# blackhole), and the broker's last will, 1.5x this, kept a dead station "online" 45 s. A
# link busy both ways (samples out, acks in) never pings; an idle one sends 2 bytes each 10 s.
KEEPALIVE_S = 10


class Link:
    """Builds the station's supervisor and reports where its link stands."""

    def __init__(
        self, config: AgentConfig, *, stream: str, state: AgentState, events: EventLog
    ) -> None:
        self._config = config
        self._state = state
        self._events = events
        self.supervisor = Supervisor(config.endpoint, _options(config.device_id, stream))

    def on_link(self, event: LinkEvent) -> None:
        """Show a change of link state; a connect says how much the replay has to send."""
        self._state.link = event
        if event.state is LinkState.CONNECTED:
            backlog = self._state.replay_total
            self._events.record(
                "link", f"connected to {self._config.endpoint}; {backlog} to replay"
            )
        elif event.state is LinkState.RECONNECTING:
            self._events.record("link", f"link lost: {event.detail}")
        elif event.state in (LinkState.CONFLICT, LinkState.AUTH_FAILED):
            # The supervisor's detail already says it whole: "credentials in use elsewhere
            # since …", or which broker refused the credentials.
            self._events.record("link", event.detail)


def _options(device_id: str, stream: str) -> Options:
    """Who the station is on the broker, and what its retained status says when."""
    status = topics.status(device_id)

    def presence(message: Status) -> Outgoing:
        return Outgoing(status, message.encode(), qos=1, retain=True)

    return Options(
        # The broker makes a client's id its username anyway (use_username_as_clientid; our
        # amqtt plugin likewise): asking for that id keeps logs and the session's name alike.
        client_id=device_id,
        keepalive=KEEPALIVE_S,
        birth=presence(Status(device_id, "online", stream=stream)),
        will=presence(Status(device_id, "offline", "lost", stream)),
        farewell=presence(Status(device_id, "offline", "clean", stream)),
    )
