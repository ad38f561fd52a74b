"""The sender: the only code besides the handlers that talks to Telegram. It sends one outbox payload and says
what happened, in terms the dispatcher can act on; it never raises for a Telegram answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut

from bot.core.outbox import reply_of
from bot.delivery.pacing import Pacer
from bot.delivery.render import message_parts

log = logging.getLogger(__name__)

Outcome = Literal["sent", "blocked", "retry_after", "failed", "ambiguous", "transient", "skipped"]


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message_id: int | None = None
    error: str | None = None
    retry_after: float = 0.0


# Requests of bulk sends in flight at once, and the bulk bot's connection pool (bot/app.py). At 200 messages a
# second and 10-20 ms a request a handful is enough; more requests than connections queue inside httpcore, whose
# pool scans every waiting request and connection for each one (most of the dispatcher's CPU at 200/s).
BULK_CONNECTIONS = 8


class TelegramSender:
    def __init__(self, bot: Bot, pacer: Pacer, *, max_in_flight: int = BULK_CONNECTIONS) -> None:
        self.bot = bot
        self.pacer = pacer
        self._in_flight = asyncio.Semaphore(max_in_flight)

    async def send(
        self, chat_id: int, payload: dict[str, Any], *, go_ahead: Callable[[], Awaitable[bool]] | None = None
    ) -> SendResult:
        """Send one payload (cut into parts if long); the first failure decides the outcome.

        `go_ahead` runs once the first part's turn has come, right before the request leaves; if it says no (the
        row was cancelled or re-leased meanwhile), nothing is sent. Waiting for a slot therefore never counts as
        "the send had started".
        """
        reply = reply_of(payload)
        message_id: int | None = None
        for index, (text, keyboard) in enumerate(message_parts(reply)):
            await self.pacer.acquire(chat_id)
            if index == 0 and go_ahead is not None and not await go_ahead():
                return SendResult("skipped")
            try:
                async with self._in_flight:
                    await self.pacer.gate()  # after the wait for a connection: a request held there counts when it goes
                    message = await self.bot.send_message(chat_id, text, reply_markup=keyboard)
            except RetryAfter as exc:
                seconds = float(
                    exc.retry_after if isinstance(exc.retry_after, int | float) else exc.retry_after.total_seconds()
                )
                self.pacer.pause(seconds)
                return SendResult("retry_after", error=f"RetryAfter {seconds:.0f}s", retry_after=seconds)
            except Forbidden as exc:
                return SendResult("blocked", error=f"Forbidden: {exc.message}")
            except ChatMigrated as exc:
                return SendResult("failed", error=f"chat migrated to {exc.new_chat_id}")
            except BadRequest as exc:
                return SendResult("failed", error=f"BadRequest: {exc.message}")
            except TimedOut as exc:  # the request went out; Telegram may have delivered it
                return SendResult("ambiguous", error=f"TimedOut: {exc}")
            except NetworkError as exc:  # connection refused, 5xx: not delivered
                return SendResult("transient", error=f"{type(exc).__name__}: {exc}")
            except TelegramError as exc:
                return SendResult("failed", error=f"{type(exc).__name__}: {exc}")
            message_id = message_id or message.message_id
        return SendResult("sent", message_id=message_id)
