"""Benchmark: `rahnuma report` over a demo database of `--users` people.

    python -m bench.report --database-url sqlite+aiosqlite:////tmp/bench.db [--users 100000] [--time-ordered]

Adds demo users when there are fewer (with `--time-ordered`, then measures on a copy whose event table is in time
order, as the bot writes it: bench/common.py), then runs the real CLI as a child process and prints its time and
peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


async def _counts(url: str) -> tuple[int, int]:
    db = Database.connect(url)
    try:
        async with db.read() as session:
            users = int(await session.scalar(select(func.count()).select_from(User)) or 0)
            events = int(await session.scalar(select(func.count()).select_from(Event)) or 0)
    finally:
        await db.dispose()
    return users, events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--time-ordered", action="store_true", help="measure on a copy with events in time order")
    args = parser.parse_args()
    upgrade(args.database_url)
    users, events = asyncio.run(_counts(args.database_url))
    env = {**os.environ, "DATABASE_URL": args.database_url, "RAHNUMA_LOG_LEVEL": "WARNING"}
    if users < args.users:
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "demo-data", "--users", str(args.users - users), "--until",
             "2026-11-27T04:00", "--force"], env=env, check=True,
        )  # fmt: skip
        users, events = asyncio.run(_counts(args.database_url))
    if args.time_ordered:
        args.database_url = time_ordered_copy(args.database_url)
        env["DATABASE_URL"] = args.database_url
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "report.html"
        load = "/".join(f"{x:.2f}" for x in os.getloadavg())
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bot.cli", "report", "--out", str(out)], env=env, check=True)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        size = out.stat().st_size
        load_after = "/".join(f"{x:.2f}" for x in os.getloadavg())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"# {os.cpu_count()} cores, load average {load} at the start, {load_after} at the end; "
          f"{args.database_url}", file=sys.stderr)  # fmt: skip
    print("| users | events | wall | CPU (user+sys) | peak RSS | report |")
    print("|---|---|---|---|---|---|")
    print(f"| {users:,} | {events:,} | {seconds:.1f} s | {cpu:.1f} s | {after.ru_maxrss / 1024:.0f} MiB | "
          f"{size / 1024:.0f} KiB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
