"""Nudge planning cost: one planning pass over N users of whom about 1% became due since the last pass.

The planner finds due users through indexed ranges on their trigger times (joined, last seen, rung reached), so a
pass should cost what is due, not how many users there are. Usage:
`.venv/bin/python -m bench.planning [--users 10000 100000 1000000] [--database-url URL] [--json]`
(default: fresh SQLite files; pass a PostgreSQL URL to measure there — its public schema is dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import time

from sqlalchemy import insert

from bench.common import fresh_database
from bot.core.clock import FrozenClock
from bot.core.nudges import NudgePlanner
from content.library import load_library
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import PlannerCursor, User

NOW = dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC)
WINDOW = dt.timedelta(hours=1)  # the time since the previous pass
DUE_SHARE = 0.01


async def seed(db: Database, users: int, rules: list[str], rng: random.Random) -> int:
    """N Telegram users; 1% joined one day before the window (the welcome_d1 rule is due for them), the rest at
    random times over the past year; every planner cursor at the window's start."""
    due = int(users * DUE_SHARE)
    rows = []
    for index in range(users):
        if index < due:
            joined = NOW - dt.timedelta(days=1) - WINDOW * rng.random()
        else:
            joined = NOW - dt.timedelta(days=2 + 363 * rng.random())
        seen = joined + (NOW - joined) * rng.random()
        rows.append(
            {
                "channel": "telegram",
                "external_id": str(10_000_000 + index),
                "display_name": f"User {index}",
                "language": "ur" if index % 3 else "en",
                "language_chosen": True,
                "research_consent": False,
                "created_at": joined,
                "last_seen_at": seen,
                "nudge_pace": "daily",
            }  # fmt: skip
        )
    for start in range(0, users, 20_000):
        async with db.write() as session:
            await session.execute(insert(User), rows[start : start + 20_000])
    async with db.write() as session:
        for rule in rules:
            session.add(PlannerCursor(name=f"nudge:{rule}", planned_until=NOW - WINDOW))
    return due


async def measure(url: str | None, users: int) -> dict[str, float]:
    database_url = await fresh_database(url, f"planning-{users}")
    await upgrade_async(database_url)
    db = Database.connect(database_url)
    library = load_library()
    try:
        due = await seed(db, users, [rule.id for rule in library.nudges.rules], random.Random(users))
        planner = NudgePlanner(library, db, FrozenClock(NOW))
        started = time.perf_counter()
        report = await planner.plan()
        seconds = time.perf_counter() - started
    finally:
        await db.dispose()
    backend = database_url.split(":", 1)[0].split("+")[0]
    return {"backend": backend, "users": users, "due": due, "enqueued": report.enqueued, "seconds": seconds}  # type: ignore[dict-item]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is dropped); default SQLite files")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [asyncio.run(measure(args.database_url, users)) for users in args.users]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| backend | users | due (1%) | enqueued | planning pass |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['backend']} | {r['users']:,} | {r['due']:,} | {r['enqueued']:,} | {r['seconds']:.2f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
