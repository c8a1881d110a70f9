"""``python -m bench.chaos``: a chaos run; a summary on stderr, the JSON line last on stdout.

    python -m bench.chaos [--minutes 10 --stations 6 --hz 8 --seed N --out artifacts/chaos]

Exits 1 when any target fails (a sample lost or doubled, a watermark behind, a station
offline or not drained, a command not ended or not truthful), 0 when all are met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from pathlib import Path

from bench.chaos.run import Plan, progress, run

SUMMARY_KEYS = (
    "faults",
    "faults_by_kind",
    "lost",
    "doubled",
    "recovery_p50_s",
    "recovery_p99_s",
    "recovery_max_s",
    "undelivered",
    "declared_dropped",
    "quarantined",
    "samples",
    "max_backlog",
    "presence_online",
    "presence_wait_s",
    "drained",
    "commands_ok",
    "commands_terminal",
    "commands_sent",
    "ingest_kills_in_transaction",
    "seed",
    "ok",
)


def main() -> None:
    """Parse arguments, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="of fault injection")
    parser.add_argument("--stations", type=int, default=6)
    parser.add_argument("--hz", type=float, default=8.0, help="each station's sampling at start")
    parser.add_argument("--every", type=float, default=5.5, help="seconds between faults, mean")
    parser.add_argument("--seed", type=int, default=None, help="the schedule's (default: drawn)")
    parser.add_argument("--command-every", type=float, default=3.0, help="seconds")
    parser.add_argument("--command-timeout", type=int, default=60, help="each command's life, s")
    parser.add_argument("--drain", type=float, default=120.0, help="seconds allowed to drain")
    parser.add_argument("--skewed", type=int, default=None, help="stations skewed from the start")
    parser.add_argument("--out", type=Path, default=Path("artifacts") / "chaos")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    plan = Plan(
        minutes=args.minutes,
        stations=args.stations,
        hz=args.hz,
        every_s=args.every,
        seed=seed,
        command_every_s=args.command_every,
        command_timeout_s=args.command_timeout,
        drain_s=args.drain,
        out_dir=args.out,
        skewed=args.skewed if args.skewed is not None else max(1, args.stations // 3),
    )
    print(f"chaos seed: {seed}", flush=True)
    try:
        result = asyncio.run(run(plan))
    except asyncio.CancelledError:  # SIGTERM: run() stopped everything it started
        progress("stopped by SIGTERM before the checks; no report")
        sys.exit(143)
    for problem in result["problems"]:
        progress(f"PROBLEM {problem}")
    progress(f"report: {plan.out_dir / 'summary.md'} (and chaos.json, timeline.svg)")
    line = {key: result.get(key) for key in SUMMARY_KEYS}
    print(json.dumps(line), flush=True)
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    main()
