"""Role grants given from the CLI (`rahnuma admin`), on top of the coordinators named in RAHNUMA_COORDINATORS."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import RoleGrant

ROLES = ("coordinator", "researcher")


async def grant(
    session: AsyncSession, *, telegram_user_id: int, role: str, now: dt.datetime, granted_by: str | None = None
) -> bool:
    """Give a role; False when the person had it already."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if await session.get(RoleGrant, (telegram_user_id, role)) is not None:
        return False
    session.add(RoleGrant(telegram_user_id=telegram_user_id, role=role, granted_at=now, granted_by=granted_by))
    await session.flush()
    return True


async def revoke(session: AsyncSession, *, telegram_user_id: int, role: str) -> bool:
    result = await session.execute(
        delete(RoleGrant).where(RoleGrant.telegram_user_id == telegram_user_id, RoleGrant.role == role)
    )
    return bool(getattr(result, "rowcount", 0))


async def grants(session: AsyncSession) -> list[RoleGrant]:
    return list(await session.scalars(select(RoleGrant).order_by(RoleGrant.role, RoleGrant.telegram_user_id)))
