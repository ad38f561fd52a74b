"""The append-only event log. Rows are never updated in place, except erasure (storage.users.delete_user_data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Event, table_of
from storage.users import existing_ids

_LIMITS = {"kind": 32, "intent": 64, "article_id": 96, "nlu_source": 16}


@dataclass(frozen=True)
class NewEvent:
    """One event to append; `at` comes from the caller's clock."""

    kind: str
    at: dt.datetime
    user_id: int | None = None
    text: str | None = None
    intent: str | None = None
    confidence: float | None = None
    article_id: str | None = None
    nlu_source: str | None = None
    latency_ms: float | None = None
    data: dict[str, Any] | None = field(default=None)

    def row(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            "user_id": self.user_id, "kind": self.kind, "at": self.at, "text": self.text, "intent": self.intent,
            "confidence": self.confidence, "article_id": self.article_id, "nlu_source": self.nlu_source,
            "latency_ms": self.latency_ms, "data": self.data,
        }  # fmt: skip
        for name, limit in _LIMITS.items():
            if isinstance(values[name], str):
                values[name] = values[name][:limit]
        return values


async def add_events(session: AsyncSession, *, events: Sequence[NewEvent]) -> int:
    """Append events in one statement. Events of a user who was erased meanwhile are kept anonymous (no user, no
    text), like the events erasure unlinked: erasure wins every race with a turn still in flight."""
    if not events:
        return 0
    alive = await existing_ids(session, user_ids={e.user_id for e in events if e.user_id is not None})
    rows = [
        (event if event.user_id is None or event.user_id in alive else replace(event, user_id=None, text=None)).row()
        for event in events
    ]
    await session.execute(insert(table_of(Event)), rows)  # Core insert: no ORM bookkeeping for a log
    return len(rows)


async def add_event(session: AsyncSession, event: NewEvent) -> None:
    await add_events(session, events=[event])


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
