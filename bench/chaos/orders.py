"""Commands sent during a chaos run, as an Admin sends them: through the server's HTTP API.

Every kind the protocol has (Ping, UpdateConfig, FlushOutbox) goes out in turn to a drawn
station, every ``every_s``, whatever the faults are doing. A POST the server cannot take
(it is down, restarting, or its database is) is counted and the next one is tried later:
only commands the server accepted are followed to their end. UpdateConfig moves the
station's sampling between 5 and 10 Hz, so a succeeded one is visible in the station's
own outbox (its applied configuration version).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import asyncpg
import httpx

from core.protocol.commands import KINDS, UPDATE_CONFIG

INTERVALS_S = (0.1, 0.125, 0.15, 0.2)  # 10, 8, 6.7 and 5 Hz
POST_S = 10.0  # a POST to a loaded server; one that takes longer is counted as refused
ACTIVE = "SELECT count(*) FROM commands WHERE state IN ('queued', 'sent', 'delivered')"


@dataclass
class Orders:
    """Sends commands until stopped; what was sent and what was refused."""

    base_url: Callable[[], str | None]  # the server's URL now (it moves on each restart)
    account: tuple[str, str]
    devices: list[str]
    seed: int
    timeout_s: int
    every_s: float
    sent: dict[str, int] = field(default_factory=dict)  # kind → accepted by the server
    refused: list[str] = field(default_factory=list)  # why a POST was not accepted
    _token: str = ""

    async def _post(self, client: httpx.AsyncClient, path: str, body: object) -> httpx.Response:
        url = self.base_url()
        if url is None:
            msg = "no server runs"
            raise httpx.ConnectError(msg)
        if not self._token:
            login = await client.post(
                f"{url}/api/v1/auth/login",
                json={"username": self.account[0], "password": self.account[1]},
            )
            login.raise_for_status()
            self._token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {self._token}"}
        response = await client.post(f"{url}/api/v1{path}", json=body, headers=headers)
        if response.status_code == httpx.codes.UNAUTHORIZED:
            self._token = ""
        response.raise_for_status()
        return response

    async def run(self) -> None:
        """Send one command every ``every_s``, kinds in turn, until cancelled."""
        rng = random.Random(self.seed + 2)
        async with httpx.AsyncClient(timeout=POST_S) as client:
            n = 0
            while True:
                await asyncio.sleep(self.every_s)
                kind = KINDS[n % len(KINDS)]
                device = rng.choice(self.devices)
                args: dict[str, object] = {}
                if kind == UPDATE_CONFIG:
                    args = {"interval_s": rng.choice(INTERVALS_S)}
                body = {"kind": kind, "args": args, "timeout_s": self.timeout_s}
                try:
                    await self._post(client, f"/devices/{device}/commands", body)
                except httpx.HTTPStatusError as error:
                    answer = error.response
                    why = f"{kind} to {device}: {answer.status_code} {answer.text[:160]}"
                    self.refused.append(why)
                    continue
                except httpx.HTTPError as error:
                    self.refused.append(f"{kind} to {device}: {type(error).__name__} {error}"[:200])
                    continue
                self.sent[kind] = self.sent.get(kind, 0) + 1
                n += 1


async def wait_all_ended(url: str, within_s: float) -> int:
    """Until no command is queued, sent or delivered, at most ``within_s``; how many still are."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        db = await asyncpg.connect(url)
        try:
            active = int(await db.fetchval(ACTIVE))
        finally:
            await db.close()
        if active == 0 or loop.time() >= deadline:
            return active
        await asyncio.sleep(1.0)
