"""Cohorts: a tag coordinators create, and the users who joined it through the deep link."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Cohort, CohortMember


async def create_cohort(session: AsyncSession, *, tag: str, created_by: int | None, now: dt.datetime) -> bool:
    """False when the tag is taken."""
    if await session.get(Cohort, tag) is not None:
        return False
    session.add(Cohort(tag=tag, created_by=created_by, created_at=now))
    await session.flush()
    return True


async def cohort_exists(session: AsyncSession, *, tag: str) -> bool:
    return await session.get(Cohort, tag) is not None


async def join_cohort(session: AsyncSession, *, user_id: int, tag: str, now: dt.datetime) -> bool:
    """True when the user joined now (False: unknown cohort, or a member already)."""
    if await session.get(Cohort, tag) is None or await session.get(CohortMember, (user_id, tag)) is not None:
        return False
    session.add(CohortMember(user_id=user_id, tag=tag, joined_at=now))
    await session.flush()
    return True


async def cohorts_with_counts(session: AsyncSession, *, limit: int = 20) -> list[tuple[str, dt.datetime, int]]:
    """(tag, created_at, members), newest first."""
    members = select(CohortMember.tag, func.count().label("members")).group_by(CohortMember.tag).subquery()
    rows = await session.execute(
        select(Cohort.tag, Cohort.created_at, func.coalesce(members.c.members, 0))
        .outerjoin(members, members.c.tag == Cohort.tag)
        .order_by(Cohort.created_at.desc())
        .limit(limit)
    )
    return [(tag, created, int(count)) for tag, created, count in rows]
