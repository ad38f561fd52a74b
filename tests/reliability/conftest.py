"""Fixtures of the reliability suite (docs/RELIABILITY.md): the core over a database with injectable faults, and
the production Telegram Application talking to a scripted Telegram server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import hypothesis
import pytest

from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.journal import Journal
from bot.handlers.context import RahnumaApplication
from bot.runtime import build_conversation
from content.library import Library
from nlu.lexical import LexicalSearch
from storage.db import Database
from tests.reliability.doubles import FlakyDatabase, ScriptedTelegram, connect, telegram_application
from tests.reliability.figures import COUNTS, FIGURES

# Fuzzing: a fixed derandomized run in CI (the same examples every time); RAHNUMA_FUZZ_SCALE multiplies the
# examples, and `--hypothesis-seed=N` with RAHNUMA_FUZZ_RANDOM=1 explores new ones reproducibly.
FUZZ_SCALE = float(os.environ.get("RAHNUMA_FUZZ_SCALE", "1"))
FUZZ_RANDOM = os.environ.get("RAHNUMA_FUZZ_RANDOM", "").strip() not in ("", "0")
hypothesis.settings.register_profile(
    "rahnuma-ci",
    derandomize=not FUZZ_RANDOM,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
)
hypothesis.settings.load_profile("rahnuma-ci")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """The fuzz settings used and the figures measured (docs/RELIABILITY.md quotes them)."""
    if not FIGURES and not COUNTS:
        return
    seed = config.getoption("hypothesis_seed", default=None)
    mode = f"random, --hypothesis-seed={seed}" if FUZZ_RANDOM else "derandomize=True (the same examples every run)"
    terminalreporter.section("reliability figures")
    terminalreporter.write_line(f"fuzz settings: hypothesis {hypothesis.__version__}, profile rahnuma-ci, {mode}")
    for name, value in sorted({**FIGURES, **{name: str(n) for name, n in COUNTS.items()}}.items()):
        terminalreporter.write_line(f"{name}: {value}")
    fuzzed = sum(n for name, n in COUNTS.items() if name.startswith("fuzz examples run"))
    if fuzzed:
        failed = len([r for r in terminalreporter.stats.get("failed", []) if "test_fuzz" in r.nodeid])
        terminalreporter.write_line(f"fuzz examples run in all: {fuzzed} (failing fuzz tests: {failed})")


@pytest.fixture
def flaky_db(db: Database) -> FlakyDatabase:
    """The test database with faults that can be switched on (failed commits, failed reads)."""
    return FlakyDatabase(db)


@pytest.fixture
def flaky(library: Library, flaky_db: FlakyDatabase, clock: FrozenClock, lexical: LexicalSearch) -> Conversation:
    """The core over `flaky_db`, journal included (the whole database fails, not only part of it)."""
    return build_conversation(
        library=library, db=flaky_db, journal=Journal(flaky_db), clock=clock, rasa=None, lexical=lexical
    )


@pytest.fixture
def telegram() -> ScriptedTelegram:
    return ScriptedTelegram()


@pytest.fixture(scope="session")
async def shared_application() -> AsyncIterator[RahnumaApplication]:
    """bot/app.py's Application with every handler, built and initialized once (as in production, one application
    handles every update); each test connects it to its own Telegram server and core."""
    app = telegram_application()
    connect_later = ScriptedTelegram()
    app.bot._request = (connect_later, connect_later)
    await app.initialize()  # getMe
    yield app
    await app.shutdown()


@pytest.fixture
def application(
    shared_application: RahnumaApplication,
    conversation: Conversation,
    library: Library,
    db: Database,
    telegram: ScriptedTelegram,
) -> RahnumaApplication:
    connect(shared_application, telegram, conversation, library, db)
    return shared_application
