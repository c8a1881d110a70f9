"""/login."""

from __future__ import annotations

from nicegui import ui


def register() -> None:
    """Register the login page."""

    @ui.page("/login")
    def login_page() -> None:
        ui.label("Sign in")
