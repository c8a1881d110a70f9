"""Mosquitto's configuration and ACL file, rendered from a few paths and options.

``broker/mosquitto.conf`` and ``broker/acl`` are these renderings for the production
container (``/mosquitto/config``, ``/mosquitto/data``, TLS on 8883); a test keeps them
equal to what ``render_deployment_conf()`` and ``render_acl()`` produce, so edit the code
here and re-render (``precisionpulse broker conf --out broker --owner "$(id -un)"``: run
as root it would otherwise hand the ACL to the mosquitto user), never the files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

from core.protocol import topics

# Mosquitto's defaults (1000 queued, 20 in flight per client) drop QoS 1/2 messages
# silently once a replaying station or a busy server fills them; the ack watermark keeps
# data safe regardless, but every drop costs a replay round.
MAX_QUEUED_MESSAGES = 100_000
# QoS 1/2 messages in flight to a client (unacknowledged): past this they wait in its queue,
# while a QoS 0 message goes straight out, so a live sample waits behind at most this many
# replay messages on their way to a server that has fallen behind (measured with Mosquitto
# 2.0.11: behind 100 of 100 at 1,000, behind 20 at 20). The same number caps the QoS 2
# messages a client may have in flight to the broker, and past it they are dropped
# silently (at 20, 60 of 300 commands arrived; at 99, 297): so it is the clients' own
# window (Options.inflight_window, PP_MQTT_INFLIGHT_WINDOW), 100, and no lower.
MAX_INFLIGHT_MESSAGES = 100
# Four times the protocol's default 256 KiB payload limit, so any valid batch plus its
# topic and headers fits, while one client cannot make the broker buffer up to 256 MB.
MAX_PACKET_SIZE = 1024 * 1024
# A vanished device's persistent session (and its queue of up to MAX_QUEUED_MESSAGES)
# is freed after this; commands expire long before, and telemetry lives in the outbox.
PERSISTENT_CLIENT_EXPIRATION = "30d"
TLS_VERSION = "tlsv1.2"  # Mosquitto 2.0 reads this as the minimum version accepted
# TLS 1.2 suites: forward-secret key exchange and AEAD only (Mozilla's "intermediate" list).
# OpenSSL's default would also take CBC with SHA-1 MACs (Lucky13-style padding oracles);
# TLS 1.3 offers AEAD suites only, so Mosquitto's ciphers_tls1.3 default stands.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)

PRODUCTION_CONFIG_DIR = PurePosixPath("/mosquitto/config")
PRODUCTION_DATA_DIR = PurePosixPath("/mosquitto/data")
PRODUCTION_CERTS_DIR = PRODUCTION_CONFIG_DIR / "certs"
PRODUCTION_PORT = 8883  # IANA's port for MQTT over TLS
PASSWORD_FILE_NAME = "passwd"
ACL_FILE_NAME = "acl"
CONF_FILE_NAME = "mosquitto.conf"
DEFAULT_SERVER_USERNAME = "server"

_HEADER = "# Rendered by broker.config; change the code there and re-render, not this file.\n"


@dataclass(frozen=True)
class TlsFiles:
    """The CA, certificate and key a TLS listener serves with."""

    cafile: PurePath
    certfile: PurePath
    keyfile: PurePath


def _value(name: str, value: object) -> str:
    text = str(value)
    # One option per line: a newline in a path would smuggle in another option.
    if not text or "\n" in text or "\r" in text or text != text.strip():
        msg = f"bad value for the Mosquitto option {name}: {text!r}"
        raise ValueError(msg)
    return text


def render_mosquitto_conf(
    *,
    port: int,
    bind_address: str,
    password_file: PurePath,
    acl_file: PurePath,
    persistence_location: PurePath,
    tls: TlsFiles | None = None,
    pid_file: PurePath | None = None,
    log_file: PurePath | None = None,
    run_as: str | None = None,
    max_packet_size: int = MAX_PACKET_SIZE,
) -> str:
    """A complete mosquitto.conf: one listener, passwords, ACL, persistence, raised limits."""
    if not 0 < port < 65536:
        msg = f"listener port must be 1-65535: {port}"
        raise ValueError(msg)
    lines = [
        _HEADER,
        "# Every listener shares one password file and ACL.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {_value('password_file', password_file)}",
        f"acl_file {_value('acl_file', acl_file)}",
        "",
        "# Queued QoS 1/2 messages and retained ones survive a broker restart.",
        "persistence true",
        # Mosquitto appends the file name to this location verbatim: it needs the slash.
        f"persistence_location {_value('persistence_location', persistence_location)}/",
        f"persistent_client_expiration {PERSISTENT_CLIENT_EXPIRATION}",
        "",
        "# The defaults (1000 queued, 20 in flight) silently drop QoS 1/2 messages. Past",
        "# max_inflight_messages, messages to a client wait while QoS 0 ones go ahead (live",
        "# samples pass replayed ones); it must not be below the clients' in-flight window.",
        f"max_queued_messages {MAX_QUEUED_MESSAGES}",
        f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
        f"max_packet_size {max_packet_size}",
        "# Nagle's algorithm plus delayed ACKs stalled each QoS 1 round by ~44 ms:",
        "# turning it off took a replay from ~40k to ~178k points/s.",
        "set_tcp_nodelay true",
        "",
    ]
    if run_as is not None:
        lines += ["# Mosquitto started as root switches to this user.", f"user {run_as}"]
    if pid_file is not None:
        lines.append(f"pid_file {_value('pid_file', pid_file)}")
    log_dest = "stdout" if log_file is None else f"file {_value('log_file', log_file)}"
    lines += [f"log_dest {log_dest}", "log_timestamp_format %Y-%m-%dT%H:%M:%S", ""]
    lines += [
        f"listener {port} {_value('bind_address', bind_address)}",
        "# A client's id is its username: nobody can take over another account's session (a",
        "# device claiming the server's or another device's id). Each server replica needs its",
        "# own account; a second connection with the same account takes the first one's place.",
        "use_username_as_clientid true",
    ]
    if tls is not None:
        lines += [
            f"cafile {_value('cafile', tls.cafile)}",
            f"certfile {_value('certfile', tls.certfile)}",
            f"keyfile {_value('keyfile', tls.keyfile)}",
            f"tls_version {TLS_VERSION}",
            f"ciphers {TLS12_CIPHERS}",
            "# Devices authenticate with a username and password, not a client certificate.",
            "require_certificate false",
        ]
    return "\n".join(lines) + "\n"


def render_acl(*server_usernames: str) -> str:
    """The ACL: each device writes what it tells the server and reads what the server tells
    it, on its own topics only; each server account (one per replica) may do everything.
    """
    servers = server_usernames or (DEFAULT_SERVER_USERNAME,)
    for username in servers:
        if not topics.is_device_id(username):
            msg = f"the server's username must match {topics.DEVICE_ID_PATTERN}: {username!r}"
            raise ValueError(msg)
    writes = topics.device_kinds(topics.Direction.TO_SERVER)
    reads = topics.device_kinds(topics.Direction.TO_DEVICE)
    lines = [
        _HEADER,
        "# Patterns apply to every user; %u is the MQTT username, which is the device id.",
        "# (Plain `topic` lines before any `user` line would apply to anonymous clients only.)",
        "# A device publishes only what travels device -> server:",
        *(f"pattern write {topics.acl_device_pattern(kind)}" for kind in writes),
        "# and only reads what the server sends it: a retained config/desired, a cmd or an",
        "# ack it could write itself would pass for the server's.",
        *(f"pattern read {topics.acl_device_pattern(kind)}" for kind in reads),
        f"pattern read {topics.SERVER_STATUS}",
        "",
        "# The server reads and writes everything, $share/pp-ingest/... included; each",
        "# replica has its own account, since a client's id is its username.",
    ]
    for username in dict.fromkeys(servers):
        lines += [f"user {username}", "topic readwrite #"]
    return "\n".join(lines) + "\n"


def render_deployment_conf(
    *,
    config_dir: PurePath = PRODUCTION_CONFIG_DIR,
    data_dir: PurePath = PRODUCTION_DATA_DIR,
    certs_dir: PurePath | None = PRODUCTION_CERTS_DIR,
    port: int = PRODUCTION_PORT,
    bind_address: str = "0.0.0.0",
    run_as: str | None = None,
) -> str:
    """mosquitto.conf for a deployed broker: TLS unless ``certs_dir`` is None, logs to stdout."""
    tls = None
    if certs_dir is not None:
        tls = TlsFiles(certs_dir / "ca.crt", certs_dir / "server.crt", certs_dir / "server.key")
    return render_mosquitto_conf(
        port=port,
        bind_address=bind_address,
        password_file=config_dir / PASSWORD_FILE_NAME,
        acl_file=config_dir / ACL_FILE_NAME,
        persistence_location=data_dir,
        tls=tls,
        run_as=run_as,
    )


def write_deployment_files(out: Path, conf: str, acl: str) -> tuple[Path, Path]:
    """Write ``mosquitto.conf`` and ``acl`` into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    conf_path, acl_path = out / CONF_FILE_NAME, out / ACL_FILE_NAME
    conf_path.write_text(conf)
    acl_path.write_text(acl)
    return conf_path, acl_path
