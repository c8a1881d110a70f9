"""NiceGUI pages; each module registers its routes from ``register(services)``."""

from __future__ import annotations

from webui.services import Services


def register(services: Services) -> None:
    """Register every page, each working with ``services``."""
    # Imported here, not at module level: the test harness drops page modules between tests.
    from webui.pages import (
        audit,
        bulk_config,
        commands,
        device,
        devices,
        export,
        fleet,
        history,
        login,
        overview,
        quarantine,
        reports,
        roles,
        sync_conflicts,
        users,
    )

    for page in (
        login,
        overview,
        fleet,
        device,
        history,
        export,
        users,
        roles,
        sync_conflicts,
        devices,
        commands,
        bulk_config,
        quarantine,
        audit,
        reports,
    ):
        page.register(services)
