"""Settings read from the environment (prefix ``PP_``) or passed in directly."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.mqtt.endpoint import Endpoint
from core.protocol.station_config import SETTINGS

# Anything that still holds this value is a development secret, never a production one.
DEV_SECRET_KEY = "dev-insecure-secret-change-me-0123456789abcdef"
# A key shorter than 32 bytes is too weak for HS256 signatures.
MIN_SECRET_LENGTH = 32
# The largest legitimate request body is a user, role or desired configuration of a few
# KB; socket.io's polling transport caps its own at 1,000,000 bytes and the pages take no
# uploads. 1 MiB leaves room for all of them and keeps an anonymous flood from filling memory.
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024


class ExposedSecretError(ValueError):
    """The published development secret key would sign sessions reachable from the network."""


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server to this machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a name (other than localhost), or 0.0.0.0 spelled otherwise
        return False


class Settings(BaseSettings):
    """Every knob of the server, agent and CLI in one place."""

    model_config = SettingsConfigDict(env_prefix="PP_", extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str = f"sqlite+aiosqlite:///{Path('data') / 'precisionpulse.db'}"
    # The broker; mqtts:// for TLS. An empty URL runs the server without the MQTT link.
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_username: str | None = None
    mqtt_password: str | None = None
    mqtt_ca_file: Path | None = None  # the CA that signed the broker's certificate
    # Default: the username (else pp-<node_id>). Our brokers replace it with the username
    # anyway, so each server replica needs a broker account of its own.
    mqtt_client_id: str = ""
    # Plain mqtt:// to another machine outside development, or from a station: refused
    # unless this says the network is trusted (the password would cross it in the clear).
    mqtt_allow_plaintext: bool = False
    # Split ingest among server replicas with $share (Mosquitto, EMQX; not amqtt).
    mqtt_shared_ingest: bool = True
    # QoS 1/2 messages in flight; keep at or below the broker's max_inflight_messages.
    mqtt_inflight_window: int = 100

    # The broker's password file, kept equal to the enabled devices (and the server
    # account), and its pid file to signal a reload; unset when the broker is managed apart.
    broker_password_file: Path | None = None
    broker_pid_file: Path | None = None

    # Telemetry limits (protocol v1 defaults) and ingest batching.
    telemetry_max_payload_bytes: int = 256 * 1024
    telemetry_max_samples: int = 1000
    telemetry_max_channels: int = 256
    # Days of telemetry kept before today (UTC), whole days: older samples and rollups are
    # removed hourly. 0 keeps everything: deleting history is never a default to find out.
    telemetry_retention_days: int = Field(default=0, ge=0)
    # Extra wait for more messages before a commit; 0 batches what queued during the last
    # commit, which grows with the rate and adds no latency when idle.
    ingest_linger_ms: float = 0.0
    ingest_max_rows: int = 5_000  # rows per transaction: big enough for COPY, short enough
    # that a live sample never waits long for a worker
    ingest_queue_messages: int = 2_000  # per lane (live, replay): received, not yet stored
    ingest_workers: int = 3  # concurrent transactions, live first; at most one of them
    # replayed samples (PostgreSQL; SQLite writes one at a time)
    # The server's key for signing desired configurations and commands (created if absent,
    # its public half written beside it as <name>.pub.pem for stations to trust).
    signing_key_file: Path = Path("data") / "server-signing-key.pem"
    # The audit chain's HMAC key (created 0600 when absent; default: beside the signing key
    # as audit-key). The database never holds it, so database access alone cannot rewrite
    # the chain; every writer of the audit log (server replicas, the CLI) needs the same one.
    audit_key_file: Path | None = None
    # Signed checkpoints of the audit chain's head, appended outside the database (default:
    # beside the signing key as audit-checkpoints.jsonl), so a shortened chain shows.
    audit_checkpoint_file: Path | None = None
    # What a station trusts: the server's public key (PEM), for `agent`, `desktop`, `simulate`.
    server_public_key_file: Path | None = None
    secret_key: str = DEV_SECRET_KEY
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # HTTPS: the certificate (chain, PEM) the server presents and its key; both or neither.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    # Reverse proxies (IPs or CIDRs, comma-separated) whose X-Forwarded-Proto and -For are
    # believed; nobody's by default, so no client can claim to have come over TLS.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # Request bodies past this many bytes get 413 before they are read (webui/http/limits.py).
    max_request_bytes: int = Field(default=DEFAULT_MAX_REQUEST_BYTES, gt=0)
    # /docs, /redoc and /openapi.json; false answers them 404.
    api_docs: bool = True
    # When set, /metrics answers only 'Authorization: Bearer <this>' (empty: open to all).
    metrics_token: str | None = None
    node_id: str = "server"

    # Short access tokens keep revocation windows small; refresh tokens carry the session.
    access_token_minutes: int = 15
    refresh_token_days: int = 14
    # After this many failed logins in a row the account is locked, doubling each time.
    login_max_failures: int = 5
    login_lock_seconds: int = 30

    # Sign-in through an OpenID Connect provider (core/oidc.py), on when the issuer and the
    # client id are set; local passwords keep working beside it.
    oidc_issuer: str = ""  # e.g. https://login.example.com/realms/plant (no trailing slash)
    oidc_client_id: str = ""
    # Empty: a public client (PKCE alone). repr=False keeps it out of logs and tracebacks.
    oidc_client_secret: str = Field(default="", repr=False)
    # The claim listing role names, a dotted path for nested claims (realm_access.roles).
    oidc_role_claim: str = "roles"
    oidc_name: str = ""  # the login button's "Sign in with …"; default: the issuer's host
    oidc_scopes: str = "openid profile email"
    # The callback URL registered with the provider; default: this server's own
    # <scheme>://<host>/auth/oidc/callback as the request reached it. Set it behind a proxy
    # that rewrites the host.
    oidc_redirect_uri: str = ""

    # Settings of its own desired configuration a station's operator (holding config:write)
    # may change there; the rest are decided in the browser. Comma-separated in the env.
    station_config_overrides: Annotated[tuple[str, ...], NoDecode] = ("interval_s",)

    @model_validator(mode="after")
    def _refuse_default_secret(self) -> Settings:
        # Spaces pad a key to length without adding anything an attacker must guess.
        strength = len(self.secret_key.strip())
        if self.env != "development" and (
            self.secret_key == DEV_SECRET_KEY or strength < MIN_SECRET_LENGTH
        ):
            msg = (
                "PP_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_LENGTH} characters, whitespace aside, outside development "
                f"(PP_ENV={self.env})"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _refuse_plaintext_mqtt(self) -> Settings:
        if self.env != "development" and self.mqtt_url:
            endpoint = Endpoint.from_url(self.mqtt_url)
            how = f"set PP_MQTT_ALLOW_PLAINTEXT=true on a trusted network (PP_ENV={self.env})"
            endpoint.refuse_plaintext(allowed=self.mqtt_allow_plaintext, how_to_allow=how)
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            msg = "PP_SSL_CERTFILE and PP_SSL_KEYFILE go together: set both or neither"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _oidc_pair(self) -> Settings:
        if bool(self.oidc_issuer) != bool(self.oidc_client_id):
            msg = "PP_OIDC_ISSUER and PP_OIDC_CLIENT_ID go together: set both or neither"
            raise ValueError(msg)
        if self.oidc_issuer:
            issuer = urlsplit(self.oidc_issuer)
            plain = issuer.scheme == "http" and not is_loopback(issuer.hostname or "")
            if issuer.scheme not in ("https", "http") or not issuer.hostname:
                msg = f"PP_OIDC_ISSUER is not an http(s) URL: {self.oidc_issuer!r}"
                raise ValueError(msg)
            if plain and self.env != "development":  # its keys and tokens would cross in clear
                msg = f"PP_OIDC_ISSUER must be https:// outside development (PP_ENV={self.env})"
                raise ValueError(msg)
            if "openid" not in self.oidc_scopes.split():
                msg = "PP_OIDC_SCOPES must include openid"
                raise ValueError(msg)
        return self

    @field_validator("oidc_issuer", mode="after")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return value.strip()

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_networks(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            return items  # pydantic names the type error
        networks = [str(item).strip() for item in items if str(item).strip()]
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                msg = f"not an IP address or network: {network!r}"
                raise ValueError(msg) from None
        return networks

    @field_validator("station_config_overrides", mode="before")
    @classmethod
    def _station_overrides(cls, value: object) -> object:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            return items  # pydantic names the type error
        names = tuple(str(item).strip() for item in items if str(item).strip())
        unknown = sorted(set(names) - SETTINGS)
        if unknown:  # a typo must not pass for a policy that silently allows nothing
            known = ", ".join(sorted(SETTINGS))
            msg = f"not a station setting: {', '.join(unknown)} (known: {known})"
            raise ValueError(msg)
        return names

    @field_validator("metrics_token", mode="after")
    @classmethod
    def _metrics_token(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None  # PP_METRICS_TOKEN= (empty) means unset, as PP_MQTT_URL= does
        return value

    def check_listen(self, host: str) -> None:
        """ExposedSecretError if serving on ``host`` would expose the development key.

        Its value is in the source, so anyone who reaches the server could forge a session
        cookie or access token with it: on loopback only this machine can, in any ``env``.
        """
        if self.secret_key == DEV_SECRET_KEY and not is_loopback(host):
            msg = (
                f"refusing to listen on {host!r} with the published development PP_SECRET_KEY: "
                "set PP_SECRET_KEY to your own random value, or listen on 127.0.0.1"
            )
            raise ExposedSecretError(msg)

    @property
    def oidc_enabled(self) -> bool:
        """Whether sign-in through an OpenID Connect provider is offered."""
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def oidc_label(self) -> str:
        """The provider's name on the login page's button."""
        return self.oidc_name.strip() or urlsplit(self.oidc_issuer).hostname or "OpenID Connect"

    @property
    def async_database_url(self) -> str:
        """The database URL with an async driver, whatever form it was given in."""
        return to_async_url(self.database_url)


def to_async_url(url: str) -> str:
    """Map plain ``postgresql://`` and ``sqlite://`` URLs onto their async drivers."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url
