"""The dispatcher: one repeating job that plans what became due, then claims due outbox rows, sends and marks them.

The database is the schedule: nothing is pickled and no per-user job lives in memory, so a restart or a second
dispatcher process loses and repeats nothing (claims are leases; see storage/outbox.py and docs/OUTBOX.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.clock import Clock
from bot.core.outbox import POLICIES
from bot.core.quiet_hours import QuietHours
from storage import outbox as stored_outbox
from storage import users as stored_users
from storage.codebook import EventKind
from storage.db import Database, StorageError
from storage.events import NewEvent, add_events
from storage.outbox import Claimed

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BACKOFF = (5, 30, 120, 600)  # seconds before attempts 2, 3, 4, 5 after a network error
# Sends of a claimed batch started per turn of the event loop. Each send's first step (decide, render, take a
# slot) is short, but a batch of 200 started in one turn held the loop, and every live reply with it, for up to
# 90 ms at 200 messages a second (docs/BENCHMARKS.md).
STARTS_PER_STEP = 8


class Sender(Protocol):
    async def send(
        self, chat_id: int, payload: dict[str, Any], *, go_ahead: Callable[[], Awaitable[bool]] | None = None
    ) -> Any: ...


class Planner(Protocol):
    clock: Clock  # `rahnuma dispatch --once --at` pins it

    async def plan(self, *, now: dt.datetime | None = None, use_cursor: bool = True) -> Any: ...


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


@dataclass
class DispatchReport:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    planned: int = 0


class Dispatcher:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        sender: Sender,
        planners: Sequence[Planner] = (),
        quiet_hours: QuietHours | None = None,
        default_timezone: str = "Asia/Karachi",
        worker: str | None = None,
        batch_size: int = 50,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        plan_every: dt.timedelta = dt.timedelta(seconds=60),
    ) -> None:
        self.db = db
        self.clock = clock
        self.sender = sender
        self.planners = list(planners)
        self.quiet_hours = quiet_hours or QuietHours()
        self.default_timezone = default_timezone
        self.worker = worker or default_worker_id()
        self.batch_size = batch_size
        self.lease = lease
        self.plan_every = plan_every
        self._planned_at: dt.datetime | None = None
        self._go_aheads = GoAheads(self)
        self._waiting_for_turn = 0  # claimed rows not yet at their send (or decided without one)
        self._turn_taken = asyncio.Event()
        self._deliveries: set[asyncio.Task[None]] = set()  # batches being delivered (a tick does not wait for them)
        self._stopping = False

    # ---- the passes ---------------------------------------------------------------------------------------------

    async def tick(self, budget: float = 1.0) -> DispatchReport:
        """What the repeating job runs: plan if it is time, then send due rows for about `budget` seconds."""
        report = DispatchReport()
        try:
            now = self.clock.now()
            if self._planned_at is None or now - self._planned_at >= self.plan_every:
                self._planned_at = now  # an overlapping tick (bot/app.py allows two) does not plan again
                report.planned = await self.plan(now)
            await self._pump(report, deadline=asyncio.get_running_loop().time() + budget, wait=False)
        except StorageError as exc:
            log.warning("Dispatcher pass stopped: the database is unavailable (%s); the next tick retries", exc)
        return report

    async def run_once(self, *, use_cursor: bool = True) -> DispatchReport:
        """`rahnuma dispatch --once`: one planning pass, then send everything due, then stop."""
        report = DispatchReport()
        report.planned = await self.plan(self.clock.now(), use_cursor=use_cursor)
        await self._pump(report)
        return report

    async def plan(self, now: dt.datetime, *, use_cursor: bool = True) -> int:
        planned = 0
        for planner in self.planners:
            result = await planner.plan(now=now, use_cursor=use_cursor)
            planned += int(getattr(result, "enqueued", 0) or 0)
        self._planned_at = now
        return planned

    async def _pump(self, report: DispatchReport, *, deadline: float | None = None, wait: bool = True) -> None:
        """Claim and deliver batches until nothing is due or the deadline passes; with `wait`, until all are done.

        The next batch is claimed while the previous one is still being sent, as soon as fewer than a batch (a
        second's worth) wait for their turn; a claim can wait half a second behind a batch's record. Waiting for a
        whole batch to finish (its slowest send, then its record) left the sender idle between batches and capped
        200/s near half of that. Claiming no more than the sender can start soon leaves the rest due for other
        dispatcher processes, and a long retry_after pause claims nothing more.
        A tick does not wait for its last batches (`wait=False`): the next tick claims while they finish, and
        `release()` waits for them at shutdown.
        """
        loop = asyncio.get_running_loop()
        started: list[asyncio.Task[None]] = []
        try:
            while (deadline is None or loop.time() < deadline) and not self._stopping:
                if self._waiting_for_turn > self.batch_size:
                    self._turn_taken.clear()
                    timeout = None if deadline is None else max(0.0, deadline - loop.time())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._turn_taken.wait(), timeout)
                    continue
                claimed = await self._claim()
                if not claimed:
                    break
                report.claimed += len(claimed)
                delivery = asyncio.create_task(self._deliver_batch(claimed, report))
                self._deliveries.add(delivery)
                delivery.add_done_callback(self._delivery_done)
                started.append(delivery)
        except BaseException:
            if wait:
                await asyncio.gather(*started, return_exceptions=True)
            raise
        if wait:
            for result in await asyncio.gather(*started, return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result

    def _delivery_done(self, delivery: asyncio.Task[None]) -> None:
        """A batch a tick did not wait for has ended: nobody else will see how."""
        self._deliveries.discard(delivery)
        failure = None if delivery.cancelled() else delivery.exception()
        if isinstance(failure, StorageError):
            log.warning("Dispatcher could not record a batch (%s); its rows wait for their leases", failure)
        elif failure is not None:
            log.error("Dispatcher batch failed unexpectedly; its rows wait for their leases", exc_info=failure)

    def turn_taken(self) -> None:
        """One claimed row reached its send (or needed none): `_pump` may claim more."""
        self._waiting_for_turn -= 1
        self._turn_taken.set()

    async def deliver_batch(self, report: DispatchReport) -> bool:
        """Claim one batch and deliver it, step by step (tests); False when nothing was due."""
        claimed = await self._claim()
        if not claimed:
            return False
        report.claimed += len(claimed)
        await self._deliver_batch(claimed, report)
        return True

    async def _claim(self) -> list[Claimed]:
        now = self.clock.now()
        async with self.db.write() as session:
            await stored_outbox.release_expired_leases(session, now=now)
            claimed = await stored_outbox.claim_due(
                session, now=now, limit=self.batch_size, worker=self.worker, lease=self.lease
            )
        self._waiting_for_turn += len(claimed)
        return claimed

    async def _deliver_batch(self, claimed: list[Claimed], report: DispatchReport) -> None:
        """Deliver one claimed batch, and record every outcome in one transaction.

        Recording per batch (not per message) halves the database work per message. A crash before the record
        leaves the batch's sent rows claimed with `sending_at` set: after the lease they are repeated
        (at-least-once kinds) or marked `uncertain` (the others), so at most the batches in flight are affected.
        """
        sends: list[asyncio.Task[Outcome]] = []
        try:
            for index, row in enumerate(claimed, start=1):
                sends.append(asyncio.create_task(self._deliver(row)))
                if index % STARTS_PER_STEP == 0:
                    await asyncio.sleep(0)  # let live replies run between the sends' first steps
        except BaseException:
            for send in sends:
                send.cancel()
            raise
        results = await asyncio.gather(*sends, return_exceptions=True)
        done: list[Outcome] = []
        for row, result in zip(claimed, results, strict=True):
            if isinstance(result, StorageError):  # the row stays claimed; its lease expires and it is tried again
                log.warning("Outbox row %s left for lease recovery: the database failed (%s)", row.id, result)
                report.outcomes["database_unavailable"] += 1
            elif isinstance(result, BaseException):
                log.error("Delivering outbox row %s failed unexpectedly", row.id, exc_info=result)
                report.outcomes["error"] += 1
            else:
                done.append(result)
        await self._record(done)
        for outcome in done:
            report.outcomes[outcome.label] += 1

    async def release(self) -> int:
        """Graceful shutdown: let the sends under way finish, then hand back the rows this process claimed but did
        not start sending (their go-ahead says no from now on)."""
        self._stopping = True
        try:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
        finally:
            self._stopping = False
        try:
            async with self.db.write() as session:
                return await stored_outbox.release_claims_of(session, worker=self.worker)
        except StorageError as exc:
            log.warning("Could not release claims at shutdown (%s); their leases will expire", exc)
            return 0

    # ---- one row ------------------------------------------------------------------------------------------------

    async def _deliver(self, row: Claimed) -> Outcome:
        """Decide and, if due, send one row; the outcome is recorded with the rest of its batch."""
        turn = _Turn(self)
        try:
            return await self._decide_and_send(row, turn)
        finally:
            turn.take()

    async def _decide_and_send(self, row: Claimed, turn: _Turn) -> Outcome:
        now = self.clock.now()
        proactive = POLICIES[row.kind].proactive if row.kind in POLICIES else True
        if row.expires_at is not None and now > row.expires_at:
            return Outcome(row, "expired", error="held past its expiry")
        if row.user_id is not None and row.blocked:
            return Outcome(row, "blocked", error="the recipient blocked the bot")
        if proactive and row.proactive_stopped:
            return Outcome(row, "cancelled", error="the recipient used /stop")
        if row.kind == "nudge" and row.nudge_pace == "off":
            return Outcome(row, "cancelled", error="nudges turned off")
        if row.quiet_hours and row.user_id is not None:
            opens = self.quiet_hours.next_open(now, row.timezone or self.default_timezone)
            if opens > now:
                if row.expires_at is not None and opens > row.expires_at:
                    return Outcome(row, "expired", error="quiet hours last past its expiry")
                return Outcome(row, "pending", label="held", not_before=opens, error="held for quiet hours")
        if (row.meta or {}).get("withhold"):
            return Outcome(row, "withheld", event=EventKind.NUDGE_WITHHELD)

        async def go_ahead() -> bool:
            """Right before the request leaves: still ours and unsent (not cancelled, not re-leased)?"""
            turn.take()
            return not self._stopping and await self._go_aheads.ask(row.id)

        result = await self.sender.send(row.chat_id, row.payload, go_ahead=go_ahead)
        return self._outcome_of_send(row, result)

    def _outcome_of_send(self, row: Claimed, result: Any) -> Outcome:
        now = self.clock.now()
        if result.outcome == "skipped":  # cancelled meanwhile, or the lease went to another dispatcher
            return Outcome(row, None, label="skipped")
        if result.outcome == "sent":
            event = EventKind.NUDGE_SENT if row.kind == "nudge" else None
            return Outcome(row, "sent", telegram_message_id=result.message_id, event=event)
        if result.outcome == "blocked":
            return Outcome(row, "blocked", error=result.error, recipient_blocked=True)
        if result.outcome == "retry_after":
            retry_at = now + dt.timedelta(seconds=result.retry_after)
            return Outcome(row, "pending", label="retry_after", not_before=retry_at, error=result.error)
        if result.outcome == "ambiguous" and row.kind in stored_outbox.AT_MOST_ONCE_KINDS:
            return Outcome(row, "uncertain", error=result.error)
        if result.outcome in ("ambiguous", "transient") and row.attempts < MAX_ATTEMPTS:
            delay = RETRY_BACKOFF[min(row.attempts - 1, len(RETRY_BACKOFF) - 1)]
            retry_at = now + dt.timedelta(seconds=delay)
            return Outcome(row, "pending", label="retry", not_before=retry_at, error=result.error)
        return Outcome(row, "failed", error=result.error)

    async def _record(self, outcomes: list[Outcome]) -> None:
        """Every outcome of a batch, with its events, in one transaction."""
        settlements = [
            stored_outbox.Settlement(
                message_id=outcome.row.id,
                status=outcome.status,
                error=outcome.error,
                not_before=outcome.not_before,
                telegram_message_id=outcome.telegram_message_id,
            )  # fmt: skip
            for outcome in outcomes
            if outcome.status is not None
        ]
        if not settlements:
            return
        now = self.clock.now()
        events: list[NewEvent] = []
        async with self.db.write() as session:
            settled = await stored_outbox.settle(session, worker=self.worker, now=now, settlements=settlements)
            for outcome in outcomes:
                row = outcome.row
                if row.id not in settled or outcome.status in (None, "pending"):
                    continue
                if outcome.event is not None:
                    data = {"outbox_id": row.id, **{k: v for k, v in (row.meta or {}).items() if k != "withhold"}}
                    events.append(NewEvent(kind=outcome.event, at=now, user_id=row.user_id, data=data))
                if outcome.recipient_blocked and row.user_id is not None:
                    # Telegram said 403: nothing more goes to this person until they come back.
                    await stored_outbox.cancel_open_for_user(
                        session, user_id=row.user_id, reason="the recipient blocked the bot", status="blocked"
                    )
                    if await stored_users.set_blocked(session, user_id=row.user_id, blocked_at=now):
                        events.append(
                            NewEvent(
                                kind=EventKind.BOT_BLOCKED, at=now, user_id=row.user_id, data={"source": "send_403"}
                            )
                        )
            await add_events(session, events=events)


class _Turn:
    """One claimed row's place in the queue: taken when its send's moment comes, or when it needs no send."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._taken = False

    def take(self) -> None:
        if not self._taken:
            self._taken = True
            self._dispatcher.turn_taken()


class GoAheads:
    """Group commit for the go-aheads: every send whose turn comes while one go-ahead transaction runs shares the
    next one, so the dispatcher writes a few times a second instead of once per message.

    Each send still waits for its own row's `sending_at` to be committed before its request leaves (what keeps a
    crash from sending a row twice); at 200 messages a second, one transaction per send serialised on the write
    lock and capped the rate near 80/s (docs/BENCHMARKS.md).
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._writer: asyncio.Task[None] | None = None

    async def ask(self, message_id: int) -> bool:
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting[message_id] = future
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_while_waiting())
        return await future

    async def _write_while_waiting(self) -> None:
        batch: dict[int, asyncio.Future[bool]] = {}
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, {}
                try:
                    ours = await self._start_sending(list(batch))
                except Exception as exc:  # StorageError: the sends fail and their rows are left to lease recovery
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for message_id, future in batch.items():
                    if not future.done():
                        future.set_result(message_id in ours)
        finally:  # cancelled at shutdown: no send waits for ever
            for future in (*batch.values(), *self._waiting.values()):
                if not future.done():
                    future.cancel()

    async def _start_sending(self, message_ids: list[int]) -> set[int]:
        dispatcher = self._dispatcher
        async with dispatcher.db.write() as session:
            return await stored_outbox.start_sending(
                session, message_ids=message_ids, worker=dispatcher.worker, now=dispatcher.clock.now(),
                lease=dispatcher.lease,
            )  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What happened to one claimed row, to be recorded with its batch."""

    row: Claimed
    status: str | None  # the row's new status; "pending" reschedules; None: nothing to record
    label: str = ""
    error: str | None = None
    not_before: dt.datetime | None = None
    telegram_message_id: int | None = None
    event: EventKind | None = None
    recipient_blocked: bool = False

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.status or "skipped")
