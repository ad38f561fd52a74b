"""Telegram's side of the Bot API for outbox tests and benchmarks: a local HTTP server that accepts what the real
Bot API accepts for sending, and misbehaves the ways the real one does (flood limits with retry_after, users who
blocked the bot, 502s, requests that never answer). A fake of Telegram's servers, never of our code."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import tornado.httpserver
import tornado.netutil
import tornado.web

BOT_USER = {"id": 777, "is_bot": True, "first_name": "Rahnuma (fake)", "username": "RahnumaFakeBot"}


@dataclass
class Sent:
    chat_id: int
    text: str
    reply_markup: dict[str, Any] | None
    message_id: int
    at: float


@dataclass
class FakeBotApi:
    """Configure, `await start()`, point the bot at `bot_api_url`, inspect `sent`, `await stop()`."""

    rate_limit: float | None = None  # messages per second over a sliding second; above it: 429 retry_after
    retry_after: int = 1
    blocked_chats: set[int] = field(default_factory=set)  # 403 Forbidden: bot was blocked by the user
    bad_gateway: Counter[int] = field(default_factory=Counter)  # chat -> how many 502s before it works
    hanging_chats: set[int] = field(default_factory=set)  # never answers (the client times out)
    # Delivers, then never answers: the message reached the user but the sender cannot know it.
    deliver_then_hang_chats: set[int] = field(default_factory=set)
    arrived: Counter[int] = field(default_factory=Counter)  # chat -> sendMessage requests received
    latency: float = 0.0
    sent: list[Sent] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)  # status code -> count
    _recent: deque[float] = field(default_factory=deque)
    _server: tornado.httpserver.HTTPServer | None = None
    _port: int = 0

    @property
    def bot_api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/bot"

    async def start(self, port: int = 0) -> None:
        app = tornado.web.Application(
            [(r"/bot([^/]+)/([A-Za-z]+)", _Handler, {"api": self}), (r"/_stats", _Stats, {"api": self})]
        )
        sockets = tornado.netutil.bind_sockets(port, "127.0.0.1")
        self._port = sockets[0].getsockname()[1]
        self._server = tornado.httpserver.HTTPServer(app)
        self._server.add_sockets(sockets)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            await self._server.close_all_connections()

    def delivered_to(self, chat_id: int) -> list[Sent]:
        return [message for message in self.sent if message.chat_id == chat_id]

    def _over_limit(self) -> bool:
        if self.rate_limit is None:
            return False
        now = time.monotonic()
        while self._recent and self._recent[0] < now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.rate_limit:
            return True
        self._recent.append(now)
        return False

    async def answer(self, method: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.calls[method.lower()] += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        name = method.lower()
        if name == "getme":
            return 200, {"ok": True, "result": BOT_USER}
        if name != "sendmessage":
            return 200, {"ok": True, "result": True}
        chat_id = int(params.get("chat_id", 0))
        self.arrived[chat_id] += 1
        if chat_id in self.hanging_chats:
            await asyncio.sleep(3600)
        if chat_id in self.blocked_chats:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        if self.bad_gateway[chat_id] > 0:
            self.bad_gateway[chat_id] -= 1
            return 502, {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        if self._over_limit():
            description = f"Too Many Requests: retry after {self.retry_after}"
            body = {
                "ok": False,
                "error_code": 429,
                "description": description,
                "parameters": {"retry_after": self.retry_after},
            }
            return 429, body
        if not str(params.get("text", "")).strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        markup = params.get("reply_markup")
        message = Sent(chat_id, str(params["text"]), json.loads(markup) if isinstance(markup, str) else markup,
                       len(self.sent) + 1, time.monotonic())  # fmt: skip
        self.sent.append(message)
        if chat_id in self.deliver_then_hang_chats:
            await asyncio.sleep(3600)
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup", "first_name": "User"}
        result = {"message_id": message.message_id, "date": int(time.time()), "chat": chat, "text": message.text,
                  "from": BOT_USER}  # fmt: skip
        return 200, {"ok": True, "result": result}


class _Stats(tornado.web.RequestHandler):
    """What a separate process's fake received: per chat, how many messages were delivered; refusals by status."""

    def initialize(self, api: FakeBotApi) -> None:
        self.api = api

    def get(self) -> None:
        """`?chats=FROM-TO` limits the first and last delivery times to those chats (a benchmark's own rows)."""
        delivered = Counter(message.chat_id for message in self.api.sent)
        low, _, high = self.get_argument("chats", "").partition("-")
        times = [m.at for m in self.api.sent if not low or int(low) <= m.chat_id <= int(high)]
        first = times[0] if times else 0.0
        last = times[-1] if times else 0.0
        self.finish({"delivered": {str(k): v for k, v in delivered.items()}, "refused": dict(self.api.refused),
                     "first_at": first, "last_at": last, "count": len(self.api.sent)})  # fmt: skip


class _Handler(tornado.web.RequestHandler):
    def initialize(self, api: FakeBotApi) -> None:
        self.api = api

    async def post(self, token: str, method: str) -> None:
        content_type = self.request.headers.get("Content-Type", "")
        body = self.request.body.decode("utf-8") if self.request.body else ""
        params: dict[str, Any] = dict(json.loads(body)) if "json" in content_type and body else dict(parse_qsl(body))
        status, answer = await self.api.answer(method, params)
        if status != 200:
            self.api.refused[status] += 1
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(answer))

    get = post


async def _serve(port: int, rate_limit: float | None, blocked_every: int) -> None:
    logging.getLogger("tornado.access").setLevel(logging.ERROR)  # every 403 and 429 is expected here, not news
    api = FakeBotApi(rate_limit=rate_limit)
    if blocked_every:
        api.blocked_chats = _EveryNth(blocked_every)  # type: ignore[assignment]
    await api.start(port)
    print(api.bot_api_url, flush=True)
    await asyncio.Event().wait()


class _EveryNth(set[int]):
    """Chats whose id is a multiple of n have blocked the bot (2% of chats for n = 50)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def __contains__(self, chat: object) -> bool:
        return isinstance(chat, int) and chat > 0 and chat % self.n == 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Run the fake Bot API as its own process (benchmarks).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limit", type=float)
    parser.add_argument("--blocked-every", type=int, default=0)
    arguments = parser.parse_args()
    asyncio.run(_serve(arguments.port, arguments.rate_limit, arguments.blocked_every))
