"""/profile: skill, platforms, city, language, time zone — asked one at a time, every step skippable.

The step a user is on is stored in SQL (`user.profile_step`), so a restart in the middle loses nothing.
"""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.turns import Turns, UserView
from bot.core.types import Button, Reply
from content.library import Library
from nlu.entities import extract_entities
from storage import repository

STEPS = ("skill", "platforms", "city", "language", "timezone")
MAX_FIELD_CHARS = {"skill": 200, "city": 100}
COMMON_TIMEZONES = ("Asia/Karachi", "Asia/Dubai", "Asia/Riyadh", "Europe/London")


class Profile:
    def __init__(self, library: Library, turns: Turns, default_timezone: str = "Asia/Karachi") -> None:
        self.library = library
        self.turns = turns
        self.default_timezone = default_timezone

    async def show(self, user: UserView) -> Reply:
        """The stored profile with an Edit button; a user without one starts the questions."""
        values = await self._values(user)
        if not any(values.get(field) for field in ("skill", "platforms", "city")):
            return await self.begin(user)
        lang = user.language
        lines = [self.library.text("profile_title", lang)]
        for field in STEPS:
            lines.append(
                f"• {self.library.text('profile_field_' + field, lang)}: {self._display(values.get(field), lang)}"
            )
        buttons = [[Button(self.library.text("button_edit", lang), "pf:edit")]]
        return Reply(text="\n".join(lines), buttons=buttons, decision="profile_show")

    async def begin(self, user: UserView) -> Reply:
        await self._set_step(user, STEPS[0])
        return self.ask(STEPS[0], user.language, intro=self.library.text("profile_intro", user.language))

    async def cancel(self, user: UserView) -> Reply:
        await self._set_step(user, None)
        return Reply(text=self.library.text("profile_cancelled", user.language), decision="profile_cancelled")

    def ask(self, step: str, lang: str, *, intro: str = "") -> Reply:
        text = (intro + "\n\n" if intro else "") + self.library.text(f"profile_ask_{step}", lang)
        buttons: list[list[Button]] = []
        if step == "language":
            buttons.append([Button("English", "pf:set:language:en"), Button("اردو", "pf:set:language:ur")])
        if step == "timezone":
            buttons.extend([[Button(zone, f"pf:set:timezone:{zone}")] for zone in COMMON_TIMEZONES[:2]])
        buttons.append([Button(self.library.text("button_skip", lang), "pf:skip")])
        return Reply(text=text, buttons=buttons, decision=f"profile_ask_{step}")

    async def answer(self, user: UserView, text: str) -> Reply:
        """Free text while a profile question is open: validate, store, ask the next one."""
        step = user.profile_step
        if step not in STEPS:
            return await self.cancel(user)
        lang = user.language
        value: object
        if step == "platforms":
            value = extract_entities(text).get("platform") or [text.strip()[:50]]
        elif step == "timezone":
            try:
                value = ZoneInfo(text.strip()).key
            except (ZoneInfoNotFoundError, ValueError):
                return self.ask(step, lang, intro=self.library.text("profile_bad_timezone", lang))
        elif step == "language":
            value = "ur" if any(word in text.casefold() for word in ("urdu", "اردو")) else "en"
        else:
            value = text.strip()[: MAX_FIELD_CHARS[step]]
        return await self.store(user, step, value)

    async def set_field(self, user: UserView, field: str, value: object) -> None:
        """Save one profile field and record that it changed (the value itself stays in `user`)."""
        if user.id is None or field not in STEPS:
            return
        user_id = user.id

        async def save(session: AsyncSession) -> None:
            await repository.set_profile_field(session, user_id=user_id, field=field, value=value)
            await repository.record_event(session, user_id=user_id, kind="profile_set", data={"field": field})

        await self.turns.write(save)

    async def store(self, user: UserView, step: str, value: object) -> Reply:
        """Save the answer to the open question and ask the next one."""
        await self.set_field(user, step, value)
        lang = value if step == "language" and value in ("en", "ur") else user.language
        return await self._advance(user, step, str(lang))

    async def skip(self, user: UserView) -> Reply:
        step = user.profile_step or STEPS[0]
        await self.turns.event(user, "profile_skipped", data={"field": step})
        return await self._advance(user, step, user.language)

    async def _advance(self, user: UserView, step: str, lang: str) -> Reply:
        position = STEPS.index(step) if step in STEPS else len(STEPS) - 1
        if position + 1 < len(STEPS):
            next_step = STEPS[position + 1]
            await self._set_step(user, next_step)
            return self.ask(next_step, lang, intro=self.library.text("profile_saved", lang))
        await self._set_step(user, None)
        reply = await self.show(UserView(user.id, lang, True, user.display_name, user.research_consent, None))
        reply.text = self.library.text("profile_done", lang) + "\n\n" + reply.text
        reply.decision = "profile_done"
        return reply

    async def _set_step(self, user: UserView, step: str | None) -> None:
        if user.id is not None:
            user_id = user.id
            await self.turns.write(lambda s: repository.set_profile_step(s, user_id=user_id, step=step))

    async def _values(self, user: UserView) -> dict[str, object]:
        if user.id is None:
            return {}
        user_id = user.id

        async def read(session: AsyncSession) -> dict[str, object]:
            stored = await repository.get_user_by_id(session, user_id=user_id)
            if stored is None:
                return {}
            return {field: getattr(stored, field) for field in STEPS}

        return await self.turns.write(read) or {}

    def _display(self, value: object, lang: str) -> str:
        if not value:
            return self.library.text("profile_not_set", lang)
        if isinstance(value, list):
            return html.escape(", ".join(str(v) for v in value))
        if value in ("en", "ur"):
            return "English" if value == "en" else "اردو"
        return html.escape(str(value))
