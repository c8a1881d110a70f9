"""NiceGUI pages; each module registers its routes from ``register()``."""

from __future__ import annotations


def register() -> None:
    """Register every page."""
    # Imported here, not at module level: the test harness drops page modules between tests.
    from webui.pages import (
        audit,
        device,
        devices,
        export,
        fleet,
        history,
        login,
        overview,
        roles,
        users,
    )

    for page in (login, overview, fleet, device, history, export, users, roles, devices, audit):
        page.register()
