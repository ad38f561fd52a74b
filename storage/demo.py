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


async def _insert_then_look_up(
    session: AsyncSession, model: type[Base], key: str, rows: Sequence[dict[str, Any]]
) -> list[int]:
    """Insert with one executemany, then read the new ids back by a unique key, in the order given. (RETURNING with
    the rows' order kept falls back to one INSERT per row on SQLite.)"""
    if not rows:
        return []
    table: Any = model.__table__
    connection = await session.connection()
    await connection.execute(insert(table), list(rows))
    keys = [row[key] for row in rows]
    ids: dict[Any, int] = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        result = await connection.execute(select(table.c.id, table.c[key]).where(table.c[key].in_(chunk)))
        ids.update({found_key: int(found_id) for found_id, found_key in result})
    return [ids[k] for k in keys]


async def _insert(session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        table: Any = model.__table__
        connection = await session.connection()
        await connection.execute(insert(table), list(rows))


async def insert_users(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert users (each with a new external id); their new ids, in the order given."""
    return await _insert_then_look_up(session, User, "external_id", rows)


async def insert_outbox(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert outbox rows (each with a new dedupe key); their new ids, in the order given."""
    return await _insert_then_look_up(session, OutboxMessage, "dedupe_key", rows)


async def insert_events(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    await _insert(session, Event, rows)


async def insert_milestones(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    await _insert(session, MilestoneDone, rows)


async def insert_assignments(session: AsyncSession, *, rows: Sequence[dict[str, Any]]) -> None:
    await _insert(session, ExperimentAssignment, rows)
