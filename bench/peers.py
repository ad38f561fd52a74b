"""Peer support cost: a matching pass over N opted-in users, and the weekly circle digest planned for N users.

Matching is measured three ways: the pure `match()` over N waiting people; a whole planner pass in the steady state
(N opted in, 99% already in a pair, 1% waiting: the pass loads who waits, matches, inserts pairs, seats, cards and
events); and the cold start (all N waiting at once: the first pass looks at the `max_waiting_per_pass`
longest-waiting and makes at most `max_pairs_per_pass` pairs; the rest follow a minute later). The digest: N circle
members who started over 20 weeks, 3% of them reaching a rung this week; `plan_digests` alone over all N, and the
planner's digest steps (query, plan, enqueue one outbox row per member, `digests_per_pass` members a pass) until the
week is done. Usage:
`.venv/bin/python -m bench.peers [--users 100000] [--database-url URL] [--json]`
(default: fresh SQLite files; a PostgreSQL URL has its public schema dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import time
from typing import Any

from sqlalchemy import insert, select

from bench.common import fresh_database
from bot.core.clock import FrozenClock
from bot.core.journal import Journal
from bot.core.peers import (
    DIGEST_MILESTONES,
    PeerPlan,
    PeerPlanner,
    Peers,
    PeerSettings,
    Seeker,
    digest_slot,
    match,
    plan_digests,
)
from content.library import Library, load_library
from storage import peers as stored
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import CircleMember, MilestoneDone, PeerOptIn, PeerPair, PeerSeat, PlannerCursor, User

NOW = dt.datetime(2026, 11, 30, 5, 30, tzinfo=dt.UTC)  # Monday, just after the digest slot
SKILLS = ["graphic design", "writing", "web development", "video editing", "data entry", "seo", "translation", None]
CITIES = ["lahore", "karachi", "islamabad", "peshawar", "multan", "quetta", None]
LADDER = [
    "chose_skill", "account_created", "profile_complete", "profile_approved", "payment_method_ready",
    "first_proposal_sent", "first_job_won", "first_payment_received", "first_review", "repeat_client",
]  # fmt: skip


def seekers(n: int, rng: random.Random) -> list[Seeker]:
    return [
        Seeker(
            user_id=i + 1,
            language=rng.choice(["en", "ur", "ur"]),
            rung=rng.randrange(10),
            seeking=rng.choice(["peer", "peer", "ahead", "help"]),
            skill=rng.choice(SKILLS),
            platforms=frozenset(rng.sample(["fiverr", "upwork", "freelancer"], rng.randrange(3))),
            city=rng.choice(CITIES),
        )
        for i in range(n)
    ]


async def bulk(db: Database, model: Any, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), 10_000):
        async with db.write() as session:
            await session.execute(insert(model), rows[start : start + 10_000])


async def seed_users(db: Database, n: int, rng: random.Random) -> list[int]:
    rows = [
        {
            "channel": "telegram", "external_id": str(20_000_000 + i), "display_name": f"User {i}",
            "language": rng.choice(["en", "ur", "ur"]), "language_chosen": True, "research_consent": False,
            "skill": rng.choice(SKILLS), "city": rng.choice(CITIES), "platforms": ["fiverr"],
            "created_at": NOW - dt.timedelta(days=rng.randrange(140)), "last_seen_at": NOW, "nudge_pace": "daily",
        }
        for i in range(n)
    ]  # fmt: skip
    await bulk(db, User, rows)
    async with db.read() as session:
        return list(await session.scalars(select(User.id).order_by(User.id)))


async def seed_matching(db: Database, n: int, waiting_share: float, rng: random.Random) -> int:
    """N opted-in users with rungs; all but `waiting_share` of them already sit in active pairs. Returns how many
    wait."""
    ids = await seed_users(db, n, rng)
    done = [
        {"user_id": u, "milestone": m, "done_at": NOW - dt.timedelta(days=30), "source": "bench"}
        for u in ids
        for m in LADDER[: rng.randrange(6)]
    ]
    await bulk(db, MilestoneDone, done)
    seeking = ["peer", "peer", "ahead", "help"]
    await bulk(db, PeerOptIn, [
        {"user_id": u, "seeking": rng.choice(seeking), "share_city": rng.random() < 0.5,
         "opted_in_at": NOW - dt.timedelta(minutes=rng.randrange(100_000))}
        for u in ids
    ])  # fmt: skip
    paired = ids[: int(n * (1 - waiting_share)) // 2 * 2]
    pairs = [
        {"user_low": paired[i], "user_high": paired[i + 1], "status": "active",
         "proposed_at": NOW - dt.timedelta(days=3), "started_at": NOW - dt.timedelta(days=2),
         "last_message_at": NOW - dt.timedelta(days=1)}
        for i in range(0, len(paired), 2)
    ]  # fmt: skip
    await bulk(db, PeerPair, pairs)
    async with db.read() as session:
        stored_pairs = list(await session.execute(select(PeerPair.id, PeerPair.user_low, PeerPair.user_high)))
    await bulk(db, PeerSeat, [{"user_id": u, "pair_id": p} for p, low, high in stored_pairs for u in (low, high)])
    async with db.write() as session:
        session.add(PlannerCursor(name="peers", planned_until=NOW - dt.timedelta(minutes=1)))
    return n - len(paired)


async def matching_pass(url: str | None, n: int, waiting_share: float, library: Library) -> dict[str, Any]:
    database_url = await fresh_database(url, f"peers-match-{n}-{waiting_share}")
    await upgrade_async(database_url)
    db = Database.connect(database_url)
    try:
        waiting = await seed_matching(db, n, waiting_share, random.Random(n))
        clock = FrozenClock(NOW)
        planner = PeerPlanner(Peers(library, db, clock, Journal(db), settings=PeerSettings(digest_weekday=3)), clock)
        started = time.perf_counter()
        report: PeerPlan = await planner.plan()
        seconds = time.perf_counter() - started
    finally:
        await db.dispose()
    return {"opted_in": n, "waiting": waiting, "matched_pairs": report.matched, "enqueued": report.enqueued,
            "seconds": round(seconds, 3), "backend": database_url.split(":", 1)[0].split("+")[0]}  # fmt: skip


async def digest_step(url: str | None, n: int, library: Library) -> dict[str, Any]:
    database_url = await fresh_database(url, f"peers-digest-{n}")
    await upgrade_async(database_url)
    db = Database.connect(database_url)
    rng = random.Random(n)
    settings = PeerSettings()
    slot = digest_slot(NOW, settings)
    try:
        ids = await seed_users(db, n, rng)
        await bulk(db, CircleMember, [{"user_id": u, "joined_at": NOW - dt.timedelta(days=7)} for u in ids])
        reached = [
            {"user_id": u, "milestone": rng.choice(DIGEST_MILESTONES),
             "done_at": slot - dt.timedelta(hours=rng.randrange(160)), "source": "bench"}
            for u in rng.sample(ids, n * 3 // 100)
        ]  # fmt: skip
        await bulk(db, MilestoneDone, reached)
        async with db.read() as session:
            recipients = await stored.circle_recipients(session)
            achieved = await stored.reached_between(
                session, milestones=DIGEST_MILESTONES, after=slot - dt.timedelta(days=7), until=slot
            )
        started = time.perf_counter()
        planned = plan_digests(library, recipients, achieved, slot=slot, settings=settings)
        pure = time.perf_counter() - started
        clock = FrozenClock(NOW)
        planner = PeerPlanner(Peers(library, db, clock, Journal(db), settings=settings), clock)
        passes: list[float] = []
        result = PeerPlan()
        while True:  # one digest step per planning pass (a minute apart in production), until the week is done
            started = time.perf_counter()
            async with db.write() as session:
                before = result.digests
                await planner._digests(session, NOW, result)
            passes.append(time.perf_counter() - started)
            if result.digests == before:
                break
    finally:
        await db.dispose()
    return {"members": n, "digests": len(planned), "enqueued": result.digests, "plan_seconds": round(pure, 3),
            "passes": len(passes), "slowest_pass": round(max(passes), 3), "all_passes": round(sum(passes), 3),
            "backend": database_url.split(":", 1)[0].split("+")[0]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is dropped); default SQLite files")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    library = load_library()
    rng = random.Random(1)
    crowd = seekers(args.users, rng)
    started = time.perf_counter()
    pairs = match(crowd)
    pure = {"waiting": args.users, "pairs": len(pairs), "seconds": round(time.perf_counter() - started, 3)}
    steady = asyncio.run(matching_pass(args.database_url, args.users, 0.01, library))
    cold = asyncio.run(matching_pass(args.database_url, args.users, 1.0, library))
    digest = asyncio.run(digest_step(args.database_url, args.users, library))
    results = {"match": pure, "steady_pass": steady, "cold_pass": cold, "digest": digest}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| measure | size | result | time |")
    print("|---|---|---|---|")
    print(f"| `match()` alone | {pure['waiting']:,} waiting | {pure['pairs']:,} pairs | {pure['seconds']:.2f} s |")
    print(f"| planner pass, steady state ({steady['backend']}) | {steady['opted_in']:,} opted in, "
          f"{steady['waiting']:,} waiting | {steady['matched_pairs']:,} pairs, {steady['enqueued']:,} rows | "
          f"{steady['seconds']:.2f} s |")  # fmt: skip
    print(f"| first planner pass, cold start ({cold['backend']}) | {cold['opted_in']:,} opted in, all waiting | "
          f"{cold['matched_pairs']:,} pairs, {cold['enqueued']:,} rows | {cold['seconds']:.2f} s |")  # fmt: skip
    print(f"| `plan_digests` alone | {digest['members']:,} members | {digest['digests']:,} digests | "
          f"{digest['plan_seconds']:.2f} s |")  # fmt: skip
    print(
        f"| planner digest steps ({digest['backend']}) | {digest['members']:,} members | {digest['enqueued']:,} rows "
        f"in {digest['passes']} passes | slowest {digest['slowest_pass']:.2f} s, all {digest['all_passes']:.2f} s |"
    )
    # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
