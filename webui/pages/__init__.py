"""NiceGUI pages; each module registers its routes from ``register()``."""

from __future__ import annotations


def register() -> None:
    """Register every page."""
    from webui.pages import login

    login.register()
