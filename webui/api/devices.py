"""/api/v1/devices: stations (read needs ``devices:read``, changes ``devices:write``; their
configuration is in webui.api.configs)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from core.db.models import Device
from core.protocol.topics import DEVICE_ID_PATTERN
from core.services import devices
from core.services.actor import Actor
from core.services.telemetry import store
from webui.api.schemas import (
    DeviceCreate,
    DeviceCredentialsOut,
    DeviceOut,
    DeviceUpdate,
    GapOut,
)
from webui.backbone.server import Backbone
from webui.deps import BackboneDep, SessionDep, require

router = APIRouter(prefix="/devices", tags=["devices"])
Reader = Annotated[Actor, Depends(require("devices:read"))]
Writer = Annotated[Actor, Depends(require("devices:write"))]
# A malformed id is a 422 naming the field, never a database error (NUL breaks PostgreSQL).
DeviceId = Annotated[str, Path(pattern=DEVICE_ID_PATTERN)]


def _out(device: Device, backbone: Backbone) -> DeviceOut:
    out = DeviceOut.model_validate(device, from_attributes=True)
    # The pages' last-seen time: the stored column lags the backbone's memory by seconds.
    seen = backbone.last_seen.at(device.id, device.last_seen_at)
    return out.model_copy(update={"last_seen_at": seen})


def _credentials(created: devices.DeviceCredentials, backbone: Backbone) -> DeviceCredentialsOut:
    return DeviceCredentialsOut(
        device=_out(created.device, backbone),
        mqtt_username=created.username,
        mqtt_password=created.password,
    )


@router.get("")
async def list_devices(
    session: SessionDep, actor: Reader, backbone: BackboneDep
) -> list[DeviceOut]:
    """Every device."""
    return [_out(d, backbone) for d in await devices.list_devices(session, actor=actor)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_device(
    body: DeviceCreate,
    session: SessionDep,
    actor: Writer,
    backbone: BackboneDep,
) -> DeviceCredentialsOut:
    """Register a device; the answer holds its MQTT password, shown this once."""
    created = await devices.create_device(
        session, actor=actor, device_id=body.id, name=body.name, description=body.description
    )
    return _credentials(created, backbone)


@router.get("/{device_id}")
async def get_device(
    device_id: DeviceId, session: SessionDep, actor: Reader, backbone: BackboneDep
) -> DeviceOut:
    """One device; ``last_seen_at`` is its last message of any kind, as the pages show it."""
    return _out(await devices.get_device(session, actor=actor, device_id=device_id), backbone)


@router.get("/{device_id}/gaps")
async def list_gaps(device_id: DeviceId, session: SessionDep, actor: Reader) -> list[GapOut]:
    """Seq ranges the station dropped under its outbox cap, as it reported them."""
    gaps = await store.gaps(session, actor=actor, device_id=device_id)
    return [
        GapOut(
            stream=g.stream,
            first_seq=g.first_seq,
            last_seq=g.last_seq,
            count=g.last_seq - g.first_seq + 1,
            reason=g.reason,
            received_at=g.received_at,
        )
        for g in gaps
    ]


@router.patch("/{device_id}")
async def update_device(
    device_id: DeviceId,
    body: DeviceUpdate,
    session: SessionDep,
    actor: Writer,
    backbone: BackboneDep,
) -> DeviceOut:
    """Rename or describe a device, or disable it with ``enabled: false``."""
    device = await devices.update_device(
        session, actor=actor, device_id=device_id, **body.model_dump(exclude_unset=True)
    )
    return _out(device, backbone)


@router.post("/{device_id}/disable")
async def disable_device(
    device_id: DeviceId,
    session: SessionDep,
    actor: Writer,
    backbone: BackboneDep,
) -> DeviceOut:
    """Stop accepting anything from this device (the broker refuses it from now on)."""
    device = await devices.update_device(session, actor=actor, device_id=device_id, enabled=False)
    return _out(device, backbone)


@router.post("/{device_id}/credentials")
async def rotate_credentials(
    device_id: DeviceId,
    session: SessionDep,
    actor: Writer,
    backbone: BackboneDep,
) -> DeviceCredentialsOut:
    """Issue a new MQTT password (shown once); the old one stops working."""
    rotated = await devices.rotate_credentials(session, actor=actor, device_id=device_id)
    return _credentials(rotated, backbone)
