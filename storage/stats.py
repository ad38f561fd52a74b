"""Aggregates for coordinators (/stats, /unanswered): one GROUP BY per figure over indexed columns, never a loop
over users, so they stay fast with 100,000 users."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, MilestoneDone, OutboxMessage, User


@dataclass
class Overview:
    users: int = 0
    active_7: int = 0
    active_30: int = 0
    funnel: dict[str, int] = field(default_factory=dict)  # milestone -> users who reached it
    median_days: dict[str, float | None] = field(default_factory=dict)  # milestone -> median days after /start
    questions: int = 0
    unanswered: int = 0
    top_articles: list[tuple[str, int]] = field(default_factory=list)
    feedback: dict[str, tuple[int, int]] = field(default_factory=dict)  # article -> (👍, 👎)
    nudges_sent: int = 0
    nudges_responded: int = 0


def _days_between(session: AsyncSession, later: Any, earlier: Any) -> Any:
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


async def median_days_to(session: AsyncSession, *, milestone: str) -> float | None:
    """Median days from a user's first contact (/start) to marking `milestone`: a count, then the middle row(s)
    of the ordered differences (ORDER BY ... OFFSET, on both SQLite and PostgreSQL)."""
    joined = (MilestoneDone.user_id == User.id, MilestoneDone.milestone == milestone)
    total = int(await session.scalar(select(func.count()).select_from(MilestoneDone).join(User, joined[0]).where(
        joined[1])) or 0)  # fmt: skip
    if total == 0:
        return None
    days = _days_between(session, MilestoneDone.done_at, User.created_at)
    middle = list(
        await session.scalars(
            select(days)
            .select_from(MilestoneDone)
            .join(User, joined[0])
            .where(joined[1])
            .order_by(days)
            .offset((total - 1) // 2)
            .limit(2 if total % 2 == 0 else 1)
        )
    )
    return round(sum(float(d) for d in middle) / len(middle), 1)


async def overview(
    session: AsyncSession, *, now: dt.datetime, milestones: list[str], medians_for: list[str], days: int = 30
) -> Overview:
    since = now - dt.timedelta(days=days)
    result = Overview()
    telegram = User.channel == "telegram"
    result.users = int(await session.scalar(select(func.count()).select_from(User).where(telegram)) or 0)
    for window, name in ((7, "active_7"), (30, "active_30")):
        count = await session.scalar(
            select(func.count()).select_from(User).where(telegram, User.last_seen_at >= now - dt.timedelta(days=window))
        )
        setattr(result, name, int(count or 0))
    reached = dict(
        (m, int(c))
        for m, c in await session.execute(
            select(MilestoneDone.milestone, func.count()).group_by(MilestoneDone.milestone)
        )
    )
    result.funnel = {m: reached.get(m, 0) for m in milestones}
    result.median_days = {m: await median_days_to(session, milestone=m) for m in medians_for}
    by_kind = dict(
        (kind, int(c))
        for kind, c in await session.execute(
            select(Event.kind, func.count())
            .where(Event.kind.in_(("message", "unanswered")), Event.at >= since)
            .group_by(Event.kind)
        )
    )
    result.questions = by_kind.get("message", 0)
    result.unanswered = by_kind.get("unanswered", 0)
    top = await session.execute(
        select(Event.article_id, func.count().label("n"))
        .where(Event.kind == "reply", Event.at >= since, Event.article_id.is_not(None))
        .group_by(Event.article_id)
        .order_by(func.count().desc(), Event.article_id)
        .limit(10)
    )
    result.top_articles = [(str(article), int(n)) for article, n in top]
    helpful = Event.data["helpful"].as_boolean()
    votes = await session.execute(
        select(Event.article_id, helpful, func.count())
        .where(Event.kind == "feedback", Event.at >= since, Event.article_id.is_not(None))
        .group_by(Event.article_id, helpful)
    )
    feedback: dict[str, list[int]] = {}
    for article, up, count in votes:
        feedback.setdefault(str(article), [0, 0])[0 if up else 1] += int(count)
    result.feedback = {a: (v[0], v[1]) for a, v in sorted(feedback.items(), key=lambda kv: -sum(kv[1]))}
    nudges = await session.execute(
        select(func.count(), func.count(OutboxMessage.responded_at)).where(
            OutboxMessage.kind == "nudge", OutboxMessage.status == "sent", OutboxMessage.sent_at >= since
        )
    )
    sent, responded = nudges.one()
    result.nudges_sent, result.nudges_responded = int(sent or 0), int(responded or 0)
    return result


@dataclass(frozen=True)
class Unanswered:
    at: dt.datetime
    text: str | None  # only when the user consented to research (the event holds no words otherwise)
    intent: str | None


async def unanswered_since(session: AsyncSession, *, since: dt.datetime, limit: int = 1000) -> list[Unanswered]:
    rows = await session.execute(
        select(Event.at, Event.text, Event.intent)
        .where(Event.kind == "unanswered", Event.at >= since)
        .order_by(Event.at.desc())
        .limit(limit)
    )
    return [Unanswered(at, text, intent) for at, text, intent in rows]


async def disliked_since(session: AsyncSession, *, since: dt.datetime, limit: int = 10) -> list[tuple[str, int]]:
    """Articles that got 👎, most first."""
    helpful = Event.data["helpful"].as_boolean()
    rows = await session.execute(
        select(Event.article_id, func.count())
        .where(Event.kind == "feedback", Event.at >= since, Event.article_id.is_not(None), helpful.is_(False))
        .group_by(Event.article_id)
        .order_by(func.count().desc(), Event.article_id)
        .limit(limit)
    )
    return [(str(article), int(count)) for article, count in rows]


async def marked_added_since(session: AsyncSession, *, since: dt.datetime) -> set[str]:
    """Keys of the /unanswered groups a coordinator marked "added to content"."""
    rows = await session.scalars(select(Event.data).where(Event.kind == "unanswered_added", Event.at >= since))
    return {str((data or {}).get("group")) for data in rows}
