"""Benchmark: `rahnuma export --format parquet` over a demo database, timed with its peak memory.

    python -m bench.export --database-url sqlite+aiosqlite:////tmp/bench.db [--users 100000] [--events 1000000]
        [--time-ordered]

Fills the database with `rahnuma demo-data` when it has fewer than `--users` people (with `--time-ordered`, then
measures on a copy whose event table is in time order, as the bot writes it: bench/common.py), picks the period
that holds `--events` events (the latest ones), then runs the real CLI as a child process twice: over that period
and over a quarter of it, so the peak RSS of a 4× larger export shows whether memory stays flat. Prints a Markdown
table row.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench.common import time_ordered_copy
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Event, User

SALT = "benchmark-salt-not-a-secret-0123456789abcdef"


async def _state(url: str, events: int) -> tuple[int, int, dt.datetime | None, dt.datetime | None]:
    """(users, events, the time from which the latest `events` events start, the same for a quarter of them)."""
    db = Database.connect(url)
    try:
        async with db.read() as session:
            users = int(await session.scalar(select(func.count()).select_from(User)) or 0)
            total = int(await session.scalar(select(func.count()).select_from(Event)) or 0)
            cut = [
                await session.scalar(select(Event.at).order_by(Event.at.desc()).offset(n - 1).limit(1))
                if total >= n
                else None
                for n in (events, events // 4)
            ]
    finally:
        await db.dispose()
    return users, total, cut[0], cut[1]


def _run_export(url: str, out: Path, since: dt.datetime | None, fmt: str) -> tuple[float, int, str, float]:
    """(seconds, peak RSS of the child in KiB, its last stderr line, its CPU seconds)."""
    env = {**os.environ, "DATABASE_URL": url, "RAHNUMA_RESEARCH_SALT": SALT, "RAHNUMA_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "bot.cli", "export", "--format", fmt, "--out", str(out)]
    if since is not None:
        command += ["--since", since.isoformat()]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of children is the largest of any child so far: run the smaller export first
    return seconds, after.ru_maxrss, result.stderr.strip().splitlines()[-1], cpu


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, default=30_000, help="demo users to have (added when fewer)")
    parser.add_argument("--events", type=int, default=1_000_000, help="events to export")
    parser.add_argument("--format", choices=["csv", "parquet"], default="parquet")
    parser.add_argument("--time-ordered", action="store_true", help="measure on a copy with events in time order")
    args = parser.parse_args()
    upgrade(args.database_url)
    users, total, since, since_quarter = asyncio.run(_state(args.database_url, args.events))
    if users < args.users:
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "demo-data", "--users", str(args.users - users), "--until",
             "2026-11-27T04:00", "--force"],
            env={**os.environ, "DATABASE_URL": args.database_url}, check=True,
        )  # fmt: skip
        users, total, since, since_quarter = asyncio.run(_state(args.database_url, args.events))
    if args.time_ordered:
        args.database_url = time_ordered_copy(args.database_url)
        users, total, since, since_quarter = asyncio.run(_state(args.database_url, args.events))
    if total < args.events:
        print(f"only {total:,} events: raise --users", file=sys.stderr)
        return 1
    print(f"# {platform.node()}: {os.cpu_count()} cores, load {_load()} at the start; {users:,} users, "
          f"{total:,} events in {args.database_url}", file=sys.stderr)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        quarter = _run_export(args.database_url, Path(folder) / "quarter", since_quarter, args.format)
        full = _run_export(args.database_url, Path(folder) / "full", since, args.format)
        size = sum(p.stat().st_size for p in (Path(folder) / "full").iterdir())
    print(f"# load {_load()} at the end", file=sys.stderr)
    print(f"quarter: {quarter[2]}", file=sys.stderr)
    print(f"full:    {full[2]}", file=sys.stderr)
    print("| events | format | wall | CPU (user+sys) | peak RSS | files |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.events // 4:,} | {args.format} | {quarter[0]:.1f} s | {quarter[3]:.1f} s | "
          f"{quarter[1] / 1024:.0f} MiB | |")  # fmt: skip
    print(f"| {args.events:,} | {args.format} | {full[0]:.1f} s | {full[3]:.1f} s | {full[1] / 1024:.0f} MiB | "
          f"{size / 1e6:.0f} MB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
