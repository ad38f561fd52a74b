"""All data access: small keyword-only async functions over one session. Handlers never build queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, User, utcnow


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


async def set_language(session: AsyncSession, *, user_id: int, language: str) -> None:
    await session.execute(update(User).where(User.id == user_id).values(language=language, language_chosen=True))


async def touch_user(session: AsyncSession, *, user_id: int, at: dt.datetime | None = None) -> None:
    await session.execute(update(User).where(User.id == user_id).values(last_seen_at=at or utcnow()))


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


async def count_events_by_kind(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(select(Event.kind, func.count()).group_by(Event.kind))
    return {kind: count for kind, count in rows.tuples()}
