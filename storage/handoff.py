"""Hand-off tickets and the group messages that belong to them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, HandoffPost, HandoffTicket, MilestoneDone, OutboxMessage


async def open_ticket_of(session: AsyncSession, *, user_id: int) -> HandoffTicket | None:
    return await session.scalar(
        select(HandoffTicket)
        .where(HandoffTicket.user_id == user_id, HandoffTicket.status == "open")
        .order_by(HandoffTicket.id.desc())
        .limit(1)
    )


async def get_ticket(session: AsyncSession, *, ticket_id: int) -> HandoffTicket | None:
    return await session.get(HandoffTicket, ticket_id)


async def open_ticket(session: AsyncSession, *, user_id: int, now: dt.datetime) -> HandoffTicket:
    ticket = HandoffTicket(
        user_id=user_id, status="open", show_name=False, opened_at=now, last_activity_at=now, reposts=0
    )
    session.add(ticket)
    await session.flush()
    return ticket


async def add_posts(session: AsyncSession, *, ticket_id: int, outbox_ids: list[int]) -> None:
    for outbox_id in outbox_ids:
        session.add(HandoffPost(outbox_id=outbox_id, ticket_id=ticket_id))
    await session.flush()


async def ticket_for_group_message(
    session: AsyncSession, *, group_chat_id: int, telegram_message_id: int
) -> HandoffTicket | None:
    """The ticket a message in the coordinators' group belongs to, by the id Telegram gave the bot's post."""
    return await session.scalar(
        select(HandoffTicket)
        .join(HandoffPost, HandoffPost.ticket_id == HandoffTicket.id)
        .join(OutboxMessage, OutboxMessage.id == HandoffPost.outbox_id)
        .where(OutboxMessage.chat_id == group_chat_id, OutboxMessage.telegram_message_id == telegram_message_id)
        .limit(1)
    )


async def touch(session: AsyncSession, *, ticket_id: int, now: dt.datetime, **values: Any) -> bool:
    result = await session.execute(
        update(HandoffTicket)
        .where(HandoffTicket.id == ticket_id, HandoffTicket.status == "open")
        .values(last_activity_at=now, **values)
    )
    return bool(getattr(result, "rowcount", 0))


async def answered(session: AsyncSession, *, ticket_id: int, coordinator: int, now: dt.datetime) -> None:
    """A coordinator answered: the first one becomes the assignee."""
    await session.execute(
        update(HandoffTicket)
        .where(HandoffTicket.id == ticket_id, HandoffTicket.first_answered_at.is_(None))
        .values(first_answered_at=now, assignee=coordinator)
    )
    await touch(session, ticket_id=ticket_id, now=now)


async def close(session: AsyncSession, *, ticket_id: int, reason: str, now: dt.datetime) -> bool:
    """Open → closed, once; False when it was closed already."""
    result = await session.execute(
        update(HandoffTicket)
        .where(HandoffTicket.id == ticket_id, HandoffTicket.status == "open")
        .values(status="closed", closed_at=now, closed_reason=reason)
    )
    return bool(getattr(result, "rowcount", 0))


async def silent_since(session: AsyncSession, *, before: dt.datetime, limit: int = 200) -> list[HandoffTicket]:
    return list(
        await session.scalars(
            select(HandoffTicket)
            .where(HandoffTicket.status == "open", HandoffTicket.last_activity_at < before)
            .order_by(HandoffTicket.id)
            .limit(limit)
        )
    )


async def waiting_since(
    session: AsyncSession, *, before: dt.datetime, max_reposts: int, limit: int = 50
) -> list[HandoffTicket]:
    """Open tickets nobody has answered, last posted before `before`."""
    last_posted = func.coalesce(HandoffTicket.reposted_at, HandoffTicket.opened_at)
    return list(
        await session.scalars(
            select(HandoffTicket)
            .where(
                HandoffTicket.status == "open",
                HandoffTicket.first_answered_at.is_(None),
                HandoffTicket.reposts < max_reposts,
                last_posted < before,
            )
            .order_by(HandoffTicket.id)
            .limit(limit)
        )
    )


async def recent_questions(session: AsyncSession, *, user_id: int, limit: int = 3) -> list[Event]:
    """The user's latest questions (message events), newest first; `text` is there only with research consent."""
    return list(
        await session.scalars(
            select(Event)
            .where(Event.user_id == user_id, Event.kind == "message")
            .order_by(Event.at.desc(), Event.id.desc())
            .limit(limit)
        )
    )


async def latest_milestone(session: AsyncSession, *, user_id: int) -> tuple[str | None, int]:
    """The rung marked last, and how many are marked."""
    rows = list(
        await session.execute(
            select(MilestoneDone.milestone).where(MilestoneDone.user_id == user_id).order_by(MilestoneDone.done_at)
        )
    )
    return (rows[-1][0] if rows else None), len(rows)


async def erase_posts_of_user(session: AsyncSession, *, user_id: int) -> None:
    """/delete_me: the words a user sent to the coordinators' group are blanked in the outbox too."""
    posts = select(HandoffPost.outbox_id).join(HandoffTicket, HandoffTicket.id == HandoffPost.ticket_id)
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(posts.where(HandoffTicket.user_id == user_id)))
        .values(
            payload={},
            status=case((OutboxMessage.status.in_(("pending", "claimed")), "cancelled"), else_=OutboxMessage.status),
        )
    )


async def open_tickets(session: AsyncSession) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(HandoffTicket).where(HandoffTicket.status == "open")) or 0
    )


async def enqueued_since(session: AsyncSession, *, campaign: str, since: dt.datetime) -> int:
    """Rows of a campaign put in the outbox since `since` (the risk alerts' hourly cap)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.campaign == campaign, OutboxMessage.created_at >= since)
        )
        or 0
    )
