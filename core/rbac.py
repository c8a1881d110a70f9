"""The permission catalogue and the built-in roles."""

from __future__ import annotations

import uuid

PERMISSIONS: dict[str, str] = {
    "telemetry:read": "See live and historical telemetry",
    "devices:read": "See devices and their status",
    "devices:write": "Create, edit and disable devices",
    "commands:send": "Send commands to devices",
    "config:write": "Change device configuration",
    "users:manage": "Create, edit and disable users",
    "roles:manage": "Create, edit and delete roles",
    "audit:read": "Read the audit log",
    "telemetry:quarantine": "See quarantined telemetry samples and the raw values sent",
    "reports:read": "Run and export reports",
}

ADMIN = "Admin"
VIEWER = "Viewer"
BUILTIN_ROLES: dict[str, tuple[str, frozenset[str]]] = {
    ADMIN: ("Everything, including users and roles", frozenset(PERMISSIONS)),
    VIEWER: ("Read-only: devices and telemetry", frozenset({"telemetry:read", "devices:read"})),
}

# Built-in rows get the same id on every replica, so stations and server agree on them.
_NAMESPACE = uuid.UUID("5b0e6f4e-9c55-4a4e-8a77-2d4f4f1c7a10")


def builtin_id(kind: str, name: str) -> uuid.UUID:
    """The stable id of a built-in role or permission."""
    return uuid.uuid5(_NAMESPACE, f"{kind}:{name}")
