"""Signing in through a real OpenID Connect provider (oidc-provider-mock on loopback).

The test plays the browser: it follows the server's redirect to the provider, answers the
provider's form as a person would (choosing the subject), and brings the provider's
redirect back to the server's callback, all over real HTTP to the provider.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import authlib.deprecate  # noqa: F401  (its 'always' filter first, so ours goes before it)
import httpx
import pytest
from nicegui.testing.user import User as Browser
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, AuthSession, User, UserIdentity
from core.db.types import utcnow
from core.services import oidc_accounts, users
from core.services import refusals as refusals_module
from core.settings import Settings
from tests.harness import simulated_user
from tests.webui.conftest import ADMIN_PASSWORD
from webui.oidc_signin import CALLBACK

with warnings.catch_warnings():
    # The mock provider is built on authlib.jose, which Authlib now deprecates (for joserfc,
    # which the server's own checks use): its import alone warns.
    warnings.simplefilter("ignore", DeprecationWarning)
    from oidc_provider_mock import run_server_in_thread

# The mock provider's token endpoint (in its thread, while a test runs) calls an Authlib
# server-side hook that Authlib deprecates; the server itself uses no authlib.oidc.
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:authlib.oidc.core.grants._legacy"
)

CLIENT_ID = "precisionpulse-test"
# ':' and '%' must reach the provider form-encoded (RFC 6749 §2.3.1); the mock takes any.
CLIENT_SECRET = "s3cret:with%odd chars"


@pytest.fixture
def provider(request: pytest.FixtureRequest) -> Iterator[str]:
    """A real OpenID Connect provider on a free loopback port: its issuer URL.

    Its tokens live an hour, or as long as a test's indirect parameter says.
    """
    lifetime = getattr(request, "param", timedelta(hours=1))
    with run_server_in_thread(port=0, require_nonce=True, access_token_max_age=lifetime) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture
def oidc_settings(settings: Settings, provider: str) -> Settings:
    """The test's settings with the provider configured."""
    oidc = {
        "oidc_issuer": provider,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_name": "Test IdP",
    }
    return Settings(**(settings.model_dump(exclude=set(oidc)) | oidc))


@pytest.fixture
async def browser(oidc_settings: Settings, accounts: dict[str, str]) -> AsyncIterator[Browser]:
    """A simulated browser of the server with the provider configured."""
    async with simulated_user(oidc_settings) as browser:
        yield browser


async def set_claims(issuer: str, subject: str, claims: dict[str, object]) -> None:
    """What the provider will say of ``subject`` from now on."""
    async with httpx.AsyncClient() as http:
        answer = await http.put(f"{issuer}/users/{subject}", json=claims)
        assert answer.status_code == 204, answer.text


async def at_provider(client: httpx.AsyncClient, *, next_path: str = "/") -> str:
    """Start a sign-in: the provider's authorization URL the server sent the browser to."""
    start = await client.get("/auth/oidc/start", params={"next": next_path})
    assert start.status_code == 303, start.text
    return start.headers["location"]


async def approve(authorize_url: str, subject: str, *, action: str | None = None) -> str:
    """The person signs in at the provider as ``subject``: the callback URL it sends back."""
    form = {"sub": subject} | ({"action": action} if action else {})
    async with httpx.AsyncClient() as http:
        answer = await http.post(authorize_url, data=form)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def provider_sign_in(
    client: httpx.AsyncClient, subject: str, *, next_path: str = "/"
) -> httpx.Response:
    """The whole round trip; the callback's answer."""
    callback = await approve(await at_provider(client, next_path=next_path), subject)
    return await client.get(callback)


async def user_named(database: Database, username: str) -> User | None:
    """The user with this name, with the roles they hold now."""
    async with database.session() as session:
        return await users.find_by_username(session, username)


async def roles_of(database: Database, username: str) -> list[str]:
    """The role names of the user called ``username``."""
    async with database.session() as session:
        user = await users.find_by_username(session, username)
        assert user is not None
        return await users.role_names(session, user.id)


async def audit_actions(database: Database) -> list[tuple[str, str, dict[str, object] | None]]:
    """(actor, action, after) of every audit entry, oldest first."""
    async with database.session() as session:
        rows = await session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.after).order_by(AuditEntry.id)
        )
        return [(r.actor, r.action, r.after) for r in rows]


async def count(database: Database, model: type[AuthSession] | type[UserIdentity]) -> int:
    """How many rows a table holds."""
    async with database.session() as session:
        return len(list(await session.scalars(select(model))))


async def test_first_sign_in_creates_the_user_with_the_claimed_roles(
    browser: Browser, provider: str, database: Database
) -> None:
    """A new provider account becomes a user without a password, holding the named role."""
    await set_claims(
        provider,
        "sub-alice",
        {
            "preferred_username": "alice",
            "name": "Alice A.",
            "email": "a@x.test",
            "roles": ["Admin"],
        },
    )
    answer = await provider_sign_in(browser.http_client, "sub-alice", next_path="/users")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/users"
    alice = await user_named(database, "alice")
    assert alice is not None
    assert (alice.display_name, alice.password_hash, alice.is_active) == ("Alice A.", "", True)
    assert await roles_of(database, "alice") == ["Admin"]
    entries = await audit_actions(database)
    assert ("oidc", "user.create") in [(actor, action) for actor, action, _ in entries]
    assert entries[-1] == ("alice", "auth.login", {"method": "oidc"})
    # The browser is signed in as alice: a page behind sign-in opens for her.
    await browser.open("/users")
    await browser.should_see("alice · Admin", retries=30)


async def test_a_later_sign_in_follows_the_provider_and_unknown_roles_are_left_out(
    browser: Browser, provider: str, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Changed claims change the same user's roles and name; a role named nowhere is dropped."""
    await set_claims(provider, "sub-bob", {"preferred_username": "bob", "roles": ["Admin"]})
    assert (await provider_sign_in(browser.http_client, "sub-bob")).status_code == 303
    first = await user_named(database, "bob")
    await set_claims(
        provider,
        "sub-bob",
        {"preferred_username": "renamed", "name": "Bob B.", "roles": ["Viewer", "Wizard"]},
    )
    assert (await provider_sign_in(browser.http_client, "sub-bob")).status_code == 303
    again = await user_named(database, "bob")  # the username stays: the link is the subject
    assert first is not None and again is not None and again.id == first.id
    assert await user_named(database, "renamed") is None
    assert again.display_name == "Bob B."
    assert await roles_of(database, "bob") == ["Viewer"]
    assert "['Wizard']" in caplog.text
    updates = [e for e in await audit_actions(database) if e[1] == "user.update"]
    assert len(updates) == 1
    assert updates[0][0] == "oidc"
    assert updates[0][2] is not None and updates[0][2]["roles"] == ["Viewer"]
    assert await count(database, UserIdentity) == 1
    await browser.open("/")
    await browser.should_see("bob · Viewer", retries=30)


async def test_no_role_claimed_means_no_role_and_a_clear_refusal(
    browser: Browser, provider: str, database: Database
) -> None:
    """Without the claim the user holds nothing, and pages say what is missing."""
    await set_claims(provider, "sub-nora", {"preferred_username": "nora"})
    assert (await provider_sign_in(browser.http_client, "sub-nora")).status_code == 303
    assert await roles_of(database, "nora") == []
    await browser.open("/users")
    await browser.should_see("nora · no role", retries=30)
    await browser.should_see(marker="not-allowed", retries=30)


async def test_a_disabled_user_is_refused(
    browser: Browser, provider: str, database: Database
) -> None:
    """Disabling a provider's user in PrecisionPulse stops their provider sign-ins."""
    await set_claims(provider, "sub-dan", {"preferred_username": "dan", "roles": ["Viewer"]})
    assert (await provider_sign_in(browser.http_client, "sub-dan")).status_code == 303
    dan = await user_named(database, "dan")
    assert dan is not None
    async with database.session() as session:
        await users.update_user(
            session, actor=users.console_actor("cli"), user_id=dan.id, is_active=False
        )
    sessions_before = await count(database, AuthSession)
    answer = await provider_sign_in(browser.http_client, "sub-dan")
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert await count(database, AuthSession) == sessions_before
    actor, action, after = (await audit_actions(database))[-1]
    assert (actor, action) == ("oidc", "auth.login_failed")
    assert after is not None and after["reason"] == "disabled"
    await browser.open("/login")
    await browser.should_see("Not signed in: this account is disabled", retries=30)


async def test_a_tampered_or_replayed_state_is_refused(
    browser: Browser, provider: str, database: Database
) -> None:
    """A callback whose state this browser did not start (or already used) signs nobody in."""
    await set_claims(provider, "sub-eve", {"preferred_username": "eve", "roles": ["Admin"]})
    callback = await approve(await at_provider(browser.http_client), "sub-eve")
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = urlunsplit(parts._replace(query=urlencode(query | {"state": "x" + query["state"]})))
    answer = await browser.http_client.get(tampered)
    assert (answer.status_code, answer.headers["location"]) == (303, "/login")
    assert await user_named(database, "eve") is None
    await browser.open("/login")
    await browser.should_see("was not started in this browser", retries=30)
    # The untampered callback still works once; its replay is refused.
    assert (await browser.http_client.get(callback)).headers["location"] == "/"
    replayed = await browser.http_client.get(callback)
    assert replayed.headers["location"] == "/login"

    async def refusals() -> list[tuple[str, int]]:
        return [
            (after["reason"], after["refusals"])
            for _, action, after in await audit_actions(database)
            if action == "auth.login_failed" and after is not None
        ]

    # Anyone can send made-up states: the log takes one entry a reason a minute, not a flood.
    assert await refusals() == [("state_mismatch", 1)]
    made_up = [f"{CALLBACK}?code=x&state=forged-{n}" for n in range(20)]
    answers = await asyncio.gather(*(browser.http_client.get(url) for url in made_up))
    assert {a.headers["location"] for a in answers} == {"/login"}
    assert await refusals() == [("state_mismatch", 1)]
    later = utcnow() + refusals_module.WINDOW + timedelta(seconds=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(oidc_accounts, "utcnow", lambda: later)
        await browser.http_client.get(made_up[0])
    # The replay and the 20 made-up ones were folded into the next entry with this one.
    assert await refusals() == [("state_mismatch", 1), ("state_mismatch", 22)]


async def test_an_id_token_for_another_sign_in_is_refused(
    browser: Browser, provider: str, database: Database
) -> None:
    """A code from one sign-in presented with another's state fails the nonce check."""
    await set_claims(provider, "sub-mal", {"preferred_username": "mal", "roles": ["Admin"]})
    first = await at_provider(browser.http_client)
    second = await at_provider(browser.http_client)
    first_state = parse_qs(urlsplit(first).query)["state"][0]
    swapped = urlsplit(await approve(second, "sub-mal"))
    query = {k: v[0] for k, v in parse_qs(swapped.query).items()} | {"state": first_state}
    answer = await browser.http_client.get(urlunsplit(swapped._replace(query=urlencode(query))))
    assert answer.headers["location"] == "/login"
    assert await user_named(database, "mal") is None
    _, action, after = (await audit_actions(database))[-1]
    assert action == "auth.login_failed"
    assert after == {"method": "oidc", "reason": "id_token_invalid", "refusals": 1}


async def test_a_provider_account_named_like_a_local_user_gets_a_name_of_its_own(
    browser: Browser, provider: str, database: Database, oidc_settings: Settings
) -> None:
    """'ada' at the provider does not become the local Admin 'ada', whose password still works."""
    await set_claims(provider, "sub-ada", {"preferred_username": "ada", "roles": ["Viewer"]})
    assert (await provider_sign_in(browser.http_client, "sub-ada")).status_code == 303
    assert await roles_of(database, "ada") == ["Admin"]
    async with database.session() as session:
        link = await session.get(UserIdentity, (oidc_settings.oidc_issuer, "sub-ada"))
        assert link is not None
        other = await session.get(User, link.user_id)
    assert other is not None and other.username.startswith("ada-")
    assert len(other.username) == len("ada-") + 6
    assert await roles_of(database, other.username) == ["Viewer"]
    login = await browser.http_client.post(
        "/api/v1/auth/login", json={"username": "ada", "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200
    # The provider's user has no password: no password signs in as it.
    guess = await browser.http_client.post(
        "/api/v1/auth/login", json={"username": other.username, "password": "any-password"}
    )
    assert guess.status_code == 401


async def test_the_provider_refusing_is_said_on_the_login_page(
    browser: Browser, provider: str, database: Database
) -> None:
    """The person said no at the provider: the sign-in page says the provider refused.

    The mock sends its error without the state: only a code from the fixed list is said.
    """
    callback = await approve(await at_provider(browser.http_client), "sub-x", action="deny")
    answer = await browser.http_client.get(callback)
    assert answer.headers["location"] == "/login"
    _, action, after = (await audit_actions(database))[-1]
    assert action == "auth.login_failed"
    assert after == {"method": "oidc", "reason": "provider_error", "refusals": 1}
    await browser.open("/login")
    await browser.should_see("the sign-in provider refused (access_denied)", retries=30)


async def test_a_sign_in_left_too_long_is_refused_as_expired(
    browser: Browser, provider: str, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A callback after the pending sign-in's lifetime is refused, and says why."""
    await set_claims(provider, "sub-sam", {"preferred_username": "sam", "roles": ["Viewer"]})
    callback = await approve(await at_provider(browser.http_client), "sub-sam")
    monkeypatch.setattr("core.oidc.PENDING_TTL_S", -1)
    assert (await browser.http_client.get(callback)).headers["location"] == "/login"
    assert await user_named(database, "sam") is None
    await browser.open("/login")
    await browser.should_see("took too long", retries=30)


@pytest.mark.parametrize("provider", [timedelta(minutes=-5)], indirect=True)
async def test_an_expired_id_token_is_refused(
    browser: Browser, provider: str, database: Database
) -> None:
    """An ID token past its exp (beyond the minute's leeway) signs nobody in."""
    await set_claims(provider, "sub-old", {"preferred_username": "old", "roles": ["Viewer"]})
    answer = await provider_sign_in(browser.http_client, "sub-old")
    assert answer.headers["location"] == "/login"
    assert await user_named(database, "old") is None
    _, action, after = (await audit_actions(database))[-1]
    assert (action, after) == (
        "auth.login_failed",
        {"method": "oidc", "reason": "id_token_invalid", "refusals": 1},
    )
    await browser.open("/login")
    await browser.should_see("the ID token was refused", retries=30)


@pytest.mark.parametrize("asked", ["https://evil.test/", "//evil.test/x", "/\\evil.test"])
async def test_where_to_go_next_stays_on_this_server(
    browser: Browser, provider: str, asked: str
) -> None:
    """No open redirect: a next page on another site is replaced by the overview."""
    await set_claims(provider, "sub-olga", {"preferred_username": "olga"})
    answer = await provider_sign_in(browser.http_client, "sub-olga", next_path=asked)
    assert answer.headers["location"] == "/"


async def test_an_api_call_works_in_the_session_a_provider_opened(
    browser: Browser, oidc_settings: Settings, database: Database
) -> None:
    """The session a provider's sign-in opens is a full one: its access token reads /me."""
    from core.oidc import Identity
    from core.services import oidc_accounts

    identity = Identity(
        issuer=oidc_settings.oidc_issuer,
        subject="sub-api",
        username="apiuser",
        display_name="",
        email="",
        roles=("Viewer",),
    )
    pair = await oidc_accounts.sign_in(database, settings=oidc_settings, identity=identity)
    me = await browser.http_client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {pair.access_token}"}
    )
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["roles"]) == ("apiuser", ["Viewer"])


async def test_the_login_page_offers_the_provider(browser: Browser) -> None:
    """The button names the provider; the password form stays."""
    await browser.open("/login")
    await browser.should_see("Sign in with Test IdP", retries=30)
    await browser.should_see("Password", retries=30)


async def test_the_provider_cannot_take_admin_from_the_last_active_admin(
    browser: Browser, provider: str, database: Database
) -> None:
    """The sign-in is refused and the roles stay: someone must still manage the system."""
    await set_claims(provider, "sub-root", {"preferred_username": "root", "roles": ["Admin"]})
    assert (await provider_sign_in(browser.http_client, "sub-root")).status_code == 303
    ada = await user_named(database, "ada")
    assert ada is not None
    async with database.session() as session:
        await users.update_user(
            session, actor=users.console_actor("cli"), user_id=ada.id, is_active=False
        )
    await set_claims(provider, "sub-root", {"preferred_username": "root", "roles": ["Viewer"]})
    answer = await provider_sign_in(browser.http_client, "sub-root")
    assert answer.headers["location"] == "/login"
    assert await roles_of(database, "root") == ["Admin"]
    _, action, after = (await audit_actions(database))[-1]
    assert (action, after) == (
        "auth.login_failed",
        {
            "method": "oidc",
            "reason": "last_admin",
            "issuer": provider,
            "subject": "sub-root",
            "username": "root",
        },
    )


async def test_an_unreachable_provider_is_said_on_the_login_page(
    settings: Settings, accounts: dict[str, str], database: Database
) -> None:
    """Nothing listens at the issuer: the login page says so, and the refusal is audited."""
    closed = Settings(
        **(
            settings.model_dump()
            | {"oidc_issuer": "http://127.0.0.1:9", "oidc_client_id": CLIENT_ID}
        )
    )
    async with simulated_user(closed) as browser:
        answer = await browser.http_client.get("/auth/oidc/start")
        assert (answer.status_code, answer.headers["location"]) == (303, "/login")
        await browser.open("/login")
        await browser.should_see("the sign-in provider could not be reached", retries=30)
    _, action, after = (await audit_actions(database))[-1]
    assert (action, after) == (
        "auth.login_failed",
        {"method": "oidc", "reason": "provider_unreachable", "refusals": 1},
    )


async def test_sign_in_comes_back_to_the_page_that_asked_for_it(
    browser: Browser, provider: str
) -> None:
    """A page sends an anonymous browser to sign-in with itself as next, and both ways return."""
    await browser.open("/users?q=a")
    await browser.should_see(marker="oidc-sign-in", retries=30)
    button = browser.find(marker="oidc-sign-in").elements.pop()
    assert button.props["href"] == "/auth/oidc/start?next=%2Fusers%3Fq%3Da"
    await set_claims(provider, "sub-ivy", {"preferred_username": "ivy", "roles": ["Admin"]})
    authorize = (await browser.http_client.get(button.props["href"])).headers["location"]
    answer = await browser.http_client.get(await approve(authorize, "sub-ivy"))
    assert answer.headers["location"] == "/users?q=a"


async def test_a_password_sign_in_comes_back_to_the_asked_page_too(browser: Browser) -> None:
    """The local form, sent from /users, lands on /users."""
    # A first visit gets its session cookie before a page sends it on: the simulated
    # browser follows a page's redirect before that page's answer (and cookie) arrives.
    await browser.open("/login")
    await browser.open("/users")
    await browser.should_see("Password", retries=30)
    browser.find("Username").type("ada")
    browser.find("Password").type(ADMIN_PASSWORD).trigger("keydown.enter")  # one button
    await browser.should_see(marker="new-user", retries=150)
    assert browser.back_history[-1] == "/users"
