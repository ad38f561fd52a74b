"""End-to-end fixtures: a Telegram Bot API emulator (tests/e2e/emulator.js) and `rahnuma run` as a process.

Prerequisite: `npm ci --prefix tests/e2e` (CI does it before pytest). Without tests/e2e/node_modules the e2e
tests are skipped on a developer's machine, fail in CI (`CI` set), so a broken CI setup cannot pass quietly.

The bot gets a real Rasa server through the session fixture `rasa_url` (tests/conftest.py). To reuse a Rasa
server that is already running, set RAHNUMA_E2E_RASA_URL; to run without Rasa (the bot then answers through its
lexical fallback), set RAHNUMA_E2E_WITHOUT_RASA=1.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_RASA_TOKEN
from tests.e2e.harness import LOG_TAIL_LINES, BotUnderTest, Emulator, migrate_and_start_bot, stop_process, tail
from tests.e2e.simulated_user import BotApiLog, TelegramUser

E2E_DIR = Path(__file__).resolve().parent
EMULATOR_SCRIPT = E2E_DIR / "emulator.js"
TELEGRAM_TEST_API = E2E_DIR / "node_modules" / "telegram-test-api" / "package.json"
# Shaped like a real token (PTB does not care, but logs and the bot's own checks might); never a real one.
BOT_TOKEN = "7000000001:AAE2E_rahnuma_emulator_not_a_real_token"
STARTUP_TIMEOUT = float(os.environ.get("RAHNUMA_E2E_STARTUP_TIMEOUT", "90"))
_ENV_PREFIXES_TO_DROP = ("TELEGRAM_", "RAHNUMA_", "RASA_", "DATABASE_URL")

# Log files of this session, printed under a failing e2e test.
_SESSION_LOGS: dict[str, Path] = {}


def _logs_report() -> str:
    return "\n\n".join(f"----- {name}: {path} (last lines) -----\n{tail(path)}" for name, path in _SESSION_LOGS.items())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under a failing e2e test, print the tails of the bot's and the emulator's logs."""
    report = yield
    if report.failed and item.get_closest_marker("e2e") is not None:
        for name, path in _SESSION_LOGS.items():
            report.sections.append((f"e2e {name} (last {LOG_TAIL_LINES} lines of {path})", tail(path)))
    return report


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nobody listens once the socket is closed


@pytest.fixture(scope="session")
def node_executable() -> str:
    """node and tests/e2e/node_modules; skip locally when missing, fail in CI."""
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "node is not installed (the e2e Telegram emulator needs Node.js >= 18)"
    elif not TELEGRAM_TEST_API.exists():
        missing = "tests/e2e/node_modules is missing: run `npm ci --prefix tests/e2e` (the Telegram emulator)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing} (CI is set, so this is a failure, not a skip)", pytrace=False)
        pytest.skip(missing)
    assert node is not None
    return node


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def emulator(node_executable: str, e2e_dir: Path) -> Iterator[Emulator]:
    """telegram-test-api plus the PTB compatibility proxy, on free ports."""
    log_path = e2e_dir / "emulator.log"
    ready_file = e2e_dir / "emulator-ready.json"
    _SESSION_LOGS["emulator log"] = log_path
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [node_executable, str(EMULATOR_SCRIPT), "--host", "127.0.0.1", "--ready-file", str(ready_file)],
            cwd=E2E_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while not ready_file.exists():
            if process.poll() is not None:
                pytest.fail(
                    f"the Telegram emulator exited with code {process.returncode}:\n{tail(log_path)}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(f"the Telegram emulator did not start within 30 s:\n{tail(log_path)}", pytrace=False)
            time.sleep(0.05)
        ready: dict[str, Any] = json.loads(ready_file.read_text())
        yield Emulator(
            client_url=ready["client_url"],
            bot_api_url=ready["bot_api_url"],
            control_url=ready["bot_api_url"].removesuffix("/bot"),
            process=process,
            log_path=log_path,
        )
    finally:
        stop_process(process, signal.SIGTERM, grace=5)


@pytest.fixture(scope="session")
def e2e_rasa_url(request: pytest.FixtureRequest) -> str:
    """The real Rasa server (`rasa_url`); RAHNUMA_E2E_RASA_URL reuses one already running (e.g. `rahnuma nlu
    serve`), RAHNUMA_E2E_WITHOUT_RASA=1 gives a closed port (the bot's lexical fallback answers)."""
    if os.environ.get("RAHNUMA_E2E_WITHOUT_RASA", "").strip() not in ("", "0"):
        return _closed_port_url()
    if os.environ.get("RAHNUMA_E2E_RASA_URL", "").strip():
        return os.environ["RAHNUMA_E2E_RASA_URL"].strip()
    url: str = request.getfixturevalue("rasa_url")
    return url


class _QuietEnv(dict[str, str]):
    """An environment that does not print its values in a failure report."""

    def __repr__(self) -> str:
        return f"<environment of {len(self)} variables>"


def _rahnuma_executable() -> str:
    beside_python = Path(sys.executable).with_name("rahnuma")
    found = str(beside_python) if beside_python.exists() else shutil.which("rahnuma")
    if found is None:
        pytest.fail(
            "the `rahnuma` console script is not installed in this environment (pip install -e .)",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def rahnuma_executable() -> str:
    """The `rahnuma` console script of this environment (for tests that start a bot process of their own)."""
    return _rahnuma_executable()


@pytest.fixture(scope="session")
def e2e_session_logs() -> dict[str, Path]:
    """The logs whose tails are printed under a failing e2e test; a module that starts a process adds its log."""
    return _SESSION_LOGS


@pytest.fixture(scope="session")
def scrubbed_env() -> dict[str, str]:
    """The inherited environment without TELEGRAM_*, RAHNUMA_*, RASA_* and DATABASE_URL; copy it before changing."""
    return _QuietEnv((k, v) for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES_TO_DROP))


@pytest.fixture(scope="session")
def bot_env(emulator: Emulator, e2e_rasa_url: str, e2e_dir: Path) -> dict[str, str]:
    """The environment of `rahnuma run`: nothing inherited that could point it at a real bot or database."""
    env = _QuietEnv((k, v) for k, v in os.environ.items() if not k.startswith(_ENV_PREFIXES_TO_DROP))
    env.update(
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        TELEGRAM_API_URL=emulator.bot_api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{e2e_dir / 'e2e.db'}",
        RASA_URL=e2e_rasa_url,
        RASA_TOKEN=TEST_RASA_TOKEN,
        RAHNUMA_WEBHOOK_URL="",  # polling
        RAHNUMA_LOG_LEVEL=os.environ.get("RAHNUMA_E2E_LOG_LEVEL", "INFO"),
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def bot_process(emulator: Emulator, bot_env: dict[str, str], e2e_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`rahnuma db upgrade`, then `rahnuma run` until it long-polls the emulator; SIGINT at the end.

    It runs in a scratch folder so a developer's .env is not read.
    """
    rahnuma = _rahnuma_executable()
    log_path = e2e_dir / "bot.log"
    _SESSION_LOGS["bot log"] = log_path
    process = migrate_and_start_bot(rahnuma, cwd=e2e_dir, env=bot_env, log_path=log_path)
    try:
        _wait_until_polling(process, emulator, log_path)
        yield process
    finally:
        stop_process(process, signal.SIGINT, grace=20)


def _wait_until_polling(process: subprocess.Popen[bytes], emulator: Emulator, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(timeout=5) as http:
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"`rahnuma run` exited with code {process.returncode} before polling:\n{_logs_report()}",
                    pytrace=False,
                )
            calls = http.get(f"{emulator.control_url}/_e2e/calls", params={"method": "getUpdates"}).json()["result"]
            if any(call["token"] == BOT_TOKEN for call in calls):
                return
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`rahnuma run` did not poll within {STARTUP_TIMEOUT:.0f} s:\n{_logs_report()}",
                    pytrace=False,
                )
            time.sleep(0.1)


@pytest.fixture(scope="session")
async def e2e_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
        yield http


@pytest.fixture(scope="session")
def api_log(emulator: Emulator, e2e_http: httpx.AsyncClient) -> BotApiLog:
    return BotApiLog(e2e_http, emulator.control_url)


@pytest.fixture(scope="session")
def bot(bot_process: subprocess.Popen[bytes], api_log: BotApiLog) -> BotUnderTest:
    """The bot, running and polling."""
    return BotUnderTest(bot_process, _SESSION_LOGS["bot log"], api_log)


_user_ids = itertools.count(710_000_001)


@pytest.fixture
def make_user(bot: BotUnderTest, emulator: Emulator, e2e_http: httpx.AsyncClient) -> Callable[..., TelegramUser]:
    """A factory of fresh private-chat users, each with an id no other test uses."""

    def make(
        first_name: str = "Ayesha",
        language_code: str = "en",
        *,
        user_id: int | None = None,
        group: dict[str, Any] | None = None,
    ) -> TelegramUser:
        return TelegramUser(
            e2e_http,
            client_url=emulator.client_url,
            bot_token=BOT_TOKEN,
            user_id=user_id if user_id is not None else next(_user_ids),
            first_name=first_name,
            language_code=language_code,
            group=group,
        )

    return make
