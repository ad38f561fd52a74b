"""All data access: small keyword-only async functions over one session. Handlers never build queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, MilestoneDone, User, utcnow

LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)  # finer than nudges need; saves an UPDATE per message


async def get_user(session: AsyncSession, *, channel: str, external_id: str) -> User | None:
    return await session.scalar(select(User).where(User.channel == channel, User.external_id == external_id))


async def get_or_create_user(
    session: AsyncSession, *, channel: str, external_id: str, display_name: str | None = None
) -> tuple[User, bool]:
    """The user for this channel id, created on first contact; safe when two updates race to create it."""
    user = await get_user(session, channel=channel, external_id=external_id)
    if user is not None:
        if display_name and user.display_name != display_name:
            user.display_name = display_name
        now = utcnow()
        last_seen = user.last_seen_at if user.last_seen_at.tzinfo else user.last_seen_at.replace(tzinfo=dt.UTC)
        if now - last_seen > LAST_SEEN_RESOLUTION:
            user.last_seen_at = now
        return user, False
    user = User(channel=channel, external_id=external_id, display_name=display_name)
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        existing = await get_user(session, channel=channel, external_id=external_id)
        if existing is None:
            raise
        return existing, False
    return user, True


async def record_event(
    session: AsyncSession,
    *,
    user_id: int | None,
    kind: str,
    text: str | None = None,
    intent: str | None = None,
    confidence: float | None = None,
    article_id: str | None = None,
    nlu_source: str | None = None,
    latency_ms: float | None = None,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
) -> Event:
    """Append one event; the log is never updated in place."""
    event = Event(
        user_id=user_id,
        kind=kind,
        text=text,
        intent=intent,
        confidence=confidence,
        article_id=article_id,
        nlu_source=nlu_source,
        latency_ms=latency_ms,
        data=data,
        at=at or utcnow(),
    )
    session.add(event)
    await session.flush()
    return event


async def record_events(session: AsyncSession, *, events: list[dict[str, Any]]) -> None:
    """Append several events in one round trip (a message and its reply), without reading them back."""
    now = utcnow()
    session.add_all(Event(**{"at": now, **fields}) for fields in events)
    await session.flush()


async def list_events(
    session: AsyncSession, *, user_id: int | None = None, kind: str | None = None, limit: int = 1000
) -> Sequence[Event]:
    """Events oldest first, optionally for one user and/or one kind."""
    query = select(Event).order_by(Event.at, Event.id).limit(limit)
    if user_id is not None:
        query = query.where(Event.user_id == user_id)
    if kind is not None:
        query = query.where(Event.kind == kind)
    return (await session.scalars(query)).all()


async def get_user_by_id(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def milestones_done(session: AsyncSession, *, user_id: int) -> dict[str, MilestoneDone]:
    rows = await session.scalars(select(MilestoneDone).where(MilestoneDone.user_id == user_id))
    return {row.milestone: row for row in rows}


async def mark_milestone(session: AsyncSession, *, user_id: int, milestone: str, source: str) -> bool:
    """Mark a rung done; False (and no change) when it already was, so a double tap records nothing twice."""
    if await session.get(MilestoneDone, (user_id, milestone)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(MilestoneDone(user_id=user_id, milestone=milestone, source=source))
    except IntegrityError:  # a concurrent tap won the race
        return False
    return True


async def unmark_milestone(session: AsyncSession, *, user_id: int, milestone: str) -> bool:
    result = await session.execute(
        delete(MilestoneDone).where(MilestoneDone.user_id == user_id, MilestoneDone.milestone == milestone)
    )
    return bool(getattr(result, "rowcount", 0))


PROFILE_FIELDS = ("skill", "platforms", "city", "language", "timezone")


async def set_profile_field(session: AsyncSession, *, user_id: int, field: str, value: object) -> None:
    if field not in PROFILE_FIELDS:
        raise ValueError(f"unknown profile field {field!r}")
    values: dict[str, object] = {field: value}
    if field == "language":
        values["language_chosen"] = True
    await session.execute(update(User).where(User.id == user_id).values(**values))


async def set_profile_step(session: AsyncSession, *, user_id: int, step: str | None) -> None:
    await session.execute(update(User).where(User.id == user_id).values(profile_step=step))


async def set_consent(session: AsyncSession, *, user_id: int, consent: bool, version: int) -> None:
    await session.execute(
        update(User).where(User.id == user_id).values(research_consent=consent, consent_version=version)
    )


async def count_user_events(session: AsyncSession, *, user_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Event).where(Event.user_id == user_id)) or 0)


async def delete_user_data(session: AsyncSession, *, user_id: int) -> int:
    """Erase a person: their message texts, the link from their events, their profile and milestones.

    Event rows stay (without text and without user) so aggregate counts survive; see docs/PRIVACY.md.
    Returns how many events were unlinked.
    """
    result = await session.execute(update(Event).where(Event.user_id == user_id).values(text=None, user_id=None))
    await session.execute(delete(MilestoneDone).where(MilestoneDone.user_id == user_id))
    await session.execute(delete(User).where(User.id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)
