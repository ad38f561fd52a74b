"""Per-message handling time through the real core, the real Rasa server and a real database.

Reports p50/p95 of the whole turn (`Conversation.handle_text`; its events are queued to the journal), of Rasa's parse as
the bot sees it (HTTP round trip), and of the bot's own overhead (turn minus parse), at 1 and at 50 concurrent
chats. Usage: `.venv/bin/python bench/latency.py [--messages 300] [--database-url URL] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import statistics
import tempfile
import time

from bench.common import percentile
from bot.core.clock import SystemClock
from bot.core.conversation import Conversation
from bot.core.journal import Journal
from bot.core.types import Person
from bot.evaluation import load_examples
from bot.runtime import build_conversation
from bot.settings import PROJECT_ROOT, load_settings
from content.library import load_library
from nlu import rasa_process
from nlu.client import RasaClient
from nlu.understanding import Understanding
from storage.db import Database
from storage.migrate import upgrade_async

last_parse_ms: contextvars.ContextVar[float] = contextvars.ContextVar("last_parse_ms", default=0.0)


class TimedRasaClient(RasaClient):
    """The real client, remembering how long each parse took as seen from the bot (per asyncio task)."""

    async def parse(self, text: str) -> Understanding:
        started = time.perf_counter()
        try:
            return await super().parse(text)
        finally:
            last_parse_ms.set((time.perf_counter() - started) * 1000)


async def one_chat(conversation: Conversation, chat: int, texts: list[str], samples: list[tuple[float, float]]) -> None:
    person = Person(channel="cli", external_id=f"bench-{chat}", display_name=f"Bench {chat}")
    for text in texts:
        started = time.perf_counter()
        await conversation.handle_text(person, text)
        total = (time.perf_counter() - started) * 1000
        samples.append((total, last_parse_ms.get()))


async def scenario(conversation: Conversation, texts: list[str], *, chats: int, messages: int) -> dict[str, float]:
    per_chat = max(1, messages // chats)
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(one_chat(conversation, chat, [texts[(chat * per_chat + i) % len(texts)] for i in range(per_chat)], samples)
          for chat in range(chats))
    )  # fmt: skip
    wall = time.perf_counter() - started
    totals = [t for t, _ in samples]
    parses = [p for _, p in samples]
    overheads = [t - p for t, p in samples]
    return {
        "chats": chats, "messages": len(samples), "throughput_msg_s": len(samples) / wall,
        "turn_p50_ms": percentile(totals, 0.5), "turn_p95_ms": percentile(totals, 0.95),
        "parse_p50_ms": percentile(parses, 0.5), "parse_p95_ms": percentile(parses, 0.95),
        "overhead_p50_ms": percentile(overheads, 0.5), "overhead_p95_ms": percentile(overheads, 0.95),
        "overhead_mean_ms": statistics.fmean(overheads),
    }  # fmt: skip


async def run(args: argparse.Namespace, rasa_url: str) -> list[dict[str, float]]:
    database_url = args.database_url or f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/bench.db"
    await upgrade_async(database_url)
    options = {"pool_size": 60, "max_overflow": 0} if "postgresql" in database_url else {}
    db = Database.connect(database_url, **options)
    journal = Journal(db)
    journal.start()
    rasa = TimedRasaClient(rasa_url, timeout_seconds=30)
    conversation = build_conversation(library=load_library(), db=db, journal=journal, clock=SystemClock(), rasa=rasa)
    texts = [example.text for example in load_examples()]
    try:
        await scenario(conversation, texts, chats=5, messages=50)  # warm-up: connections, caches
        return [await scenario(conversation, texts, chats=chats, messages=args.messages) for chats in (1, 50)]
    finally:
        await journal.aclose()
        await rasa.aclose()
        await db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=300, help="messages per scenario")
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument("--rasa-url", help="use a Rasa server that is already running (e.g. pinned to its own core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.rasa_url:
        return report(asyncio.run(run(args, args.rasa_url)), as_json=args.json)
    settings = load_settings()
    with rasa_process.serving(settings.rasa_executable, log_file=PROJECT_ROOT / "data" / "rasa-bench.log") as url:
        results = asyncio.run(run(args, url))
    return report(results, as_json=args.json)


def report(results: list[dict[str, float]], *, as_json: bool) -> int:
    if as_json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        "| chats | messages | msg/s | turn p50 | turn p95 | Rasa parse p50 | parse p95 | overhead p50 | overhead p95 |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['chats']:.0f} | {r['messages']:.0f} | {r['throughput_msg_s']:.1f} | {r['turn_p50_ms']:.1f} ms | "
            f"{r['turn_p95_ms']:.1f} ms | {r['parse_p50_ms']:.1f} ms | {r['parse_p95_ms']:.1f} ms | "
            f"{r['overhead_p50_ms']:.2f} ms | {r['overhead_p95_ms']:.2f} ms |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
