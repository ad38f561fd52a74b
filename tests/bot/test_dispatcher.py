"""The dispatcher sends due outbox rows through a real PTB bot to a local stand-in for Telegram's servers: held in
quiet hours, dropped when stale, blocked users marked, flood limits waited out, leases that expire recovered."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import select
from telegram.ext import ExtBot

from bot.core.clock import FrozenClock
from bot.core.journal import Journal
from bot.core.nudges import NudgePlanner
from bot.core.outbox import outbound
from bot.core.types import Person, Reply
from bot.delivery.dispatcher import STARTS_PER_STEP, Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.sender import SendResult, TelegramSender
from bot.runtime import build_conversation
from content.library import Library
from nlu.lexical import LexicalSearch
from storage import outbox as stored_outbox
from storage.db import Database
from storage.events import list_events
from storage.models import OutboxMessage
from tests.fake_bot_api import FakeBotApi
from tests.helpers import stored_user

NIGHT_IN_KARACHI = dt.datetime(2026, 11, 26, 22, 0, tzinfo=dt.UTC)  # 03:00 PKT, Friday
MORNING_IN_KARACHI = dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC)  # 09:00 PKT
TOKEN = "123456:FAKE-token-for-dispatcher-tests"


@pytest.fixture
async def sender(telegram: FakeBotApi) -> AsyncIterator[TelegramSender]:
    bot = ExtBot(TOKEN, base_url=telegram.bot_api_url)
    await bot.initialize()
    yield TelegramSender(bot, Pacer(500))
    await bot.shutdown()


def dispatcher_for(db: Database, clock: FrozenClock, sender: TelegramSender, **options: object) -> Dispatcher:
    return Dispatcher(db=db, clock=clock, sender=sender, worker="test-worker", **options)  # type: ignore[arg-type]


async def add_user(db: Database, clock: FrozenClock, library: Library, lexical: LexicalSearch, chat: int) -> int:
    conversation = build_conversation(
        library=library, db=db, journal=Journal(db), clock=clock, rasa=None, lexical=lexical
    )
    person = Person(channel="telegram", external_id=str(chat), display_name=f"User {chat}")
    await conversation.command(person, "start")
    await conversation.journal.flush()
    user = await stored_user(db, person)
    assert user is not None
    return user.id


async def enqueue(
    db: Database,
    clock: FrozenClock,
    *,
    user_id: int | None,
    chat: int,
    kind: str = "nudge",
    key: str = "k",
    expires_at: dt.datetime | None = None,
) -> None:
    message = outbound(
        kind=kind, reply=Reply(text=f"<b>Hello</b> {key}"), chat_id=chat, user_id=user_id, dedupe_key=key,
        not_before=clock.now(), expires_at=expires_at, campaign="test",
    )  # fmt: skip
    async with db.write() as session:
        await stored_outbox.enqueue(session, messages=[message], now=clock.now())


async def rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_a_due_nudge_is_sent_once_and_recorded(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    clock = FrozenClock(MORNING_IN_KARACHI)
    user_id = await add_user(committed_db, clock, library, lexical, chat=9001)
    clock.advance(days=1, hours=1)
    dispatcher = dispatcher_for(committed_db, clock, sender, planners=[NudgePlanner(library, committed_db, clock)])
    report = await dispatcher.run_once()
    again = await dispatcher.run_once()
    assert report.planned == 1 and report.outcomes["sent"] == 1 and again.claimed == 0
    [message] = telegram.delivered_to(9001)
    assert "User" in message.text and message.reply_markup is not None
    [row] = await rows(committed_db)
    assert (row.status, row.telegram_message_id, row.sent_at) == ("sent", message.message_id, clock.now())
    async with committed_db.read() as session:
        kinds = [e.kind for e in await list_events(session, user_id=user_id)]
    assert kinds.count("nudge_planned") == 1 and kinds.count("nudge_sent") == 1


async def test_a_nudge_due_at_night_waits_for_nine_in_the_morning_in_karachi(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    clock = FrozenClock(NIGHT_IN_KARACHI)
    user_id = await add_user(committed_db, clock, library, lexical, chat=9002)
    await enqueue(committed_db, clock, user_id=user_id, chat=9002)
    dispatcher = dispatcher_for(committed_db, clock, sender)
    held = await dispatcher.run_once()
    assert held.outcomes["held"] == 1 and telegram.sent == []
    [row] = await rows(committed_db)
    assert row.status == "pending" and row.not_before == MORNING_IN_KARACHI
    clock.set(MORNING_IN_KARACHI - dt.timedelta(minutes=1))
    assert (await dispatcher.run_once()).claimed == 0
    clock.set(MORNING_IN_KARACHI)
    assert (await dispatcher.run_once()).outcomes["sent"] == 1
    assert len(telegram.delivered_to(9002)) == 1


async def test_a_relay_is_not_held_at_night(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    """A coordinator's answer to a question the user asked goes at once: only proactive kinds wait for morning."""
    clock = FrozenClock(NIGHT_IN_KARACHI)
    user_id = await add_user(committed_db, clock, library, lexical, chat=9003)
    await enqueue(committed_db, clock, user_id=user_id, chat=9003, kind="relay")
    assert (await dispatcher_for(committed_db, clock, sender).run_once()).outcomes["sent"] == 1


async def test_a_nudge_held_past_its_expiry_is_dropped_never_sent_stale(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    clock = FrozenClock(NIGHT_IN_KARACHI)
    user_id = await add_user(committed_db, clock, library, lexical, chat=9004)
    await enqueue(committed_db, clock, user_id=user_id, chat=9004, expires_at=NIGHT_IN_KARACHI + dt.timedelta(hours=2))
    report = await dispatcher_for(committed_db, clock, sender).run_once()
    assert report.outcomes["expired"] == 1 and telegram.sent == []
    assert [r.status for r in await rows(committed_db)] == ["expired"]


async def test_a_user_who_blocked_the_bot_is_marked_and_gets_nothing_more(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    clock = FrozenClock(MORNING_IN_KARACHI)
    user_id = await add_user(committed_db, clock, library, lexical, chat=9005)
    telegram.blocked_chats.add(9005)
    await enqueue(committed_db, clock, user_id=user_id, chat=9005, key="first")
    later = outbound(kind="broadcast", reply=Reply(text="later"), chat_id=9005, user_id=user_id, dedupe_key="later",
                     not_before=clock.now() + dt.timedelta(hours=3))  # fmt: skip
    async with committed_db.write() as session:
        await stored_outbox.enqueue(session, messages=[later], now=clock.now())
    report = await dispatcher_for(committed_db, clock, sender).run_once()
    assert report.outcomes["blocked"] == 1
    assert [r.status for r in await rows(committed_db)] == ["blocked", "blocked"]  # the waiting one too
    async with committed_db.read() as session:
        kinds = [e.kind for e in await list_events(session, user_id=user_id)]
    assert "bot_blocked" in kinds
    clock.advance(hours=4)
    assert (await dispatcher_for(committed_db, clock, sender).run_once()).claimed == 0
    assert telegram.sent == []


async def test_flood_limits_are_waited_out_and_nothing_is_lost_or_repeated(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    """Telegram answers 429 with retry_after above 20 messages a second: every message still arrives, once."""
    telegram.rate_limit = 20
    clock = FrozenClock(MORNING_IN_KARACHI)
    messages = [
        outbound(
            kind="broadcast",
            reply=Reply(text=f"tip {i}"),
            chat_id=10_000 + i,
            user_id=None,
            dedupe_key=f"b{i}",
            not_before=clock.now(),
        )  # fmt: skip
        for i in range(60)
    ]
    async with committed_db.write() as session:
        await stored_outbox.enqueue(session, messages=messages, now=clock.now())
    dispatcher = dispatcher_for(committed_db, clock, sender, batch_size=30)
    for _ in range(10):
        await dispatcher.run_once()
        if len(telegram.sent) == 60:
            break
        clock.advance(seconds=2)  # retry_after is 1 s
    assert sorted(m.chat_id for m in telegram.sent) == [10_000 + i for i in range(60)]
    assert telegram.refused[429] > 0
    assert {r.status for r in await rows(committed_db)} == {"sent"}


async def test_a_lease_that_runs_out_returns_the_row_and_a_started_nudge_becomes_uncertain(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender
) -> None:
    """A dispatcher that died after claiming: its rows go back to pending; a nudge whose send had started is
    marked uncertain, not repeated (a relay would be repeated: at-least-once)."""
    clock = FrozenClock(MORNING_IN_KARACHI)
    for key, kind in (("claimed-only", "nudge"), ("sending-nudge", "nudge"), ("sending-relay", "relay")):
        await enqueue(committed_db, clock, user_id=None, chat=11_000 + len(key), kind=kind, key=key)
    lease = dt.timedelta(seconds=60)
    async with committed_db.write() as session:
        claimed = await stored_outbox.claim_due(session, now=clock.now(), limit=10, worker="dead", lease=lease)
    async with committed_db.write() as session:
        for row in claimed:
            stored = await session.get(OutboxMessage, row.id)
            assert stored is not None
            if stored.dedupe_key.startswith("sending"):
                await stored_outbox.start_sending(
                    session, message_ids=[row.id], worker="dead", now=clock.now(), lease=lease
                )
    clock.advance(minutes=2)
    report = await dispatcher_for(committed_db, clock, sender).run_once()
    by_key = {r.dedupe_key: r.status for r in await rows(committed_db)}
    assert by_key == {"claimed-only": "sent", "sending-nudge": "uncertain", "sending-relay": "sent"}
    assert report.outcomes["sent"] == 2 and len(telegram.sent) == 2


async def test_a_network_error_is_retried_with_backoff(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender
) -> None:
    clock = FrozenClock(MORNING_IN_KARACHI)
    telegram.bad_gateway[12_000] = 1
    await enqueue(committed_db, clock, user_id=None, chat=12_000, kind="system")
    dispatcher = dispatcher_for(committed_db, clock, sender)
    assert (await dispatcher.run_once()).outcomes["retry"] == 1
    clock.advance(seconds=6)
    assert (await dispatcher.run_once()).outcomes["sent"] == 1
    assert len(telegram.delivered_to(12_000)) == 1


async def test_a_nudge_answered_within_two_days_counts_as_responded(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    clock = FrozenClock(MORNING_IN_KARACHI)
    user_id = await add_user(committed_db, clock, library, lexical, chat=9006)
    clock.advance(days=1, hours=1)
    await dispatcher_for(committed_db, clock, sender, planners=[NudgePlanner(library, committed_db, clock)]).run_once()
    clock.advance(hours=5)
    journal = Journal(committed_db)
    conversation = build_conversation(library=library, db=committed_db, journal=journal, clock=clock, rasa=None,
                                      lexical=lexical)  # fmt: skip
    await conversation.handle_text(Person(channel="telegram", external_id="9006"), "how do i make a fiverr gig")
    assert await journal.flush()
    async with committed_db.read() as session:
        [responded] = await list_events(session, user_id=user_id, kind="nudge_responded")
    assert (
        responded.data is not None and responded.data["rule"] == "welcome_d1" and responded.data["after_minutes"] == 300
    )
    [row] = await rows(committed_db)
    assert row.responded_at == clock.now()


class RecordingSender:
    """Stands in for Telegram's side only: notes when each send begins and reports it sent."""

    def __init__(self, order: list[str]) -> None:
        self.order = order

    async def send(
        self, chat_id: int, payload: dict[str, object], *, go_ahead: Callable[[], Awaitable[bool]] | None = None
    ) -> SendResult:
        if not self.order:  # the first send: a live reply becomes ready now, as one arriving mid-batch would
            asyncio.get_running_loop().call_soon(self.order.append, "live")
        self.order.append("send")
        if go_ahead is not None and not await go_ahead():
            return SendResult("skipped")
        return SendResult("sent", message_id=chat_id)


async def test_a_live_reply_is_not_held_behind_the_start_of_a_whole_batch(committed_db: Database) -> None:
    """A batch of 200 started in one turn of the event loop held every live reply for up to 90 ms at 200/s: the
    dispatcher starts a few sends at a time and lets ready work run in between."""
    clock = FrozenClock(MORNING_IN_KARACHI)
    for chat in range(40):
        await enqueue(committed_db, clock, user_id=None, chat=5000 + chat, kind="broadcast", key=f"b{chat}")
    order: list[str] = []
    dispatcher = Dispatcher(db=committed_db, clock=clock, sender=RecordingSender(order), worker="w", batch_size=40)
    report = await dispatcher.run_once()
    assert report.outcomes["sent"] == 40 and order.count("send") == 40
    assert order.index("live") <= STARTS_PER_STEP < 40
