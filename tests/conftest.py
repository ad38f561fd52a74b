"""Shared fixtures: the content, a migrated database per backend (SQLite always, PostgreSQL when
TEST_DATABASE_URL is set), one real Rasa server per test session, and the core conversation."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core.conversation import Conversation
from bot.settings import PROJECT_ROOT
from content.library import Library, load_library
from nlu import rasa_process
from nlu.client import RasaClient
from storage.db import create_engine
from storage.migrate import upgrade_async

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def library() -> Library:
    return load_library()


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
async def sessions(migrated_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions inside one outer transaction that is rolled back: every test starts from the same state."""
    async with migrated_engine.connect() as connection:
        transaction = await connection.begin()
        yield async_sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
        await transaction.rollback()


@pytest.fixture
def conversation(library: Library, sessions: async_sessionmaker[AsyncSession]) -> Conversation:
    """The core with a real database and no Rasa: answers come from the lexical fallback."""
    return Conversation(library=library, sessions=sessions, rasa=None)


@pytest.fixture(scope="session")
def rasa_url() -> Iterator[str]:
    """A real Rasa server on a free port, serving the model trained from this project's data."""
    executable = Path(os.environ.get("RASA_VENV", PROJECT_ROOT / ".venv-rasa")) / "bin" / "rasa"
    if not executable.exists() or not rasa_process.MODEL_FILE.exists():
        pytest.fail("Rasa tests need .venv-rasa and a trained model: run them through `make test`")
    if not rasa_process.model_is_current():
        pytest.fail("the NLU model is older than nlu/ data: run `rahnuma nlu train` (make test does)")
    url = f"http://127.0.0.1:{free_port()}"
    log_file = PROJECT_ROOT / "data" / "rasa-test.log"
    process = rasa_process.start_background(executable, url, log_file=log_file)
    try:
        rasa_process.wait_until_healthy(url, timeout=300, process=process)
        yield url
    finally:
        rasa_process.stop(process)


@pytest.fixture
async def rasa_client(rasa_url: str) -> AsyncIterator[RasaClient]:
    client = RasaClient(rasa_url, timeout_seconds=30)
    yield client
    await client.aclose()


@pytest.fixture
def rasa_conversation(
    library: Library, sessions: async_sessionmaker[AsyncSession], rasa_client: RasaClient
) -> Conversation:
    """The core exactly as it runs: real Rasa, real database."""
    return Conversation(library=library, sessions=sessions, rasa=rasa_client)
