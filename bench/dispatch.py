"""Dispatch throughput and live-reply latency against a local fake Bot API that enforces a rate limit.

N outbox rows (broadcast kind, one per chat; 2% of the chats have blocked the bot) are delivered by the real
dispatcher (scheduled on PTB's JobQueue exactly as `rahnuma run` schedules it: `bot.app.schedule_dispatcher`, the
batch size of `bot.runtime.dispatch_batch_size`, the bulk bot's connection pool) through the real sender and pacer
to `tests/fake_bot_api.py`, which answers 429 with retry_after above its limit. Meanwhile live replies (the
core's turn + a send through the application's own bot) run every 200 ms; their p95 is compared with the same
replies before the dispatch.
Usage: `.venv/bin/python -m bench.dispatch [--rows 10000] [--rate 25 200] [--database-url URL] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import httpx
from sqlalchemy import func, select
from telegram.ext import AIORateLimiter, Application, ExtBot, JobQueue
from telegram.request import HTTPXRequest

from bench.common import fresh_database, percentile
from bot.app import schedule_dispatcher
from bot.core.clock import SystemClock
from bot.core.journal import Journal
from bot.core.outbox import outbound
from bot.core.types import Person, Reply
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.render import message_parts
from bot.delivery.sender import BULK_CONNECTIONS, TelegramSender
from bot.runtime import build_conversation, dispatch_batch_size
from content.library import load_library
from storage import outbox as stored_outbox
from storage.db import Database
from storage.migrate import upgrade_async
from storage.models import OutboxMessage

TOKEN = "123456:BENCH-token"
QUESTIONS = ["how do I withdraw money from fiverr", "upwork profile rejected why", "payoneer kaise banaen"]


async def live_replies(  # type: ignore[no-untyped-def]
    conversation, bot: ExtBot[Any], pacer: Pacer, stop: asyncio.Event, sent_at: list[float] | None = None
) -> list[float]:
    """A user asking a question every 200 ms: the time from receiving it to Telegram accepting the answer. Each
    message sent is noted in `sent_at`: live replies take slots of the same rate budget as the bulk (the Pacer)."""
    samples = []
    index = 0
    while not stop.is_set():
        person = Person(channel="telegram", external_id=str(900_001 + index % 48), display_name="Live")
        started = time.perf_counter()
        reply = await conversation.handle_text(person, QUESTIONS[index % len(QUESTIONS)])
        for part, keyboard in message_parts(reply):
            pacer.note_live()
            await bot.send_message(int(person.external_id), part, reply_markup=keyboard)
            if sent_at is not None:
                sent_at.append(time.perf_counter())
        samples.append((time.perf_counter() - started) * 1000)
        index += 1
        await asyncio.sleep(0.2)
    return samples


async def start_fake(rate_limit: float) -> tuple[asyncio.subprocess.Process, str]:
    """The fake Bot API in a process of its own, so its work does not slow the dispatcher's event loop."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fake_bot_api", "--rate-limit", str(rate_limit), "--blocked-every", "50",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stdout is not None
    url = (await process.stdout.readline()).decode().strip()
    return process, url


async def measure(url: str | None, rows: int, rate: float) -> dict[str, float | int | str]:
    database_url = await fresh_database(url, f"dispatch-{rows}-{rate:.0f}")
    await upgrade_async(database_url)
    db = Database.connect(database_url)
    fake, api_url = await start_fake(rate * 1.2)
    chats = list(range(1_000_000, 1_000_000 + rows))
    blocked = {chat for chat in chats if chat % 50 == 0}  # 2%
    now = SystemClock().now()
    messages = [
        outbound(
            kind="broadcast",
            reply=Reply(text=f"Tip of the week for chat {chat}: keep proposals short."),
            chat_id=chat,
            user_id=None,
            dedupe_key=f"bench:{chat}",
            not_before=now,
            campaign="broadcast:bench",
        )  # fmt: skip
        for chat in chats
    ]
    for start in range(0, rows, 1000):
        async with db.write() as session:
            await stored_outbox.enqueue(session, messages=messages[start : start + 1000], now=now)
    bulk = ExtBot(
        TOKEN, base_url=api_url, request=HTTPXRequest(connection_pool_size=BULK_CONNECTIONS)
    )  # as bot.app's bulk bot
    live = ExtBot(TOKEN, base_url=api_url, rate_limiter=AIORateLimiter(max_retries=2))
    await bulk.initialize()
    await live.initialize()
    pacer = Pacer(rate)
    clock = SystemClock()
    dispatcher = Dispatcher(db=db, clock=clock, sender=TelegramSender(bulk, pacer), worker="bench",
                            batch_size=dispatch_batch_size(rate, 1.0))  # fmt: skip
    journal = Journal(db)
    journal.start()
    conversation = build_conversation(library=load_library(), db=db, journal=journal, clock=clock, rasa=None)
    # Built before the baseline: building it imports PTB's application modules and makes SSL contexts, which held
    # the event loop for up to 90 ms in the middle of the live replies measured during the dispatch.
    job_queue: JobQueue[Any] = JobQueue()
    application = Application.builder().token(TOKEN).base_url(api_url).updater(None).build()
    job_queue.set_application(application)
    try:
        stop = asyncio.Event()
        baseline_task = asyncio.create_task(live_replies(conversation, live, pacer, stop))
        await asyncio.sleep(10)
        stop.set()
        baseline = await baseline_task
        stop = asyncio.Event()
        live_sent_at: list[float] = []
        during_task = asyncio.create_task(live_replies(conversation, live, pacer, stop, live_sent_at))
        started = time.perf_counter()
        await job_queue.start()
        schedule_dispatcher(job_queue, dispatcher, interval=1.0)
        try:
            while True:
                await asyncio.sleep(1.0)
                async with db.read() as session:
                    open_rows = await session.scalar(
                        select(func.count())
                        .select_from(OutboxMessage)
                        .where(OutboxMessage.status.in_(("pending", "claimed")))
                    )
                if not open_rows:
                    break
        finally:
            await job_queue.stop(wait=True)
        finished = time.perf_counter()
        elapsed = finished - started
        live_rate = sum(1 for at in live_sent_at if started <= at <= finished) / elapsed
        stop.set()
        during = await during_task
        async with db.read() as session:
            counts = await stored_outbox.status_counts(session, campaign="broadcast:bench")
        async with httpx.AsyncClient() as http:
            stats = (await http.get(api_url.removesuffix("/bot") + f"/_stats?chats={chats[0]}-{chats[-1]}")).json()
    finally:
        await journal.aclose()
        await bulk.shutdown()
        await live.shutdown()
        fake.terminate()
        await fake.wait()
        await db.dispose()
    wanted = set(chats)
    per_chat = {int(chat): n for chat, n in stats["delivered"].items() if int(chat) in wanted}
    bulk_count = sum(per_chat.values())
    # The bulk rate over the span of the bulk delivery (the fake's clock: its first to its last message).
    span = stats["last_at"] - stats["first_at"]
    achieved = (bulk_count - 1) / span if span > 0 else 0.0
    expected_sent = rows - len(blocked)
    return {
        "backend": database_url.split(":", 1)[0].split("+")[0],
        "rows": rows,
        "configured_rate": rate,
        "achieved_rate": round(achieved, 2),
        "ratio": round(achieved / rate, 3),
        "live_rate": round(live_rate, 2),
        "ratio_with_live": round((achieved + live_rate) / rate, 3),
        "sent": counts.get(("broadcast", "sent"), 0),
        "blocked": counts.get(("broadcast", "blocked"), 0),
        "lost": expected_sent - len(per_chat),
        "duplicated": sum(n - 1 for n in per_chat.values()),
        "other_statuses": json.dumps({s: n for (_, s), n in counts.items() if s not in ("sent", "blocked")}),
        "http_429": stats["refused"].get("429", 0),
        "live_p95_ms_before": round(percentile(baseline, 0.95), 1),
        "live_p95_ms_during": round(percentile(during, 0.95), 1),
        "live_p50_ms_during": round(statistics.median(during), 1) if during else 0.0,
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rate", type=float, nargs="+", default=[25.0, 200.0])
    parser.add_argument("--database-url", help="PostgreSQL URL (its public schema is dropped); default SQLite")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [asyncio.run(measure(args.database_url, args.rows, rate)) for rate in args.rate]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| backend | rows | rate | bulk achieved | + live | (bulk + live) / rate | sent | blocked (403) | lost | "
          "duplicated | 429s | live p95 before | live p95 during | time |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['backend']} | {r['rows']:,} | {r['configured_rate']:.0f}/s | {r['achieved_rate']}/s | "
            f"{r['live_rate']}/s | **{r['ratio_with_live']}** | "
            f"{r['sent']:,} | {r['blocked']} | {r['lost']} | {r['duplicated']} | {r['http_429']} | "
            f"{r['live_p95_ms_before']} ms | {r['live_p95_ms_during']} ms | {r['seconds']} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
