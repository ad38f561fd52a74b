"""Who is talking: the stored user behind a Person, created on first contact, never by privacy commands."""

from __future__ import annotations

import dataclasses
import datetime as dt

from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.types import Person, UserView
from storage import users as stored_users
from storage.codebook import EventKind
from storage.db import Database
from storage.events import NewEvent, add_event
from storage.models import User
from storage.users import Touch

LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)  # finer than nudges need; saves a write per message


def view_of(user: User) -> UserView:
    return UserView(
        id=user.id,
        language=user.language if user.language in ("en", "ur") else "en",
        language_chosen=user.language_chosen,
        display_name=user.display_name,
        research_consent=user.research_consent,
        profile_step=user.profile_step,
        profile_step_at=user.profile_step_at,
        timezone=user.timezone,
        blocked=user.blocked_at is not None,
        channel=user.channel,
        external_id=user.external_id,
    )


def guest(person: Person) -> UserView:
    """An unsaved view of someone the database does not (or cannot) know."""
    return UserView(
        None,
        person.hinted_language,
        display_name=person.display_name,
        channel=person.channel,
        external_id=person.external_id,
        username=person.username,
    )


class Users:
    def __init__(self, db: Database, journal: Journal, clock: Clock) -> None:
        self.db = db
        self.journal = journal
        self.clock = clock

    async def find(self, person: Person, *, inbound: bool = True) -> UserView | None:
        """The stored user, or None; reads only (privacy commands must not create anyone). Raises StorageError.

        `inbound`: the person is writing to us now, so if they had blocked the bot they are back. Bookkeeping about
        a person (a failed send, a my_chat_member update) passes False.
        """
        async with self.db.read() as session:
            user = await stored_users.get_user(session, channel=person.channel, external_id=person.external_id)
            found = view_of(user) if user else None
            seen = user.last_seen_at if user else None
            stored_name = user.display_name if user else None
        if inbound and found is not None and found.id is not None and found.blocked:
            await self.set_blocked(found.id, blocked=False)  # writing again means they unblocked the bot
            found = dataclasses.replace(found, blocked=False)
        if found is not None and found.id is not None and seen is not None:
            now = self.clock.now()
            renamed = person.display_name and person.display_name != stored_name
            if renamed or now - seen >= LAST_SEEN_RESOLUTION:
                self.journal.touch(Touch(found.id, now, person.display_name if renamed else None))
        if found is not None and person.username:
            found = dataclasses.replace(found, username=person.username)
        return found

    async def load(self, person: Person) -> UserView:
        """The stored user, created on first contact (with the language Telegram hints). Raises StorageError."""
        found = await self.find(person)
        if found is not None:
            return found
        async with self.db.write() as session:
            user, _ = await stored_users.create_user(
                session,
                channel=person.channel,
                external_id=person.external_id,
                display_name=person.display_name,
                language=person.hinted_language,
                now=self.clock.now(),
            )
            return dataclasses.replace(view_of(user), username=person.username)

    async def set_blocked(self, user_id: int, *, blocked: bool) -> bool:
        """Record a block or unblock with its event, in one transaction; True when it changed anything."""
        now = self.clock.now()
        async with self.db.write() as session:
            changed = await stored_users.set_blocked(session, user_id=user_id, blocked_at=now if blocked else None)
            if changed:
                kind = EventKind.BOT_BLOCKED if blocked else EventKind.BOT_UNBLOCKED
                await add_event(session, NewEvent(kind=kind, at=now, user_id=user_id))
        return changed
