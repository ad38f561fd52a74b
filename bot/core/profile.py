"""/profile: skill, platforms, city, language, time zone — asked one at a time, every step skippable.

The open question is stored in SQL (`user.profile_step`, with the time it was asked), so a restart in the middle
loses nothing, and an answer is applied only to the question it answers: of several quick messages, the first one
after the question is the answer and the others are not taken for the following questions.
"""

from __future__ import annotations

import datetime as dt
import html
from zoneinfo import ZoneInfo

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.routes import Routes
from bot.core.text import clean_text
from bot.core.types import Button, Reply, UserView
from content.library import Library
from nlu.entities import extract_entities
from storage import users as stored_users
from storage.codebook import Decision, EventKind
from storage.db import Database
from storage.events import NewEvent, add_event

STEPS = stored_users.PROFILE_FIELDS  # skill, platforms, city, language, timezone: the order they are asked in
MAX_FIELD_CHARS = {"skill": 200, "city": 100, "platform": 50}
COMMON_TIMEZONES = ("Asia/Karachi", "Asia/Dubai", "Asia/Riyadh", "Europe/London")
# What people type for their time zone: a city is friendlier than an IANA name.
CITY_TIMEZONES = {
    **{city: "Asia/Karachi" for city in ("pakistan", "karachi", "lahore", "islamabad", "rawalpindi", "peshawar",
                                          "quetta", "multan", "faisalabad", "hyderabad", "pkt", "کراچی", "لاہور",
                                          "اسلام آباد", "پاکستان")},
    "dubai": "Asia/Dubai", "uae": "Asia/Dubai", "riyadh": "Asia/Riyadh", "saudi": "Asia/Riyadh",
    "jeddah": "Asia/Riyadh", "london": "Europe/London", "uk": "Europe/London",
}  # fmt: skip


class InvalidAnswer(ValueError):
    """A profile value that cannot be stored (unknown time zone, empty text...)."""


def validate(field: str, raw: object) -> object:
    """The one validator for every path (typed answers, buttons, anything else): the value to store, or raises."""
    if field == "language":
        text = clean_text(str(raw)).casefold()
        if text in ("en", "ur"):
            return text
        if any(word in text for word in ("urdu", "اردو")):
            return "ur"
        if any(word in text for word in ("english", "angrezi", "انگریزی")):
            return "en"
        raise InvalidAnswer("language")
    if field == "timezone":
        text = " ".join(clean_text(str(raw)).split())
        zones = buttons.known_timezones()
        if text in zones:
            return ZoneInfo(text).key
        folded = text.casefold()
        if folded in CITY_TIMEZONES:
            return CITY_TIMEZONES[folded]
        by_lower = {zone.casefold(): zone for zone in zones}
        by_city = {zone.rsplit("/", 1)[-1].casefold().replace("_", " "): zone for zone in zones if "/" in zone}
        match = by_lower.get(folded) or by_city.get(folded)
        if match is None:
            raise InvalidAnswer("timezone")
        return match
    if field == "platforms":
        items = raw if isinstance(raw, list) else [raw]
        text = ", ".join(clean_text(str(item)) for item in items)
        known = extract_entities(text).get("platform")
        if known:
            return known
        cleaned = " ".join(text.split())[: MAX_FIELD_CHARS["platform"]]
        if not cleaned:
            raise InvalidAnswer("platforms")
        return [cleaned]
    if field in ("skill", "city"):
        cleaned = " ".join(clean_text(str(raw)).split())[: MAX_FIELD_CHARS[field]]
        if not any(ch.isalnum() for ch in cleaned):
            raise InvalidAnswer(field)
        return cleaned
    raise InvalidAnswer(field)


class Profile:
    def __init__(self, library: Library, db: Database, clock: Clock, *, default_timezone: str = "Asia/Karachi"):
        self.library = library
        self.db = db
        self.clock = clock
        self.default_timezone = default_timezone

    def routes(self, routes: Routes) -> None:
        routes.command("profile", lambda user, _: self.show(user), changes_state=False)
        routes.command("cancel", lambda user, _: self.cancel(user), changes_state=True)
        routes.button(buttons.EditProfile, lambda user, _, __: self.begin(user), changes_state=True)
        routes.button(buttons.SkipProfileStep, self._press_skip, changes_state=True)
        routes.button(buttons.SetProfileValue, self._press_value, changes_state=True)
        routes.intercept(self._typed_answer, logged_as=EventKind.PROFILE_ANSWER)

    async def _typed_answer(self, user: UserView, text: str, received_at: dt.datetime) -> Reply | None:
        """While a question is open, free text is its answer (not a question for the NLU)."""
        if not user.profile_step:
            return None
        return await self.answer(user, text, step=user.profile_step, received_at=received_at)

    async def _press_skip(self, user: UserView, action: buttons.SkipProfileStep, received_at: dt.datetime) -> Reply:
        return await self.skip(user, action.step, received_at=received_at)

    async def _press_value(self, user: UserView, action: buttons.SetProfileValue, received_at: dt.datetime) -> Reply:
        if action.field == "language" and user.profile_step != "language":  # /start's and /language's buttons
            await self.set_language(user, action.value)
            return Reply(
                text=self.library.text("language_set", action.value), intent="language", decision=Decision.LANGUAGE_SET
            )
        return await self.answer(user, action.value, step=action.field, received_at=received_at)

    async def show(self, user: UserView) -> Reply:
        """The stored profile with an Edit button; a user without one starts the questions."""
        values = await self._values(user)
        if not any(values.get(field) for field in ("skill", "platforms", "city")):
            return await self.begin(user)
        lang = user.language
        lines = [self.library.text("profile_title", lang)]
        for field in STEPS:
            label = self.library.text("profile_field_" + field, lang)
            lines.append(f"• {label}: {self._display(values.get(field), lang)}")
        rows = [[Button.of(self.library.text("button_edit", lang), buttons.EditProfile())]]
        return Reply(text="\n".join(lines), buttons=rows, decision=Decision.PROFILE_SHOW)

    async def begin(self, user: UserView) -> Reply:
        await self._set_step(user, STEPS[0])
        return self.ask(STEPS[0], user.language, intro=self.library.text("profile_intro", user.language))

    async def cancel(self, user: UserView) -> Reply:
        await self._set_step(user, None)
        return Reply(text=self.library.text("profile_cancelled", user.language), decision=Decision.PROFILE_CANCELLED)

    def ask(self, step: str, lang: str, *, intro: str = "") -> Reply:
        text = (intro + "\n\n" if intro else "") + self.library.text(f"profile_ask_{step}", lang)
        rows: list[list[Button]] = []
        if step == "language":
            rows.append(
                [
                    Button.of(self.library.text("button_english", lang), buttons.SetProfileValue("language", "en")),
                    Button.of(self.library.text("button_urdu", lang), buttons.SetProfileValue("language", "ur")),
                ]
            )
        if step == "timezone":
            zones = dict.fromkeys((self.default_timezone, *COMMON_TIMEZONES))
            rows.extend([Button.of(zone, buttons.SetProfileValue("timezone", zone))] for zone in list(zones)[:2])
        rows.append([Button.of(self.library.text("button_skip", lang), buttons.SkipProfileStep(step))])  # type: ignore[arg-type]
        return Reply(text=text, buttons=rows, decision=Decision.PROFILE_ASK)

    async def answer(self, user: UserView, raw: object, *, step: str | None, received_at: dt.datetime) -> Reply:
        """An answer to the open question `step` (typed, or a button): validate, store, ask the next one.

        Raises StorageError when the answer could not be saved, so the user hears that, not "Saved".
        """
        lang = user.language
        if user.id is None or user.profile_step is None or step != user.profile_step or step not in STEPS:
            return self._stale(user)
        try:
            value = validate(step, raw)
        except InvalidAnswer:
            key = "profile_bad_timezone" if step == "timezone" else "profile_bad_value"
            reply = self.ask(step, lang, intro=self.library.text(key, lang))
            reply.decision = Decision.PROFILE_INVALID
            return reply
        return await self._advance(user, step, value=value, received_at=received_at, kind=EventKind.PROFILE_SET)

    async def skip(self, user: UserView, step: str | None, *, received_at: dt.datetime) -> Reply:
        step = step or user.profile_step
        if user.id is None or step is None or step != user.profile_step:
            return self._stale(user)
        return await self._advance(user, step, value=None, received_at=received_at, kind=EventKind.PROFILE_SKIPPED)

    async def set_language(self, user: UserView, language: str) -> None:
        """The language buttons outside the questions (/start, /language): validated like any other answer."""
        if user.id is None:
            return
        value = validate("language", language)
        async with self.db.write() as session:
            if await stored_users.set_profile_field(session, user_id=user.id, field="language", value=value):
                await add_event(session, self._event(user.id, EventKind.PROFILE_SET, "language"))

    async def _advance(
        self, user: UserView, step: str, *, value: object, received_at: dt.datetime, kind: EventKind
    ) -> Reply:
        assert user.id is not None
        position = STEPS.index(step)
        next_step = STEPS[position + 1] if position + 1 < len(STEPS) else None
        async with self.db.write() as session:
            taken = await stored_users.answer_profile_step(
                session,
                user_id=user.id,
                step=step,
                value=value,
                store=kind is EventKind.PROFILE_SET,
                next_step=next_step,
                now=self.clock.now(),
                received_at=received_at,
            )
            if taken:
                await add_event(session, self._event(user.id, kind, step))
        if not taken:
            return self._stale(user)
        lang = str(value) if step == "language" and kind is EventKind.PROFILE_SET else user.language
        if next_step is not None:
            return self.ask(next_step, lang, intro=self.library.text("profile_saved", lang))
        reply = await self.show(UserView(user.id, lang, True, user.display_name, user.research_consent))
        reply.text = self.library.text("profile_done", lang) + "\n\n" + reply.text
        reply.decision = Decision.PROFILE_DONE
        return reply

    def _stale(self, user: UserView) -> Reply:
        """A message or button that does not answer the open question (it came before it, or is an old button)."""
        lang = user.language
        step = user.profile_step
        if step in STEPS:
            reply = self.ask(step, lang, intro=self.library.text("profile_stale", lang))
        else:
            reply = Reply(text=self.library.text("profile_stale_closed", lang))
        reply.decision = Decision.PROFILE_STALE
        return reply

    def _event(self, user_id: int, kind: EventKind, field: str) -> NewEvent:
        return NewEvent(kind=kind, at=self.clock.now(), user_id=user_id, data={"field": field})

    async def _set_step(self, user: UserView, step: str | None) -> None:
        if user.id is not None:
            async with self.db.write() as session:
                await stored_users.set_profile_step(session, user_id=user.id, step=step, now=self.clock.now())

    async def _values(self, user: UserView) -> dict[str, object]:
        if user.id is None:
            return {}
        async with self.db.read() as session:
            stored = await stored_users.get_user_by_id(session, user_id=user.id)
            return {field: getattr(stored, field) for field in STEPS} if stored else {}

    def _display(self, value: object, lang: str) -> str:
        if not value:
            return self.library.text("profile_not_set", lang)
        if isinstance(value, list):
            return html.escape(", ".join(str(v) for v in value))
        if value in ("en", "ur"):
            return self.library.text("button_english" if value == "en" else "button_urdu", lang)
        return html.escape(str(value))
