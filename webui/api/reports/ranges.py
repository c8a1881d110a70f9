"""The query the time-range reports share: one device or all, and [from, to) with offsets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import AfterValidator

from core.db.models import DEVICE_ID_LENGTH
from core.services.reports import span
from webui.api.audit import Moment
from webui.api.schemas import storable_text

# A download as well as the JSON body: documented, so clients know what csv answers.
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
}


From = Annotated[
    Moment,
    Query(
        alias="from",
        description="ISO 8601 with an offset, inclusive; a week before 'to' if left out",
    ),
]
To = Annotated[
    Moment,
    Query(
        alias="to",
        description=f"ISO 8601 with an offset, exclusive; now if left out. "
        f"At most {span.LONGEST.days} days after 'from'",
    ),
]


@dataclass(frozen=True)
class Asked:
    """What the caller asked for: a device id (None: every device) and the range's ends."""

    device_id: str | None
    start: datetime | None
    end: datetime | None


def _asked(
    device_id: Annotated[
        str | None,
        Query(max_length=DEVICE_ID_LENGTH, description="One device's id; every device if left out"),
        AfterValidator(storable_text),
    ] = None,
    start: From = None,
    end: To = None,
) -> Asked:
    return Asked(device_id, start, end)


AskedDep = Annotated[Asked, Depends(_asked)]
