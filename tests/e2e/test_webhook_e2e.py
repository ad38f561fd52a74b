"""Webhook mode end to end: a second `rahnuma run` with RAHNUMA_WEBHOOK_URL set, receiving updates over HTTP.

This bot has its own token, SQLite database, port and scratch folder, and no Rasa (RASA_URL is a closed port, so
its lexical fallback answers). Telegram's side is played by the emulator the polling tests use, with one addition:
the emulator refuses `setWebhook` (it only emulates polling; without a successful `setWebhook` PTB's
`run_webhook` exits), so the bot's TELEGRAM_API_URL points at `SetWebhookShim`, a small HTTP server in this module
that answers `setWebhook` as Telegram does (validating and logging it) and forwards every other Bot API call to
the emulator unchanged, where it is logged and checked as usual. The test itself plays Telegram's webhook
delivery: it POSTs Telegram-shaped updates to the bot with the `X-Telegram-Bot-Api-Secret-Token` header.

The tests share one process (module scope) and run in file order; the last one stops it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.e2e.harness import BotUnderTest, Emulator, migrate_and_start_bot, stop_process, tail
from tests.e2e.simulated_user import BotApiLog, BotMessage, NoReplyError, TelegramUser

pytestmark = pytest.mark.e2e

# Not the polling bot's token: the emulator keeps this bot's calls and chats apart from the polling tests'.
WEBHOOK_BOT_TOKEN = "7000000002:AAE2E_rahnuma_webhook_not_a_real_token"
WEBHOOK_PATH = "tg-hook"
WEBHOOK_RASA_TOKEN = "rasa-webhook-e2e-token-3c1d"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Ids no other test uses (the polling tests count up from 710_000_001).
WELCOMED_USER_ID = 720_000_001
REFUSED_USER_ID = 720_000_002
UNSIGNED_USER_ID = 720_000_003
STARTUP_TIMEOUT = float(os.environ.get("RAHNUMA_E2E_STARTUP_TIMEOUT", "90"))
# What Telegram accepts as a webhook secret_token (Bot API, setWebhook).
_TELEGRAM_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_BOT_API_PATH = re.compile(r"^/bot([^/]+)/([A-Za-z]+)$")


# -- Telegram's side of setWebhook ----------------------------------------------------------------------------


class SetWebhookShim:
    """Answers `setWebhook` like the Bot API and forwards every other `/bot<token>/<method>` call to the emulator.

    `set_webhook_calls` keeps every setWebhook request: {"token", "params", "status", "description"}.
    """

    def __init__(self, upstream_bot_api_url: str) -> None:
        self._upstream = upstream_bot_api_url.rstrip("/").removesuffix("/bot")
        self._forward = httpx.Client(timeout=httpx.Timeout(40.0))
        self._lock = threading.Lock()
        self._calls: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="set-webhook-shim", daemon=True)
        self._thread.start()

    @property
    def bot_api_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/bot"

    @property
    def set_webhook_calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._forward.close()

    def _set_webhook(self, token: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        url = str(params.get("url") or "")
        secret = params.get("secret_token")
        problem = None
        if not url:
            problem = "bad webhook: an empty url is not a webhook (use deleteWebhook)"
        elif secret is not None and not _TELEGRAM_SECRET_TOKEN.fullmatch(str(secret)):
            problem = "secret token contains unallowed characters"
        call = {"token": token, "params": params, "status": 400 if problem else 200, "description": problem}
        with self._lock:
            self._calls.append(call)
        if problem:
            return 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {problem}"}
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
                return  # quiet: the emulator logs the calls

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                match = _BOT_API_PATH.match(parts.path)
                if match and match.group(2).lower() == "setwebhook":
                    params = _request_params(parts.query, body, self.headers.get("Content-Type", ""))
                    status, answer = shim._set_webhook(match.group(1), params)
                    self._reply(status, json.dumps(answer).encode(), "application/json")
                    return
                headers = {"Content-Type": self.headers["Content-Type"]} if self.headers["Content-Type"] else {}
                try:
                    upstream = shim._forward.request(
                        self.command, f"{shim._upstream}{self.path}", content=body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    self._reply(502, json.dumps({"ok": False, "description": str(exc)}).encode(), "application/json")
                    return
                self._reply(upstream.status_code, upstream.content, upstream.headers.get("content-type", ""))

            def _reply(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                if content_type:
                    self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def _request_params(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    """Bot API parameters as PTB sends them: a form (or JSON) whose values may themselves be JSON."""
    params: dict[str, Any] = dict(parse_qsl(query))
    if body and "application/json" in content_type:
        params.update(json.loads(body))
    elif body:
        params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    for key, value in params.items():
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                params[key] = json.loads(value)
    return params


# -- the webhook bot -----------------------------------------------------------------------------------------


@dataclass
class WebhookBot:
    process: subprocess.Popen[bytes]
    handle: BotUnderTest
    port: int
    webhook_url: str
    secret: str
    database: Path
    shim: SetWebhookShim

    def log(self) -> str:
        return self.handle.log_text()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def set_webhook_shim(emulator: Emulator) -> Iterator[SetWebhookShim]:
    shim = SetWebhookShim(emulator.bot_api_url)
    try:
        yield shim
    finally:
        shim.close()


@pytest.fixture(scope="module")
def webhook_bot(
    tmp_path_factory: pytest.TempPathFactory,
    set_webhook_shim: SetWebhookShim,
    api_log: BotApiLog,
    rahnuma_executable: str,
    scrubbed_env: dict[str, str],
    e2e_session_logs: dict[str, Path],
) -> Iterator[WebhookBot]:
    """`rahnuma db upgrade` and `rahnuma run` in webhook mode, in a scratch folder; waits until it listens."""
    workdir = tmp_path_factory.mktemp("e2e-webhook")
    database = workdir / "webhook.db"
    log_path = workdir / "webhook-bot.log"
    port = _free_port()
    webhook_url = f"http://127.0.0.1:{port}/{WEBHOOK_PATH}"
    secret = secrets.token_urlsafe(24)
    env = copy.copy(scrubbed_env)  # keeps its quiet repr
    env.update(
        TELEGRAM_BOT_TOKEN=WEBHOOK_BOT_TOKEN,
        TELEGRAM_API_URL=set_webhook_shim.bot_api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{database}",
        RASA_URL=f"http://127.0.0.1:{_free_port()}",  # closed: the lexical fallback answers
        RAHNUMA_WEBHOOK_URL=webhook_url,
        RAHNUMA_WEBHOOK_LISTEN="127.0.0.1",
        RAHNUMA_WEBHOOK_PORT=str(port),
        RAHNUMA_WEBHOOK_SECRET=secret,
        RASA_TOKEN=WEBHOOK_RASA_TOKEN,  # its Rasa is unreachable, which it logs at start: never with the token
        RAHNUMA_LOG_LEVEL=os.environ.get("RAHNUMA_E2E_LOG_LEVEL", "INFO"),
        PYTHONUNBUFFERED="1",
    )
    e2e_session_logs["webhook bot log"] = log_path
    process = migrate_and_start_bot(rahnuma_executable, cwd=workdir, env=env, log_path=log_path)
    try:
        _wait_until_listening(process, port, set_webhook_shim, log_path)
        yield WebhookBot(
            process=process,
            handle=BotUnderTest(process, log_path, api_log),
            port=port,
            webhook_url=webhook_url,
            secret=secret,
            database=database,
            shim=set_webhook_shim,
        )
    finally:
        stop_process(process, signal.SIGINT, grace=20)
        e2e_session_logs.pop("webhook bot log", None)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, shim: SetWebhookShim, log_path: Path) -> None:
    """Until the webhook server accepts connections and the webhook is set (PTB's run_webhook does both)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(
                f"`rahnuma run` (webhook mode) exited with code {process.returncode} before listening:\n"
                f"{tail(log_path)}"
            )
        webhook_set = any(c["token"] == WEBHOOK_BOT_TOKEN and c["status"] == 200 for c in shim.set_webhook_calls)
        if webhook_set and _accepts_connections(port):
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"`rahnuma run` (webhook mode) did not listen on {port} and set its webhook within "
                f"{STARTUP_TIMEOUT:.0f} s (setWebhook calls: {shim.set_webhook_calls}):\n{tail(log_path)}"
            )
        time.sleep(0.1)


@pytest.fixture(scope="module")
async def webhook_http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
        yield http


# -- Telegram's webhook delivery, played by the test ----------------------------------------------------------

_update_ids = iter(range(880_000_001, 890_000_000))


def _private_text_update(user_id: int, first_name: str, text: str) -> dict[str, Any]:
    """An Update as Telegram POSTs it to a webhook: a private text message, a leading /command as an entity."""
    message: dict[str, Any] = {
        "message_id": next(_update_ids) % 1_000_000,
        "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": first_name},
        "from": {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"},
        "text": text,
    }
    command = re.match(r"/[A-Za-z0-9_]+", text)
    if command:
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command.group(0))}]
    return {"update_id": next(_update_ids), "message": message}


async def _deliver(
    http: httpx.AsyncClient, bot: WebhookBot, update: dict[str, Any], secret: str | None
) -> httpx.Response:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    return await http.post(bot.webhook_url, json=update, headers=headers)


def _chat_user(e2e_http: httpx.AsyncClient, emulator: Emulator, user_id: int, first_name: str) -> TelegramUser:
    """The emulator's view of a chat of the webhook bot (its chat history works for chats it did not originate)."""
    return TelegramUser(
        e2e_http, client_url=emulator.client_url, bot_token=WEBHOOK_BOT_TOKEN, user_id=user_id, first_name=first_name
    )


def _has_language_buttons(message: BotMessage) -> bool:
    return {"lang:en", "lang:ur"} <= set(message.callback_data)


def _users_in_database(database: Path) -> set[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as connection:
        rows = connection.execute("SELECT external_id FROM user").fetchall()
    connection.close()
    return {str(row[0]) for row in rows}


# -- the stories ---------------------------------------------------------------------------------------------


async def test_a_start_update_posted_with_the_secret_is_answered_with_the_welcome(
    webhook_bot: WebhookBot,
    webhook_http: httpx.AsyncClient,
    e2e_http: httpx.AsyncClient,
    emulator: Emulator,
    api_log: BotApiLog,
) -> None:
    """Telegram POSTs /start with the right secret: HTTP 200, and the welcome with language buttons is sent."""
    checkpoint = await webhook_bot.handle.checkpoint()
    user = _chat_user(e2e_http, emulator, WELCOMED_USER_ID, "Wafa")

    response = await _deliver(
        webhook_http, webhook_bot, _private_text_update(WELCOMED_USER_ID, "Wafa", "/start"), webhook_bot.secret
    )

    assert response.status_code == 200, f"{response.status_code} {response.text}\n{tail(webhook_bot.handle.log_path)}"
    welcome = await user.wait_for(_has_language_buttons, what="the welcome with language buttons")
    assert "Rahnuma" in welcome.plain_text
    assert "Wafa" in welcome.plain_text
    labels = {button.callback_data: button.text for button in welcome.all_buttons}
    assert "English" in labels["lang:en"]
    assert "اردو" in labels["lang:ur"]
    send = await api_log.wait_for_call(
        "sendMessage",
        lambda call: (
            call["token"] == WEBHOOK_BOT_TOKEN and str((call["params"] or {}).get("chat_id")) == str(WELCOMED_USER_ID)
        ),
    )
    assert send["status"] == 200, send
    assert str(WELCOMED_USER_ID) in _users_in_database(webhook_bot.database)
    await webhook_bot.handle.assert_healthy_since(checkpoint)


@pytest.mark.parametrize(
    ("secret", "user_id"),
    [pytest.param("wrong", REFUSED_USER_ID, id="wrong-secret"), pytest.param(None, UNSIGNED_USER_ID, id="no-secret")],
)
async def test_an_update_without_the_right_secret_is_refused_with_403_and_not_answered(
    secret: str | None,
    user_id: int,
    webhook_bot: WebhookBot,
    webhook_http: httpx.AsyncClient,
    e2e_http: httpx.AsyncClient,
    emulator: Emulator,
    api_log: BotApiLog,
) -> None:
    """A forged update (wrong or missing secret token) gets HTTP 403; the bot neither answers nor records it."""
    checkpoint = await webhook_bot.handle.checkpoint()
    forged_secret = None if secret is None else secrets.token_urlsafe(24)
    assert forged_secret != webhook_bot.secret

    response = await _deliver(
        webhook_http, webhook_bot, _private_text_update(user_id, "Mallory", "/start"), forged_secret
    )

    assert response.status_code == 403, f"{response.status_code} {response.text}"
    # A genuine update sent afterwards is answered: by then the forged one would have been answered too.
    genuine = _chat_user(e2e_http, emulator, WELCOMED_USER_ID, "Wafa")
    already_seen = {m.message_id for m in await genuine.chat_history()}
    ok = await _deliver(
        webhook_http, webhook_bot, _private_text_update(WELCOMED_USER_ID, "Wafa", "/help"), webhook_bot.secret
    )
    assert ok.status_code == 200
    await genuine.wait_for(lambda m: m.message_id not in already_seen, what="the answer to /help")
    forged_chat = _chat_user(e2e_http, emulator, user_id, "Mallory")
    with pytest.raises(NoReplyError):
        await forged_chat.next_reply(within=1.5)
    to_forged_chat = [
        call
        for call in await api_log.calls()
        if call["token"] == WEBHOOK_BOT_TOKEN and str((call["params"] or {}).get("chat_id")) == str(user_id)
    ]
    assert not to_forged_chat, f"the bot acted on a forged update: {to_forged_chat}"
    assert str(user_id) not in _users_in_database(webhook_bot.database)
    await webhook_bot.handle.assert_healthy_since(checkpoint)


async def test_the_webhook_was_set_with_its_url_and_secret_token(webhook_bot: WebhookBot, api_log: BotApiLog) -> None:
    """At start the bot called setWebhook once, with RAHNUMA_WEBHOOK_URL, the secret and every update type."""
    calls = [c for c in webhook_bot.shim.set_webhook_calls if c["token"] == WEBHOOK_BOT_TOKEN]
    assert len(calls) == 1, calls
    (call,) = calls
    assert call["status"] == 200, call
    assert call["params"]["url"] == webhook_bot.webhook_url
    assert call["params"]["secret_token"] == webhook_bot.secret
    assert {"message", "callback_query"} <= set(call["params"].get("allowed_updates") or []), call["params"]
    # The rest of the start went to the emulator as usual; nothing of this bot was refused there.
    methods = {c["method"] for c in await api_log.calls() if c["token"] == WEBHOOK_BOT_TOKEN}
    assert "getMe" in methods
    assert "getUpdates" not in methods, "a webhook bot must not poll"
    refused = [c for c in await api_log.rejected() if c["token"] == WEBHOOK_BOT_TOKEN]
    assert not refused, json.dumps(refused, indent=2, ensure_ascii=False)


async def test_the_webhook_bot_stops_cleanly_on_sigint(webhook_bot: WebhookBot) -> None:
    """SIGINT: exit code 0, the port is free, nothing left in its process group, no error in its log."""
    webhook_bot.handle.assert_alive()

    os.killpg(webhook_bot.process.pid, signal.SIGINT)
    try:
        code = webhook_bot.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the webhook bot did not stop within 20 s of SIGINT:\n{tail(webhook_bot.handle.log_path)}")

    log = webhook_bot.log()
    assert code == 0, f"exit code {code}:\n{tail(webhook_bot.handle.log_path)}"
    assert not _accepts_connections(webhook_bot.port), "the webhook port still accepts connections"
    with pytest.raises(ProcessLookupError):
        os.killpg(webhook_bot.process.pid, 0)  # no process of its group is left
    bad = [line for line in log.splitlines() if " ERROR " in line or " CRITICAL " in line or "Traceback" in line]
    assert not bad, "\n".join(bad)
    for secret in (WEBHOOK_BOT_TOKEN, webhook_bot.secret, WEBHOOK_RASA_TOKEN):  # issue 7, defect 7
        assert secret not in log, "a secret is in the webhook bot's log"
