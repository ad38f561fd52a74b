"""`rahnuma` as its own process: secrets stay out of logs, output and `ps` (defects 7, 9 and 16), and a broken
start says what is wrong in one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.handlers.context import RahnumaApplication
from bot.logs import RedactingFormatter, configure_logging
from bot.settings import PROJECT_ROOT, SettingsError, load_settings
from nlu import rasa_process
from storage.db import Database, StorageError
from storage.models import Event
from tests.conftest import TEST_NOW, TEST_RASA_TOKEN
from tests.reliability.doubles import text_update

BOT_TOKEN = "7000000123:AAsecret_bot_token_never_logged_x1"
RASA_TOKEN = "rasa-right-token-5a7c1e"
WRONG_RASA_TOKEN = "rasa-wrong-token-0b9d44"
WEBHOOK_SECRET = "webhook_secret_never_logged_42"
SECRETS = (BOT_TOKEN, RASA_TOKEN, WRONG_RASA_TOKEN, WEBHOOK_SECRET)


def scrubbed_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "RAHNUMA_", "RASA_", "DATABASE_"))}
    env.update(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", PYTHONPATH=str(PROJECT_ROOT))
    env.update(values)
    return env


def rahnuma(args: list[str], tmp_path: Path, *, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,  # no .env from the checkout
        env=scrubbed_env(tmp_path, **env),
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rasa_refusing_tokens() -> Iterator[str]:
    """Rasa's API behind `--auth-token` (a stand-in for a real server): 401 unless `?token=` is RASA_TOKEN."""

    class Handler(BaseHTTPRequestHandler):
        def _refuse(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            body = b'{"version":"3.6.21","status":"failure","reason":"NotAuthenticated","code":401}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _refuse

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---- 7. the Rasa token leaks into logs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rasa", ["stand-in", pytest.param("real", marks=pytest.mark.rasa)], ids=["rasa-stand-in", "real-rasa"]
)
@pytest.mark.parametrize("command", ["chat", "ask"])
def test_a_wrong_rasa_token_never_shows_any_secret_in_the_output(
    request: pytest.FixtureRequest, tmp_path: Path, command: str, rasa: str
) -> None:
    """Defect 7: Rasa's 401 carried the request URL with `?token=` into the log and the terminal. With a wrong
    token (and every secret set, logging at DEBUG), `rahnuma chat` and `ask` answer through the lexical fallback and
    no secret appears in stdout or stderr."""
    url = request.getfixturevalue("rasa_url" if rasa == "real" else "rasa_refusing_tokens")
    args = ["chat", "--user", "t1"] if command == "chat" else ["ask", "--json", "how do I withdraw from fiverr"]
    result = rahnuma(
        args,
        tmp_path,
        stdin="how do I withdraw from fiverr\n/privacy\n/quit\n",
        RASA_URL=url,
        RASA_TOKEN=WRONG_RASA_TOKEN,
        TELEGRAM_BOT_TOKEN=BOT_TOKEN,
        RAHNUMA_WEBHOOK_URL="https://bot.example.org/hook",
        RAHNUMA_WEBHOOK_SECRET=WEBHOOK_SECRET,
        RAHNUMA_LOG_LEVEL="DEBUG",
    )

    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert "Fiverr" in output and "401" in output if command == "chat" else '"nlu_source": "fallback"' in output
    for secret in (*SECRETS, TEST_RASA_TOKEN):
        assert secret not in output, f"a secret leaked:\n{output}"
    assert "token=" not in output


def test_every_secret_is_redacted_from_every_log_line_tracebacks_included() -> None:
    """The last line of defence: whatever a library puts in a message or a traceback, the formatter redacts it."""
    formatter = RedactingFormatter(SECRETS)
    try:
        raise RuntimeError(f"GET https://api.telegram.org/bot{BOT_TOKEN}/getMe?token={RASA_TOKEN}")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "secret %s", (WEBHOOK_SECRET,), (type(exc), exc, exc.__traceback__)
        )
    line = formatter.format(record)
    assert "RuntimeError" in line and "[redacted]" in line
    assert not any(secret in line for secret in SECRETS)


# ---- 16. `rahnuma nlu serve` puts --auth-token on the command line ------------------------------------------------


def fake_rasa_install(tmp_path: Path) -> Path:
    """A RASA_VENV whose `python` is this interpreter and whose `rasa` package records the argv it was started
    with, then waits: what `rahnuma nlu serve` hands to Rasa, without needing Rasa."""
    venv = tmp_path / "rasa-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    (venv / "bin" / "rasa").write_text("#!/bin/sh\n")
    package = tmp_path / "fake-rasa" / "rasa"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import os, sys, time\n"
        "def main():\n"
        "    with open(os.environ['FAKE_RASA_ARGV'], 'w') as f:\n"
        "        f.write('\\0'.join(sys.argv))\n"
        "    time.sleep(60)\n"
    )
    return venv


def test_rasa_serve_keeps_the_token_off_the_command_line(tmp_path: Path) -> None:
    """Defect 16: `rahnuma nlu serve` put `--auth-token <token>` on the command line, where `ps` shows it to every
    user of the machine. The token reaches Rasa's argv inside the process; /proc/<pid>/cmdline never has it."""
    venv = fake_rasa_install(tmp_path)
    argv_file = tmp_path / "argv"
    env = scrubbed_env(
        tmp_path,
        RASA_VENV=str(venv),
        RASA_TOKEN=RASA_TOKEN,
        RASA_URL="http://127.0.0.1:5999",
        FAKE_RASA_ARGV=str(argv_file),
        PYTHONPATH=f"{tmp_path / 'fake-rasa'}{os.pathsep}{PROJECT_ROOT}",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "nlu", "serve"], cwd=tmp_path, env=env, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while not argv_file.exists() or not argv_file.read_text():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the Rasa stand-in did not start"
            time.sleep(0.05)
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    finally:
        process.kill()
        process.wait()
        if process.stderr:
            process.stderr.close()
    rasa_argv = argv_file.read_text().split("\0")
    assert RASA_TOKEN not in cmdline, cmdline
    assert rasa_argv[-2:] == ["--auth-token", RASA_TOKEN] and "run" in rasa_argv and "--enable-api" in rasa_argv


def test_the_serve_command_itself_carries_no_token() -> None:
    command = rasa_process.serve_command(Path("/opt/rasa/bin/rasa"), "http://127.0.0.1:5005")
    env = rasa_process.serve_env(RASA_TOKEN)
    assert RASA_TOKEN not in " ".join(command) and env["RAHNUMA_RASA_AUTH_TOKEN"] == RASA_TOKEN


@pytest.mark.rasa
def test_the_test_rasa_server_shows_no_token_in_ps(rasa_url: str) -> None:
    """The real Rasa this suite serves with TEST_RASA_TOKEN (found by its model path in this checkout) shows no
    token in `ps`."""
    servers = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            arguments = cmdline.read_bytes()
        except OSError:
            continue
        if str(rasa_process.MODEL_FILE).encode() in arguments and b"--enable-api" in arguments:
            servers.append(arguments)
    assert servers, "the test Rasa server was not found among the processes"
    assert not [a for a in servers if TEST_RASA_TOKEN.encode() in a], "the Rasa token is visible in ps"


# ---- 9. webhook secret ------------------------------------------------------------------------------------------


def test_a_webhook_url_without_a_secret_is_a_settings_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Defect 9: without RAHNUMA_WEBHOOK_SECRET each worker invented its own and all but one refused Telegram's
    updates. Now it is required whenever RAHNUMA_WEBHOOK_URL is set; `rahnuma run` says so in one line."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAHNUMA_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("RAHNUMA_WEBHOOK_URL", "https://bot.example.org/hook")
    with pytest.raises(SettingsError, match="RAHNUMA_WEBHOOK_SECRET"):
        load_settings()

    result = rahnuma(["run"], tmp_path, TELEGRAM_BOT_TOKEN=BOT_TOKEN, RAHNUMA_WEBHOOK_URL="https://bot.example.org/h")

    assert result.returncode == 2
    assert "RAHNUMA_WEBHOOK_SECRET" in result.stderr and "Traceback" not in result.stderr
    assert BOT_TOKEN not in result.stderr


# ---- 16. a wrong database URL at start -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "url"),
    [
        pytest.param(
            ["run"], "postgresql+asyncpg://rahnuma:hunter2@127.0.0.1:1/rahnuma", id="run-postgres-unreachable"
        ),
        pytest.param(["ask", "hi"], "sqlite+aiosqlite:////proc/rahnuma/no/such/dir/bot.db", id="ask-sqlite-unwritable"),
        pytest.param(["db", "upgrade"], "postgresql+asyncpg://rahnuma:hunter2@localhost:1/x", id="db-upgrade-postgres"),
    ],
)
def test_a_wrong_database_url_at_start_is_one_line_naming_database_url(
    tmp_path: Path, command: list[str], url: str
) -> None:
    """Defect 16: a well-formed but wrong DATABASE_URL died with a 140-line traceback. Now: exit code 2 and one line
    that names DATABASE_URL and what failed, without the password."""
    result = rahnuma(command, tmp_path, DATABASE_URL=url, TELEGRAM_BOT_TOKEN=BOT_TOKEN, RASA_URL="http://127.0.0.1:9")

    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("DATABASE_URL: "), result.stderr
    assert "hunter2" not in result.stderr and BOT_TOKEN not in result.stderr


# ---- 16. ERROR logs carry users' words as SQL parameters --------------------------------------------------------


async def test_a_failed_statement_never_carries_the_users_words_into_a_log(committed_db: Database) -> None:
    """Defect 16: an error's message (and so any logged traceback) carried the statement's parameters, i.e. users'
    words. Engines hide parameters: a failed insert of someone's message logs no word of it."""
    words = "my bank pin is 4471 and my mother's name"
    with pytest.raises(StorageError) as failure:
        async with committed_db.write() as session:
            session.add(Event(user_id=987_654_321, at=TEST_NOW, kind="message", text=words))  # no such user: FK
    assert isinstance(failure.value.__cause__, IntegrityError)
    record = logging.LogRecord(
        "bot",
        logging.ERROR,
        __file__,
        1,
        "write failed",
        None,
        (StorageError, failure.value, failure.value.__traceback__),
    )
    logged = logging.Formatter().format(record)
    assert "IntegrityError" in logged and "parameters hidden" in logged
    assert "4471" not in logged and "mother" not in logged, logged


CHATTY_LOGGERS = ("httpx", "alembic", "apscheduler", "tornado.access", "telegram", "aiosqlite", "httpcore", "hpack")


async def test_debug_logs_carry_no_words_of_a_user_without_consent(
    application: RahnumaApplication,
    conversation: Conversation,
    clock: FrozenClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Defect 16 at its worst: RAHNUMA_LOG_LEVEL=DEBUG made PTB log every update and aiosqlite every statement with
    its parameters, so a name, a profile answer and a question of a user without consent were all in the log.
    Those loggers never go below INFO; the bot's own DEBUG lines still appear."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in CHATTY_LOGGERS}
    configure_logging("DEBUG", [BOT_TOKEN])
    try:
        logging.getLogger("bot.probe").debug("debug logging is on")
        for text in ("/profile", "Mehndi artistry for brides", "/cancel", "can my cousin Farrukh withdraw from fiverr"):
            clock.advance(seconds=5)
            update = text_update(application, 610_000_077, text, first_name="Zubaida")
            await application.process_update(update)
        assert await conversation.journal.flush()
    finally:
        root.handlers[:], level, levels = saved
        root.setLevel(level)
        for name, logger_level in levels.items():
            logging.getLogger(name).setLevel(logger_level)
    logged = capsys.readouterr().err
    assert "debug logging is on" in logged
    for words in ("Mehndi", "Farrukh", "Zubaida", BOT_TOKEN):
        assert words not in logged, f"{words!r} is in the log:\n{logged[:3000]}"
