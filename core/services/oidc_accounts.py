"""Provider accounts as users: found by (issuer, subject), made or brought up to date, signed in.

A provider account is never matched to a user by name: the first sign-in of an
(issuer, subject) makes a new user without a password, linked to it for good, so a
provider account named like a local user cannot take that user over; it gets a name of
its own instead. Each sign-in gives the user the display name and the roles the
provider's claim names now (values that name no role are logged and left out; none left
means no role). Disabled and deleted users are refused.
"""

from __future__ import annotations

import hashlib
import logging
import re
import weakref

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import User
from core.db.types import utcnow
from core.errors import ConflictError, InvalidError
from core.oidc import Identity, OidcError
from core.services import audit, auth, identities, users
from core.services.auth import TokenPair
from core.services.refusals import RefusalWindows
from core.settings import Settings

log = logging.getLogger(__name__)

# Who the audit log says made or changed a provider's user: the provider decided it.
PROVIDER_ACTOR = "oidc"
# What a username may not hold (users.USERNAME): replaced, so the provider's name still shows.
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_.@-]")
# Hex digits of the (issuer, subject) digest that set a taken name apart: 16^6 names.
SUFFIX_LENGTH = 6
# Refusals before the provider said who it is (a state this browser never started, a bad ID
# token) cost an anonymous caller one request each: audited as permission refusals are, one
# entry a reason a minute with the folded ones counted, so nobody floods the log with them.
_anonymous: weakref.WeakKeyDictionary[Database, RefusalWindows] = weakref.WeakKeyDictionary()


async def sign_in(database: Database, *, settings: Settings, identity: Identity) -> TokenPair:
    """The provider's person signed in as their user (made on first sign-in), or OidcError.

    A refusal is audited (``auth.login_failed``) in a transaction of its own: the sign-in's
    own changes are rolled back.
    """
    try:
        async with database.session() as session:
            user = await _user_for(session, identity)
            return await auth.open_for(session, settings=settings, user=user, method="oidc")
    except OidcError as error:
        failure = error
    except ConflictError as error:  # the provider took Admin from the last active Admin
        failure = OidcError(f"your roles were not updated: {error.message}", reason="last_admin")
    except IntegrityError:  # a sign-in of the same account (or name) at the same moment
        failure = OidcError("another sign-in got in the way: try again", reason="race")
    await refused(database, error=failure, identity=identity)
    raise failure


async def refused(database: Database, *, error: OidcError, identity: Identity | None) -> None:
    """Audit and log a provider sign-in that did not go through, with its reason.

    One refused before the provider named anyone is audited at most once a minute a reason
    (in this process), its entry counting the ``refusals`` it stands for.
    """
    detail: dict[str, object] = {"method": "oidc", "reason": error.reason}
    if identity is not None:  # the provider's name for them, which may be a local user's
        detail |= {"issuer": identity.issuer, "subject": identity.subject}
        detail["username"] = identity.username
    log.warning("OpenID Connect sign-in refused (%s): %s", error.reason, error.message)
    if identity is None:
        windows = _anonymous.setdefault(database, RefusalWindows())
        refusals = windows.admit((PROVIDER_ACTOR, error.reason), utcnow())
        if refusals is None:
            return  # folded into this minute's entry; counted in the next one
        detail["refusals"] = refusals
    async with database.session() as session:
        await audit.record(
            session,
            actor=PROVIDER_ACTOR,  # never a username: the provider's may name a local user
            action="auth.login_failed",
            target_type="user",
            after=detail,
        )


async def _user_for(session: AsyncSession, identity: Identity) -> User:
    roles = await users.known_roles(session, identity.roles)
    unknown = sorted(set(identity.roles) - set(roles))
    if unknown:
        log.warning("OpenID Connect roles that name no role here, left out: %s", unknown)
    actor = users.console_actor(PROVIDER_ACTOR)
    link = await identities.find(session, issuer=identity.issuer, subject=identity.subject)
    if link is None:
        username = await _free_name(session, identity)
        user = await users.create_without_password(
            session,
            actor=actor,
            username=username,
            display_name=identity.display_name,
            roles=roles,
        )
        await identities.link(
            session,
            issuer=identity.issuer,
            subject=identity.subject,
            user_id=user.id,
            email=identity.email,
        )
        return user
    active = await users.active_user(session, link.user_id)
    if active is None:
        raise OidcError("this account is disabled or deleted", reason="disabled")
    await users.follow_provider(
        session, actor=actor, user=active, display_name=identity.display_name, roles=roles
    )
    identities.touch(link, email=identity.email)
    return active


async def _free_name(session: AsyncSession, identity: Identity) -> str:
    """The provider's username if free, else it with a suffix of its own (never another's)."""
    digest = hashlib.sha256(f"{identity.issuer}\n{identity.subject}".encode()).hexdigest()
    suffix = f"-{digest[:SUFFIX_LENGTH]}"
    base = _NOT_IN_NAMES.sub("_", identity.username)[: 64 - len(suffix)]
    if len(base) < 2:
        base = "user"
    for candidate in (base, f"{base}{suffix}"):
        try:
            await users.check_username_free(session, users.check_username(candidate))
        except (ConflictError, InvalidError):
            continue
        return candidate
    msg = f"the names '{base}' and '{base}{suffix}' are both taken: ask an Admin"
    raise OidcError(msg, reason="name_taken")
