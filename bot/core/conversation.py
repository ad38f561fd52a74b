"""The conversation, free of Telegram: understand → decide → reply, and record every turn in the event log.

Each public method is one turn for one person. Turns of the same person run one at a time (in this process; the
database guards across processes), a state change either commits or the user is told it did not, and the turn's
message and reply events go to the journal, which never delays the reply.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from bot.core import buttons
from bot.core.answers import Answers, Thresholds
from bot.core.clock import Clock
from bot.core.commands import BY_NAME
from bot.core.journal import Journal
from bot.core.privacy import Privacy
from bot.core.profile import Profile
from bot.core.progress import REPORT_INTENT, Progress
from bot.core.routes import Feature, Route, Routes
from bot.core.text import clean_text, is_mostly_urdu_script
from bot.core.types import Button, InboundKind, Person, Reply, UserView
from bot.core.users import Users, guest
from content.library import Library
from nlu.pipeline import Understander
from nlu.understanding import Understanding
from storage.codebook import Decision, EventKind
from storage.db import StorageError
from storage.events import NewEvent

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_NLU_CHARS = 1000
MAX_STORED_CHARS = 4096
NOT_YET = {"request_human", "find_peers"}
# Intents about the sender themselves: never answered in a group.
PERSONAL_INTENTS = {"report_progress", "ask_progress", "stop_nudges", "resume_nudges", "request_human", "find_peers"}
PRIVATE_KINDS = {EventKind.PEER_MESSAGE}
_START_PAYLOAD = re.compile(r"[A-Za-z0-9_-]{1,64}")


def routed_to_feature(understanding: Understanding, thresholds: Thresholds) -> bool:
    """Whether a personal intent goes to its feature (Progress, Nudges, Peers, Handoff) rather than the answer policy.

    A report always does (Progress declines one that names no rung). The others only at `personal_confidence` or
    above: "mera mood off hai" read as stop_nudges at 0.6 must not stop every nudge, it is answered like an unsure
    question. The lexical search alone has no intent confidence to check.
    """
    if understanding.intent not in PERSONAL_INTENTS:
        return False
    if understanding.intent == REPORT_INTENT or understanding.source != "rasa":
        return True
    return understanding.confidence >= thresholds.personal_confidence


class Conversation:
    """One instance per process, built once by the runtime with its collaborators."""

    def __init__(
        self,
        *,
        library: Library,
        users: Users,
        journal: Journal,
        clock: Clock,
        understander: Understander,
        answers: Answers,
        progress: Progress,
        profile: Profile,
        privacy: Privacy,
        features: Sequence[Feature] = (),
    ) -> None:
        self.library = library
        self.users = users
        self.journal = journal
        self.clock = clock
        self.understander = understander
        self.answers = answers
        self.progress = progress
        self.profile = profile
        self.privacy = privacy
        self.routes = Routes()
        everything: list[Feature] = [progress, profile, *features]
        for feature in everything:
            feature.routes(self.routes)
        self.bot_username: str | None = None  # set by the Telegram adapter once it knows it (deep links)
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    # ---- turns ------------------------------------------------------------------------------------------------

    async def command(self, person: Person, name: str, argument: str = "") -> Reply:
        """A slash command from a private chat (`start`, `help`, `language`, `progress`, ...)."""
        started = self.clock.monotonic()
        async with self._one_at_a_time(person):
            if name in ("privacy", "delete_me"):  # never create anyone
                user, reply = await self._find_then(person, lambda found: self._privacy_command(person, name, found))
            else:
                user, reply = await self._load_then(person, lambda loaded: self._command(loaded, name, argument))
            self._log(user, started, kind_in=EventKind.COMMAND, text_in=f"/{name}", reply=reply)
            return reply

    async def press(self, person: Person, data: str) -> Reply:
        """An inline button. Its data is decoded and validated first: forged or unknown data changes nothing."""
        started = self.clock.monotonic()
        received_at = self.clock.now()
        action = buttons.decode(data)
        async with self._one_at_a_time(person):
            if action is None or isinstance(action, buttons.Erase):
                user, reply = await self._find_then(person, lambda found: self._press_erase(person, action, found))
            else:
                user, reply = await self._load_then(person, lambda loaded: self._press(loaded, action, received_at))
            kind = EventKind.BUTTON if action is not None else EventKind.BUTTON_REFUSED
            self._log(user, started, kind_in=kind, text_in=data if action is not None else None, reply=reply)
            return reply

    async def handle_text(self, person: Person, text: str) -> Reply:
        """A free-text message: the main path (or the answer to an open /profile question)."""
        started = self.clock.monotonic()
        received_at = self.clock.now()
        text = clean_text(text)
        stripped = text.strip()
        async with self._one_at_a_time(person):
            try:
                user = await self.users.load(person)
            except StorageError:
                user = guest(person)  # answer anyway; nothing about this person can be read or saved now
            understanding: Understanding | None = None
            if not stripped:
                reply = Reply(text=self.library.text("empty_message", user.language), decision=Decision.EMPTY)
            else:
                for route in self.routes.interceptors:
                    taken = await self._guarded(user, route.handler(user, stripped, received_at), Decision.SAVE_FAILED)
                    if taken is not None:
                        self._log(
                            user, started, kind_in=route.logged_as or EventKind.MESSAGE, text_in=text, reply=taken
                        )
                        return taken
                understanding = await self.understander.understand(stripped[:MAX_NLU_CHARS])
                reply = await self._reply_to_question(user, stripped, understanding)
            if len(stripped) > MAX_NLU_CHARS:
                reply.text = f"<i>{self.library.text('too_long', user.language)}</i>\n\n{reply.text}"
            if user.language == "en" and is_mostly_urdu_script(stripped):
                reply.text += f"\n\n{self.library.text('offer_urdu', 'en')}"
                reply.buttons.append([Button.of(self.library.text("button_urdu", "en"), buttons.ChooseLanguage("ur"))])
            self._log(user, started, kind_in=EventKind.MESSAGE, text_in=text, reply=reply, understanding=understanding)
            if reply.decision is Decision.DONT_KNOW and understanding is not None:
                self._record(
                    user,
                    EventKind.UNANSWERED,
                    text=stripped[:MAX_STORED_CHARS] if user.research_consent else None,
                    intent=understanding.intent,
                    confidence=understanding.confidence,
                    nlu_source=understanding.source,
                )
            return reply

    async def handle_non_text(self, person: Person, kind: InboundKind) -> Reply:
        """Stickers, voice notes, photos: a kind text reply, and the event is kept."""
        started = self.clock.monotonic()
        async with self._one_at_a_time(person):
            try:
                user = await self.users.load(person)
            except StorageError:
                user = guest(person)
            reply: Reply | None = None
            for handler in self.routes.non_text:
                reply = await self._guarded(user, handler(user, kind), Decision.STORAGE_UNAVAILABLE)
                if reply is not None:
                    break
            if reply is None:
                reply = Reply(text=self.library.text("non_text", user.language), decision=Decision.NON_TEXT)
            self._log(user, started, kind_in=EventKind(f"message_{kind}"), text_in=None, reply=reply)
            return reply

    async def blocked_changed(self, person: Person, *, blocked: bool) -> None:
        """Telegram says this person blocked (or unblocked) the bot: nothing proactive reaches a blocked user."""
        try:
            user = await self.users.find(person, inbound=False)
            if user is not None and user.id is not None:
                await self.users.set_blocked(user.id, blocked=blocked)
        except StorageError:
            log.warning("Could not record that a user %s the bot", "blocked" if blocked else "unblocked")

    async def delivery_failed(self, person: Person, reason: str) -> None:
        """A reply Telegram did not take: recorded, so the log never claims an answer the user did not get."""
        try:
            user = await self.users.find(person, inbound=False)
        except StorageError:
            user = None
        self._record(user, EventKind.SEND_FAILED, data={"reason": reason[:200]})

    # ---- groups: never personal -------------------------------------------------------------------------------

    def private_only(self, person: Person, name: str) -> Reply:
        """A personal command sent in a group: nothing about the sender is shown there; a link opens a private chat."""
        lang = person.hinted_language
        rows = [[Button.link(self.library.text("button_private_chat", lang), self.deep_link(name))]]
        return Reply(text=self.library.text("private_only", lang), buttons=rows, decision=Decision.PRIVATE_ONLY)

    def group_help(self, person: Person) -> Reply:
        lang = person.hinted_language
        rows = [[Button.link(self.library.text("button_private_chat", lang), self.deep_link("help"))]]
        return Reply(text=self.library.text("group_help", lang), buttons=rows, decision=Decision.GROUP_HELP)

    async def group_question(self, person: Person, text: str) -> Reply:
        """A question addressed to the bot in a group: an article if one clearly fits, else an invitation to talk
        in private. Nothing is read or stored about the sender, and the reply carries nothing personal."""
        started = self.clock.monotonic()
        stripped = clean_text(text).strip()
        lang = "ur" if is_mostly_urdu_script(stripped) else person.hinted_language
        viewer = UserView(None, lang)
        understanding = await self.understander.understand(stripped[:MAX_NLU_CHARS]) if stripped else None
        reply: Reply | None = None
        if understanding is not None and understanding.intent not in PERSONAL_INTENTS:
            decided = self.answers.decide(understanding, viewer, personal=False)
            answered = (Decision.ANSWER, Decision.ANSWER_WITH_ALTERNATIVES)
            if decided.decision in (*answered, Decision.GREET, Decision.THANKS, Decision.GOODBYE):
                reply = decided
                reply.buttons = []
        if reply is None:
            reply = self.private_only(person, "help")
        else:
            reply.buttons.append([Button.link(self.library.text("button_private_chat", lang), self.deep_link("help"))])
        reply.latency_ms = (self.clock.monotonic() - started) * 1000
        self.journal.record(
            NewEvent(
                kind=EventKind.GROUP_QUESTION,
                at=self.clock.now(),
                intent=reply.intent or (understanding.intent if understanding else None),
                confidence=understanding.confidence if understanding else None,
                article_id=reply.article_id,
                nlu_source=understanding.source if understanding else None,
                latency_ms=round(reply.latency_ms, 3),
                data={"decision": str(reply.decision), "chars": len(stripped)},
            )
        )
        return reply

    def deep_link(self, payload: str) -> str:
        return f"https://t.me/{self.bot_username or 'rahnuma_bot'}?start={payload}"

    # ---- what each turn does ----------------------------------------------------------------------------------

    async def _command(self, user: UserView, name: str, argument: str) -> Reply:
        lang = user.language
        if name == "start":
            payload = argument.strip()
            if _START_PAYLOAD.fullmatch(payload) and payload in BY_NAME and payload != "start" and user.language_chosen:
                return await self._command(user, payload, "")
            notes = []
            for prefix, handler in self.routes.start_payloads.items():
                if _START_PAYLOAD.fullmatch(payload) and payload.startswith(prefix):
                    note = await handler(user, payload[len(prefix) :])
                    if note:
                        notes.append(note)
            name_html = html.escape(user.display_name or self.library.text("friend", lang))
            text = (
                f"{self.library.text('welcome', lang, name=name_html)}\n\n{self.library.text('privacy_notice', lang)}"
            )
            if notes:
                text = "\n\n".join([*notes, text])
            rows = [self._language_buttons()]
            if not user.research_consent:
                rows.append(self.privacy.consent_buttons(lang))
            return Reply(text=text, buttons=rows, intent="start", decision=Decision.WELCOME)
        if name == "help":
            return Reply(text=self.library.text("help", lang), intent="help", decision=Decision.HELP)
        if name == "language":
            rows = [self._language_buttons()]
            return Reply(
                text=self.library.text("choose_language", lang), buttons=rows, decision=Decision.CHOOSE_LANGUAGE
            )
        route = self.routes.commands.get(name)
        if route is not None:
            return await self._routed(user, route, route.handler(user, argument)) or self._button_expired(lang)
        return Reply(text=self.library.text("help", lang), intent="help", decision=Decision.UNKNOWN_COMMAND)

    async def _privacy_command(self, person: Person, name: str, user: UserView | None) -> Reply:
        lang = user.language if user else person.hinted_language
        if name == "delete_me":
            return self.privacy.confirm_delete(lang)
        return await self._guarded(user, self.privacy.report(user, lang), Decision.STORAGE_UNAVAILABLE)

    async def _press(self, user: UserView, action: buttons.ButtonAction, received_at: dt.datetime) -> Reply:
        lang = user.language
        match action:
            case buttons.ChooseLanguage(language=language):
                return await self._guarded(user, self._set_language(user, language), Decision.SAVE_FAILED)
            case buttons.Feedback(verdict=verdict, article_id=article_id) if article_id in self.library.articles:
                self._record(user, EventKind.FEEDBACK, article_id=article_id, data={"helpful": verdict == "up"})
                key = "feedback_thanks" if verdict == "up" else "feedback_sorry"
                reply = Reply(text=self.library.text(key, lang), article_id=article_id, decision=Decision.FEEDBACK)
                reply.toast_only = True
                return reply
            case buttons.OpenArticle(article_id=article_id) if article_id in self.library.articles:
                return self.answers.answer(self.library.articles[article_id], lang, decision=Decision.PICKED)
            case buttons.Consent(answer=answer):
                return await self._guarded(user, self.privacy.set_consent(user, answer == "yes"), Decision.SAVE_FAILED)
        route = self.routes.buttons.get(type(action))
        if route is None:
            return self._button_expired(lang)
        return await self._routed(user, route, route.handler(user, action, received_at)) or self._button_expired(lang)

    async def _press_erase(self, person: Person, action: buttons.ButtonAction | None, user: UserView | None) -> Reply:
        lang = user.language if user else person.hinted_language
        if not isinstance(action, buttons.Erase):
            return self._button_expired(lang)
        if action.step == "ask":
            return self.privacy.confirm_delete(lang)
        if action.step == "yes":
            return await self._guarded(user, self.privacy.delete(user, lang), Decision.SAVE_FAILED)
        return Reply(text=self.library.text("delete_cancelled", lang), decision=Decision.DELETE_CANCELLED)

    async def _set_language(self, user: UserView, language: str) -> Reply:
        await self.profile.set_language(user, language)
        return Reply(
            text=self.library.text("language_set", language), intent="language", decision=Decision.LANGUAGE_SET
        )

    async def _reply_to_question(self, user: UserView, text: str, understanding: Understanding) -> Reply:
        intent = understanding.intent
        to_feature = routed_to_feature(understanding, self.answers.thresholds)
        route = self.routes.intents.get(intent) if to_feature else None
        reply = await self._routed(user, route, route.handler(user, text, understanding)) if route else None
        if reply is None and intent in NOT_YET and to_feature:
            reply = Reply(text=self.library.text("not_yet", user.language), decision=Decision.NOT_YET)
        if reply is None:
            reply = self.answers.decide(understanding, user)
            if reply.decision in (Decision.ANSWER, Decision.ANSWER_WITH_ALTERNATIVES):
                offer = self.progress.offer_to_mark(text, user.language)  # the words also told us of a rung
                if offer:
                    reply.buttons.insert(0, offer)
            for fallback in self.routes.unanswered if reply.decision is Decision.DONT_KNOW else ():
                taken = await self._routed(user, fallback, fallback.handler(user, text, understanding))
                if taken is not None:
                    reply = taken
                    break
        reply.intent = reply.intent or intent
        reply.confidence = understanding.confidence
        reply.nlu_source = understanding.source
        return reply

    # ---- plumbing ---------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def _one_at_a_time(self, person: Person) -> AsyncIterator[None]:
        key = (person.channel, person.external_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            yield

    async def _load_then(self, person: Person, body: Any) -> tuple[UserView | None, Reply]:
        try:
            user = await self.users.load(person)
        except StorageError:
            return None, self._unavailable(person.hinted_language)
        return user, await body(user)

    async def _find_then(self, person: Person, body: Any) -> tuple[UserView | None, Reply]:
        try:
            user = await self.users.find(person)
        except StorageError:
            return None, self._unavailable(person.hinted_language)
        return user, await body(user)

    async def _routed(self, user: UserView, route: Route, step: Awaitable[Reply | None]) -> Reply | None:
        failed = Decision.SAVE_FAILED if route.changes_state else Decision.STORAGE_UNAVAILABLE
        return await self._guarded(user, step, failed)

    async def _guarded(self, user: UserView | None, step: Awaitable[T], failed: Decision) -> T | Reply:
        """Run a step that reads or changes stored state; if the database fails, say so instead of pretending."""
        try:
            return await step
        except StorageError:
            lang = user.language if user else "en"
            if failed is Decision.SAVE_FAILED:
                return Reply(text=self.library.text("save_failed", lang), decision=Decision.SAVE_FAILED)
            return self._unavailable(lang)

    def _unavailable(self, lang: str) -> Reply:
        return Reply(text=self.library.text("storage_unavailable", lang), decision=Decision.STORAGE_UNAVAILABLE)

    def _button_expired(self, lang: str) -> Reply:
        reply = Reply(text=self.library.text("button_expired", lang), decision=Decision.BUTTON_UNKNOWN)
        reply.toast_only = True
        return reply

    def _language_buttons(self) -> list[Button]:
        return [
            Button.of(self.library.text("button_english", "en"), buttons.ChooseLanguage("en")),
            Button.of(self.library.text("button_urdu", "en"), buttons.ChooseLanguage("ur")),
        ]

    def _record(self, user: UserView | None, kind: EventKind, **fields: Any) -> None:
        self.journal.record(NewEvent(kind=kind, at=self.clock.now(), user_id=user.id if user else None, **fields))

    def _log(
        self,
        user: UserView | None,
        started: float,
        *,
        kind_in: EventKind,
        text_in: str | None,
        reply: Reply,
        understanding: Understanding | None = None,
    ) -> None:
        """The turn's inbound event and its reply event; the words only with research consent (docs/PRIVACY.md)."""
        reply.latency_ms = (self.clock.monotonic() - started) * 1000
        if user is None or user.id is None:
            return
        # A message to a buddy is theirs alone: its words are never kept, even with research consent.
        keep_text = user.research_consent and kind_in not in PRIVATE_KINDS
        meta_in: dict[str, Any] = {}
        if understanding is not None:
            meta_in.update(
                entities=understanding.entities,
                parse_ms=round(understanding.parse_ms, 3),
                candidates=[[c.article_id, round(c.confidence, 4)] for c in understanding.articles[:3]],
                nlu_intent=understanding.intent,
            )
            if understanding.degraded_reason:
                meta_in["fallback_reason"] = understanding.degraded_reason
        if text_in is not None and not keep_text:
            meta_in["chars"] = len(text_in)
        now = self.clock.now()
        shared: dict[str, Any] = {
            "user_id": user.id,
            "intent": reply.intent,
            "confidence": reply.confidence,
            "article_id": reply.article_id,
            "nlu_source": reply.nlu_source,
        }
        self.journal.record(
            NewEvent(
                kind=kind_in,
                at=now,
                text=text_in[:MAX_STORED_CHARS] if text_in is not None and keep_text else None,
                data=meta_in or None,
                **shared,
            ),
            NewEvent(
                kind=EventKind.REPLY,
                at=now,
                text=reply.text if keep_text else None,
                latency_ms=round(reply.latency_ms, 3),
                data={"decision": str(reply.decision)},
                **shared,
            ),
        )
