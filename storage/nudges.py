"""The queries behind nudge planning. Each finds the users whose trigger time fell in a window, through an index
on that time, so a planning pass costs what became due, not how many users there are."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from storage.models import ExperimentAssignment, MilestoneDone, PlannerCursor, User, table_of


@dataclass(frozen=True)
class Candidate:
    """A user whose trigger fired at `due` (the period names the occurrence, for the dedupe key)."""

    user_id: int
    external_id: str
    due: dt.datetime
    period: str
    language: str
    display_name: str | None
    timezone: str | None
    nudge_pace: str
    last_seen_at: dt.datetime
    milestone: str | None = None  # the rung that started it (stuck, milestone triggers)


_USER_COLUMNS = (
    User.id, User.external_id, User.language, User.display_name, User.timezone, User.nudge_pace, User.last_seen_at,
)  # fmt: skip


def _reachable() -> list[ColumnElement[bool]]:
    """Telegram users who can be messaged and have not turned proactive messages off."""
    return [
        User.channel == "telegram",
        User.blocked_at.is_(None),
        User.proactive_stopped_at.is_(None),
        User.nudge_pace != "off",
    ]


def _candidate(row: object, due: dt.datetime, period: str, milestone: str | None = None) -> Candidate:
    user_id, external_id, language, name, timezone, pace, last_seen = row[:7]  # type: ignore[index]
    return Candidate(
        user_id=user_id, external_id=external_id, due=due, period=period, language=language, display_name=name,
        timezone=timezone, nudge_pace=pace, last_seen_at=last_seen, milestone=milestone,
    )  # fmt: skip


async def joined_between(
    session: AsyncSession, *, after: dt.datetime, until: dt.datetime, days: int
) -> list[Candidate]:
    """Users who started `days` before the window (created_at + days in (after, until]) and reached no rung."""
    shift = dt.timedelta(days=days)
    no_rung = ~exists().where(MilestoneDone.user_id == User.id)
    rows = await session.execute(
        select(*_USER_COLUMNS, User.created_at).where(
            User.created_at > after - shift, User.created_at <= until - shift, no_rung, *_reachable()
        )
    )
    return [_candidate(row, row.created_at + shift, row.created_at.date().isoformat()) for row in rows]


async def silent_between(
    session: AsyncSession, *, after: dt.datetime, until: dt.datetime, days: int
) -> list[Candidate]:
    """Users whose last message was `days` before the window (a user who wrote since has moved on)."""
    shift = dt.timedelta(days=days)
    rows = await session.execute(
        select(*_USER_COLUMNS).where(
            User.last_seen_at > after - shift, User.last_seen_at <= until - shift, *_reachable()
        )
    )
    return [_candidate(row, row.last_seen_at + shift, row.last_seen_at.isoformat(timespec="minutes")) for row in rows]


async def reached_between(
    session: AsyncSession,
    *,
    after: dt.datetime,
    until: dt.datetime,
    days: int,
    milestone: str | None = None,
    only_latest: bool = False,
) -> list[Candidate]:
    """Users who reached a rung `days` before the window: a given rung, or (only_latest) their latest rung with
    nothing newer since (stuck)."""
    shift = dt.timedelta(days=days)
    conditions = [MilestoneDone.done_at > after - shift, MilestoneDone.done_at <= until - shift]
    if milestone is not None:
        conditions.append(MilestoneDone.milestone == milestone)
    if only_latest:
        newer = aliased(MilestoneDone)
        conditions.append(
            ~exists().where(and_(newer.user_id == MilestoneDone.user_id, newer.done_at > MilestoneDone.done_at))
        )
    rows = await session.execute(
        select(*_USER_COLUMNS, MilestoneDone.milestone, MilestoneDone.done_at)
        .join(MilestoneDone, MilestoneDone.user_id == User.id)
        .where(*conditions, *_reachable())
    )
    return [
        _candidate(row, row.done_at + shift, f"{row.milestone}:{row.done_at.date().isoformat()}", row.milestone)
        for row in rows
    ]


async def weekly_slot(
    session: AsyncSession,
    *,
    weekday: int,
    due: dt.datetime,
    reached: str,
    not_reached: str,
    active_since: dt.datetime,
) -> list[Candidate]:
    """Users whose weekly slot is `weekday` (id mod 7), who reached one rung and not the next, and were active."""
    later = aliased(MilestoneDone)
    rows = await session.execute(
        select(*_USER_COLUMNS)
        .join(MilestoneDone, and_(MilestoneDone.user_id == User.id, MilestoneDone.milestone == reached))
        .where(
            User.id % 7 == weekday,
            User.last_seen_at >= active_since,
            ~exists().where(and_(later.user_id == User.id, later.milestone == not_reached)),
            *_reachable(),
        )
    )
    iso_year, iso_week, _ = due.isocalendar()
    return [_candidate(row, due, f"{iso_year}-W{iso_week:02d}") for row in rows]


async def milestones_of(session: AsyncSession, *, user_ids: Sequence[int]) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        rows = await session.execute(
            select(MilestoneDone.user_id, MilestoneDone.milestone).where(MilestoneDone.user_id.in_(chunk))
        )
        for user_id, milestone in rows:
            found.setdefault(int(user_id), set()).add(milestone)
    return found


async def cursor(session: AsyncSession, *, name: str, lock: bool = False) -> dt.datetime | None:
    """Where a planner stopped last time; `lock` holds the row so a second planner waits instead of repeating."""
    query = select(PlannerCursor.planned_until).where(PlannerCursor.name == name)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def advance_cursor(session: AsyncSession, *, name: str, until: dt.datetime) -> None:
    """Move a planner's cursor forward (never back), in one statement."""
    dialect = session.bind.dialect.name if session.bind is not None else ""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = table_of(PlannerCursor)
    statement = insert(table).values(name=name, planned_until=until)
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"planned_until": statement.excluded.planned_until},
        where=table.c.planned_until < statement.excluded.planned_until,
    )
    await session.execute(statement)


async def assign_arms(
    session: AsyncSession, *, assignments: Sequence[tuple[int, str, str]], at: dt.datetime
) -> list[tuple[int, str, str]]:
    """Record (user, experiment, arm) once; returns the assignments that are new."""
    if not assignments:
        return []
    rows = [{"user_id": u, "experiment": e, "arm": a, "assigned_at": at} for u, e, a in assignments]
    dialect = session.bind.dialect.name if session.bind is not None else ""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(ExperimentAssignment)
        .on_conflict_do_nothing(index_elements=["user_id", "experiment"])
        .returning(ExperimentAssignment.user_id, ExperimentAssignment.experiment, ExperimentAssignment.arm)
    )
    result = await session.execute(statement, rows)
    return [(int(r.user_id), str(r.experiment), str(r.arm)) for r in result]
