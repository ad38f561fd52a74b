"""Small readers the tests share: what the database holds about a person, after the journal has written."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.conversation import Conversation
from bot.core.types import Person
from storage import events as stored_events
from storage import users as stored_users
from storage.db import Database
from storage.models import Event, User


async def stored_user(db: Database, person: Person) -> User | None:
    async with db.read() as session:
        return await stored_users.get_user(session, channel=person.channel, external_id=person.external_id)


async def events_of(
    conversation: Conversation, db: Database, person: Person, kind: str | None = None
) -> Sequence[Event]:
    """The person's events, oldest first, once everything queued in the journal is written."""
    assert await conversation.journal.flush()
    user = await stored_user(db, person)
    assert user is not None, f"{person} is not stored"
    async with db.read() as session:
        return await stored_events.list_events(session, user_id=user.id, kind=kind)


def button_data(reply: object) -> list[str]:
    return [b.data for row in getattr(reply, "buttons", []) for b in row if b.data]
