"""Pacing bulk sends under Telegram's limits: a global rate, one message a second per chat (20 a minute in a
group), pauses for Telegram's retry_after, and live replies counted first so they are never starved."""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable

PRIVATE_CHAT_INTERVAL = 1.0
GROUP_CHAT_INTERVAL = 3.0


class Pacer:
    """Reserves send slots: each bulk send waits for its chat's next free moment, then for the next global slot.

    Slots are handed out one after another (no bursts), so the achieved rate is the configured rate whenever there
    is enough to send. A live reply takes a global slot without waiting (`note_live`), and bulk waits behind it.
    """

    def __init__(
        self,
        rate: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the send rate must be positive")
        self.interval = 1.0 / rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._chat_free_at: dict[int, float] = {}
        self._chat_locks: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._per_second = max(1, int(rate))
        self._recent: deque[float] = deque()  # when the requests of the last second left

    async def acquire(self, chat_id: int) -> None:
        """Wait until a message to this chat may go."""
        lock = self._chat_locks.get(chat_id)
        if lock is None:
            lock = self._chat_locks[chat_id] = asyncio.Lock()
        async with lock:
            now = self._monotonic()
            wait_chat = self._chat_free_at.get(chat_id, 0.0) - now
            if wait_chat > 0:
                await self._sleep(wait_chat)
            slot = self._reserve()
            delay = slot - self._monotonic()
            if delay > 0:
                await self._sleep(delay)
            spacing = GROUP_CHAT_INTERVAL if chat_id < 0 else PRIVATE_CHAT_INTERVAL
            self._chat_free_at[chat_id] = self._monotonic() + spacing
            if len(self._chat_free_at) > 50_000:  # forget chats whose spacing has long passed
                horizon = self._monotonic()
                self._chat_free_at = {c: t for c, t in self._chat_free_at.items() if t > horizon}

    async def gate(self) -> None:
        """Right before a request leaves: never more than the rate within any one second.

        Slots are evenly spaced, but a send can be held between its slot and its request (the go-ahead's commit)
        and then leave together with the next ones; Telegram counts requests per second, so such a bunch would
        meet 429s and pause all bulk sending for retry_after.
        """
        while True:
            now = self._monotonic()
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.popleft()
            if len(self._recent) < self._per_second:
                self._recent.append(now)
                return
            await self._sleep(self._recent[0] + 1.0 - now)

    def _reserve(self) -> float:
        now = self._monotonic()
        slot = max(self._next_slot, now, self._paused_until)
        self._next_slot = slot + self.interval
        return slot

    def note_live(self) -> None:
        """A live reply went out: it used one slot of the shared budget, so bulk moves one slot later."""
        self._reserve()
        self._recent.append(self._monotonic())

    def pause(self, seconds: float) -> None:
        """Telegram said retry_after: no bulk send until then (live replies have their own retry)."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)
