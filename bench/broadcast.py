"""A big broadcast through the real outbox, dispatcher and sender, against the local stand-in for Telegram's Bot API
(tests/fake_bot_api.py, refusing above 30 messages a second like Telegram), while live users keep chatting.

Measures: the achieved bulk send rate against the configured one (RAHNUMA_SEND_RATE, 25/s by default), recipients
lost or messaged twice, how long the expansion into outbox rows took (and its longest batch transaction), and the
p50/p95 latency of live replies — `Conversation.handle_text` plus the send through the application's own bot
(with AIORateLimiter, as `rahnuma run` builds it) — with the broadcast running and without it.

The dispatcher runs as the bot runs it: one tick a second with a one-second budget, batch size rate/2. Live
replies come from the lexical NLU (no Rasa), so the figure is the bot's own latency, not Rasa's.

Usage: `.venv/bin/python -m bench.broadcast [--recipients 10000] [--rate 25] [--live-users 20]
[--database-url URL] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import tempfile
import time
from collections import Counter
from typing import Any

from sqlalchemy import insert
from telegram.ext import AIORateLimiter, Application, ExtBot, JobQueue
from telegram.request import HTTPXRequest

from bench.common import percentile
from bot.app import schedule_dispatcher
from bot.core.broadcasts import BroadcastPlanner, Draft
from bot.core.clock import SystemClock
from bot.core.conversation import Conversation
from bot.core.coordination import Coordination
from bot.core.journal import Journal
from bot.core.quiet_hours import QuietHours, Span
from bot.core.types import Person
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.render import message_parts
from bot.delivery.sender import BULK_CONNECTIONS, TelegramSender
from bot.runtime import build_conversation, dispatch_batch_size
from content.library import load_library
from storage import broadcasts as stored_broadcasts
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import User
from tests.fake_bot_api import FakeBotApi

TOKEN = "123456:BENCH-token-not-real"
FIRST_RECIPIENT = 3_000_000
FIRST_LIVE_CHAT = 9_000_000
QUESTIONS = [
    "how do I withdraw my money from fiverr",
    "payoneer account kaise banaen",
    "why was my upwork profile rejected",
    "how many connects does a proposal need",
    "what should I write in my first proposal",
    "fiverr gig ki price kya rakhun",
    "is it safe to pay for a verified account",
    "how do I get my first order on fiverr",
]
NEVER_QUIET = QuietHours(night=Span(dt.time(0), dt.time(0)), friday_prayer=None)


async def add_recipients(db: Database, count: int) -> None:
    now = dt.datetime.now(dt.UTC)
    for start in range(0, count, 5000):
        rows = [
            {"channel": "telegram", "external_id": str(FIRST_RECIPIENT + i), "language": "ur" if i % 3 else "en",
             "language_chosen": True, "research_consent": False, "created_at": now, "last_seen_at": now,
             "nudge_pace": "daily"}
            for i in range(start, min(count, start + 5000))
        ]  # fmt: skip
        async with db.write() as session:
            await session.execute(insert(User), rows)


class LiveChat:
    """Live users asking questions: each turn is handled by the core and sent through the application's bot."""

    def __init__(self, conversation: Conversation, bot: ExtBot[Any], pacer: Pacer, users: int, every: float) -> None:
        self.conversation = conversation
        self.bot = bot
        self.pacer = pacer
        self.users = users
        self.every = every
        self.samples: list[float] = []
        self.failures = 0

    async def one_user(self, index: int, stop: asyncio.Event) -> None:
        person = Person(channel="cli", external_id=f"bench-live-{index}", display_name=f"Live {index}")
        chat = FIRST_LIVE_CHAT + index
        turn = index
        await asyncio.sleep(self.every * index / self.users)  # spread the users over the interval
        while not stop.is_set():
            started = time.perf_counter()
            reply = await self.conversation.handle_text(person, QUESTIONS[turn % len(QUESTIONS)])
            try:
                for text, keyboard in message_parts(reply):
                    self.pacer.note_live()
                    await self.bot.send_message(chat, text, reply_markup=keyboard)
                self.samples.append((time.perf_counter() - started) * 1000)
            except Exception:  # noqa: BLE001 - counted, not fatal
                self.failures += 1
            turn += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.every)

    async def run_until(self, stop: asyncio.Event) -> None:
        await asyncio.gather(*(self.one_user(i, stop) for i in range(self.users)))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    database_url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench-broadcast.db"
    await upgrade_async(database_url)
    options = {"pool_size": 40, "max_overflow": 0} if "postgresql" in database_url else {}
    db = Database.connect(database_url, **options)
    library = load_library()
    clock = SystemClock()
    journal = Journal(db)
    journal.start()
    coordination = Coordination(library=library, db=db, clock=clock, journal=journal)
    conversation = build_conversation(
        library=library, db=db, journal=journal, clock=clock, rasa=None, coordination=coordination
    )
    api = FakeBotApi(rate_limit=30, retry_after=1)
    await api.start()
    # the same connection pools as `rahnuma run`: bot.app.bulk_bot's and PTB's application default (256)
    bulk_bot: ExtBot[None] = ExtBot(
        TOKEN,
        base_url=api.bot_api_url,
        request=HTTPXRequest(connection_pool_size=BULK_CONNECTIONS, read_timeout=15, write_timeout=15),
    )
    live_bot: ExtBot[Any] = ExtBot(
        TOKEN,
        base_url=api.bot_api_url,
        rate_limiter=AIORateLimiter(max_retries=2),
        request=HTTPXRequest(connection_pool_size=256),
    )
    await bulk_bot.initialize()
    await live_bot.initialize()
    pacer = Pacer(args.rate)
    live = LiveChat(conversation, live_bot, pacer, args.live_users, args.live_every)
    result: dict[str, Any] = {"recipients": args.recipients, "configured_rate": args.rate, "database": db.dialect}
    try:
        await add_recipients(db, args.recipients)
        # warm-up, then live replies without a broadcast
        warm = asyncio.Event()
        warm_task = asyncio.create_task(live.run_until(warm))
        await asyncio.sleep(3)
        warm.set()
        await warm_task
        live.samples.clear()
        quiet = asyncio.Event()
        task = asyncio.create_task(live.run_until(quiet))
        await asyncio.sleep(args.baseline_seconds)
        quiet.set()
        await task
        baseline = list(live.samples)
        live.samples.clear()

        # the broadcast: confirmed and expanded as the CLI or the wizard does it
        service = coordination.broadcasts
        broadcast_id = await service.create(Draft(text_en="DigiSkills batch 9 is open", text_ur="ڈیجی سکلز بیچ 9"))
        batch_times: list[float] = []
        real_advance = stored_broadcasts.advance

        async def timed_advance(session: Any, **kwargs: Any) -> None:
            await real_advance(session, **kwargs)
            batch_times.append(time.perf_counter())

        stored_broadcasts.advance = timed_advance  # type: ignore[assignment]
        expand_started = time.perf_counter()
        confirmation = await service.confirm(broadcast_id, twice=False, source="bench")
        expand_seconds = time.perf_counter() - expand_started
        stored_broadcasts.advance = real_advance  # type: ignore[assignment]
        gaps = [b - a for a, b in zip([expand_started, *batch_times], batch_times, strict=False)]
        result.update(
            enqueued=confirmation.recipients,
            expansion_seconds=round(expand_seconds, 2),
            expansion_batches=len(batch_times),
            longest_batch_seconds=round(max(gaps, default=0.0), 3),
        )

        dispatcher = Dispatcher(
            db=db, clock=clock, sender=TelegramSender(bulk_bot, pacer), planners=[BroadcastPlanner(service, clock)],
            quiet_hours=NEVER_QUIET, worker="bench", batch_size=args.batch or dispatch_batch_size(args.rate, 1.0),
        )  # fmt: skip
        busy = asyncio.Event()
        live_task = asyncio.create_task(live.run_until(busy))
        started = time.perf_counter()
        # the dispatcher runs as in `rahnuma run`: the application's JobQueue, scheduled by bot.app
        job_queue: JobQueue[Any] = JobQueue()
        application = Application.builder().token(TOKEN).base_url(api.bot_api_url).updater(None).build()
        job_queue.set_application(application)
        await job_queue.start()
        schedule_dispatcher(job_queue, dispatcher, interval=1.0)
        try:
            while True:
                await asyncio.sleep(1.0)
                summary = await service.report(broadcast_id)
                assert summary is not None
                if not summary.open:
                    break
                if time.perf_counter() - started > args.recipients / args.rate * 3 + 120:
                    raise RuntimeError(f"the broadcast did not finish: {summary.counts}")
        finally:
            await job_queue.stop(wait=True)
        outcomes: Counter[str] = Counter()
        busy.set()
        await live_task
        during = list(live.samples)
        recipients = set(range(FIRST_RECIPIENT, FIRST_RECIPIENT + args.recipients))
        bulk = [m for m in api.sent if m.chat_id in recipients]
        delivered = Counter(m.chat_id for m in bulk)
        span = bulk[-1].at - bulk[0].at if len(bulk) > 1 else float("nan")
        achieved = (len(bulk) - 1) / span if span else float("nan")
        # live replies take slots of the same budget (the Pacer counts them first): all sends in the span
        live_chats = set(range(FIRST_LIVE_CHAT, FIRST_LIVE_CHAT + args.live_users))
        live_in_span = sum(1 for m in api.sent if m.chat_id in live_chats and bulk[0].at <= m.at <= bulk[-1].at)
        total_rate = (len(bulk) - 1 + live_in_span) / span if span else float("nan")
        final = await service.report(broadcast_id)
        assert final is not None
        result.update(
            sent=len(bulk),
            lost=len(recipients - set(delivered)),
            duplicated=sum(count - 1 for count in delivered.values() if count > 1),
            seconds=round(span, 1),
            achieved_rate=round(achieved, 2),
            achieved_over_configured=round(achieved / args.rate, 3),
            live_sends_in_span=live_in_span,
            total_rate=round(total_rate, 2),
            total_over_configured=round(total_rate / args.rate, 3),
            refused_429=api.refused[429],
            outbox_counts=final.counts,
            dispatcher_outcomes=dict(outcomes),
            live_users=args.live_users,
            live_every_seconds=args.live_every,
            live_baseline={
                "replies": len(baseline),
                "p50_ms": round(percentile(baseline, 0.5), 1),
                "p95_ms": round(percentile(baseline, 0.95), 1),
            },  # fmt: skip
            live_during_broadcast={
                "replies": len(during),
                "p50_ms": round(percentile(during, 0.5), 1),
                "p95_ms": round(percentile(during, 0.95), 1),
            },  # fmt: skip
            live_failures=live.failures,
        )
        return result
    finally:
        await bulk_bot.shutdown()
        await live_bot.shutdown()
        await api.stop()
        await journal.aclose()
        await db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=25.0, help="the configured send rate (RAHNUMA_SEND_RATE)")
    parser.add_argument("--live-users", type=int, default=20, help="users chatting while the broadcast runs")
    parser.add_argument("--live-every", type=float, default=5.0, help="seconds between one live user's messages")
    parser.add_argument("--baseline-seconds", type=float, default=60.0, help="live chat without a broadcast")
    parser.add_argument("--batch", type=int, help="dispatcher batch size (default: as the bot)")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(
        f"{result['recipients']} recipients at {result['configured_rate']:g}/s ({result['database']}): sent "
        f"{result['sent']} in {result['seconds']} s = {result['achieved_rate']}/s "
        f"(achieved/configured {result['achieved_over_configured']}), lost {result['lost']}, duplicated "
        f"{result['duplicated']}, 429s {result['refused_429']}; with the {result['live_sends_in_span']} live replies "
        f"in that time {result['total_rate']}/s of the shared budget ({result['total_over_configured']})\n"
        f"expansion: {result['expansion_seconds']} s in {result['expansion_batches']} batches, longest "
        f"{result['longest_batch_seconds']} s\n"
        f"live replies ({result['live_users']} users, one message each every {result['live_every_seconds']:g} s): "
        f"without broadcast p50 {result['live_baseline']['p50_ms']} ms p95 {result['live_baseline']['p95_ms']} ms "
        f"({result['live_baseline']['replies']} replies); during p50 {result['live_during_broadcast']['p50_ms']} ms "
        f"p95 {result['live_during_broadcast']['p95_ms']} ms ({result['live_during_broadcast']['replies']} replies); "
        f"failures {result['live_failures']}"
    )
    return 0 if result["lost"] == 0 and result["duplicated"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
