"""The milestone ladder's current state per user (history is in the event log)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import MilestoneDone


async def done(session: AsyncSession, *, user_id: int) -> dict[str, MilestoneDone]:
    rows = await session.scalars(select(MilestoneDone).where(MilestoneDone.user_id == user_id))
    return {row.milestone: row for row in rows}


async def mark(session: AsyncSession, *, user_id: int, milestone: str, source: str, now: dt.datetime) -> bool:
    """Mark a rung done; False (and no change) when it already was, so a double tap records nothing twice."""
    if await session.get(MilestoneDone, (user_id, milestone)) is not None:
        return False
    try:
        async with session.begin_nested():
            session.add(MilestoneDone(user_id=user_id, milestone=milestone, source=source, done_at=now))
    except IntegrityError:  # a concurrent tap won the race (or the user was erased meanwhile)
        return False
    return True


async def unmark(session: AsyncSession, *, user_id: int, milestone: str) -> bool:
    result = await session.execute(
        delete(MilestoneDone).where(MilestoneDone.user_id == user_id, MilestoneDone.milestone == milestone)
    )
    return bool(getattr(result, "rowcount", 0))
