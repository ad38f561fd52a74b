"""Cohorts: /cohort new gives a coordinator a join link; /start c-<tag> puts a user in that cohort."""

from __future__ import annotations

import html
import re
import secrets

from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.roles import Roles, telegram_id
from bot.core.routes import Routes
from bot.core.types import Reply, UserView
from content.library import Library
from storage import cohorts as stored
from storage.codebook import Decision, EventKind
from storage.db import Database, StorageError
from storage.events import NewEvent, add_events

PREFIX = "c-"
_TAG = re.compile(r"[a-z0-9_]{2,24}")


class Cohorts:
    def __init__(self, library: Library, db: Database, clock: Clock, journal: Journal, roles: Roles) -> None:
        self.library = library
        self.db = db
        self.clock = clock
        self.journal = journal
        self.roles = roles
        self.bot_username: str | None = None  # set by the Telegram adapter (the link names the bot)

    def routes(self, routes: Routes) -> None:
        routes.command("cohort", self.command, changes_state=True)
        routes.start_payload(PREFIX, self.join)

    def link(self, tag: str) -> str:
        return f"https://t.me/{self.bot_username or 'rahnuma_bot'}?start={PREFIX}{tag}"

    async def command(self, user: UserView, argument: str) -> Reply:
        """/cohort lists cohorts with their links; /cohort new [tag] creates one."""
        coordinator = telegram_id(user)
        lang = user.language
        if not self.roles.is_coordinator(coordinator):
            self.journal.record(
                NewEvent(kind=EventKind.ADMIN_REFUSED, at=self.clock.now(), user_id=user.id, data={"command": "cohort"})
            )
            return Reply(text=self.library.text("admin_refused", lang), decision=Decision.ADMIN_REFUSED)
        words = argument.split()
        if words and words[0].casefold() == "new":
            tag = words[1].casefold() if len(words) > 1 else f"c{secrets.token_hex(3)}"
            if not _TAG.fullmatch(tag):
                return Reply(text=self.library.text("cohort_bad_tag", lang), decision=Decision.COHORT)
            now = self.clock.now()
            async with self.db.write() as session:
                created = await stored.create_cohort(session, tag=tag, created_by=coordinator, now=now)
                if created:
                    event = NewEvent(kind=EventKind.COHORT_CREATED, at=now, user_id=user.id, data={"cohort": tag})
                    await add_events(session, events=[event])
            key = "cohort_created" if created else "cohort_exists"
            return Reply(
                text=self.library.text(key, lang, tag=tag, link=html.escape(self.link(tag))), decision=Decision.COHORT
            )
        async with self.db.read() as session:
            cohorts = await stored.cohorts_with_counts(session)
        if not cohorts:
            return Reply(text=self.library.text("cohort_none", lang), decision=Decision.COHORT)
        lines = [self.library.text("cohort_title", lang)]
        lines += [f"• <b>{tag}</b> ({members}) — {html.escape(self.link(tag))}" for tag, _, members in cohorts]
        return Reply(text="\n".join(lines), decision=Decision.COHORT)

    async def join(self, user: UserView, tag: str) -> str | None:
        """/start c-<tag>: join the cohort; the line returned goes above the welcome."""
        if user.id is None or not _TAG.fullmatch(tag):
            return None
        now = self.clock.now()
        try:
            async with self.db.write() as session:
                joined = await stored.join_cohort(session, user_id=user.id, tag=tag, now=now)
                if joined:
                    event = NewEvent(kind=EventKind.COHORT_JOINED, at=now, user_id=user.id, data={"cohort": tag})
                    await add_events(session, events=[event])
        except StorageError:
            return None
        return self.library.text("cohort_joined", user.language, tag=html.escape(tag)) if joined else None
