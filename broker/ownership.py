"""Who owns the files the broker reads after it drops root: its password file, ACL and key.

Mosquitto started as root reads its configuration, then becomes the ``mosquitto`` user
before it opens the password file, the ACL and the TLS key: a root-owned 0600 file stops it
from starting. So the ``broker`` commands, run as root, hand those files to that user
(``--owner`` names another ``USER[:GROUP]``), and keep them private to it: Mosquitto 2.0.16
and later warn about (and later versions refuse) files other users can read or own.
"""

from __future__ import annotations

import grp
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

MOSQUITTO_USER = "mosquitto"  # the user Mosquitto switches to unless its config says `user`
SECRET_MODE = 0o600  # password file, TLS key: the broker's alone
SHARED_MODE = 0o640  # the ACL: nothing secret, but Mosquitto warns when others can read it


@dataclass(frozen=True)
class Owner:
    """A user and group to hand the broker's files to."""

    uid: int
    gid: int
    name: str

    def hand_over(self, path: Path, mode: int) -> None:
        """Give ``path`` to this owner with ``mode``; PermissionError if we may not."""
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)


def broker_owner(spec: str | None = None) -> Owner | None:
    """The owner named by ``USER[:GROUP]``; by default the ``mosquitto`` user when run as
    root and it exists, else None (files stay with whoever writes them, who runs the broker).
    """
    if spec is None:
        if os.geteuid() != 0:
            return None
        try:
            return _owner(MOSQUITTO_USER, None)
        except ValueError:
            return None
    user, _, group = spec.partition(":")
    return _owner(user, group or None)


def _owner(user: str, group: str | None) -> Owner:
    try:
        entry = pwd.getpwnam(user)
    except KeyError as error:
        msg = f"no such user {user!r} to own the broker's files (--owner USER[:GROUP])"
        raise ValueError(msg) from error
    gid = entry.pw_gid
    if group is not None:
        try:
            gid = grp.getgrnam(group).gr_gid
        except KeyError as error:
            msg = f"no such group {group!r} to own the broker's files (--owner USER[:GROUP])"
            raise ValueError(msg) from error
    if group is None:
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:  # a primary group without an entry of its own
            group = str(gid)
    return Owner(entry.pw_uid, gid, f"{user}:{group}")
