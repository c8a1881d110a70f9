"""The OpenID Connect settings, the claims read from an ID token, and where sign-in may lead."""

from __future__ import annotations

import pytest

from core.oidc import Pending, identity_of, safe_next
from core.passwords import verify_password
from core.settings import Settings

ISSUER = "https://login.example.com/realms/plant"


def test_off_unless_issuer_and_client_id_are_both_set() -> None:
    """No provider by default; one half of the pair is refused rather than ignored."""
    assert not Settings().oidc_enabled
    assert Settings(oidc_issuer=ISSUER, oidc_client_id="pp").oidc_enabled
    with pytest.raises(ValueError, match="go together"):
        Settings(oidc_issuer=ISSUER)
    with pytest.raises(ValueError, match="go together"):
        Settings(oidc_client_id="pp")


def test_the_client_secret_stays_out_of_the_settings_repr() -> None:
    """Logged settings or a traceback never show the secret."""
    settings = Settings(oidc_issuer=ISSUER, oidc_client_id="pp", oidc_client_secret="hunter2-x")
    assert "hunter2-x" not in repr(settings)
    assert "hunter2-x" not in str(settings)


def test_production_needs_an_https_issuer_but_loopback() -> None:
    """Outside development the provider's keys and tokens must not cross a network in clear."""
    strong = "k" * 32
    with pytest.raises(ValueError, match="https"):
        Settings(
            env="production",
            secret_key=strong,
            mqtt_url="",
            oidc_issuer="http://login.example.com",
            oidc_client_id="pp",
        )
    local = Settings(
        env="production",
        secret_key=strong,
        mqtt_url="",
        oidc_issuer="http://127.0.0.1:9000",
        oidc_client_id="pp",
    )
    assert local.oidc_enabled


def test_the_button_is_named_after_the_provider() -> None:
    """Its host by default, or the name given."""
    assert Settings(oidc_issuer=ISSUER, oidc_client_id="pp").oidc_label == "login.example.com"
    named = Settings(oidc_issuer=ISSUER, oidc_client_id="pp", oidc_name="Plant SSO")
    assert named.oidc_label == "Plant SSO"


def test_scopes_must_ask_for_openid() -> None:
    """Without openid the provider sends no ID token to check."""
    with pytest.raises(ValueError, match="openid"):
        Settings(oidc_issuer=ISSUER, oidc_client_id="pp", oidc_scopes="profile email")


@pytest.mark.parametrize(
    ("claims", "claim", "roles"),
    [
        ({"roles": ["Admin", "Viewer", "Admin"]}, "roles", ("Admin", "Viewer")),
        ({"roles": "Viewer"}, "roles", ("Viewer",)),
        ({"realm_access": {"roles": ["Operator"]}}, "realm_access.roles", ("Operator",)),
        ({"groups": ["Admin"]}, "roles", ()),
        ({"roles": {"Admin": True}}, "roles", ()),
    ],
)
def test_roles_are_read_from_the_configured_claim(
    claims: dict[str, object], claim: str, roles: tuple[str, ...]
) -> None:
    """A list, one name, or a nested path; anything else names no role."""
    identity = identity_of({"iss": ISSUER, "sub": "s1", **claims}, role_claim=claim)
    assert identity.roles == roles


def test_the_username_comes_from_preferred_username_then_email() -> None:
    """The provider's own name for the person, else their address."""
    base = {"iss": ISSUER, "sub": "s1"}
    named = identity_of(base | {"preferred_username": "ann", "email": "a@x"}, role_claim="roles")
    assert (named.username, named.email) == ("ann", "a@x")
    assert identity_of(base | {"email": "a@x"}, role_claim="roles").username == "a@x"


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/devices?status=offline", "/devices?status=offline"),
        ("/", "/"),
        ("", "/"),
        (None, "/"),
        ("https://evil.test/", "/"),
        ("//evil.test/", "/"),
        ("/\\evil.test", "/"),
        ("devices", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
    ],
)
def test_after_sign_in_only_a_path_on_this_server(asked: str | None, goes: str) -> None:
    """No open redirect through the next page."""
    assert safe_next(asked) == goes


def test_a_pending_sign_in_round_trips_and_expires() -> None:
    """What the server keeps comes back whole, and is stale after ten minutes."""
    pending = Pending(state="s", nonce="n", verifier="v", next_path="/x", started=1000.0)
    assert Pending.from_dict(pending.to_dict()) == pending
    assert not pending.expired(1000.0 + 600)
    assert pending.expired(1000.0 + 601)


def test_an_account_without_a_password_matches_no_password() -> None:
    """A provider's user has an empty hash: no password matches it, and nothing breaks."""
    assert verify_password("anything", "") is False
