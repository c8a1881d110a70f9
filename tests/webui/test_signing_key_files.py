"""The server's signing key stays private and its public half readable, whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path

from webui.backbone.server import server_signing_key


def test_the_public_half_is_readable_by_all_and_the_key_by_its_owner_alone(
    tmp_path: Path,
) -> None:
    before = os.umask(0o077)  # as `serve` runs
    try:
        key = server_signing_key(tmp_path / "signing-key.pem")
    finally:
        os.umask(before)
    public = tmp_path / "signing-key.pub.pem"
    assert public.read_bytes() == key.public_key().to_pem()
    assert public.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "signing-key.pem").stat().st_mode & 0o077 == 0
