"""Consent (versioned), what is stored (/privacy) and erasure (/delete_me). See docs/PRIVACY.md."""

from __future__ import annotations

import html

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.turns import CONSENT_VERSION, Turns, UserView
from bot.core.types import Button, Person, Reply
from content.library import Library
from storage import repository


class Privacy:
    def __init__(self, library: Library, turns: Turns) -> None:
        self.library = library
        self.turns = turns

    def consent_buttons(self, lang: str) -> list[Button]:
        return [
            Button(self.library.text("button_consent_yes", lang), "consent:yes"),
            Button(self.library.text("button_consent_no", lang), "consent:no"),
        ]

    async def set_consent(self, user: UserView, consent: bool) -> Reply:
        lang = user.language
        if user.id is not None:
            user_id = user.id

            async def save(session: AsyncSession) -> None:
                await repository.set_consent(session, user_id=user_id, consent=consent, version=CONSENT_VERSION)
                await repository.record_event(
                    session, user_id=user_id, kind="consent_given" if consent else "consent_withdrawn",
                    data={"version": CONSENT_VERSION},
                )  # fmt: skip

            await self.turns.write(save)
        key = "consent_thanks" if consent else "consent_declined"
        return Reply(text=self.library.text(key, lang), decision=key)

    async def report(self, person: Person, lang: str) -> Reply:
        """/privacy: everything stored about this person, and the buttons to change it."""
        user = await self.turns.find_user(person)
        if user is None or user.id is None:
            return Reply(text=self.library.text("privacy_nothing", lang), decision="privacy_nothing")
        user_id = user.id

        async def read(session: AsyncSession) -> tuple[dict[str, object], int, int]:
            stored = await repository.get_user_by_id(session, user_id=user_id)
            fields: dict[str, object] = {}
            if stored is not None:
                fields = {
                    "name": stored.display_name, "language": stored.language, "skill": stored.skill,
                    "platforms": ", ".join(stored.platforms or []), "city": stored.city, "timezone": stored.timezone,
                }  # fmt: skip
            done = len(await repository.milestones_done(session, user_id=user_id))
            return fields, done, await repository.count_user_events(session, user_id=user_id)

        fields, done, events = await self.turns.write(read) or ({}, 0, 0)
        lang = user.language
        not_set = self.library.text("profile_not_set", lang)
        lines = [self.library.text("privacy_title", lang)]
        lines += [f"• {name}: {html.escape(str(value)) if value else not_set}" for name, value in fields.items()]
        lines.append(self.library.text("privacy_counts", lang, milestones=done, events=events))
        consent_key = "privacy_consent_yes" if user.research_consent else "privacy_consent_no"
        lines.append(self.library.text(consent_key, lang))
        toggle = (
            Button(self.library.text("button_consent_withdraw", lang), "consent:no")
            if user.research_consent
            else Button(self.library.text("button_consent_yes", lang), "consent:yes")
        )
        buttons = [[toggle], [Button(self.library.text("button_delete", lang), "del:ask")]]
        return Reply(text="\n".join(lines), buttons=buttons, decision="privacy_report")

    def confirm_delete(self, lang: str) -> Reply:
        buttons = [[
            Button(self.library.text("button_delete_yes", lang), "del:yes"),
            Button(self.library.text("button_cancel", lang), "del:no"),
        ]]  # fmt: skip
        return Reply(text=self.library.text("delete_confirm", lang), buttons=buttons, decision="delete_confirm")

    async def delete(self, person: Person, lang: str) -> Reply:
        """Erase the person's data; pressing the button twice (or after a restart) is harmless."""
        user = await self.turns.find_user(person)
        if user is None or user.id is None:
            return Reply(text=self.library.text("privacy_nothing", lang), decision="delete_nothing")
        user_id = user.id

        async def erase(session: AsyncSession) -> int:
            unlinked = await repository.delete_user_data(session, user_id=user_id)
            await repository.record_event(session, user_id=None, kind="data_deleted", data={"events": unlinked})
            return unlinked

        erased = await self.turns.write(erase)
        if erased is None:
            return Reply(text=self.library.text("error", user.language), decision="delete_failed")
        return Reply(text=self.library.text("delete_done", user.language), decision="delete_done")
