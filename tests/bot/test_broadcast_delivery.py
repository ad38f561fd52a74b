"""Broadcasts delivered for real: through the dispatcher and a PTB bot to the local stand-in for Telegram's Bot API,
which refuses with 403 (users who blocked the bot) and 429 (flood limits with retry_after); a restart mid-way; the
CLI with --yes; and the Telegram wiring that keeps coordinator commands away from everyone else."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import insert, select
from telegram import Chat, Message, MessageEntity, Update
from telegram import User as TelegramAccount
from telegram.ext import ExtBot

from bot.app import build_application
from bot.core.broadcasts import BroadcastPlanner, Draft
from bot.core.clock import FrozenClock
from bot.core.commands import coordinator_commands
from bot.core.coordination import Coordination, CoordinationSettings
from bot.core.journal import Journal
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.sender import TelegramSender
from bot.handlers import coordinators
from bot.settings import PROJECT_ROOT, load_settings
from content.library import Library
from storage.db import Database
from storage.models import OutboxMessage, User
from tests.fake_bot_api import FakeBotApi

COORDINATOR = 500_001
GROUP = -100_555_000
MORNING = dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC)  # 10:00 in Karachi
TOKEN = "123456:FAKE-token-for-broadcast-tests"


@dataclass
class FloodingBotApi(FakeBotApi):
    """Telegram's servers when a bot floods them: besides the sliding-window rate limit, every `flood_every`-th
    message is refused with 429 and retry_after (deterministic, however fast or slow this machine is)."""

    flood_every: int = 0
    _seen: int = 0

    def _over_limit(self) -> bool:
        self._seen += 1
        if self.flood_every and self._seen % self.flood_every == 0:
            return True
        return super()._over_limit()


@pytest.fixture
async def telegram() -> AsyncIterator[FloodingBotApi]:
    api = FloodingBotApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def bot(telegram: FakeBotApi) -> AsyncIterator[ExtBot[None]]:
    bot: ExtBot[None] = ExtBot(TOKEN, base_url=telegram.bot_api_url)
    await bot.initialize()
    yield bot
    await bot.shutdown()


async def add_users(db: Database, now: dt.datetime, count: int, first: int) -> dict[int, int]:
    """user id -> Telegram chat id."""
    rows = [
        {"channel": "telegram", "external_id": str(first + i), "display_name": f"Trainee {i}", "language": "en",
         "language_chosen": True, "research_consent": False, "created_at": now, "last_seen_at": now,
         "nudge_pace": "daily"}
        for i in range(count)
    ]  # fmt: skip
    async with db.write() as session:
        await session.execute(insert(User), rows)
        found = await session.execute(select(User.id, User.external_id).where(User.channel == "telegram"))
        return {int(user_id): int(external) for user_id, external in found}


async def outbox(db: Database, campaign: str) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxMessage).where(OutboxMessage.campaign == campaign)))


def coordination_for(library: Library, db: Database, clock: FrozenClock) -> Coordination:
    settings = CoordinationSettings(coordinators=frozenset({COORDINATOR}), chat_id=GROUP)
    return Coordination(library=library, db=db, clock=clock, journal=Journal(db), settings=settings)


async def deliver_everything(dispatcher: Dispatcher, clock: FrozenClock, planner: BroadcastPlanner) -> Counter[str]:
    """Dispatch until nothing is left; the clock moves on while flood limits are waited out."""
    outcomes: Counter[str] = Counter()
    for _ in range(200):
        report = await dispatcher.run_once()
        outcomes.update(report.outcomes)
        if report.claimed == 0:
            if (await planner.plan()).finished:
                await dispatcher.run_once()  # the final report to the coordinator
                return outcomes
            clock.advance(seconds=2)  # retry_after is 1 s
    raise AssertionError(f"delivery did not end: {outcomes}")


async def test_a_broadcast_to_1000_trainees_survives_blocked_users_and_flood_limits(
    committed_db: Database, telegram: FloodingBotApi, bot: ExtBot[None], library: Library
) -> None:
    """1,000 recipients, 40 of whom blocked the bot, and Telegram's flood limit answering 429: everyone else gets
    the message exactly once, the 40 are marked blocked, and the coordinator's report adds up."""
    clock = FrozenClock(MORNING)
    users = await add_users(committed_db, clock.now(), 1000, first=900_000)
    blocked = {chat for chat in users.values() if chat % 25 == 0}
    assert len(blocked) == 40
    telegram.blocked_chats |= blocked
    telegram.flood_every = 37
    coordination = coordination_for(library, committed_db, clock)
    service = coordination.broadcasts
    broadcast_id = await service.create(
        Draft(text_en="DigiSkills batch 9 registration is open"), created_by=COORDINATOR
    )
    outcome = await service.confirm(broadcast_id, twice=False, source="cli")
    assert outcome.recipients == 1000
    dispatcher = Dispatcher(db=committed_db, clock=clock, sender=TelegramSender(bot, Pacer(400)), worker="w1",
                            batch_size=100)  # fmt: skip
    outcomes = await deliver_everything(dispatcher, clock, BroadcastPlanner(service, clock))

    delivered = Counter(m.chat_id for m in telegram.sent if m.chat_id != COORDINATOR)
    assert set(delivered) == set(users.values()) - blocked
    assert set(delivered.values()) == {1}  # nobody twice
    assert telegram.refused[429] > 0 and telegram.refused[403] == 40
    assert outcomes["retry_after"] > 0
    rows = await outbox(committed_db, f"broadcast:{broadcast_id}")
    assert Counter(r.status for r in rows) == {"sent": 960, "blocked": 40}
    async with committed_db.read() as session:
        marked = set(await session.scalars(select(User.external_id).where(User.blocked_at.is_not(None))))
    assert {int(chat) for chat in marked} == blocked
    [report] = telegram.delivered_to(COORDINATOR)
    assert "sent 960" in report.text and "blocked 40" in report.text and "failed 0" in report.text
    final = await service.report(broadcast_id)
    assert final is not None and final.broadcast.status == "done"


async def test_a_new_dispatcher_after_a_crash_mid_broadcast_sends_the_rest_once(
    committed_db: Database, telegram: FakeBotApi, bot: ExtBot[None], library: Library
) -> None:
    """The first dispatcher sends half, claims the next batch and dies without sending it. A new dispatcher over
    the same database picks up when the lease runs out: nothing lost, nothing sent twice."""
    clock = FrozenClock(MORNING)
    users = await add_users(committed_db, clock.now(), 200, first=910_000)
    coordination = coordination_for(library, committed_db, clock)
    broadcast_id = await coordination.broadcasts.create(Draft(text_en="Webinar at 5"))
    await coordination.broadcasts.confirm(broadcast_id, twice=False, source="cli")
    sender = TelegramSender(bot, Pacer(1000))
    first = Dispatcher(db=committed_db, clock=clock, sender=sender, worker="crashed", batch_size=50)
    from bot.delivery.dispatcher import DispatchReport

    progress = DispatchReport()
    assert await first.deliver_batch(progress) and await first.deliver_batch(progress)
    assert len(telegram.sent) == 100
    from storage import outbox as stored_outbox

    async with committed_db.write() as session:  # the crash: claimed, never sent, never released
        stranded = await stored_outbox.claim_due(
            session, now=clock.now(), limit=50, worker="crashed", lease=dt.timedelta(seconds=60)
        )
    assert len(stranded) == 50
    second = Dispatcher(db=committed_db, clock=clock, sender=sender, worker="restarted", batch_size=50)
    await second.run_once()
    assert len(telegram.sent) == 150  # the stranded batch waits for its lease
    clock.advance(seconds=61)
    await second.run_once()
    delivered = Counter(m.chat_id for m in telegram.sent)
    assert set(delivered) == set(users.values()) and set(delivered.values()) == {1}
    assert {r.status for r in await outbox(committed_db, f"broadcast:{broadcast_id}")} == {"sent"}


async def test_the_cli_creates_a_broadcast_with_yes_and_dispatch_once_delivers_it(
    tmp_path: Path, telegram: FakeBotApi
) -> None:
    """`rahnuma broadcast create --text ... --language ur --yes` prints the count and enqueues; `rahnuma dispatch
    --once` delivers; `broadcast show` reports; `broadcast list` lists; `cancel` on a finished one says so."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "RAHNUMA_", "RASA_", "DATABASE_"))}
    env.update(
        DATABASE_URL=url, RASA_URL="http://127.0.0.1:9", PYTHONPATH=str(PROJECT_ROOT), TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=telegram.bot_api_url, RAHNUMA_QUIET_HOURS="00:00-00:00", RAHNUMA_FRIDAY_QUIET_HOURS="",
    )  # fmt: skip

    async def rahnuma(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot.cli", *args, cwd=tmp_path, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), timeout=90)
        return process.returncode or 0, out.decode()

    code, out = await rahnuma("db", "upgrade")
    assert code == 0, out
    db = Database.connect(url)
    try:
        now = dt.datetime.now(dt.UTC)
        async with db.write() as session:
            await session.execute(
                insert(User),
                [
                    {"channel": "telegram", "external_id": str(chat), "language": language, "language_chosen": True,
                     "research_consent": False, "created_at": now, "last_seen_at": now, "nudge_pace": "daily"}
                    for chat, language in ((31, "ur"), (32, "ur"), (33, "en"))
                ],
            )  # fmt: skip
    finally:
        await db.dispose()
    code, out = await rahnuma(
        "broadcast", "create", "--text", "Class moved to 6 pm", "--text-ur", "کلاس شام 6 بجے", "--language", "ur"
    )
    assert code == 1 and "Recipients: 2" in out and "cancelled" in out  # no stdin: not confirmed
    code, out = await rahnuma(
        "broadcast", "create", "--text", "Class moved to 6 pm", "--text-ur", "کلاس شام 6 بجے", "--language", "ur",
        "--yes",
    )  # fmt: skip
    assert code == 0, out
    assert "Recipients: 2 (0 in English, 2 in Urdu)" in out and "queued for 2" in out
    code, out = await rahnuma("dispatch", "--once")
    assert code == 0, out
    assert sorted(m.chat_id for m in telegram.sent) == [31, 32]
    assert all("کلاس شام 6 بجے" in m.text for m in telegram.sent)
    code, out = await rahnuma("broadcast", "show", "2", "--wait")
    assert code == 0, out
    assert "sent 2" in out and "[" in out
    code, out = await rahnuma("broadcast", "list")
    assert "#2" in out and "#1" in out and "cancelled" in out
    code, out = await rahnuma("dispatch", "--once")  # its planning pass sees nothing left: done
    code, out = await rahnuma("broadcast", "show", "2")
    assert "done" in out
    code, out = await rahnuma("broadcast", "cancel", "2")
    assert code == 1 and "not pending" in out
    code, out = await rahnuma("admin", "add", "--role", "researcher", "4242")
    assert code == 0 and "now has the researcher role" in out
    code, out = await rahnuma("admin", "list")
    assert "researcher   4242" in out


# ---- the Telegram wiring -----------------------------------------------------------------------------------------


def command_update(bot: ExtBot[object], *, user_id: int, text: str, chat_id: int | None = None) -> Update:
    chat = Chat(id=chat_id or user_id, type="private" if chat_id is None else "supergroup")
    account = TelegramAccount(id=user_id, first_name="Someone", is_bot=False)
    command = text.split()[0]
    message = Message(
        message_id=1, date=dt.datetime.now(dt.UTC), chat=chat, from_user=account, text=text,
        entities=[MessageEntity(type=MessageEntity.BOT_COMMAND, offset=0, length=len(command))],
    )  # fmt: skip
    message.set_bot(bot)
    return Update(update_id=1, message=message)


@pytest.mark.parametrize("command", [c.name for c in coordinator_commands()])
async def test_every_coordinator_command_from_a_trainee_reaches_only_the_refusal(
    telegram: FakeBotApi, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registered with a user filter: a trainee's /broadcast, /stats, /canned... never reaches the command; the
    refusal handler takes it. A coordinator's reaches the command (in a private chat)."""
    for name in [n for n in os.environ if n.startswith(("TELEGRAM_", "RAHNUMA_", "DATABASE_"))]:
        monkeypatch.delenv(name)
    settings = load_settings(
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=telegram.bot_api_url, RAHNUMA_COORDINATOR_CHAT_ID=str(GROUP)
    )
    application = build_application(settings, with_dispatcher=False)
    await application.bot.initialize()
    try:
        data = application.bot_data
        assert data.coordinator_filter is not None and data.staff_filter is not None
        data.coordinator_filter.add_user_ids(COORDINATOR)  # what post_init does from the roles
        data.staff_filter.add_user_ids(COORDINATOR)

        def first_match(update: Update) -> object:
            for handler in application.handlers[-1]:
                if handler.check_update(update):
                    return handler.callback
            return None

        trainee = command_update(application.bot, user_id=700_001, text=f"/{command}")
        assert first_match(trainee) is coordinators.refuse
        in_group = command_update(application.bot, user_id=COORDINATOR, text=f"/{command}", chat_id=GROUP)
        expected = coordinators.canned if command == "canned" else coordinators.stay_quiet
        assert first_match(in_group) is expected  # nothing but /canned is answered in the coordinators' group
        if command != "canned":
            mine = command_update(application.bot, user_id=COORDINATOR, text=f"/{command}")
            # /export answers with a document (the research package); every other command with the core's reply
            expected = coordinators.export_for_staff if command == "export" else coordinators.run_staff_command
            assert first_match(mine) is expected
    finally:
        await application.bot.shutdown()
