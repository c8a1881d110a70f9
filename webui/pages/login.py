"""/login: sign in with username and password, or through the OpenID Connect provider."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from nicegui import ui

from core.errors import AuthError
from core.oidc import safe_next
from webui import oidc_signin, signin
from webui.services import Services


def register(services: Services) -> None:
    """Register /login."""

    settings = services.settings

    @ui.page("/login")
    async def login_page(request: Request) -> None:
        after = safe_next(request.query_params.get("next"))  # the page that sent here
        # Said once: taken before the redirect below, so a later visit shows no stale refusal.
        refused = oidc_signin.take_error() if settings.oidc_enabled else None
        if await signin.current_actor(services.database) is not None:
            ui.navigate.to("/")
            return
        ui.page_title("Sign in · PrecisionPulse")

        async def attempt() -> None:
            try:
                await signin.sign_in(
                    services.database,
                    services.settings,
                    username=username.value.strip(),
                    password=password.value,
                )
            except AuthError as error:
                message.set_text(error.message)
                message.set_visibility(True)
                password.value = ""
                return
            ui.navigate.to(after)

        with ui.card().classes("absolute-center w-80"):
            ui.label("PrecisionPulse").classes("text-xl font-bold")
            username = ui.input("Username").props("autofocus").classes("w-full")
            password = ui.input("Password", password=True).classes("w-full")
            password.on("keydown.enter", attempt)
            message = ui.label("").classes("text-negative").mark("login-error")
            message.set_visibility(False)
            ended = signin.ended_reason()
            if ended is not None:  # sent here by a page whose session ended elsewhere
                ui.label(f"Signed out: {ended}.").classes("text-negative").mark("session-ended")
            ui.button("Sign in", on_click=attempt).classes("w-full")
            if refused is not None:  # sent back here by the provider's callback
                ui.label(f"Not signed in: {refused}").classes("text-negative").mark("oidc-error")
            if settings.oidc_enabled:
                ui.separator()
                ui.button(f"Sign in with {settings.oidc_label}", icon="login").props(
                    f'href="{oidc_signin.START}?{urlencode({"next": after})}" outline no-caps'
                ).classes("w-full").mark("oidc-sign-in")
