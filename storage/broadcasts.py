"""Broadcasts: drafts, segments as SQL, recipients in batches by id, and delivery counts from the outbox."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlalchemy import Text, and_, case, cast, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Broadcast, CohortMember, MilestoneDone, OutboxMessage, User

OPEN_STATUSES = ("pending", "claimed")
HELD_FOR_QUIET_HOURS = "held for quiet hours"  # the dispatcher's last_error on a row it held (bot/delivery)


@dataclass(frozen=True)
class Segment:
    """Who gets a broadcast: every condition given must hold (an empty segment is everyone who may be messaged)."""

    language: str | None = None
    platform: str | None = None
    reached: str | None = None
    not_reached: str | None = None
    inactive_days: int | None = None
    city: str | None = None
    joined_from: str | None = None  # ISO dates, inclusive
    joined_to: str | None = None
    cohort: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def of(cls, data: dict[str, Any] | None) -> Segment:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


def reachable() -> list[Any]:
    """Who may get a broadcast at all: Telegram users who have not blocked the bot and not used /stop."""
    return [User.channel == "telegram", User.blocked_at.is_(None), User.proactive_stopped_at.is_(None)]


def segment_conditions(segment: Segment, *, now: dt.datetime) -> list[Any]:
    conditions = reachable()
    if segment.language:
        conditions.append(User.language == segment.language)
    if segment.platform:
        pattern = f'%"{segment.platform.casefold()}"%'
        conditions.append(func.lower(cast(User.platforms, Text)).like(pattern))
    if segment.reached:
        conditions.append(exists().where(MilestoneDone.user_id == User.id, MilestoneDone.milestone == segment.reached))
    if segment.not_reached:
        conditions.append(
            ~exists().where(MilestoneDone.user_id == User.id, MilestoneDone.milestone == segment.not_reached)
        )
    if segment.inactive_days is not None:
        conditions.append(User.last_seen_at <= now - dt.timedelta(days=segment.inactive_days))
    if segment.city:
        conditions.append(func.lower(User.city) == segment.city.casefold())
    if segment.joined_from:
        start = dt.datetime.combine(dt.date.fromisoformat(segment.joined_from), dt.time(), tzinfo=dt.UTC)
        conditions.append(User.created_at >= start)
    if segment.joined_to:
        end = dt.datetime.combine(dt.date.fromisoformat(segment.joined_to), dt.time(), tzinfo=dt.UTC)
        conditions.append(User.created_at < end + dt.timedelta(days=1))
    if segment.cohort:
        conditions.append(exists().where(CohortMember.user_id == User.id, CohortMember.tag == segment.cohort))
    return conditions


async def count_recipients(session: AsyncSession, *, segment: Segment, now: dt.datetime) -> dict[str, int]:
    """Recipients by language (`en`, `ur`), one aggregate query."""
    rows = await session.execute(
        select(User.language, func.count()).where(*segment_conditions(segment, now=now)).group_by(User.language)
    )
    counts = {"en": 0, "ur": 0}
    for language, count in rows:
        counts["ur" if language == "ur" else "en"] += int(count)
    return counts


@dataclass(frozen=True)
class Recipient:
    user_id: int
    chat_id: int
    language: str


async def recipients_after(
    session: AsyncSession, *, segment: Segment, now: dt.datetime, after_user_id: int, limit: int
) -> list[Recipient]:
    """The next `limit` recipients by user id (keyset pagination: each batch costs the same)."""
    rows = await session.execute(
        select(User.id, User.external_id, User.language)
        .where(*segment_conditions(segment, now=now), User.id > after_user_id)
        .order_by(User.id)
        .limit(limit)
    )
    found = []
    for user_id, external_id, language in rows:
        if str(external_id).lstrip("-").isdigit():
            found.append(Recipient(int(user_id), int(external_id), "ur" if language == "ur" else "en"))
    return found


# ---- the broadcast rows --------------------------------------------------------------------------------------


async def new_draft(session: AsyncSession, *, created_by: int | None, now: dt.datetime) -> Broadcast:
    """A fresh draft at its first step; an older unfinished draft of the same coordinator is dropped."""
    await session.execute(
        update(Broadcast)
        .where(Broadcast.created_by == created_by, Broadcast.status == "draft")
        .values(status="cancelled", step=None, finished_at=now)
    )
    draft = Broadcast(
        created_by=created_by, status="draft", step="text", step_at=now, created_at=now, cursor_user_id=0, enqueued=0
    )
    session.add(draft)
    await session.flush()
    return draft


async def open_draft(session: AsyncSession, *, created_by: int, since: dt.datetime) -> Broadcast | None:
    """The coordinator's draft that is still waiting for an answer (asked after `since`)."""
    return await session.scalar(
        select(Broadcast)
        .where(Broadcast.created_by == created_by, Broadcast.status == "draft", Broadcast.step_at >= since)
        .order_by(Broadcast.id.desc())
        .limit(1)
    )


async def get_broadcast(session: AsyncSession, *, broadcast_id: int) -> Broadcast | None:
    return await session.get(Broadcast, broadcast_id)


async def update_broadcast(session: AsyncSession, *, broadcast_id: int, **values: Any) -> bool:
    result = await session.execute(update(Broadcast).where(Broadcast.id == broadcast_id).values(**values))
    return bool(getattr(result, "rowcount", 0))


async def confirm(session: AsyncSession, *, broadcast_id: int, recipients: int, now: dt.datetime) -> bool:
    """Draft → scheduled, once (a second press of Confirm changes nothing)."""
    result = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == "draft")
        .values(status="scheduled", step=None, recipients=recipients, confirmed_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def same_within(
    session: AsyncSession, *, fingerprint: str, since: dt.datetime, other_than: int
) -> Broadcast | None:
    """A broadcast with the same texts and segment confirmed since `since` (and not cancelled)."""
    return await session.scalar(
        select(Broadcast)
        .where(
            Broadcast.fingerprint == fingerprint,
            Broadcast.id != other_than,
            Broadcast.confirmed_at >= since,
            Broadcast.status.in_(("scheduled", "sending", "done")),
        )
        .order_by(Broadcast.confirmed_at.desc())
        .limit(1)
    )


async def due_for_expansion(session: AsyncSession, *, now: dt.datetime) -> list[int]:
    return list(
        await session.scalars(
            select(Broadcast.id).where(Broadcast.status == "scheduled", Broadcast.send_at <= now).order_by(Broadcast.id)
        )
    )


async def advance(session: AsyncSession, *, broadcast_id: int, cursor_user_id: int, inserted: int) -> None:
    """Move the expansion cursor forward (never back) and count what was really inserted."""
    await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id)
        .values(
            cursor_user_id=case(
                (Broadcast.cursor_user_id < cursor_user_id, cursor_user_id), else_=Broadcast.cursor_user_id
            ),
            enqueued=Broadcast.enqueued + inserted,
        )
    )


async def mark_expanded(session: AsyncSession, *, broadcast_id: int, now: dt.datetime) -> bool:
    result = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == "scheduled")
        .values(status="sending", expanded_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def sending(session: AsyncSession) -> list[Broadcast]:
    return list(await session.scalars(select(Broadcast).where(Broadcast.status == "sending").order_by(Broadcast.id)))


async def finish(session: AsyncSession, *, broadcast_id: int, now: dt.datetime) -> bool:
    result = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status == "sending")
        .values(status="done", finished_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def cancel(session: AsyncSession, *, broadcast_id: int, now: dt.datetime) -> bool:
    result = await session.execute(
        update(Broadcast)
        .where(Broadcast.id == broadcast_id, Broadcast.status.in_(("draft", "scheduled", "sending")))
        .values(status="cancelled", step=None, finished_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def recent(session: AsyncSession, *, limit: int = 10) -> list[Broadcast]:
    return list(
        await session.scalars(
            select(Broadcast).where(Broadcast.status != "draft").order_by(Broadcast.id.desc()).limit(limit)
        )
    )


async def delivery_counts(session: AsyncSession, *, campaign: str) -> dict[str, int]:
    """Outbox rows of a campaign by status, with `held` (pending, waiting for the recipient's quiet hours to end)
    counted apart from `pending`. One aggregate query over the (campaign, status) index."""
    held = and_(OutboxMessage.status == "pending", OutboxMessage.last_error == HELD_FOR_QUIET_HOURS)
    label = case((held, "held"), else_=OutboxMessage.status)
    rows = await session.execute(select(label, func.count()).where(OutboxMessage.campaign == campaign).group_by(label))
    return {str(status): int(count) for status, count in rows}
