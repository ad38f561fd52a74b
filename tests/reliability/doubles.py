"""The other side of every edge, for the reliability tests: Telegram's server, Rasa's server, and faults injected
into our own database. Nothing here replaces code under test: the bot runs its real handlers, its real PTB
`ExtBot` and its real `Database`; only what is outside the process (or a failure of it) is played here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import itertools
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Update
from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

from bot.app import build_application
from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.coordination import Coordination
from bot.handlers.context import RahnumaApplication
from bot.runtime import Runtime
from bot.settings import load_settings
from content.library import Library
from storage.db import Database
from tests.reliability import telegram_html

BOT_TOKEN = "7000000009:AAReliability_not_a_real_token_x"
BOT_ID = 7000000009
BOT_USERNAME = "RahnumaTestBot"


# ---- our database, with a fault injected ----------------------------------------------------------------------


class FlakyDatabase(Database):
    """The real Database (same sessions, same error handling) with switchable faults and a transaction count.

    `fail_commits`: every write transaction runs its statements and then fails to commit, as a full disk or a lock
    would; SQLAlchemy rolls it back and `Database.write()` turns the error into StorageError, as in production.
    `fail_reads`: every read fails the same way.
    """

    def __init__(self, inner: Database) -> None:
        super().__init__(inner._write, inner._read, engine=inner.engine)
        self.fail_commits = False
        self.fail_reads = False
        self.writes = 0
        self.reads = 0

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        self.writes += 1
        async with super().write() as session:
            yield session
            if self.fail_commits:
                await session.flush()  # the statements really ran; only the commit fails
                raise OperationalError("COMMIT", {}, Exception("disk I/O error (injected)"))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        self.reads += 1
        async with super().read() as session:
            if self.fail_reads:
                raise OperationalError("SELECT", {}, Exception("unable to open database file (injected)"))
            yield session


# ---- time -----------------------------------------------------------------------------------------------------


class TickingClock(FrozenClock):
    """A clock that moves one microsecond each time it is read: events that happen one after another get
    different times (as on a real clock), yet every run is the same."""

    def now(self) -> dt.datetime:
        return self.advance(microseconds=1)


# ---- Telegram's server ----------------------------------------------------------------------------------------

Answer = tuple[int, dict[str, Any]] | BaseException


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int


class ScriptedTelegram(BaseRequest):
    """Telegram's Bot API as a PTB transport: it answers like Telegram (and refuses what Telegram refuses: HTML that
    does not parse, texts over 4096 characters, callback data over 64 bytes); `script(method, ...)` queues special
    answers (429, 403, 400, 502, a timeout) for the next calls of a method."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._scripted: dict[str, list[Answer]] = {}
        self._message_ids = itertools.count(1)

    def script(self, method: str, *answers: Answer) -> None:
        self._scripted.setdefault(method, []).extend(answers)

    def sent(self, method: str = "sendMessage", *, ok: bool = True) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.method == method and (c.status == 200) == ok]

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = None,
        write_timeout: Any = None,
        connect_timeout: Any = None,
        pool_timeout: Any = None,
    ) -> tuple[int, bytes]:
        api_method = url.rsplit("/", 1)[-1]
        params = dict(request_data.parameters) if request_data else {}
        queued = self._scripted.get(api_method)
        answer: Answer = queued.pop(0) if queued else self._answer(api_method, params)
        if isinstance(answer, BaseException):
            self.calls.append(Call(api_method, params, 0))
            raise answer
        status, body = answer
        self.calls.append(Call(api_method, params, status))
        return status, json.dumps(body).encode()

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "getMe":
            return ok({"id": BOT_ID, "is_bot": True, "first_name": "Rahnuma", "username": BOT_USERNAME})
        if method in ("sendMessage", "editMessageText"):
            try:
                telegram_html.check_message(str(params.get("text", "")))
                _check_keyboard(params.get("reply_markup"))
            except telegram_html.TelegramHtmlError as exc:
                return refused(400, f"Bad Request: can't parse entities: {exc}")
            chat_id = int(params["chat_id"]) if "chat_id" in params else 1
            return ok(
                {
                    "message_id": next(self._message_ids),
                    "date": 0,
                    "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"},
                    "text": params.get("text", ""),
                }
            )
        return ok(True)


def ok(result: Any) -> tuple[int, dict[str, Any]]:
    return 200, {"ok": True, "result": result}


def refused(status: int, description: str, **parameters: Any) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return status, body


def timed_out() -> TimedOut:
    return TimedOut("Timed out")


def _check_keyboard(markup: Any) -> None:
    if isinstance(markup, str):
        markup = json.loads(markup)
    for row in (markup or {}).get("inline_keyboard", []):
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise telegram_html.TelegramHtmlError("BUTTON_DATA_INVALID")


def telegram_application() -> RahnumaApplication:
    """The production Application (bot/app.py: handlers, filters, defaults, rate limiter), before it is connected to
    a Telegram server and a core (`connect`)."""
    settings = load_settings(TELEGRAM_BOT_TOKEN=BOT_TOKEN, RAHNUMA_WEBHOOK_URL="")
    return build_application(settings, webhook_mode=True)


def connect(
    application: RahnumaApplication,
    telegram: ScriptedTelegram,
    conversation: Conversation,
    library: Library,
    db: Database,
) -> None:
    """Point the application at `telegram` (only the transport: Telegram's side of the wire) and at the test's core,
    in place of the runtime that post_init would open."""
    application.bot._request = (telegram, telegram)
    application.bot_data.runtime = Runtime(
        settings=load_settings(TELEGRAM_BOT_TOKEN=BOT_TOKEN, RAHNUMA_WEBHOOK_URL=""),
        library=library,
        db=db,
        journal=conversation.journal,
        clock=conversation.clock,
        rasa=None,  # type: ignore[arg-type]
        conversation=conversation,
        planners=[],
        coordination=Coordination(library=library, db=db, clock=conversation.clock, journal=conversation.journal),
    )
    conversation.bot_username = BOT_USERNAME


# ---- Telegram updates, as Telegram sends them -----------------------------------------------------------------

_update_ids = itertools.count(500_000_001)
_MENTION = re.compile(r"(?<![/\w])@\w+")


def user_json(user_id: int, first_name: str = "Ayesha", language_code: str = "en") -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}


def chat_json(user_id: int, chat: dict[str, Any] | None = None) -> dict[str, Any]:
    return chat or {"id": user_id, "type": "private", "first_name": "Ayesha"}


def text_update(
    application: RahnumaApplication,
    user_id: int,
    text: str,
    *,
    chat: dict[str, Any] | None = None,
    first_name: str = "Ayesha",
    update_id: int | None = None,
) -> Update:
    message: dict[str, Any] = {
        "message_id": next(_update_ids) % 1_000_000,
        "date": 1_790_000_000,
        "chat": chat_json(user_id, chat),
        "from": user_json(user_id, first_name),
        "text": text,
    }
    entities = [{"type": "mention", "offset": m.start(), "length": len(m.group())} for m in _MENTION.finditer(text)]
    if text.startswith("/"):
        entities.insert(0, {"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    if entities:  # as Telegram marks them (offsets in UTF-16 units; these tests mention in ASCII)
        message["entities"] = entities
    return _update(application, {"update_id": update_id or next(_update_ids), "message": message})


def button_update(
    application: RahnumaApplication,
    user_id: int,
    data: str,
    *,
    chat: dict[str, Any] | None = None,
    inline: bool = False,
) -> Update:
    query: dict[str, Any] = {
        "id": str(next(_update_ids)),
        "from": user_json(user_id),
        "chat_instance": "1",
        "data": data,
    }
    if inline:
        query["inline_message_id"] = "AAAA"
    else:
        query["message"] = {
            "message_id": 7,
            "date": 1_790_000_000,
            "chat": chat_json(user_id, chat),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Rahnuma", "username": BOT_USERNAME},
            "text": "an earlier message",
        }
    return _update(application, {"update_id": next(_update_ids), "callback_query": query})


def channel_post_update(application: RahnumaApplication, text: str, *, edited: bool = False) -> Update:
    post = {
        "message_id": 3,
        "date": 1_790_000_000,
        "chat": {"id": -1001234567890, "type": "channel", "title": "Freelancing news"},
        "sender_chat": {"id": -1001234567890, "type": "channel", "title": "Freelancing news"},
        "text": text,
    }
    if edited:
        post["edit_date"] = 1_790_000_100
    key = "edited_channel_post" if edited else "channel_post"
    return _update(application, {"update_id": next(_update_ids), key: post})


def _update(application: RahnumaApplication, data: dict[str, Any]) -> Update:
    update = Update.de_json(data, application.bot)
    assert update is not None
    return update


# ---- Rasa's server --------------------------------------------------------------------------------------------


class RasaDouble:
    """Rasa's HTTP API on a local port, in one of its real failure modes: answering (`answer(text)` gives the parse
    result), hanging (accepts, never answers), or gone (the port closed, as when the process died); it can come
    back on the same port."""

    def __init__(self, answer: Callable[[str], Any]) -> None:
        self.answer = answer
        self.hanging = False
        self.requests = 0
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def die(self) -> None:
        """The process is gone: the port refuses connections and open ones are cut."""
        assert self._server is not None
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests += 1
                if self.hanging:
                    await asyncio.sleep(3600)
                path = head.split(b" ", 2)[1].decode()
                if path.startswith("/status"):
                    payload: Any = {"model_file": "rahnuma.tar.gz"}
                else:
                    payload = self.answer(json.loads(body or b"{}").get("text", ""))
                    if inspect.isawaitable(payload):
                        payload = await payload
                data = json.dumps(payload).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data)
                )
                writer.write(data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._connections.discard(task)
            writer.transport.abort()


def rasa_answer(intent: str, confidence: float = 0.95, articles: tuple[tuple[str, float], ...] = ()) -> dict[str, Any]:
    """A parse result shaped like Rasa 3.6's."""
    return {
        "text": "",
        "intent": {"name": intent, "confidence": confidence},
        "entities": [],
        "response_selector": {
            "faq": {"ranking": [{"intent_response_key": f"faq/{a}", "confidence": c} for a, c in articles]}
        },
    }


def like_rasa(text: str) -> dict[str, Any]:
    """What a real Rasa does with a message: "/name" is read as an intent trigger with confidence 1.0 (the
    behaviour behind defect 11); anything else is a faq question about Fiverr withdrawals."""
    if text.startswith("/"):
        return rasa_answer(text[1:], 1.0)
    return rasa_answer("faq", 0.93, (("fiverr_withdrawal", 0.91), ("payoneer_setup", 0.05)))
