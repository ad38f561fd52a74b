"""A simulated Telegram user, talking to the bot through the emulator (tests/e2e/emulator.js).

The user side is telegram-test-api's client API (`/sendMessage`, `/sendCommand`, `/sendCallback`,
`/getUpdatesHistory`); what the bot called on the Bot API is read from the emulator's `/_e2e/calls`.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

DEFAULT_TIMEOUT = 15.0
_POLL_INTERVAL = 0.1
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class InlineButton:
    text: str
    callback_data: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class BotMessage:
    """One message of the bot in the user's chat, as the user would see it now."""

    message_id: int
    chat_id: int
    text: str
    parse_mode: str | None
    buttons: tuple[tuple[InlineButton, ...], ...]
    edited: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def plain_text(self) -> str:
        """The text without HTML markup, as a user reads it (only for HTML parse mode)."""
        if (self.parse_mode or "").upper() != "HTML":
            return self.text
        return html.unescape(_TAG.sub("", self.text))

    @property
    def all_buttons(self) -> list[InlineButton]:
        return [button for row in self.buttons for button in row]

    @property
    def callback_data(self) -> list[str]:
        return [b.callback_data for b in self.all_buttons if b.callback_data is not None]

    def button(self, callback_data: str) -> InlineButton:
        for candidate in self.all_buttons:
            if candidate.callback_data == callback_data:
                return candidate
        raise LookupError(f"message {self.message_id} has no button {callback_data!r}; it has {self.callback_data}")

    def _snapshot(self) -> str:
        return json.dumps([self.text, self.parse_mode, self.callback_data, [b.text for b in self.all_buttons]])


class NoReplyError(AssertionError):
    """The bot did not answer in time."""


class TelegramUser:
    """A user in a private chat with the bot (or, with `group`, a member writing in that group). Sends text,
    presses inline buttons, and waits for what the bot shows in that chat."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        client_url: str,
        bot_token: str,
        user_id: int,
        first_name: str = "Ayesha",
        username: str | None = None,
        language_code: str = "en",
        group: dict[str, Any] | None = None,
    ) -> None:
        self._http = http
        self._group = group
        self._client_url = client_url.rstrip("/")
        self.bot_token = bot_token
        self.user_id = user_id
        # private chat: the chat id is the user's id; in a group, the group's (negative) id
        self.chat_id = int(group["id"]) if group else user_id
        self.first_name = first_name
        self.username = username or f"user{user_id}"
        self.language_code = language_code
        self._seen: dict[int, str] = {}  # message_id -> snapshot of what was already handed to the test
        self._last_callback_id = 0

    # -- what the user does ------------------------------------------------------------------------------
    @property
    def _from(self) -> dict[str, Any]:
        return {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
            "username": self.username,
            "language_code": self.language_code,
        }

    @property
    def _chat(self) -> dict[str, Any]:
        if self._group is not None:
            return dict(self._group)
        return {
            "id": self.chat_id,
            "type": "private",
            "first_name": self.first_name,
            "username": self.username,
        }

    async def send_text(self, text: str, *, reply_to: BotMessage | None = None) -> None:
        """Type `text` and send it; a leading /command becomes a bot_command entity, as Telegram does. With
        `reply_to`, it is a Telegram reply to that message of the bot (what a coordinator does in their group)."""
        message: dict[str, Any] = {
            "botToken": self.bot_token,
            "from": self._from,
            "chat": self._chat,
            "date": int(time.time()),
            "text": text,
        }
        if reply_to is not None:
            message["reply_to_message"] = {
                "message_id": reply_to.message_id,
                "date": _seconds(reply_to.raw.get("date") or time.time()),
                "chat": self._chat,
                "from": {"id": 0, "is_bot": True, "first_name": "Bot"},
                "text": reply_to.plain_text,
            }
        route = "/sendMessage"
        entities = [
            {"type": "mention", "offset": _utf16_offset(text, m.start()), "length": len(m.group(0))}
            for m in re.finditer(r"(?<![\w@])@[A-Za-z0-9_]{5,32}", text)
        ]
        command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
        if command:
            entities = [{"type": "bot_command", "offset": 0, "length": len(command.group(0))}]
            route = "/sendCommand"
        if entities:
            message["entities"] = entities
        await self._post(route, message)

    async def press(self, callback_data: str, message: BotMessage | None = None) -> None:
        """Press the button with `callback_data` on `message` (default: the newest message that has it)."""
        if message is None:
            message = await self._message_with_button(callback_data)
        message.button(callback_data)  # the button must be there
        await self.press_forged(callback_data, message)

    async def press_forged(self, callback_data: str, message: BotMessage) -> None:
        """What a modified client can do: send callback data that no button on `message` carries."""
        original = message.raw
        pressed_on: dict[str, Any] = {
            "message_id": message.message_id,
            "date": _seconds(original.get("date") or time.time()),
            "chat": self._chat,
            "from": {"id": 0, "is_bot": True, "first_name": "Bot"},
            "text": message.plain_text,
        }
        if original.get("reply_markup"):
            pressed_on["reply_markup"] = original["reply_markup"]
        await self._post(
            "/sendCallback",
            {
                "botToken": self.bot_token,
                "from": self._from,
                "message": pressed_on,
                "chat_instance": f"e2e-{self.chat_id}",
                "data": callback_data,
            },
        )

    # -- what the user sees ------------------------------------------------------------------------------
    async def chat_history(self) -> list[BotMessage]:
        """Every bot message in this chat, oldest first, in its current (possibly edited) form."""
        response = await self._post("/getUpdatesHistory", {"token": self.bot_token})
        messages = []
        for item in response.get("result") or []:
            message = item.get("message") or {}
            if "chat_id" not in message or str(message["chat_id"]) != str(self.chat_id):
                continue  # a user update, or another chat
            messages.append(_bot_message(item))
        return sorted(messages, key=lambda m: m.message_id)

    async def next_changes(
        self,
        count: int = 1,
        *,
        within: float = DEFAULT_TIMEOUT,
        settle: float = 0.3,
        include_edits: bool = True,
    ) -> list[BotMessage]:
        """Wait until the bot has sent (or edited) at least `count` messages the test has not seen yet.

        After the count is reached, waits `settle` seconds more so that a burst of messages arrives together.
        """
        deadline = time.monotonic() + within
        fresh: list[BotMessage] = []
        while True:
            fresh = [m for m in await self.chat_history() if self._is_new(m, include_edits)]
            if len(fresh) >= count:
                break
            if time.monotonic() >= deadline:
                raise NoReplyError(
                    f"expected {count} new bot message(s) in chat {self.chat_id} within {within}s, "
                    f"got {len(fresh)}: {[m.plain_text[:80] for m in fresh]}"
                )
            await asyncio.sleep(_POLL_INTERVAL)
        if settle:
            await asyncio.sleep(settle)
            fresh = [m for m in await self.chat_history() if self._is_new(m, include_edits)]
        for m in fresh:
            self._seen[m.message_id] = m._snapshot()
        return fresh

    async def next_reply(self, *, within: float = DEFAULT_TIMEOUT) -> BotMessage:
        """The next new message from the bot (edits are not counted)."""
        return (await self.next_changes(1, within=within, settle=0, include_edits=False))[0]

    async def wait_for(
        self,
        predicate: Callable[[BotMessage], bool],
        *,
        within: float = DEFAULT_TIMEOUT,
        what: str = "a message",
    ) -> BotMessage:
        """The first new or edited bot message that matches `predicate`."""
        deadline = time.monotonic() + within
        seen: list[str] = []
        while time.monotonic() < deadline:
            for m in await self.chat_history():
                if self._is_new(m, include_edits=True):
                    self._seen[m.message_id] = m._snapshot()
                    seen.append(m.plain_text[:120])
                    if predicate(m):
                        return m
            await asyncio.sleep(_POLL_INTERVAL)
        raise NoReplyError(f"no bot message matching {what} within {within}s; the bot showed: {seen}")

    def _is_new(self, message: BotMessage, include_edits: bool) -> bool:
        previous = self._seen.get(message.message_id)
        if previous is None:
            return True
        return include_edits and previous != message._snapshot()

    async def _message_with_button(self, callback_data: str) -> BotMessage:
        for message in reversed(await self.chat_history()):
            if callback_data in message.callback_data:
                return message
        raise LookupError(f"no bot message in chat {self.chat_id} has a button {callback_data!r}")

    async def _post(self, route: str, payload: dict[str, Any]) -> dict[str, Any]:
        response = await self._http.post(f"{self._client_url}{route}", json=payload)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


class BotApiLog:
    """What the bot asked of the (emulated) Bot API, from the emulator's `/_e2e/` endpoints."""

    def __init__(self, http: httpx.AsyncClient, bot_port_url: str) -> None:
        self._http = http
        self._base = bot_port_url.rstrip("/")

    async def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        params = {"method": method} if method else None
        response = await self._http.get(f"{self._base}/_e2e/calls", params=params)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["result"]
        return result

    async def rejected(self) -> list[dict[str, Any]]:
        """Calls the emulated Telegram refused (e.g. invalid HTML, too long text, a stale callback query)."""
        response = await self._http.get(f"{self._base}/_e2e/errors")
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["result"]
        return result

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda _c: True,
        *,
        within: float = 10.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for call in await self.calls(method):
                if predicate(call):
                    return call
            await asyncio.sleep(_POLL_INTERVAL)
        raise AssertionError(f"the bot made no matching {method} call within {within}s")


def _utf16_offset(text: str, index: int) -> int:
    """Telegram counts entity offsets in UTF-16 code units."""
    return len(text[:index].encode("utf-16-le")) // 2


def _seconds(value: float | int | str) -> int:
    number = float(value)
    return int(number / 1000) if number > 1e11 else int(number)


def _bot_message(item: dict[str, Any]) -> BotMessage:
    message = item["message"]
    markup = message.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    rows: list[tuple[InlineButton, ...]] = []
    if isinstance(markup, dict):
        for row in markup.get("inline_keyboard") or []:
            rows.append(
                tuple(
                    InlineButton(text=str(b.get("text", "")), callback_data=b.get("callback_data"), url=b.get("url"))
                    for b in row
                )
            )
    raw = dict(message)
    raw["date"] = item.get("time")
    raw["reply_markup"] = markup
    return BotMessage(
        message_id=int(item["messageId"]),
        chat_id=int(message["chat_id"]),
        text=str(message.get("text", "")),
        parse_mode=message.get("parse_mode"),
        buttons=tuple(rows),
        edited="editedAt" in item,
        raw=raw,
    )
