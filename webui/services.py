"""The server's long-lived services, built once by the composition root and passed on."""

from __future__ import annotations

from dataclasses import dataclass

from core.db.engine import Database
from core.services.audit_checkpoints import AuditTrail
from core.settings import Settings
from webui.backbone.server import Backbone


@dataclass(frozen=True)
class Services:
    """What pages and API routes work with: settings, the database, the MQTT side, the audit."""

    settings: Settings
    database: Database
    backbone: Backbone
    audit: AuditTrail  # the audit chain checked against its signed checkpoints
