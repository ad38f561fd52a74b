"""The journal: best-effort writes (the event log, last-seen touches) that never delay or fail a reply.

`record()` only queues. A background writer stores the queue in batches and, while the database is unavailable
(locked, restarting), keeps the events and retries with backoff, so an outage delays the log instead of losing it.
State changes never go through here: they commit with their own events in `Database.write()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import deque

from storage.codebook import INBOUND_KINDS, EventKind
from storage.db import Database, Session, StorageError
from storage.events import NewEvent, add_events
from storage.outbox import RESPONSE_WINDOW, set_responded, unanswered_nudges
from storage.users import Touch, touch_users

log = logging.getLogger(__name__)

MAX_PENDING = 200_000  # about 100 MB at worst; past it the oldest events are dropped and counted
BATCH_SIZE = 500


class Journal:
    def __init__(
        self,
        db: Database,
        *,
        max_pending: int = MAX_PENDING,
        batch_size: int = BATCH_SIZE,
        retry_initial: float = 0.2,
        retry_max: float = 10.0,
    ) -> None:
        self.db = db
        self.max_pending = max_pending
        self.batch_size = batch_size
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self._events: deque[NewEvent] = deque()
        self._touches: dict[int, Touch] = {}
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.dropped = 0
        self.failed_attempts = 0

    @property
    def pending(self) -> int:
        return len(self._events) + len(self._touches)

    def record(self, *events: NewEvent) -> None:
        self._events.extend(events)
        overflow = len(self._events) - self.max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._events.popleft()
            self.dropped += overflow
            log.error("The event journal is full; dropped %d old events (%d in all)", overflow, self.dropped)
        self._wakeup.set()

    def touch(self, touch: Touch) -> None:
        known = self._touches.get(touch.user_id)
        if known is None or touch.seen_at >= known.seen_at:
            self._touches[touch.user_id] = touch
        self._wakeup.set()

    async def flush(self) -> bool:
        """Write everything queued now; False (and everything kept) if the database is unavailable."""
        async with self._lock:
            while self._events or self._touches:
                batch = [self._events.popleft() for _ in range(min(self.batch_size, len(self._events)))]
                touches, self._touches = self._touches, {}
                try:
                    async with self.db.write() as session:
                        await touch_users(session, touches=touches.values())
                        await add_events(session, events=[*batch, *await _nudge_responses(session, batch)])
                except BaseException as exc:  # a cancelled writer must not lose its batch either
                    self._events.extendleft(reversed(batch))
                    for user_id, touch in touches.items():
                        self._touches.setdefault(user_id, touch)
                    if not isinstance(exc, StorageError):
                        raise
                    self.failed_attempts += 1
                    log.warning("Could not write %d events yet (%s); will retry", len(batch), exc)
                    return False
                self.written += len(batch)
            return True

    def start(self) -> None:
        """Run the background writer on the current event loop (the bot and the CLI do; tests call flush())."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="rahnuma-journal")

    async def _run(self) -> None:
        delay = self.retry_initial
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if await self.flush():
                delay = self.retry_initial
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                self._wakeup.set()

    async def aclose(self, grace: float = 10.0) -> None:
        """Stop the writer and try to store what is left, for at most `grace` seconds."""
        if self._task is not None:
            # Never cancel the writer mid-batch: a batch cancelled after its commit would be queued, and written, again.
            async with self._lock:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        deadline = asyncio.get_running_loop().time() + grace
        delay = self.retry_initial
        while self.pending and not await self.flush():
            if asyncio.get_running_loop().time() + delay > deadline:
                log.error("Shutting down with %d events not written", len(self._events))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)


async def _nudge_responses(session: Session, batch: list[NewEvent]) -> list[NewEvent]:
    """A user who writes within 48 h of a nudge answered it: mark the nudge and record `nudge_responded`.

    Done here, with the message's own event, so measuring a nudge's effect costs the reply nothing.
    """
    inbound: dict[int, list[dt.datetime]] = {}
    for event in batch:
        if event.user_id is not None and event.kind in INBOUND_KINDS:
            inbound.setdefault(event.user_id, []).append(event.at)
    if not inbound:
        return []
    since = min(min(times) for times in inbound.values()) - RESPONSE_WINDOW
    responses = []
    for nudge in await unanswered_nudges(session, user_ids=inbound, since=since):
        first = min((at for at in inbound[nudge.user_id] if nudge.sent_at <= at <= nudge.sent_at + RESPONSE_WINDOW),
                    default=None)  # fmt: skip
        if first is None or not await set_responded(session, message_id=nudge.id, at=first):
            continue
        data = {
            "outbox_id": nudge.id,
            **{k: v for k, v in (nudge.meta or {}).items() if k in ("rule", "experiment", "arm")},
        }
        data["after_minutes"] = round((first - nudge.sent_at).total_seconds() / 60)
        responses.append(NewEvent(kind=EventKind.NUDGE_RESPONDED, at=first, user_id=nudge.user_id, data=data))
    return responses
