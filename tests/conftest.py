"""Shared fixtures: the content, a migrated database per backend (SQLite always, PostgreSQL when
TEST_DATABASE_URL is set), a frozen clock, one real Rasa server per test session, and the core conversation."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.journal import Journal
from bot.runtime import build_conversation
from bot.settings import PROJECT_ROOT
from content.library import Library, load_library
from nlu import rasa_process
from nlu.client import RasaClient
from nlu.lexical import LexicalSearch
from storage.db import Database, create_engine
from storage.migrate import upgrade_async
from storage.models import Base

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])
# A Friday morning in Karachi (09:00 PKT): the tests' "now" unless they move the clock.
TEST_NOW = dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC)
# The token every test Rasa server runs with, so the suite proves it never leaks (logs, `ps`).
TEST_RASA_TOKEN = "rasa-test-token-9f3b2c"


@pytest.fixture(scope="session")
def library() -> Library:
    return load_library()


@pytest.fixture(scope="session")
def lexical(library: Library) -> LexicalSearch:
    """Built once: the index takes ~50 ms, and every conversation fixture would rebuild it."""
    return LexicalSearch(library)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'rahnuma-test.db'}"
    return os.environ["TEST_DATABASE_URL"]


async def reset_postgres(url: str) -> None:
    """Start PostgreSQL tests from an empty schema, so migrations run from scratch."""
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(scope="session")
async def migrated_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on a database that `rahnuma db upgrade`'s migrations built."""
    if database_url.startswith("postgresql"):
        await reset_postgres(database_url)
    await upgrade_async(database_url)
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(migrated_engine: AsyncEngine) -> AsyncIterator[Database]:
    """Units of work inside one outer transaction that is rolled back: every test starts from the same state."""
    async with migrated_engine.connect() as connection:
        transaction = await connection.begin()
        sessions = async_sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        yield Database(sessions)
        await transaction.rollback()


@pytest.fixture
async def committed_db(database_url: str, migrated_engine: AsyncEngine) -> AsyncIterator[Database]:
    """A database whose transactions really commit (for races between connections); emptied afterwards."""
    database = Database.connect(database_url)
    yield database
    await database.dispose()
    async with migrated_engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(TEST_NOW)


@pytest.fixture
def journal(db: Database) -> Journal:
    return Journal(db)


@pytest.fixture
def conversation(
    library: Library, db: Database, journal: Journal, clock: FrozenClock, lexical: LexicalSearch
) -> Conversation:
    """The core with a real database and no Rasa: answers come from the lexical fallback."""
    return build_conversation(library=library, db=db, journal=journal, clock=clock, rasa=None, lexical=lexical)


@pytest.fixture(scope="session")
def rasa_url() -> Iterator[str]:
    """A real Rasa server on a free port, serving the model trained from this project's data, behind a token."""
    executable = Path(os.environ.get("RASA_VENV", PROJECT_ROOT / ".venv-rasa")) / "bin" / "rasa"
    if not executable.exists() or not rasa_process.MODEL_FILE.exists():
        pytest.fail("Rasa tests need .venv-rasa and a trained model: run them through `make test`")
    if not rasa_process.model_is_current():
        pytest.fail("the NLU model is older than nlu/ data: run `rahnuma nlu train` (make test does)")
    log_file = PROJECT_ROOT / "data" / "rasa-test.log"
    with rasa_process.serving(executable, log_file=log_file, token=TEST_RASA_TOKEN, timeout=300) as url:
        yield url


@pytest.fixture
async def rasa_client(rasa_url: str) -> AsyncIterator[RasaClient]:
    client = RasaClient(rasa_url, token=TEST_RASA_TOKEN, timeout_seconds=30)
    yield client
    await client.aclose()
