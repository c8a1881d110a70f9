"""A user who signs in through the OpenID Connect provider has no password: not at a station.

The server syncs them with an empty password hash (core.services.users); a station's
offline sign-in checks passwords only, so it refuses them as any wrong password, and the
operator who needs a station is given a password by an Admin.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from desktop.agent.replica import Replica
from desktop.agent.sign_in import BAD_CREDENTIALS, SignInRefused, sign_in
from tests.desktop.replica_data import PASSWORD, ServerLog, sync

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_a_provider_user_cannot_sign_in_at_a_station_until_given_a_password(
    replica: Replica, log: ServerLog
) -> None:
    """No password (not even an empty one) opens the account; one set later does."""
    olivia = log.user("olivia", roles=("Viewer",))
    log.set("user", olivia, password_hash="")  # as the server makes a provider's user
    sync(replica, log)
    for guess in ("", PASSWORD, "anything-at-all"):
        with pytest.raises(SignInRefused) as caught:
            sign_in(replica, "olivia", guess, max_failures=100, lock_seconds=1, now=T0)
        assert caught.value.reason == BAD_CREDENTIALS
    log.set_password(olivia, "given-by-an-admin")
    sync(replica, log)
    person = sign_in(
        replica, "olivia", "given-by-an-admin", max_failures=100, lock_seconds=1, now=T0
    )
    assert person.username == "olivia"
