"""Bulk writes for `rahnuma demo-data` (synthetic users and events): large batches, ids returned in order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Base, Event, ExperimentAssignment, MilestoneDone, OutboxMessage, User

DEMO_CHANNEL = "demo"


async def real_users(session: AsyncSession) -> int:
    """Users who are not demo users: demo data refuses to mix with them unless forced."""
    return int(await session.scalar(select(func.count()).select_from(User).where(User.channel != DEMO_CHANNEL)) or 0)


async def _insert_returning_ids(session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Core executemany (not the ORM's bulk path, which sends a row at a time here), batched by insertmanyvalues."""
    if not rows:
        return []
    table: Any = model.__table__
    connection = await session.connection()
    result = await connection.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), list(rows))
    return [int(row[0]) for row in result]


async def _insert(session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        table: Any = model.__table__
        connection = await session.connection()
        await connection.execute(insert(table), list(rows))


async def insert_users(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert users; their new ids, in the order given."""
    return await _insert_returning_ids(session, User, rows)


async def insert_outbox(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    return await _insert_returning_ids(session, OutboxMessage, rows)


async def insert_events(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    await _insert(session, Event, rows)


async def insert_milestones(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    await _insert(session, MilestoneDone, rows)


async def insert_assignments(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    await _insert(session, ExperimentAssignment, rows)
