"""Where and as whom a process connects to the broker."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

SCHEMES = {"mqtt": False, "mqtts": True}  # scheme → TLS
DEFAULT_PORTS = {False: 1883, True: 8883}


@dataclass(frozen=True)
class Endpoint:
    """A broker address with the credentials and TLS trust to reach it."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None  # None with TLS: the system's trust store

    def __post_init__(self) -> None:
        if not self.host:
            msg = "broker host must not be empty"
            raise ValueError(msg)
        if not 0 < self.port < 65536:
            msg = f"broker port must be 1-65535: {self.port}"
            raise ValueError(msg)
        if self.ca_file is not None and not self.tls:
            msg = "a CA file is only used with TLS (mqtts://)"
            raise ValueError(msg)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        ca_file: Path | None = None,
    ) -> Endpoint:
        """Read ``mqtt://`` or ``mqtts://[user[:password]@]host[:port]``; arguments win."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            msg = f"broker URL must start with mqtt:// or mqtts://: {url!r}"
            raise ValueError(msg)
        tls = SCHEMES[parts.scheme]
        try:
            port = parts.port or DEFAULT_PORTS[tls]
        except ValueError as error:
            msg = f"broker URL has a bad port: {url!r}"
            raise ValueError(msg) from error
        return cls(
            host=parts.hostname or "",
            port=port,
            username=username or (unquote(parts.username) if parts.username else None),
            password=password or (unquote(parts.password) if parts.password else None),
            tls=tls,
            ca_file=ca_file if tls else None,
        )

    @property
    def plaintext_beyond_loopback(self) -> bool:
        """Whether plain MQTT would carry the password and the data off this machine."""
        # Names are not resolved: any but localhost counts as another machine.
        return not self.tls and not _is_loopback(self.host)

    def refuse_plaintext(self, *, allowed: bool, how_to_allow: str) -> None:
        """ValueError for plain MQTT beyond loopback unless ``allowed``, saying how to allow it."""
        if self.plaintext_beyond_loopback and not allowed:
            msg = (
                f"refusing plain MQTT to {self.host}: the password and every message would"
                f" cross the network unencrypted; use mqtts:// or {how_to_allow}"
            )
            raise ValueError(msg)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for this endpoint (hostname checked), or None without TLS."""
        if not self.tls:
            return None
        cafile = str(self.ca_file) if self.ca_file is not None else None
        return ssl.create_default_context(cafile=cafile)

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"


def _is_loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
