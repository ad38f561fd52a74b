"""The outbox: every message Rahnuma sends on its own, as rows that planners insert and dispatchers lease.

Claims are leases. On PostgreSQL a claim is `SELECT ... FOR UPDATE SKIP LOCKED`, so two dispatcher processes
never claim the same row; on SQLite `BEGIN IMMEDIATE` serialises claims. A lease that runs out (a crash between
claim and send) returns the row to `pending`, or to `uncertain` if the send had started and its kind must not be
repeated (see docs/OUTBOX.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxMessage, User, table_of

KINDS = ("nudge", "broadcast", "relay", "intro", "digest", "system")
STATUSES = (
    "pending", "claimed", "sent", "uncertain", "failed", "blocked", "cancelled", "expired", "withheld",
)  # fmt: skip
OPEN = ("pending", "claimed")
# Kinds whose duplicates are worse than a loss: after a send that may have gone out, they become `uncertain`.
AT_MOST_ONCE_KINDS = ("nudge", "broadcast", "intro", "digest")
RESPONSE_WINDOW = dt.timedelta(hours=48)


@dataclass(frozen=True)
class NewMessage:
    user_id: int | None
    chat_id: int
    kind: str
    payload: dict[str, Any]
    priority: int
    not_before: dt.datetime
    expires_at: dt.datetime | None
    quiet_hours: bool
    dedupe_key: str
    campaign: str | None = None
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Claimed:
    """A claimed row with what the dispatcher needs to know about its recipient."""

    id: int
    user_id: int | None
    chat_id: int
    kind: str
    payload: dict[str, Any]
    priority: int
    not_before: dt.datetime
    expires_at: dt.datetime | None
    quiet_hours: bool
    attempts: int
    campaign: str | None
    meta: dict[str, Any] | None
    timezone: str | None
    blocked: bool
    proactive_stopped: bool
    nudge_pace: str | None


async def enqueue(session: AsyncSession, *, messages: Sequence[NewMessage], now: dt.datetime) -> list[tuple[int, str]]:
    """Insert messages; one whose dedupe key exists already is skipped. Returns (id, dedupe_key) of the new rows."""
    if not messages:
        return []
    rows = [
        {
            "user_id": m.user_id, "chat_id": m.chat_id, "kind": m.kind, "payload": m.payload,
            "priority": m.priority, "not_before": m.not_before, "expires_at": m.expires_at,
            "quiet_hours": m.quiet_hours, "status": "pending", "attempts": 0, "dedupe_key": m.dedupe_key,
            "campaign": m.campaign, "meta": m.meta, "created_at": now,
        }
        for m in messages
    ]  # fmt: skip
    dialect = session.bind.dialect.name if session.bind is not None else ""
    table = table_of(OutboxMessage)  # Core, not the ORM's bulk path: planning inserts thousands of rows a pass
    statement: Any
    if dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    elif dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing(index_elements=["dedupe_key"])
    else:
        statement = insert(table)
    result = await session.execute(statement.returning(table.c.id, table.c.dedupe_key), rows)
    return [(int(row.id), str(row.dedupe_key)) for row in result]


async def release_expired_leases(session: AsyncSession, *, now: dt.datetime) -> int:
    """Rows whose lease ran out (their dispatcher died) go back to `pending`; if their send had started and their
    kind must not be repeated, to `uncertain`."""
    maybe_sent = and_(OutboxMessage.sending_at.is_not(None), OutboxMessage.kind.in_(AT_MOST_ONCE_KINDS))
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.status == "claimed", OutboxMessage.claimed_until < now)
        .values(
            status=case((maybe_sent, "uncertain"), else_="pending"),
            claimed_by=None,
            claimed_until=None,
            last_error=case((maybe_sent, "lease expired during a send"), else_="lease expired before the send"),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def claim_due(
    session: AsyncSession, *, now: dt.datetime, limit: int, worker: str, lease: dt.timedelta
) -> list[Claimed]:
    """Claim up to `limit` due rows, most urgent first, for `worker` until now + lease."""
    due = (
        select(OutboxMessage.id)
        .where(OutboxMessage.status == "pending", OutboxMessage.not_before <= now)
        .order_by(OutboxMessage.priority, OutboxMessage.not_before, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(await session.scalars(due))
    if not ids:
        return []
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.status == "pending")
        .values(status="claimed", claimed_by=worker, claimed_until=now + lease, attempts=OutboxMessage.attempts + 1)
    )
    rows = await session.execute(
        select(OutboxMessage, User.timezone, User.blocked_at, User.proactive_stopped_at, User.nudge_pace)
        .outerjoin(User, User.id == OutboxMessage.user_id)
        .where(OutboxMessage.id.in_(ids), OutboxMessage.claimed_by == worker)
        .order_by(OutboxMessage.priority, OutboxMessage.not_before, OutboxMessage.id)
    )
    claimed = []
    for message, timezone, blocked_at, stopped_at, pace in rows:
        claimed.append(
            Claimed(
                id=message.id,
                user_id=message.user_id,
                chat_id=message.chat_id,
                kind=message.kind,
                payload=message.payload,
                priority=message.priority,
                not_before=message.not_before,
                expires_at=message.expires_at,
                quiet_hours=message.quiet_hours,
                attempts=message.attempts,
                campaign=message.campaign,
                meta=message.meta,
                timezone=timezone,
                blocked=blocked_at is not None,
                proactive_stopped=stopped_at is not None,
                nudge_pace=pace,
            )  # fmt: skip
        )
    return claimed


async def start_sending(
    session: AsyncSession, *, message_ids: Sequence[int], worker: str, now: dt.datetime, lease: dt.timedelta
) -> set[int]:
    """Right before the sends: which of these rows are still ours and unsent (not cancelled, not re-leased)? Those
    are marked as being sent. One statement for many rows, so the dispatcher's go-aheads can be group-committed."""
    if not message_ids:
        return set()
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(message_ids), OutboxMessage.status == "claimed", OutboxMessage.claimed_by == worker)
        .values(sending_at=now, claimed_until=now + lease)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    return set(result.scalars())


def _clipped(error: str | None) -> str | None:
    return error[:300] if error is not None else None  # the column's length


@dataclass(frozen=True)
class Settlement:
    """What became of one claimed row: a final status (sent, failed, blocked, uncertain, expired, cancelled,
    withheld), or `pending` again from `not_before` (quiet hours, Telegram's retry_after, a network error)."""

    message_id: int
    status: str
    error: str | None = None
    not_before: dt.datetime | None = None
    telegram_message_id: int | None = None


async def settle(
    session: AsyncSession, *, worker: str, now: dt.datetime, settlements: Sequence[Settlement]
) -> set[int]:
    """Record a batch's outcomes for the rows still claimed by `worker`, whose ids are returned.

    A few statements per batch, not one per row: at 200 messages a second, per-row updates held the write lock for
    most of each second and the next sends' go-aheads queued behind them (bench/dispatch.py).
    """
    if not settlements:
        return set()
    still_mine = (
        select(OutboxMessage.id)
        .where(
            OutboxMessage.id.in_([s.message_id for s in settlements]),
            OutboxMessage.status == "claimed",
            OutboxMessage.claimed_by == worker,
        )
        .with_for_update()
    )
    mine = set(await session.scalars(still_mine))
    table = table_of(OutboxMessage)
    final = [
        {
            "b_id": s.message_id,
            "b_status": s.status,
            "b_sent_at": now if s.status == "sent" else None,
            "b_telegram_message_id": s.telegram_message_id,
            "b_error": _clipped(s.error),
        }
        for s in settlements
        if s.message_id in mine and s.status != "pending"
    ]
    again = [
        {"b_id": s.message_id, "b_not_before": s.not_before, "b_error": _clipped(s.error)}
        for s in settlements
        if s.message_id in mine and s.status == "pending"
    ]
    error = func.coalesce(bindparam("b_error", type_=table.c.last_error.type), table.c.last_error)
    if final:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status=bindparam("b_status"),
                claimed_by=None,
                claimed_until=None,
                sent_at=func.coalesce(bindparam("b_sent_at", type_=table.c.sent_at.type), table.c.sent_at),
                telegram_message_id=func.coalesce(
                    bindparam("b_telegram_message_id", type_=table.c.telegram_message_id.type),
                    table.c.telegram_message_id,
                ),
                last_error=error,
            ),
            final,
        )
    if again:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(
                status="pending",
                claimed_by=None,
                claimed_until=None,
                sending_at=None,
                not_before=bindparam("b_not_before", type_=table.c.not_before.type),
                last_error=error,
            ),
            again,
        )
    return mine


async def release_claims_of(session: AsyncSession, *, worker: str) -> int:
    """A graceful shutdown: this worker's claims that were not being sent go back to `pending` at once."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.status == "claimed", OutboxMessage.claimed_by == worker, OutboxMessage.sending_at.is_(None)
        )
        .values(status="pending", claimed_by=None, claimed_until=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def cancel_open_for_user(
    session: AsyncSession, *, user_id: int, reason: str, kinds: Iterable[str] | None = None, status: str = "cancelled"
) -> int:
    """Stop what has not gone to this user yet (blocked, /stop, erased)."""
    condition = [OutboxMessage.user_id == user_id, OutboxMessage.status.in_(OPEN), OutboxMessage.sending_at.is_(None)]
    if kinds is not None:
        condition.append(OutboxMessage.kind.in_(list(kinds)))
    result = await session.execute(
        update(OutboxMessage)
        .where(*condition)
        .values(status=status, claimed_by=None, claimed_until=None, last_error=reason[:300])
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def cancel_campaign(session: AsyncSession, *, campaign: str, reason: str) -> int:
    """Stop what has not gone yet of a campaign (a broadcast cancelled by its coordinator)."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.campaign == campaign, OutboxMessage.status.in_(OPEN), OutboxMessage.sending_at.is_(None))
        .values(status="cancelled", claimed_by=None, claimed_until=None, last_error=reason[:300])
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def erase_for_user(session: AsyncSession, *, user_id: int) -> None:
    """/delete_me: nothing more goes to the person, and no stored message keeps their words, name or chat."""
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.user_id == user_id)
        .values(
            status=case((OutboxMessage.status.in_(OPEN), "cancelled"), else_=OutboxMessage.status),
            payload={},
            chat_id=0,
            claimed_by=None,
            claimed_until=None,
            last_error=case((OutboxMessage.status.in_(OPEN), "recipient erased"), else_=OutboxMessage.last_error),
        )
    )


@dataclass(frozen=True)
class SentNudge:
    id: int
    user_id: int
    sent_at: dt.datetime
    meta: dict[str, Any] | None


async def unanswered_nudges(session: AsyncSession, *, user_ids: Iterable[int], since: dt.datetime) -> list[SentNudge]:
    """Nudges sent to these users since `since` that nobody has answered yet (oldest first)."""
    wanted = sorted(set(user_ids))
    found: list[SentNudge] = []
    for start in range(0, len(wanted), 500):
        rows = await session.execute(
            select(OutboxMessage.id, OutboxMessage.user_id, OutboxMessage.sent_at, OutboxMessage.meta)
            .where(
                OutboxMessage.user_id.in_(wanted[start : start + 500]),
                OutboxMessage.kind == "nudge",
                OutboxMessage.status == "sent",
                OutboxMessage.responded_at.is_(None),
                OutboxMessage.sent_at >= since,
            )
            .order_by(OutboxMessage.sent_at)
        )
        found.extend(SentNudge(int(r.id), int(r.user_id), r.sent_at, r.meta) for r in rows)
    return found


async def set_responded(session: AsyncSession, *, message_id: int, at: dt.datetime) -> bool:
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.responded_at.is_(None))
        .values(responded_at=at)
    )
    return bool(getattr(result, "rowcount", 0))


async def nudges_for_users(
    session: AsyncSession, *, user_ids: Sequence[int], since: dt.datetime
) -> dict[int, list[tuple[dt.datetime, str, dt.datetime | None]]]:
    """Each user's nudges since `since` that count against caps: (when, status, responded_at)."""
    found: dict[int, list[tuple[dt.datetime, str, dt.datetime | None]]] = {}
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        rows = await session.execute(
            select(
                OutboxMessage.user_id,
                func.coalesce(OutboxMessage.sent_at, OutboxMessage.not_before),
                OutboxMessage.status,
                OutboxMessage.responded_at,
            ).where(
                OutboxMessage.user_id.in_(chunk),
                OutboxMessage.kind == "nudge",
                OutboxMessage.status.in_(("pending", "claimed", "sent", "uncertain")),
                or_(OutboxMessage.sent_at >= since, OutboxMessage.not_before >= since),
            )
        )
        for user_id, when, status, responded in rows:
            if user_id is not None:
                found.setdefault(int(user_id), []).append((when, status, responded))
    return found


async def latest_sent(session: AsyncSession, *, user_id: int, campaign: str) -> OutboxMessage | None:
    return await session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.user_id == user_id, OutboxMessage.campaign == campaign, OutboxMessage.status == "sent")
        .order_by(OutboxMessage.sent_at.desc())
        .limit(1)
    )


async def status_counts(session: AsyncSession, *, campaign: str | None = None) -> dict[tuple[str, str], int]:
    """(kind, status) → rows, for one campaign or all."""
    query = select(OutboxMessage.kind, OutboxMessage.status, func.count()).group_by(
        OutboxMessage.kind, OutboxMessage.status
    )
    if campaign is not None:
        query = query.where(OutboxMessage.campaign == campaign)
    return {(kind, status): int(count) for kind, status, count in await session.execute(query)}


async def oldest_pending(session: AsyncSession) -> dt.datetime | None:
    return await session.scalar(select(func.min(OutboxMessage.not_before)).where(OutboxMessage.status == "pending"))


async def sent_since(session: AsyncSession, *, since: dt.datetime) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at >= since)) or 0
    )
