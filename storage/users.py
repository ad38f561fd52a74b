"""Users: find, create, profile, consent, blocked state and erasure. Keyword-only functions over one session."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.handoff import erase_posts_of_user as erase_handoff_posts
from storage.models import Event, MilestoneDone, User
from storage.outbox import erase_for_user as erase_outbox_for_user
from storage.peers import erase_for_user as erase_peers

PROFILE_FIELDS = ("skill", "platforms", "city", "language", "timezone")


async def get_user(session: AsyncSession, *, channel: str, external_id: str) -> User | None:
    return await session.scalar(select(User).where(User.channel == channel, User.external_id == external_id))


async def get_user_by_id(session: AsyncSession, *, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def create_user(
    session: AsyncSession,
    *,
    channel: str,
    external_id: str,
    now: dt.datetime,
    display_name: str | None = None,
    language: str = "en",
) -> tuple[User, bool]:
    """The user for this channel id, created on first contact; (user, created). Safe when two updates race."""
    existing = await get_user(session, channel=channel, external_id=external_id)
    if existing is not None:
        return existing, False
    user = User(
        channel=channel,
        external_id=external_id,
        display_name=display_name,
        language=language,
        language_chosen=False,
        research_consent=False,
        created_at=now,
        last_seen_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(user)
    except IntegrityError:
        existing = await get_user(session, channel=channel, external_id=external_id)
        if existing is None:
            raise
        return existing, False
    return user, True


@dataclass(frozen=True)
class Touch:
    """A user was seen (and maybe renamed): best-effort, applied in batches by the journal."""

    user_id: int
    seen_at: dt.datetime
    display_name: str | None = None


async def touch_users(session: AsyncSession, *, touches: Iterable[Touch]) -> None:
    """Move last_seen_at forward (never back) and keep the latest display name."""
    latest: dict[int, Touch] = {}
    for touch in touches:
        if touch.user_id not in latest or touch.seen_at >= latest[touch.user_id].seen_at:
            latest[touch.user_id] = touch
    for touch in latest.values():
        await session.execute(
            update(User)
            .where(User.id == touch.user_id, User.last_seen_at < touch.seen_at)
            .values(last_seen_at=touch.seen_at)
        )
        if touch.display_name:
            await session.execute(
                update(User)
                .where(User.id == touch.user_id, User.display_name.is_distinct_from(touch.display_name))
                .values(display_name=touch.display_name)
            )


async def set_profile_field(session: AsyncSession, *, user_id: int, field: str, value: object) -> bool:
    """Store one validated profile value; False when the user no longer exists."""
    if field not in PROFILE_FIELDS:
        raise ValueError(f"unknown profile field {field!r}")
    values: dict[str, object] = {field: value}
    if field == "language":
        values["language_chosen"] = True
    result = await session.execute(update(User).where(User.id == user_id).values(**values))
    return _changed(result)


async def answer_profile_step(
    session: AsyncSession,
    *,
    user_id: int,
    step: str,
    value: object,
    store: bool,
    next_step: str | None,
    now: dt.datetime,
    received_at: dt.datetime,
) -> bool:
    """Store the answer to `step` (unless it was skipped: `store=False`) and move to `next_step`, only if `step` is
    still open and was asked before the answer arrived. Exactly one of several racing answers wins (in this process
    or another); False for the others.
    """
    values: dict[str, object] = {"profile_step": next_step, "profile_step_at": now if next_step else None}
    if store and step in PROFILE_FIELDS:
        values[step] = value
        if step == "language":
            values["language_chosen"] = True
    result = await session.execute(
        update(User)
        .where(
            User.id == user_id,
            User.profile_step == step,
            (User.profile_step_at.is_(None)) | (User.profile_step_at <= received_at),
        )
        .values(**values)
    )
    return _changed(result)


async def set_profile_step(session: AsyncSession, *, user_id: int, step: str | None, now: dt.datetime) -> bool:
    result = await session.execute(
        update(User).where(User.id == user_id).values(profile_step=step, profile_step_at=now if step else None)
    )
    return _changed(result)


async def set_consent(session: AsyncSession, *, user_id: int, consent: bool, version: int) -> bool:
    result = await session.execute(
        update(User).where(User.id == user_id).values(research_consent=consent, consent_version=version)
    )
    return _changed(result)


async def set_blocked(session: AsyncSession, *, user_id: int, blocked_at: dt.datetime | None) -> bool:
    """Record that the user blocked (a time) or unblocked (None) the bot; True when that changed anything."""
    condition = User.blocked_at.is_(None) if blocked_at is not None else User.blocked_at.is_not(None)
    result = await session.execute(update(User).where(User.id == user_id, condition).values(blocked_at=blocked_at))
    return _changed(result)


async def set_nudge_pace(session: AsyncSession, *, user_id: int, pace: str) -> bool:
    """daily, weekly or off; True when it changed."""
    if pace not in ("daily", "weekly", "off"):
        raise ValueError(f"unknown nudge pace {pace!r}")
    result = await session.execute(
        update(User).where(User.id == user_id, User.nudge_pace != pace).values(nudge_pace=pace)
    )
    return _changed(result)


async def set_proactive_stopped(session: AsyncSession, *, user_id: int, stopped_at: dt.datetime | None) -> bool:
    """/stop (a time) or /resume (None); True when it changed."""
    condition = (
        User.proactive_stopped_at.is_(None) if stopped_at is not None else User.proactive_stopped_at.is_not(None)
    )
    result = await session.execute(
        update(User).where(User.id == user_id, condition).values(proactive_stopped_at=stopped_at)
    )
    return _changed(result)


async def existing_ids(session: AsyncSession, *, user_ids: Iterable[int]) -> set[int]:
    wanted = set(user_ids)
    if not wanted:
        return set()
    return set(await session.scalars(select(User.id).where(User.id.in_(wanted))))


async def count_user_events(session: AsyncSession, *, user_id: int) -> int:
    return int(await session.scalar(select(func.count()).select_from(Event).where(Event.user_id == user_id)) or 0)


async def delete_user_data(session: AsyncSession, *, user_id: int, now: dt.datetime | None = None) -> int:
    """Erase a person: their message texts, the link from their events, their profile and milestones.

    Event rows stay (without text and without user) so aggregate counts survive; see docs/PRIVACY.md.
    Returns how many events were unlinked.

    The user row is locked first: on PostgreSQL an event being inserted for this user holds a key-share lock on it,
    so erasure waits for that insert to commit (and then erases its words too), and any later insert fails its
    foreign key and is retried by the journal without the user.
    """
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    await erase_handoff_posts(session, user_id=user_id)  # before erase_outbox_for_user: the posts have no user_id
    # Buddies: open pairs end (ended_at is `now`, or left empty without a clock) and relayed words are blanked.
    await erase_peers(session, user_id=user_id, now=now)
    await erase_outbox_for_user(session, user_id=user_id)
    result = await session.execute(update(Event).where(Event.user_id == user_id).values(text=None, user_id=None))
    await session.execute(delete(MilestoneDone).where(MilestoneDone.user_id == user_id))
    await session.execute(delete(User).where(User.id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


async def users_by_ids(session: AsyncSession, *, user_ids: Sequence[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    rows = await session.scalars(select(User).where(User.id.in_(set(user_ids))))
    return {user.id: user for user in rows}


def _changed(result: object) -> bool:
    return bool(getattr(result, "rowcount", 0))
