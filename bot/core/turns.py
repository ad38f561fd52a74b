"""What every turn shares: find the user, write to the database without ever failing the reply, log the turn."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.types import Person, Reply
from nlu.understanding import Understanding
from storage import repository
from storage.models import User

log = logging.getLogger(__name__)

MAX_STORED_CHARS = 4096
CONSENT_VERSION = 1


@dataclass(frozen=True)
class UserView:
    """What the core knows about the user for one turn; id is None when the database is unreachable."""

    id: int | None
    language: str
    language_chosen: bool = False
    display_name: str | None = None
    research_consent: bool = False
    profile_step: str | None = None

    @classmethod
    def of(cls, user: User) -> UserView:
        return cls(
            id=user.id,
            language=user.language,
            language_chosen=user.language_chosen,
            display_name=user.display_name,
            research_consent=user.research_consent,
            profile_step=user.profile_step,
        )


class Turns:
    """Loads users and records turns; one per process, shared by every part of the core."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], float] = time.perf_counter):
        self.sessions = sessions
        self.clock = clock

    async def load_user(self, person: Person) -> UserView:
        """The stored user (created on first contact); a database problem degrades to an unsaved view."""
        try:
            async with self.sessions.begin() as session:
                user, created = await repository.get_or_create_user(
                    session, channel=person.channel, external_id=person.external_id, display_name=person.display_name
                )
                if created and person.language_hint and person.language_hint.startswith("ur"):
                    user.language = "ur"
                return UserView.of(user)
        except (SQLAlchemyError, OSError):
            log.exception("Could not load user %s:%s; answering without saving", person.channel, person.external_id)
            return self.guest(person)

    @staticmethod
    def guest(person: Person) -> UserView:
        """An unsaved view of someone the database does not (or cannot) know."""
        language = "ur" if (person.language_hint or "").startswith("ur") else "en"
        return UserView(None, language, display_name=person.display_name)

    async def find_or_guest(self, person: Person) -> UserView:
        """The stored user if there is one, without creating anyone (privacy commands must not store people)."""
        try:
            return await self.find_user(person) or self.guest(person)
        except (SQLAlchemyError, OSError):
            return self.guest(person)

    async def find_user(self, person: Person) -> UserView | None:
        """The stored user, or None: for privacy commands, which must not create anyone."""
        async with self.sessions() as session:
            user = await repository.get_user(session, channel=person.channel, external_id=person.external_id)
            return UserView.of(user) if user else None

    async def write(self, action: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
        """Run one transaction; on a database error log it and return None so the user still gets a reply."""
        try:
            async with self.sessions.begin() as session:
                result = await action(session)
            return True if result is None else result
        except (SQLAlchemyError, OSError):
            log.exception("Could not write to the database")
            return None

    async def record(
        self,
        user: UserView,
        started: float,
        text_in: str | None,
        reply: Reply,
        *,
        kind_in: str = "message",
        understanding: Understanding | None = None,
        data_in: dict[str, Any] | None = None,
    ) -> None:
        """Append the inbound event and the reply event in one transaction, with the handling latency.

        Without research consent the texts are not kept: only intent, article and timing (docs/PRIVACY.md).
        """
        reply.latency_ms = (self.clock() - started) * 1000
        if user.id is None:
            return
        user_id = user.id
        keep_text = user.research_consent
        meta_in = dict(data_in or {})
        if understanding is not None:
            meta_in.update(
                entities=understanding.entities,
                parse_ms=round(understanding.parse_ms, 3),
                candidates=[[c.article_id, round(c.confidence, 4)] for c in understanding.articles[:3]],
                rasa_intent=understanding.intent,
            )
            if understanding.degraded_reason:
                meta_in["fallback_reason"] = understanding.degraded_reason
        if text_in is not None and not keep_text:
            meta_in["chars"] = len(text_in)

        async def write(session: AsyncSession) -> None:
            await repository.record_events(
                session,
                events=[
                    {
                        "user_id": user_id,
                        "kind": kind_in,
                        "text": text_in[:MAX_STORED_CHARS] if text_in is not None and keep_text else None,
                        "intent": reply.intent,
                        "confidence": reply.confidence,
                        "article_id": reply.article_id,
                        "nlu_source": reply.nlu_source,
                        "data": meta_in or None,
                    },
                    {
                        "user_id": user_id,
                        "kind": "reply",
                        "text": reply.text if keep_text else None,
                        "intent": reply.intent,
                        "confidence": reply.confidence,
                        "article_id": reply.article_id,
                        "nlu_source": reply.nlu_source,
                        "latency_ms": round(reply.latency_ms, 3),
                        "data": {"decision": reply.decision},
                    },
                ],
            )

        await self.write(write)  # fmt: skip

    async def event(self, user: UserView, kind: str, **fields: Any) -> None:
        """Record one state-change event (milestone, profile, consent...) for a stored user."""
        if user.id is None:
            return
        user_id = user.id
        await self.write(lambda session: repository.record_event(session, user_id=user_id, kind=kind, **fields))
