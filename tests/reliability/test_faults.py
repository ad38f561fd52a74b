"""Faults of what Rahnuma depends on, each while a conversation is going on: Rasa hanging and dying, the SQLite
file locked by another process, PostgreSQL connections killed mid-turn. (Telegram's faults are in
test_telegram.py.) For each: the user gets an answer or an honest "try again", nothing is claimed that did not
happen, no event is lost, and the next turn works.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import NullPool

from bot.core.clock import FrozenClock
from bot.core.journal import Journal
from bot.core.types import Person, Reply
from bot.runtime import build_conversation
from content.library import Library
from nlu.client import RasaClient
from nlu.lexical import LexicalSearch
from storage.codebook import Decision, EventKind
from storage.db import Database, create_engine
from storage.events import NewEvent
from storage.models import Event
from tests.helpers import events_of, stored_user
from tests.reliability import figures
from tests.reliability.doubles import RasaDouble, like_rasa

FIVERR = "how do I withdraw my money from fiverr"
USERS = [Person(channel="telegram", external_id=str(8_000 + n), display_name=f"User {n}") for n in range(5)]
NEWCOMER = Person(channel="telegram", external_id="8999", display_name="First Contact")


# ---- Rasa hangs, dies, comes back ------------------------------------------------------------------------------


@pytest.fixture
async def rasa() -> AsyncIterator[RasaDouble]:
    double = RasaDouble(like_rasa)
    await double.start()
    yield double
    if double._server is not None:
        await double.die()


async def test_rasa_hanging_then_dying_mid_conversation_then_returning(
    rasa: RasaDouble, library: Library, db: Database, clock: FrozenClock, lexical: LexicalSearch
) -> None:
    """Rasa accepts and never answers, then its process dies, then it is back on the same port. Every question is
    answered from the lexical search within the Rasa timeout, the events say why, and once Rasa is back the next
    answer comes from Rasa again (no restart of the bot)."""
    timeout = 0.5
    client = RasaClient(rasa.url, timeout_seconds=timeout)
    conversation = build_conversation(
        library=library, db=db, journal=Journal(db), clock=clock, rasa=client, lexical=lexical
    )
    person = USERS[0]
    sources, latencies = [], []
    try:
        for phase in ("up", "hanging", "dead", "back"):
            if phase == "hanging":
                rasa.hanging = True
            elif phase == "dead":
                await rasa.die()
            elif phase == "back":
                rasa.hanging = False
                await rasa.start()
            started = time.perf_counter()
            reply = await conversation.handle_text(person, FIVERR)
            latencies.append(time.perf_counter() - started)
            assert reply.article_id == "fiverr_withdrawal", phase
            sources.append(reply.nlu_source)
    finally:
        await client.aclose()

    assert sources == ["rasa", "fallback", "fallback", "rasa"]
    assert max(latencies) < timeout + 1.0, latencies
    messages = await events_of(conversation, db, person, kind="message")
    reasons = [(m.data or {}).get("fallback_reason") for m in messages]
    assert reasons[0] is None and reasons[3] is None
    assert "ReadTimeout" in str(reasons[1]) and "Connect" in str(reasons[2])
    figures.record(
        "rasa hang/death: reply latency (up, hanging, dead, back)", ", ".join(f"{s * 1000:.0f} ms" for s in latencies)
    )


# ---- the SQLite file locked by another process -----------------------------------------------------------------

LOCK_SECONDS = 10
_LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


@pytest.fixture
def sqlite_file(committed_db: Database, database_url: str) -> str:
    if not database_url.startswith("sqlite"):
        pytest.skip("the SQLite write lock")
    path = make_url(database_url).database
    assert path
    return path


async def test_sqlite_locked_by_another_process_for_10_s(
    sqlite_file: str,
    committed_db: Database,
    library: Library,
    clock: FrozenClock,
    lexical: LexicalSearch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another process holds the write lock for 10 s (a backup, a migration, a stuck script). Questions are answered
    at once (reads take no write lock, events wait in the journal); a state change says save_failed after the busy
    timeout and changes nothing; when the lock goes, the journal writes every queued event."""
    journal = Journal(committed_db, retry_initial=0.05, retry_max=0.5)
    conversation = build_conversation(
        library=library, db=committed_db, journal=journal, clock=clock, rasa=None, lexical=lexical
    )
    for person in USERS:
        await conversation.press(person, "consent:yes")  # their words would be in the INSERTs: check the logs
    assert await journal.flush()
    journal.start()
    written_before = journal.written
    locker = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LOCKER, sqlite_file, str(LOCK_SECONDS), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert locker.stdout is not None and (await locker.stdout.readline()).strip() == b"locked"
        locked_at = time.perf_counter()

        async def ask(person: Person) -> float:
            started = time.perf_counter()
            reply = await conversation.handle_text(person, f"{FIVERR} ({person.external_id} secret words)")
            assert reply.article_id == "fiverr_withdrawal"
            return time.perf_counter() - started

        question_latencies = await asyncio.gather(*(ask(person) for person in USERS))

        async def withdraw() -> tuple[Reply, float]:
            started = time.perf_counter()
            return await conversation.press(USERS[0], "consent:no"), time.perf_counter() - started

        (refused, state_change_latency), newcomer_latency = await asyncio.gather(withdraw(), ask(NEWCOMER))
        for _ in range(50):  # the journal's attempt may still be queued behind the state change's in this process
            if journal.failed_attempts:
                break
            await asyncio.sleep(0.02)
        assert time.perf_counter() - locked_at < LOCK_SECONDS, "the lock must still be held"
        assert journal.written == written_before and journal.failed_attempts >= 1, "nothing can be written yet"
        await asyncio.wait_for(locker.wait(), timeout=LOCK_SECONDS + 5)
    finally:
        if locker.returncode is None:
            locker.kill()
            await locker.wait()
    await journal.aclose()
    written_after_release = journal.written - written_before

    assert max(question_latencies) < 1.0, question_latencies
    assert refused.decision is Decision.SAVE_FAILED
    assert 4.0 < state_change_latency < 7.0, f"save_failed after {state_change_latency:.1f} s (busy timeout 5 s)"
    assert newcomer_latency < 7.0, "a newcomer is answered (as a guest) once creating them has failed"
    assert await stored_user(committed_db, NEWCOMER) is None
    assert written_after_release == 2 * len(USERS) + 2
    assert journal.pending == 0 and journal.dropped == 0
    for person in USERS:
        kinds = [e.kind for e in await events_of(conversation, committed_db, person)]
        assert kinds.count("message") == 1 and kinds.count("reply") == (3 if person is USERS[0] else 2), kinds
    user = await stored_user(committed_db, USERS[0])
    assert user is not None and user.research_consent, "the refused withdrawal must not have happened"
    assert "secret words" not in caplog.text
    figures.record(
        "sqlite locked 10 s: reply latency",
        f"questions max {max(question_latencies) * 1000:.0f} ms (5 users at once); state change save_failed after "
        f"{state_change_latency:.1f} s; a newcomer answered as a guest after {newcomer_latency:.1f} s (not stored); "
        f"events written after the release {written_after_release}, lost 0",
    )


# ---- PostgreSQL connections killed mid-turn ---------------------------------------------------------------------


@pytest.fixture
def postgres(committed_db: Database, database_url: str) -> Database:
    if not database_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend")
    return committed_db


async def kill_backends(database_url: str, *, waiting_on_a_lock: bool = False) -> int:
    """pg_terminate_backend on this test database's other backends (only these: other databases are not ours)."""
    engine = create_engine(database_url, poolclass=NullPool)
    condition = " AND wait_event_type = 'Lock'" if waiting_on_a_lock else ""
    try:
        async with engine.connect() as connection:
            killed = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE datname = current_database() AND pid <> pg_backend_pid(){condition}"
                )
            )
    finally:
        await engine.dispose()
    return int(killed or 0)


async def test_postgres_connection_killed_inside_a_state_change_says_try_again_and_the_next_turn_works(
    postgres: Database, database_url: str, library: Library, clock: FrozenClock, lexical: LexicalSearch
) -> None:
    """A withdrawal of consent is waiting for a row lock when its connection is killed (a failover, an admin):
    the user hears it did not save, consent is unchanged; the same press then works on a fresh connection."""
    conversation = build_conversation(
        library=library, db=postgres, journal=Journal(postgres), clock=clock, rasa=None, lexical=lexical
    )
    person = USERS[1]
    await conversation.press(person, "consent:yes")
    user = await stored_user(postgres, person)
    assert user is not None
    blocker = create_engine(database_url, poolclass=NullPool)
    try:
        async with blocker.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(text('SELECT id FROM "user" WHERE id = :id FOR UPDATE'), {"id": user.id})
            turn = asyncio.create_task(conversation.press(person, "consent:no"))
            killed = 0
            for _ in range(200):
                killed = await kill_backends(database_url, waiting_on_a_lock=True)
                if killed or turn.done():
                    break
                await asyncio.sleep(0.02)
            reply = await turn
            await transaction.rollback()
    finally:
        await blocker.dispose()

    assert killed == 1 and reply.decision is Decision.SAVE_FAILED
    user = await stored_user(postgres, person)
    assert user is not None and user.research_consent
    again = await conversation.press(person, "consent:no")
    assert again.decision is Decision.CONSENT_DECLINED
    kinds = [e.kind for e in await events_of(conversation, postgres, person)]
    assert kinds.count("consent_withdrawn") == 1 and kinds.count("button") == 3


async def test_postgres_connections_killed_mid_question_lose_no_answer_and_no_event(
    postgres: Database,
    database_url: str,
    library: Library,
    clock: FrozenClock,
    lexical: LexicalSearch,
    rasa: RasaDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every connection of the bot is killed while it waits for Rasa (a PostgreSQL restart mid-turn): the question
    is answered, the next turns work on fresh connections (pre-ping), and the journal writes every event."""
    killed: list[int] = []

    async def kill_then_answer(question: str) -> object:
        killed.append(await kill_backends(database_url))
        return like_rasa(question)

    rasa.answer = kill_then_answer
    client = RasaClient(rasa.url, timeout_seconds=5)
    journal = Journal(postgres, retry_initial=0.05, retry_max=0.5)
    conversation = build_conversation(
        library=library, db=postgres, journal=journal, clock=clock, rasa=client, lexical=lexical
    )
    try:
        await conversation.press(USERS[2], "consent:yes")
        assert await journal.flush()
        replies = []
        for question in (FIVERR, "my secret words about payoneer", FIVERR):
            replies.append(await conversation.handle_text(USERS[2], question))
            await conversation.command(USERS[2], "progress")  # a read on a fresh connection
            assert await journal.flush()
    finally:
        await client.aclose()

    assert all(r.nlu_source == "rasa" and r.decision is not Decision.STORAGE_UNAVAILABLE for r in replies)
    assert sum(killed) >= 3
    kinds = [e.kind for e in await events_of(conversation, postgres, USERS[2])]
    assert kinds.count("message") == 3 and kinds.count("command") == 3 and kinds.count("reply") == 7
    async with postgres.read() as session:
        texts = (await session.scalars(select(Event.text).where(Event.kind == "message"))).all()
    assert "my secret words about payoneer" in texts  # consented: kept, and not lost to the killed connections
    assert "secret words" not in caplog.text, "users' words must not reach a log line"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    figures.record(
        "postgres: backends killed mid-turn", f"{sum(killed)} killed over 3 turns; answers 3/3; events lost 0"
    )


class _SlowToReleaseConnection:
    """The database as the journal sees it, but each write transaction, once committed, takes a moment to hand its
    connection back (a slow network, a busy pool): the window in which a shutdown used to cancel the writer."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.committed = asyncio.Event()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        async with self.db.write() as session:
            yield session
        self.committed.set()
        await asyncio.sleep(0.3)


async def test_shutting_down_while_the_journal_writes_a_batch_stores_each_event_once(
    committed_db: Database, clock: FrozenClock
) -> None:
    """The bot stops (aclose) just after the journal's batch committed: the batch is not queued and written again."""
    slow = _SlowToReleaseConnection(committed_db)
    journal = Journal(slow)  # type: ignore[arg-type]
    journal.start()
    journal.record(*(NewEvent(kind=EventKind.UNANSWERED, at=clock.now(), text=f"q{n}") for n in range(3)))
    await asyncio.wait_for(slow.committed.wait(), timeout=10)
    await journal.aclose()

    async with committed_db.read() as session:
        stored = await session.scalar(select(func.count()).select_from(Event).where(Event.kind == "unanswered"))
    assert stored == 3 and journal.pending == 0
