"""Peer support (issue 12): buddy opt-ins, pairs and seats, relayed-message counts, circle members.

Two invariants live in the schema, not in code: a pair of people is proposed at most once, ever
(`uq_peer_pair_user_low_user_high`), and a user sits in at most one open pair (`peer_seat`'s primary key). A matching
pass that would break either fails as a whole and changes nothing (see docs/PEERS.md).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Text, and_, delete, func, insert, or_, select, type_coerce, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    CircleDigest,
    CircleMember,
    Event,
    MilestoneDone,
    OutboxMessage,
    PeerOptIn,
    PeerPair,
    PeerSeat,
    User,
    WinStory,
    table_of,
)

OPEN = ("proposed", "active", "paused")


def campaign_of(pair_id: int) -> str:
    """The outbox campaign of everything said in (or about) a pair: what /delete_me blanks."""
    return f"peer:{pair_id}"


def ordered(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


@dataclass(frozen=True)
class Waiting:
    """An opted-in user without an open pair, with what matching needs (and no more: a pass may read 100,000)."""

    user_id: int
    language: str
    seeking: str
    share_city: bool
    skill: str | None
    platforms: tuple[str, ...]
    city: str | None
    rung: int
    told: bool  # told once already that they wait for the next opt-in


@dataclass(frozen=True)
class Contact:
    """What a card or notice needs about a matched (or waiting) person."""

    external_id: str
    display_name: str | None
    opted_in_at: dt.datetime


# ---- opt-in ----------------------------------------------------------------------------------------------------


async def opt_in(session: AsyncSession, *, user_id: int, seeking: str, share_city: bool, now: dt.datetime) -> bool:
    """Store (or change) a user's opt-in; True when it is new."""
    existing = await session.get(PeerOptIn, user_id)
    if existing is not None:
        existing.seeking = seeking
        existing.share_city = share_city
        await session.flush()
        return False
    session.add(PeerOptIn(user_id=user_id, seeking=seeking, share_city=share_city, opted_in_at=now))
    await session.flush()
    return True


async def get_optin(session: AsyncSession, *, user_id: int) -> PeerOptIn | None:
    return await session.get(PeerOptIn, user_id)


async def opt_out(session: AsyncSession, *, user_id: int) -> bool:
    result = await session.execute(delete(PeerOptIn).where(PeerOptIn.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def set_compose(session: AsyncSession, *, user_id: int, at: dt.datetime | None) -> bool:
    result = await session.execute(update(PeerOptIn).where(PeerOptIn.user_id == user_id).values(compose_at=at))
    return bool(getattr(result, "rowcount", 0))


async def mark_told_waiting(session: AsyncSession, *, user_ids: Sequence[int], now: dt.datetime) -> None:
    for start in range(0, len(user_ids), 500):
        chunk = list(user_ids[start : start + 500])
        await session.execute(update(PeerOptIn).where(PeerOptIn.user_id.in_(chunk)).values(waiting_told_at=now))


# ---- pairs and seats -------------------------------------------------------------------------------------------


async def open_pair_of(session: AsyncSession, *, user_id: int) -> PeerPair | None:
    """The user's one open pair (proposed, active or paused), through their seat."""
    return await session.scalar(
        select(PeerPair).join(PeerSeat, PeerSeat.pair_id == PeerPair.id).where(PeerSeat.user_id == user_id)
    )


async def get_pair(session: AsyncSession, *, pair_id: int, lock: bool = False) -> PeerPair | None:
    query = select(PeerPair).where(PeerPair.id == pair_id)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def waiting(session: AsyncSession, *, limit: int | None = None) -> list[Waiting]:
    """Every opted-in user who could get a card now (no open pair, not blocked, not /stopped), longest-waiting first."""
    # rung = milestones done, counted per waiting person through milestone_done's primary key (user_id, milestone)
    rung = select(func.count()).where(MilestoneDone.user_id == PeerOptIn.user_id).correlate(PeerOptIn).scalar_subquery()
    seated = select(PeerSeat.user_id).where(PeerSeat.user_id == PeerOptIn.user_id).exists()
    rows = await session.execute(
        select(
            PeerOptIn.user_id,
            User.language,
            PeerOptIn.seeking,
            PeerOptIn.share_city,
            User.skill,
            type_coerce(User.platforms, Text),  # raw JSON text, decoded once per distinct value
            User.city,
            rung,
            PeerOptIn.waiting_told_at.is_not(None),
        )  # fmt: skip
        .join(User, User.id == PeerOptIn.user_id)
        .where(~seated, User.blocked_at.is_(None), User.proactive_stopped_at.is_(None))
        .order_by(PeerOptIn.opted_in_at, PeerOptIn.user_id)
        .limit(limit)
    )
    return [
        Waiting(int(user_id), language, seeking, bool(share), skill, _platforms(platforms), city, int(n), bool(told))
        for user_id, language, seeking, share, skill, platforms, city, n, told in rows
    ]


@lru_cache(maxsize=4096)
def _platforms_of(raw: str) -> tuple[str, ...]:
    try:
        value = json.loads(raw)
    except ValueError:
        return ()
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def _platforms(raw: object) -> tuple[str, ...]:
    """A user's platforms from the raw JSON column (most users share a handful of values: decoded once each)."""
    if isinstance(raw, list):
        return tuple(str(v) for v in raw)
    return _platforms_of(raw) if isinstance(raw, str) else ()


async def contacts(session: AsyncSession, *, user_ids: Iterable[int]) -> dict[int, Contact]:
    ids = sorted(set(user_ids))
    found: dict[int, Contact] = {}
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(User.id, User.external_id, User.display_name, PeerOptIn.opted_in_at)
            .join(PeerOptIn, PeerOptIn.user_id == User.id)
            .where(User.id.in_(ids[start : start + 500]))
        )
        found.update((int(i), Contact(e, name, at)) for i, e, name, at in rows)
    return found


async def known_pairs(session: AsyncSession) -> set[tuple[int, int]]:
    """Every pair (low, high) ever proposed between two people who still exist: never proposed again. One scan of
    `peer_pair` (two integers a row), cheaper than asking per waiting person."""
    rows = await session.execute(
        select(PeerPair.user_low, PeerPair.user_high).where(
            PeerPair.user_low.is_not(None), PeerPair.user_high.is_not(None)
        )
    )
    return {(int(low), int(high)) for low, high in rows if low is not None and high is not None}


async def propose(
    session: AsyncSession, *, pairs: Sequence[tuple[int, int]], now: dt.datetime
) -> list[tuple[int, int, int]]:
    """Insert proposed pairs and both seats of each; returns (pair_id, low, high). A pair proposed before is
    skipped (ON CONFLICT DO NOTHING); a seat taken meanwhile by another process fails the whole transaction."""
    if not pairs:
        return []
    rows = [
        {"user_low": low, "user_high": high, "status": "proposed", "proposed_at": now}
        for low, high in (ordered(a, b) for a, b in pairs)
    ]
    table = table_of(PeerPair)
    dialect = session.bind.dialect.name if session.bind is not None else ""
    statement: Any = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    statement = statement.on_conflict_do_nothing(index_elements=["user_low", "user_high"])
    created: list[tuple[int, int, int]] = []
    for start in range(0, len(rows), 2000):
        result = await session.execute(
            statement.returning(table.c.id, table.c.user_low, table.c.user_high), rows[start : start + 2000]
        )
        created.extend((int(i), int(low), int(high)) for i, low, high in result)
    seats = [{"user_id": user, "pair_id": pair_id} for pair_id, low, high in created for user in (low, high)]
    for start in range(0, len(seats), 4000):
        await session.execute(insert(table_of(PeerSeat)), seats[start : start + 4000])
    return created


async def accept(session: AsyncSession, *, pair: PeerPair, user_id: int, now: dt.datetime) -> None:
    if pair.user_low == user_id and pair.low_accepted_at is None:
        pair.low_accepted_at = now
    elif pair.user_high == user_id and pair.high_accepted_at is None:
        pair.high_accepted_at = now
    await session.flush()


async def activate(session: AsyncSession, *, pair_id: int, now: dt.datetime) -> bool:
    """Both said yes: the pair is introduced (once, even if both press at the same moment)."""
    result = await session.execute(
        update(PeerPair)
        .where(PeerPair.id == pair_id, PeerPair.status == "proposed")
        .values(status="active", started_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def close_pair(
    session: AsyncSession, *, pair_id: int, status: str, reason: str, now: dt.datetime, keep_seat_of: int | None = None
) -> bool:
    """End (or decline, or pause) an open pair; its seats are freed (except `keep_seat_of`'s, held while a
    coordinator looks at a report). False when it was not open any more."""
    result = await session.execute(
        update(PeerPair)
        .where(PeerPair.id == pair_id, PeerPair.status.in_(OPEN))
        .values(status=status, ended_at=now, ended_reason=reason)
    )
    if not getattr(result, "rowcount", 0):
        return False
    query = delete(PeerSeat).where(PeerSeat.pair_id == pair_id)
    if keep_seat_of is not None:
        query = query.where(PeerSeat.user_id != keep_seat_of)
    await session.execute(query)
    return True


async def seated_in(session: AsyncSession, *, pair_id: int) -> list[int]:
    """Who still holds a seat in this pair (after a report: the reported person)."""
    return [int(u) for u in await session.scalars(select(PeerSeat.user_id).where(PeerSeat.pair_id == pair_id))]


async def touch_pair(session: AsyncSession, *, pair_id: int, now: dt.datetime) -> None:
    await session.execute(update(PeerPair).where(PeerPair.id == pair_id).values(last_message_at=now))


async def relayed_since(session: AsyncSession, *, user_id: int, since: dt.datetime) -> int:
    """How many messages this user relayed to a buddy since `since` (the rate limit)."""
    count = await session.scalar(
        select(func.count()).where(Event.user_id == user_id, Event.kind == "peer_relayed", Event.at >= since)
    )
    return int(count or 0)


async def recent_relays_to(session: AsyncSession, *, pair_id: int, user_id: int, limit: int = 3) -> list[str]:
    """The last messages relayed to `user_id` in this pair (for a report to the coordinators)."""
    rows = await session.scalars(
        select(OutboxMessage.payload)
        .where(OutboxMessage.campaign == campaign_of(pair_id), OutboxMessage.user_id == user_id)
        .where(OutboxMessage.kind == "relay")
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return [str(payload.get("text", "")) for payload in rows if payload]


# ---- what the planner looks for ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivePair:
    id: int
    user_low: int | None
    user_high: int | None
    started_at: dt.datetime


async def active_pairs(session: AsyncSession) -> list[ActivePair]:
    """Every active pair as plain tuples (a check-in pass reads them all; ORM objects would cost 10x)."""
    rows = await session.execute(
        select(PeerPair.id, PeerPair.user_low, PeerPair.user_high, PeerPair.started_at).where(
            PeerPair.status == "active", PeerPair.started_at.is_not(None)
        )
    )
    return [ActivePair(int(i), low, high, started) for i, low, high, started in rows if started is not None]


async def proposed_before(session: AsyncSession, *, before: dt.datetime) -> list[PeerPair]:
    return list(
        await session.scalars(select(PeerPair).where(PeerPair.status == "proposed", PeerPair.proposed_at < before))
    )


async def silent_before(session: AsyncSession, *, before: dt.datetime) -> list[PeerPair]:
    """Active pairs with no relayed message (or none since they were introduced) before `before`."""
    last = func.coalesce(PeerPair.last_message_at, PeerPair.started_at)
    return list(await session.scalars(select(PeerPair).where(PeerPair.status == "active", last < before)))


async def left_unnoticed(session: AsyncSession) -> list[PeerPair]:
    """Pairs one side of which erased their data, whose other side has not been told yet."""
    return list(
        await session.scalars(
            select(PeerPair).where(
                PeerPair.ended_reason == "deleted",
                PeerPair.notice_at.is_(None),
                or_(PeerPair.user_low.is_not(None), PeerPair.user_high.is_not(None)),
            )
        )
    )


async def users_for(session: AsyncSession, *, user_ids: Iterable[int]) -> dict[int, User]:
    ids = sorted(set(user_ids))
    found: dict[int, User] = {}
    for start in range(0, len(ids), 500):
        for user in await session.scalars(select(User).where(User.id.in_(ids[start : start + 500]))):
            found[user.id] = user
    return found


async def rungs_of(session: AsyncSession, *, user_ids: Iterable[int]) -> dict[int, int]:
    ids = sorted(set(user_ids))
    found: dict[int, int] = {}
    for start in range(0, len(ids), 500):
        rows = await session.execute(
            select(MilestoneDone.user_id, func.count())
            .where(MilestoneDone.user_id.in_(ids[start : start + 500]))
            .group_by(MilestoneDone.user_id)
        )
        found.update((int(user_id), int(count)) for user_id, count in rows)
    return found


# ---- erasure -----------------------------------------------------------------------------------------------------


async def erase_for_user(session: AsyncSession, *, user_id: int, now: dt.datetime | None) -> None:
    """/delete_me: open pairs end (the buddy is told by the next planner pass), and every message relayed in any of
    the user's pairs, both ways, is blanked and never sent."""
    await erase_stories(session, user_id=user_id)
    pair_ids = list(
        await session.scalars(
            select(PeerPair.id).where(or_(PeerPair.user_low == user_id, PeerPair.user_high == user_id))
        )
    )
    for start in range(0, len(pair_ids), 500):
        chunk = pair_ids[start : start + 500]
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.campaign.in_([campaign_of(p) for p in chunk])).values(payload={})
        )
        await session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.campaign.in_([campaign_of(p) for p in chunk]),
                OutboxMessage.status.in_(("pending", "claimed")),
                OutboxMessage.sending_at.is_(None),
            )
            .values(status="cancelled", claimed_by=None, claimed_until=None, last_error="sender erased")
        )
        await session.execute(
            update(PeerPair)
            .where(PeerPair.id.in_(chunk), PeerPair.status.in_(OPEN))
            .values(status="ended", ended_at=now, ended_reason="deleted")
        )
        await session.execute(delete(PeerSeat).where(PeerSeat.pair_id.in_(chunk)))


async def mark_noticed(session: AsyncSession, *, pair_id: int, now: dt.datetime) -> None:
    await session.execute(update(PeerPair).where(PeerPair.id == pair_id).values(notice_at=now))


# ---- circles -----------------------------------------------------------------------------------------------------


async def join_circle(session: AsyncSession, *, user_id: int, now: dt.datetime) -> bool:
    if await session.get(CircleMember, user_id) is not None:
        return False
    session.add(CircleMember(user_id=user_id, joined_at=now))
    await session.flush()
    return True


async def leave_circle(session: AsyncSession, *, user_id: int) -> bool:
    result = await session.execute(delete(CircleMember).where(CircleMember.user_id == user_id))
    return bool(getattr(result, "rowcount", 0))


async def in_circle(session: AsyncSession, *, user_id: int) -> bool:
    return await session.get(CircleMember, user_id) is not None


@dataclass(frozen=True)
class CircleRecipient:
    user_id: int
    external_id: str
    language: str
    started_at: dt.datetime


async def circle_recipients(
    session: AsyncSession, *, after_user_id: int = 0, limit: int | None = None, joined_before: dt.datetime | None = None
) -> list[CircleRecipient]:
    """Circle members who may get a proactive message (not blocked, not /stopped), by user id after `after_user_id`."""
    query = (
        select(User.id, User.external_id, User.language, User.created_at)
        .join(CircleMember, CircleMember.user_id == User.id)
        .where(User.id > after_user_id, User.blocked_at.is_(None), User.proactive_stopped_at.is_(None))
        .order_by(User.id)
    )
    if joined_before is not None:
        query = query.where(CircleMember.joined_at <= joined_before)
    if limit is not None:
        query = query.limit(limit)
    rows = await session.execute(query)
    return [CircleRecipient(int(i), e, lang, created) for i, e, lang, created in rows]


async def digest_run(session: AsyncSession, *, day: str) -> CircleDigest:
    """The week's digest expansion (created on first use), locked for this transaction."""
    run = await session.scalar(select(CircleDigest).where(CircleDigest.day == day).with_for_update())
    if run is None:
        run = CircleDigest(day=day, cursor_user_id=0, enqueued=0)
        session.add(run)
        await session.flush()
    return run


async def advance_digest_run(
    session: AsyncSession, *, day: str, cursor_user_id: int, enqueued: int, finished_at: dt.datetime | None
) -> None:
    await session.execute(
        update(CircleDigest)
        .where(CircleDigest.day == day)
        .values(cursor_user_id=cursor_user_id, enqueued=CircleDigest.enqueued + enqueued, finished_at=finished_at)
    )


async def reached_between(
    session: AsyncSession, *, milestones: Sequence[str], after: dt.datetime, until: dt.datetime
) -> list[tuple[str, dt.datetime]]:
    """(milestone, the achiever's start time) for every rung reached in the window: the raw counts behind a
    digest, aggregated by the caller into start cohorts (never shown below the minimum cell)."""
    rows = await session.execute(
        select(MilestoneDone.milestone, User.created_at)
        .join(User, User.id == MilestoneDone.user_id)
        .where(
            and_(
                MilestoneDone.milestone.in_(list(milestones)),
                MilestoneDone.done_at > after,
                MilestoneDone.done_at <= until,
            )
        )
    )
    return [(milestone, created) for milestone, created in rows]


# ---- win stories -------------------------------------------------------------------------------------------------


def story_campaign(story_id: int) -> str:
    return f"story:{story_id}"


async def start_story(session: AsyncSession, *, user_id: int, now: dt.datetime) -> int:
    """The user pressed "Share advice": a story waiting for its one line (an unfinished one is reused)."""
    existing = await session.scalar(
        select(WinStory).where(WinStory.user_id == user_id, WinStory.status == "writing").limit(1)
    )
    if existing is not None:
        existing.asked_at = now
        await session.flush()
        return existing.id
    story = WinStory(user_id=user_id, status="writing", asked_at=now)
    session.add(story)
    await session.flush()
    return story.id


async def story_being_written(session: AsyncSession, *, user_id: int, since: dt.datetime) -> WinStory | None:
    return await session.scalar(
        select(WinStory)
        .where(WinStory.user_id == user_id, WinStory.status == "writing", WinStory.asked_at >= since)
        .limit(1)
    )


async def write_story(session: AsyncSession, *, story_id: int, text: str, now: dt.datetime) -> bool:
    result = await session.execute(
        update(WinStory)
        .where(WinStory.id == story_id, WinStory.status == "writing")
        .values(status="pending", text=text, written_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def decide_story(
    session: AsyncSession, *, story_id: int, approved: bool, coordinator: int, now: dt.datetime
) -> WinStory | None:
    """A coordinator's decision on a pending story; None when it is not pending (decided already, or erased)."""
    story = await session.scalar(select(WinStory).where(WinStory.id == story_id).with_for_update())
    if story is None or story.status != "pending":
        return None
    story.status = "approved" if approved else "rejected"
    story.decided_at = now
    story.decided_by = coordinator
    await session.flush()
    return story


async def latest_approved_story(session: AsyncSession, *, since: dt.datetime) -> str | None:
    """The newest story a coordinator approved since `since`: the one a digest may quote (never with a name)."""
    return await session.scalar(
        select(WinStory.text)
        .where(WinStory.status == "approved", WinStory.decided_at >= since)
        .order_by(WinStory.decided_at.desc(), WinStory.id.desc())
        .limit(1)
    )


async def first_jobs_between(session: AsyncSession, *, after: dt.datetime, until: dt.datetime) -> list[User]:
    """Users who marked their first job won in the window and may get a proactive message."""
    return list(
        await session.scalars(
            select(User)
            .join(MilestoneDone, MilestoneDone.user_id == User.id)
            .where(
                MilestoneDone.milestone == "first_job_won",
                MilestoneDone.done_at > after,
                MilestoneDone.done_at <= until,
                User.blocked_at.is_(None),
                User.proactive_stopped_at.is_(None),
            )
        )
    )


async def erase_stories(session: AsyncSession, *, user_id: int) -> None:
    """/delete_me: the user's stories go, and so do the words of their posts to the coordinators' group."""
    ids = list(await session.scalars(select(WinStory.id).where(WinStory.user_id == user_id)))
    if ids:
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.campaign.in_([story_campaign(i) for i in ids])).values(payload={})
        )
        await session.execute(delete(WinStory).where(WinStory.id.in_(ids)))
