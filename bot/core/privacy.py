"""Consent (versioned), what is stored (/privacy) and erasure (/delete_me). See docs/PRIVACY.md.

Every change here either commits or raises StorageError: withdrawing consent must never be reported as done while
the words keep being stored.
"""

from __future__ import annotations

import html

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.types import Button, Reply, UserView
from content.library import Library
from storage import milestones as stored_milestones
from storage import users as stored_users
from storage.codebook import Decision, EventKind
from storage.db import Database
from storage.events import NewEvent, add_event

CONSENT_VERSION = 1  # bump when docs/PRIVACY.md changes meaningfully; users are asked again


class Privacy:
    def __init__(self, library: Library, db: Database, clock: Clock) -> None:
        self.library = library
        self.db = db
        self.clock = clock

    def consent_buttons(self, lang: str) -> list[Button]:
        return [
            Button.of(self.library.text("button_consent_yes", lang), buttons.Consent("yes")),
            Button.of(self.library.text("button_consent_no", lang), buttons.Consent("no")),
        ]

    async def set_consent(self, user: UserView, consent: bool) -> Reply:
        """Give or withdraw research consent, with its event, in one transaction (raises StorageError)."""
        if user.id is not None:
            now = self.clock.now()
            async with self.db.write() as session:
                await stored_users.set_consent(session, user_id=user.id, consent=consent, version=CONSENT_VERSION)
                kind = EventKind.CONSENT_GIVEN if consent else EventKind.CONSENT_WITHDRAWN
                await add_event(
                    session, NewEvent(kind=kind, at=now, user_id=user.id, data={"version": CONSENT_VERSION})
                )
        key = "consent_thanks" if consent else "consent_declined"
        return Reply(text=self.library.text(key, user.language), decision=Decision(key))

    async def report(self, user: UserView | None, lang: str) -> Reply:
        """/privacy: everything stored about this person (one read), and the buttons to change it."""
        if user is None or user.id is None:
            return Reply(text=self.library.text("privacy_nothing", lang), decision=Decision.PRIVACY_NOTHING)
        async with self.db.read() as session:
            stored = await stored_users.get_user_by_id(session, user_id=user.id)
            if stored is None:
                return Reply(text=self.library.text("privacy_nothing", lang), decision=Decision.PRIVACY_NOTHING)
            fields: dict[str, object] = {
                "name": stored.display_name,
                "language": stored.language,
                "skill": stored.skill,
                "platforms": ", ".join(stored.platforms or []),
                "city": stored.city,
                "timezone": stored.timezone,
            }
            consent = stored.research_consent
            done = len(await stored_milestones.done(session, user_id=user.id))
            events = await stored_users.count_user_events(session, user_id=user.id)
        lang = user.language
        not_set = self.library.text("profile_not_set", lang)
        lines = [self.library.text("privacy_title", lang)]
        lines += [f"• {name}: {html.escape(str(value)) if value else not_set}" for name, value in fields.items()]
        lines.append(self.library.text("privacy_counts", lang, milestones=done, events=events))
        lines.append(self.library.text("privacy_consent_yes" if consent else "privacy_consent_no", lang))
        toggle = (
            Button.of(self.library.text("button_consent_withdraw", lang), buttons.Consent("no"))
            if consent
            else Button.of(self.library.text("button_consent_yes", lang), buttons.Consent("yes"))
        )
        rows = [[toggle], [Button.of(self.library.text("button_delete", lang), buttons.Erase("ask"))]]
        return Reply(text="\n".join(lines), buttons=rows, decision=Decision.PRIVACY_REPORT)

    def confirm_delete(self, lang: str) -> Reply:
        row = [
            Button.of(self.library.text("button_delete_yes", lang), buttons.Erase("yes")),
            Button.of(self.library.text("button_cancel", lang), buttons.Erase("no")),
        ]
        return Reply(text=self.library.text("delete_confirm", lang), buttons=[row], decision=Decision.DELETE_CONFIRM)

    async def delete(self, user: UserView | None, lang: str) -> Reply:
        """Erase the person's data; pressing the button twice (or after a restart) is harmless."""
        if user is None or user.id is None:
            return Reply(text=self.library.text("privacy_nothing", lang), decision=Decision.DELETE_NOTHING)
        now = self.clock.now()
        async with self.db.write() as session:
            unlinked = await stored_users.delete_user_data(session, user_id=user.id, now=now)
            await add_event(session, NewEvent(kind=EventKind.DATA_DELETED, at=now, data={"events": unlinked}))
        return Reply(text=self.library.text("delete_done", user.language), decision=Decision.DELETE_DONE)
