"""Edits at the station: who may make them (checked as the replica sees them when they act),
nobody granting what they do not hold, and the server's rules for accounts and settings.
"""

from __future__ import annotations

import uuid

import pytest

from core import edit_keys
from desktop.agent import local_users
from desktop.agent.replica import Replica
from desktop.agent.sign_in import Person, SignInRefused, sign_in
from tests.desktop.replica_data import DEVICE, PASSWORD, ServerLog, sync


def signed_in(replica: Replica, username: str, password: str = PASSWORD) -> Person:
    return sign_in(replica, username, password, max_failures=5, lock_seconds=30)


@pytest.fixture
def people(replica: Replica, log: ServerLog) -> dict[str, uuid.UUID]:
    """An Admin, a second Admin, a Viewer and a user manager who is not an Admin."""
    log.role("Managers", ["users:manage", "roles:manage", "devices:read"])
    log.role("Tuners", ["config:write", "devices:read"])
    ids = {
        "ada": log.user("ada", roles=("Admin",), display_name="Ada"),
        "grace": log.user("grace", roles=("Admin",)),
        "vic": log.user("vic", roles=("Viewer",)),
        "max": log.user("max", roles=("Managers",)),
        "tess": log.user("tess", roles=("Tuners",)),
    }
    sync(replica, log)
    return ids


def test_anyone_edits_their_own_display_name(
    replica: Replica, people: dict[str, uuid.UUID]
) -> None:
    vic = signed_in(replica, "vic")
    edit = local_users.edit_profile(replica, vic, "Victor")
    assert [(c.entity, c.key, c.field, c.value) for c in edit.changes] == [
        ("user", str(people["vic"]), "display_name", "Victor")
    ]
    assert edit.username == "vic" and replica.pending() == [edit]
    assert replica.find("vic").display_name == "Victor"  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="at most 128"):
        local_users.edit_profile(replica, vic, "x" * 129)


def test_a_viewer_and_a_manager_who_is_no_admin_cannot_change_accounts(
    replica: Replica, people: dict[str, uuid.UUID]
) -> None:
    vic, max_ = signed_in(replica, "vic"), signed_in(replica, "max")
    with pytest.raises(PermissionError, match="users:manage"):
        local_users.create_user(replica, vic, "newbie", PASSWORD, roles=["Viewer"])
    with pytest.raises(PermissionError, match="only an Admin"):
        local_users.set_active(replica, max_, people["vic"], False)
    with pytest.raises(PermissionError, match="roles:manage"):
        local_users.set_role_permissions(replica, vic, uuid.uuid4(), [])
    assert replica.pending() == []


def test_an_admin_creates_a_user_who_can_sign_in_here_at_once(
    replica: Replica, people: dict[str, uuid.UUID], log: ServerLog
) -> None:
    ada = signed_in(replica, "ada")
    edit = local_users.create_user(
        replica, ada, "newbie", "a fine password", "New Bie", ["Viewer", "Tuners"]
    )
    new = signed_in(replica, "newbie", "a fine password")
    assert new.roles == ("Tuners", "Viewer") and new.display_name == "New Bie"
    fields = {(c.entity, c.field): c.value for c in edit.changes}
    assert fields["user", "username"] == "newbie" and fields["user", "is_active"] is True
    assert fields["user", "deleted"] is False
    assert fields["user", "password_hash"].startswith("$argon2")
    links = sorted(c.key for c in edit.changes if c.entity == "user_role")
    assert links == sorted(f"{new.user_id}:{log.roles[r]}" for r in ("Viewer", "Tuners"))
    # Signed by Ada; carrying the key newbie's password makes, for the server to keep.
    assert ada.edit_key is not None and edit_keys.check(ada.edit_key, edit, edit.proof)
    assert edit.keys == {new.user_id: edit_keys.derive("a fine password", new.user_id).hex()}
    assert new.edit_key is not None and edit.keys[new.user_id] == new.edit_key.hex()
    for username, password, roles, reason in [
        ("newbie", "a fine password", ["Viewer"], "already exists"),
        ("x", "a fine password", ["Viewer"], "username: 2 to 64"),
        ("other", "short", ["Viewer"], "at least 8"),
        ("other", "a fine password", ["Wizards"], "unknown role"),
    ]:
        with pytest.raises(ValueError, match=reason):
            local_users.create_user(replica, ada, username, password, roles=roles)
    assert len(replica.pending()) == 1


def test_nobody_grants_a_permission_they_do_not_hold(
    replica: Replica, people: dict[str, uuid.UUID], log: ServerLog
) -> None:
    # A permission newer than the Admin role's grants in this replica: no Admin holds it.
    log.permission("reports:export")
    log.role("Reporters", ["reports:export"])
    sync(replica, log)
    ada = signed_in(replica, "ada")
    with pytest.raises(PermissionError, match="reports:export, which you do not hold"):
        local_users.create_user(replica, ada, "rita", PASSWORD, roles=["Reporters"])
    with pytest.raises(PermissionError, match="reports:export, which you do not hold"):
        local_users.set_roles(replica, ada, people["vic"], ["Viewer", "Reporters"])
    with pytest.raises(PermissionError, match="reports:export, which you do not hold"):
        local_users.set_role_permissions(replica, ada, log.roles["Tuners"], ["reports:export"])
    assert replica.pending() == []
    # Taking away needs nothing held; built-in roles are fixed.
    edit = local_users.set_role_permissions(replica, ada, log.roles["Reporters"], [])
    assert [(c.key, c.value) for c in edit.changes] == [
        (f"{log.roles['Reporters']}:{log.permissions['reports:export']}", True)
    ]
    with pytest.raises(PermissionError, match="built-in role 'Viewer'"):
        local_users.set_role_permissions(replica, ada, log.roles["Viewer"], ["devices:read"])
    with pytest.raises(ValueError, match="unknown permission"):
        local_users.set_role_permissions(replica, ada, log.roles["Tuners"], ["flying"])


def test_a_demoted_admin_is_refused_at_the_moment_of_acting(
    replica: Replica, people: dict[str, uuid.UUID], log: ServerLog
) -> None:
    ada = signed_in(replica, "ada")
    local_users.set_active(replica, ada, people["vic"], False)  # still an Admin: accepted
    log.grant_role(people["ada"], "Admin", granted=False)
    sync(replica, log)
    with pytest.raises(PermissionError, match="users:manage"):
        local_users.set_active(replica, ada, people["max"], False)
    with pytest.raises(PermissionError, match="users:manage"):
        local_users.delete_user(replica, ada, people["max"])
    log.disable(people["ada"])
    sync(replica, log)
    with pytest.raises(PermissionError, match="disabled or deleted"):
        local_users.edit_profile(replica, ada, "still me?")
    assert len(replica.pending()) == 1


def test_roles_active_and_delete_keep_an_active_admin(
    replica: Replica, people: dict[str, uuid.UUID], log: ServerLog
) -> None:
    ada = signed_in(replica, "ada")
    local_users.set_roles(replica, ada, people["grace"], ["Viewer"])  # a pending demotion counts
    grace = replica.person(people["grace"])
    assert grace is not None and grace.roles == ("Viewer",)
    for act in (
        lambda: local_users.set_active(replica, ada, people["ada"], False),
        lambda: local_users.set_roles(replica, ada, people["ada"], ["Viewer"]),
    ):
        with pytest.raises(ValueError, match="no active Admin"):
            act()
    with pytest.raises(PermissionError, match="your own account"):
        local_users.delete_user(replica, ada, people["ada"])
    with pytest.raises(ValueError, match="already has exactly these roles"):
        local_users.set_roles(replica, ada, people["vic"], ["Viewer"])
    with pytest.raises(ValueError, match="already enabled"):
        local_users.set_active(replica, ada, people["vic"], True)
    edit = local_users.delete_user(replica, ada, people["vic"])
    assert {(c.field, c.value) for c in edit.changes} == {("deleted", True), ("is_active", False)}
    assert replica.find("vic") is None
    with pytest.raises(ValueError, match="no such user"):
        local_users.set_active(replica, ada, people["vic"], True)


def test_a_refused_edit_is_reverted(replica: Replica, people: dict[str, uuid.UUID]) -> None:
    from core.protocol.sync import Answer

    ada = signed_in(replica, "ada")
    edit = local_users.set_roles(replica, ada, people["vic"], ["Viewer", "Tuners"])
    assert replica.find("vic").roles == ("Tuners", "Viewer")  # type: ignore[union-attr]
    replica.settle([Answer(edit.change_id, accepted=False, reason="not an Admin then")])
    assert replica.find("vic").roles == ("Viewer",)  # type: ignore[union-attr]


def test_one_changes_ones_own_password_knowing_the_current_one(
    replica: Replica, people: dict[str, uuid.UUID]
) -> None:
    vic = signed_in(replica, "vic")
    with pytest.raises(PermissionError, match="current password"):
        local_users.change_own_password(replica, vic, "a guess", "a brand new one")
    with pytest.raises(ValueError, match="at least 8"):
        local_users.change_own_password(replica, vic, PASSWORD, "short")
    edit = local_users.change_own_password(replica, vic, PASSWORD, "a brand new one")
    assert [c.field for c in edit.changes] == ["password_hash"]
    # Signed with the key of the password it replaces, carrying the new one's.
    assert vic.edit_key is not None and edit_keys.check(vic.edit_key, edit, edit.proof)
    again = signed_in(replica, "vic", "a brand new one")
    assert again.user_id == people["vic"] and again.edit_key is not None
    assert edit.keys == {people["vic"]: again.edit_key.hex()}
    with pytest.raises(SignInRefused, match="wrong username or password"):
        signed_in(replica, "vic", PASSWORD)


def test_a_person_no_sign_in_keyed_cannot_edit(
    replica: Replica, people: dict[str, uuid.UUID]
) -> None:
    """A Person made by hand, not by a sign-in, holds no key: nothing to sign with."""
    record = replica.find("vic")
    assert record is not None
    with pytest.raises(ValueError, match="sign in again to make changes"):
        local_users.edit_profile(replica, Person.of(record), "Victor")
    assert replica.pending() == []


def test_settings_are_overridden_only_as_the_policy_allows(
    replica: Replica, people: dict[str, uuid.UUID]
) -> None:
    tess, vic = signed_in(replica, "tess"), signed_in(replica, "vic")
    policy = ("interval_s",)
    with pytest.raises(PermissionError, match="config:write"):
        local_users.override_setting(replica, vic, DEVICE, "interval_s", 2, policy=policy)
    with pytest.raises(PermissionError, match="its own settings"):
        local_users.override_setting(replica, tess, "lathe-02", "interval_s", 2, policy=policy)
    with pytest.raises(PermissionError, match="only interval_s, not heartbeat_s"):
        local_users.override_setting(replica, tess, DEVICE, "heartbeat_s", 5, policy=policy)
    with pytest.raises(ValueError, match="interval_s must be"):
        local_users.override_setting(replica, tess, DEVICE, "interval_s", 0, policy=policy)
    edit = local_users.override_setting(replica, tess, DEVICE, "interval_s", 2, policy=policy)
    assert [(c.entity, c.key, c.field, c.value) for c in edit.changes] == [
        ("device_config", DEVICE, "desired.interval_s", 2.0)
    ]
    assert replica.directory().desired(DEVICE) == {"interval_s": 2.0}
    local_users.override_setting(replica, tess, DEVICE, "interval_s", None, policy=policy)
    assert replica.directory().desired(DEVICE) == {}


def test_the_default_policy_comes_from_the_settings(
    replica: Replica, people: dict[str, uuid.UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    tess = signed_in(replica, "tess")
    monkeypatch.delenv("PP_STATION_CONFIG_OVERRIDES", raising=False)
    with pytest.raises(PermissionError, match="only interval_s"):
        local_users.override_setting(replica, tess, DEVICE, "heartbeat_s", 5)
    assert local_users.override_setting(replica, tess, DEVICE, "interval_s", 1).changes
