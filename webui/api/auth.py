"""/api/v1/auth: sign in, refresh, sign out, who am I."""

from __future__ import annotations

from fastapi import APIRouter, status

from core.errors import AuthError
from core.services import auth
from webui.api.schemas import LoginIn, MeOut, RefreshIn, TokenOut
from webui.deps import DatabaseDep, PrincipalDep, SessionDep, SettingsDep

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: auth.TokenPair) -> TokenOut:
    return TokenOut(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post("/login")
async def login(body: LoginIn, database: DatabaseDep, settings: SettingsDep) -> TokenOut:
    """Exchange a username and password for an access and a refresh token."""
    # Its own transactions: failures are counted before the check and stay when it fails.
    pair = await auth.login(
        database, settings=settings, username=body.username, password=body.password
    )
    return _tokens(pair)


@router.post("/refresh")
async def refresh(body: RefreshIn, database: DatabaseDep, settings: SettingsDep) -> TokenOut:
    """Rotate the refresh token; reusing an old one ends the whole session."""
    failure: AuthError | None = None
    async with database.session() as session:
        try:
            pair = await auth.refresh(session, settings=settings, refresh_token=body.refresh_token)
        except AuthError as error:
            failure = error
    if failure is not None:
        raise failure
    return _tokens(pair)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(principal: PrincipalDep, session: SessionDep) -> None:
    """End this sign-in session: its tokens stop working at once."""
    await auth.logout(session, session_id=principal.session_id, actor=principal.actor.name)


@router.get("/me")
async def me(principal: PrincipalDep) -> MeOut:
    """The signed-in user with their roles and effective permissions."""
    return MeOut(
        id=principal.user.id,
        username=principal.user.username,
        display_name=principal.user.display_name,
        roles=list(principal.actor.roles),
        permissions=sorted(principal.actor.permissions),
    )
