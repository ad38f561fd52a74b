"""Everything coordinators need, built once: roles, broadcasts, cohorts, stats, the hand-off relay, risk triage and
peer support (buddy reports go to the coordinators' group). The runtime adds `features()` to the conversation and
`planners()` to the dispatcher."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bot.core.answers import Answers
from bot.core.broadcasts import BroadcastPlanner, Broadcasts
from bot.core.clock import Clock
from bot.core.cohorts import Cohorts
from bot.core.handoff import Handoff, HandoffConfig, HandoffPlanner
from bot.core.journal import Journal
from bot.core.peers import PeerPlanner, Peers
from bot.core.quiet_hours import Span
from bot.core.risk import Risk
from bot.core.roles import Roles
from bot.core.routes import Feature
from bot.core.stats import Stats
from bot.core.types import Person, Reply
from content.coordinators import CoordinatorContent, load_coordinator_content
from content.library import Library
from storage import users as stored_users
from storage.codebook import Decision, EventKind
from storage.db import Database, StorageError
from storage.events import NewEvent


@dataclass(frozen=True)
class CoordinationSettings:
    coordinators: frozenset[int] = frozenset()
    chat_id: int | None = None
    hours: Span = field(default_factory=lambda: Span(dt.time(9), dt.time(17)))
    timezone: str = "Asia/Karachi"
    repost_after: dt.timedelta = dt.timedelta(hours=2)
    close_after: dt.timedelta = dt.timedelta(hours=48)

    @classmethod
    def from_settings(cls, settings: Any) -> CoordinationSettings:
        return cls(
            coordinators=frozenset(settings.coordinators),
            chat_id=settings.coordinator_chat_id,
            hours=settings.working_hours,
            timezone=settings.timezone_name,
            repost_after=dt.timedelta(minutes=settings.handoff_repost_minutes),
            close_after=dt.timedelta(hours=settings.handoff_close_hours),
        )


class Coordination:
    def __init__(
        self,
        *,
        library: Library,
        db: Database,
        clock: Clock,
        journal: Journal,
        settings: CoordinationSettings | None = None,
        content: CoordinatorContent | None = None,
    ) -> None:
        settings = settings or CoordinationSettings()
        content = content or load_coordinator_content()
        self.settings = settings
        self.library = library
        self.db = db
        self.clock = clock
        self.journal = journal
        self.roles = Roles(db, coordinators=settings.coordinators)
        self.broadcasts = Broadcasts(library, db, clock, journal, self.roles, default_timezone=settings.timezone)
        self.cohorts = Cohorts(library, db, clock, journal, self.roles)
        self.stats = Stats(library, db, clock, journal, self.roles)
        handoff_config = HandoffConfig(
            chat_id=settings.chat_id,
            hours=settings.hours,
            timezone=settings.timezone,
            repost_after=settings.repost_after,
            close_after=settings.close_after,
        )
        self.handoff = Handoff(library, content, db, clock, journal, self.roles, handoff_config)
        self.risk = Risk(library, content, db, clock, journal, Answers(library), chat_id=settings.chat_id)
        self.peers = Peers(library, db, clock, journal, chat_id=settings.chat_id, roles=self.roles)

    def features(self) -> list[Feature]:
        """In interceptor order: a coordinator's wizard answer, then an open hand-off, then a message for a buddy
        (after "Message my buddy"), then risk triage."""
        return [self.broadcasts, self.cohorts, self.stats, self.handoff, self.peers, self.risk]

    def planners(self) -> list[Any]:
        return [
            BroadcastPlanner(self.broadcasts, self.clock),
            HandoffPlanner(self.handoff, self.clock),
            PeerPlanner(self.peers, self.clock),
        ]

    async def refuse(self, person: Person, command: str) -> Reply:
        """A coordinator command from someone without the role: a polite no, and an `admin_refused` event."""
        user_id = None
        language = person.hinted_language
        try:
            async with self.db.read() as session:
                user = await stored_users.get_user(session, channel=person.channel, external_id=person.external_id)
            if user is not None:
                user_id, language = user.id, user.language
        except StorageError:
            pass
        self.journal.record(
            NewEvent(kind=EventKind.ADMIN_REFUSED, at=self.clock.now(), user_id=user_id, data={"command": command})
        )
        return Reply(text=self.library.text("admin_refused", language), decision=Decision.ADMIN_REFUSED)
