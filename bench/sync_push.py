"""Where a sync push round's time goes: one change brought to many devices, step by step.

A PostgreSQL database of the bench's own with DEVICES enabled devices, Mosquitto with the
server's account and the server's backbone (its own sync publisher stopped, so that only
the steps timed here run). No station listens: a QoS 1 publish costs the server the same
whether or not anyone subscribed. Each round changes one person's display name (as the API
does) and then runs the steps of a push round one at a time, each timed by the process's
CPU: sequencing the log, reading the devices, the pages — one query a device
(``sync_log.page``, as rounds were) and for every device at once (``sync_log.pages_for``,
as rounds are) — signing and encoding each page, and publishing them through the link.

    python -m bench.sync_push [--devices 300 --rounds 10 --profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bench.stack import DEFAULT_DATABASE, database_of_its_own, running_stack
from core.db.engine import Database
from core.protocol import topics
from core.protocol.signing import SigningKey
from core.protocol.sync import ChangePage
from core.services import devices, roles, sync_log, users
from core.settings import Settings
from desktop.agent.fleet import new_credentials

T = TypeVar("T")
ACTOR = users.console_actor("bench")
PROFILE_LINES = 14  # the functions that take the most time of their own in a profiled round


async def _timed(steps: dict[str, list[float]], name: str, work: Awaitable[T]) -> T:
    """Await ``work``, adding its CPU milliseconds (this process) to ``steps[name]``."""
    start = time.process_time()
    result = await work
    steps.setdefault(name, []).append((time.process_time() - start) * 1000)
    return result


async def _encode(pages: dict[str, sync_log.Page], key: SigningKey) -> dict[str, bytes]:
    return {
        d: ChangePage(d, p.after, p.cursor, p.head, tuple(p.changes)).encode(key)
        for d, p in pages.items()
    }


async def _one_by_one(database: Database, behind: dict[str, int]) -> dict[str, sync_log.Page]:
    async with database.session() as session:
        return {
            d: await sync_log.page(session, device_id=d, after=after) for d, after in behind.items()
        }


async def _all_at_once(database: Database, behind: dict[str, int]) -> dict[str, sync_log.Page]:
    async with database.session() as session:
        return await sync_log.pages_for(session, behind)


async def _round(
    database: Database,
    key: SigningKey,
    publish: Callable[[str, bytes], Awaitable[None]],
    person_id: Any,
    number: int,
    steps: dict[str, list[float]],
) -> None:
    """One change, then a push round's steps, each timed; the pages must agree."""
    async with database.session() as session:
        before = await sync_log.sequence(session)
    async with database.session() as session:
        await users.update_user(
            session, actor=ACTOR, user_id=person_id, display_name=f"Push round {number}"
        )
    async with database.session() as session:
        await _timed(steps, "sequence", sync_log.sequence(session))
    async with database.session() as session:
        enabled = await _timed(steps, "devices", devices.all_enabled(session))
    behind = {d: before for d, on in enabled.items() if on}
    old = await _timed(steps, "pages, one query a device", _one_by_one(database, behind))
    pages = await _timed(steps, "pages, all at once", _all_at_once(database, behind))
    if pages != old:
        msg = "pages_for and page disagree"
        raise AssertionError(msg)
    payloads = await _timed(steps, "sign and encode", _encode(pages, key))
    sending = (publish(topics.sync_down(d), payload) for d, payload in payloads.items())
    await _timed(steps, "publish (QoS 1)", asyncio.gather(*sending))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, time ``args.rounds`` rounds (and profile one more if asked)."""
    credentials = new_credentials("push", args.devices)
    steps: dict[str, list[float]] = {}
    profile = ""
    async with (
        database_of_its_own(args.database_url) as url,
        running_stack(url, credentials) as stack,
    ):
        backbone = stack.backbone
        await backbone.sync.stop()  # its rounds would run alongside the timed ones
        assert backbone.supervisor is not None
        supervisor = backbone.supervisor

        async def publish(topic: str, payload: bytes) -> None:
            await supervisor.publish(topic, payload, qos=1)

        database = Database(Settings(database_url=url).async_database_url)
        try:
            async with database.session() as session:
                await roles.ensure_builtins(session)
                await users.bootstrap_user(  # an Admin must remain for the edits to be allowed
                    session, username="admin", password="bench-admin-password", roles=["Admin"]
                )
                person = await users.bootstrap_user(
                    session, username="operator", password="bench-operator-password", roles=[]
                )
            key = backbone.signing_key
            for number in range(args.rounds + 1):  # the first warms the caches, not counted
                await _round(database, key, publish, person.id, number, steps)
                if number == 0:
                    steps.clear()
            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                await _round(database, key, publish, person.id, -1, {})
                profiler.disable()
                out = io.StringIO()
                stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
                stats.print_stats(PROFILE_LINES)
                profile = out.getvalue()
        finally:
            await database.close()
    figures = {name: round(statistics.median(ms), 3) for name, ms in steps.items()}
    return {
        "devices": args.devices,
        "rounds": args.rounds,
        "cpu_ms_p50": figures,
        "profile": profile,
    }


def main() -> None:
    """Parse arguments, run, print the steps and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="cProfile one more round")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE)
    args = parser.parse_args()
    if not 0 < args.devices <= 2_000 or not 0 < args.rounds <= 100:
        parser.error("--devices 1..2000, --rounds 1..100")
    result = asyncio.run(run(args))
    print(f"a push round to {args.devices} devices, CPU of this process (median of {args.rounds}):")
    for name, ms in result["cpu_ms_p50"].items():
        print(f"  {name:28} {ms:8.1f} ms  {ms * 1000 / args.devices:7.1f} µs a device")
    if result["profile"]:
        print(result["profile"], file=sys.stderr)
    line = {k: v for k, v in result.items() if k != "profile"}
    print(json.dumps(line))


if __name__ == "__main__":
    main()
