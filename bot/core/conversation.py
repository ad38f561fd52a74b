"""The conversation, free of Telegram: understand → decide → reply, and record every turn in the event log."""

from __future__ import annotations

import html
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.types import Button, InboundKind, Person, Reply
from content.library import Article, Library, to_telegram_html
from nlu.client import RETRIEVAL_INTENT, RasaClient, RasaUnavailable
from nlu.fallback import LexicalSearch
from nlu.understanding import ArticleCandidate, Understanding
from storage import repository

log = logging.getLogger(__name__)

MAX_NLU_CHARS = 1000
MAX_STORED_CHARS = 4096
ANSWER_MIN_CONFIDENCE = 0.45
SUGGEST_MIN_CONFIDENCE = 0.08
PLATFORM_STEER_RATIO = 0.25
SMALL_TALK = {
    "greet": "greet",
    "goodbye": "goodbye",
    "thanks": "thanks",
    "help": "help",
    "out_of_scope": "out_of_scope",
}
NOT_YET = {"report_progress", "ask_progress", "stop_nudges", "resume_nudges", "request_human", "find_peers"}
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\uFB50-\uFDFF\uFE70-\uFEFF]")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class UserView:
    """What the core needs to know about the user for one turn; id is None when the database is unreachable."""

    id: int | None
    language: str
    language_chosen: bool
    display_name: str | None


def is_mostly_urdu_script(text: str) -> bool:
    letters = _LETTER.findall(text)
    return bool(letters) and sum(1 for ch in letters if _ARABIC_SCRIPT.match(ch)) / len(letters) > 0.5


class Conversation:
    """One instance per process; every method is one turn for one person and is safe to run concurrently."""

    def __init__(
        self,
        *,
        library: Library,
        sessions: async_sessionmaker[AsyncSession],
        rasa: RasaClient | None,
        lexical: LexicalSearch | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.library = library
        self.sessions = sessions
        self.rasa = rasa
        self.lexical = lexical or LexicalSearch(library)
        self._clock = clock

    # ---- turns -------------------------------------------------------------------------------------------

    async def start(self, person: Person) -> Reply:
        """Welcome, privacy notice and the language choice."""
        started = self._clock()
        user, _ = await self._load_user(person)
        lang = user.language
        name = html.escape(person.display_name or "friend")
        text = f"{self.library.text('welcome', lang, name=name)}\n\n{self.library.text('privacy_notice', lang)}"
        reply = Reply(text=text, buttons=[self._language_buttons()], intent="start", decision="welcome")
        await self._record(user, started, "/start", reply, kind_in="command")
        return reply

    async def help(self, person: Person) -> Reply:
        started = self._clock()
        user, _ = await self._load_user(person)
        reply = Reply(text=self.library.text("help", user.language), intent="help", decision="help")
        await self._record(user, started, "/help", reply, kind_in="command")
        return reply

    async def ask_language(self, person: Person) -> Reply:
        started = self._clock()
        user, _ = await self._load_user(person)
        reply = Reply(
            text=self.library.text("choose_language", user.language),
            buttons=[self._language_buttons()],
            intent="language",
            decision="choose_language",
        )
        await self._record(user, started, "/language", reply, kind_in="command")
        return reply

    async def set_language(self, person: Person, language: str) -> Reply:
        """Store the chosen language; later replies follow it."""
        started = self._clock()
        language = language if language in ("en", "ur") else "en"
        user, _ = await self._load_user(person)
        if user.id is not None:
            await self._write(lambda s: repository.set_language(s, user_id=user.id or 0, language=language))
        user = UserView(user.id, language, True, user.display_name)
        reply = Reply(text=self.library.text("language_set", language), intent="language", decision="language_set")
        await self._record(user, started, f"lang:{language}", reply, kind_in="language_set")
        return reply

    async def handle_non_text(self, person: Person, kind: InboundKind) -> Reply:
        """Stickers, voice notes, photos: a kind text reply, and the event is kept."""
        started = self._clock()
        user, _ = await self._load_user(person)
        reply = Reply(text=self.library.text("non_text", user.language), decision="non_text")
        await self._record(user, started, None, reply, kind_in=f"message_{kind}")
        return reply

    async def feedback(self, person: Person, article_id: str, *, helpful: bool) -> Reply:
        """👍/👎 on an answer, stored as a feedback event."""
        started = self._clock()
        user, _ = await self._load_user(person)
        key = "feedback_thanks" if helpful else "feedback_sorry"
        reply = Reply(text=self.library.text(key, user.language), article_id=article_id, decision="feedback")
        await self._record(
            user,
            started,
            None,
            reply,
            kind_in="feedback",
            data_in={"helpful": helpful, "article_id": article_id},
        )
        return reply

    async def show_article(self, person: Person, article_id: str) -> Reply:
        """The answer a user picked from "did you mean" buttons."""
        started = self._clock()
        user, _ = await self._load_user(person)
        article = self.library.articles.get(article_id)
        if article is None:
            reply = self._dont_know(user.language)
        else:
            reply = self._answer(article, user.language, decision="picked")
        await self._record(user, started, f"art:{article_id}", reply, kind_in="article_picked")
        return reply

    async def handle_text(self, person: Person, text: str) -> Reply:
        """A free-text message: the main path."""
        started = self._clock()
        user, _ = await self._load_user(person)
        stripped = (text or "").strip()
        if not stripped:
            reply = Reply(text=self.library.text("empty_message", user.language), decision="empty")
            await self._record(user, started, text, reply)
            return reply
        understanding = await self.understand(stripped[:MAX_NLU_CHARS])
        reply = self.decide(understanding, user)
        if len(stripped) > MAX_NLU_CHARS:
            reply.text = f"<i>{self.library.text('too_long', user.language)}</i>\n\n{reply.text}"
        if user.language == "en" and is_mostly_urdu_script(stripped):
            reply.text += f"\n\n{self.library.text('offer_urdu', 'en')}"
            reply.buttons.append([Button(self.library.text("button_urdu", "en"), "lang:ur")])
        await self._record(user, started, text, reply, understanding=understanding)
        if reply.decision == "dont_know" and user.id is not None:
            await self._write(
                lambda s: repository.record_event(
                    s, user_id=user.id, kind="unanswered", text=stripped[:MAX_STORED_CHARS],
                    intent=understanding.intent, confidence=understanding.confidence,
                    nlu_source=understanding.source,
                )
            )  # fmt: skip
        return reply

    # ---- understand and decide ---------------------------------------------------------------------------

    async def understand(self, text: str) -> Understanding:
        """Rasa first; on any Rasa problem the lexical search answers and says why."""
        if self.rasa is None:
            return self.lexical.understand(text, reason="rasa not configured")
        try:
            return await self.rasa.parse(text)
        except RasaUnavailable as exc:
            log.warning("Rasa unavailable, answering through lexical fallback: %s", exc)
            return self.lexical.understand(text, reason=str(exc)[:200])

    def decide(self, understanding: Understanding, user: UserView) -> Reply:
        lang = user.language
        reply: Reply
        if understanding.intent in SMALL_TALK:
            name = html.escape(user.display_name or "")
            reply = Reply(text=self.library.text(SMALL_TALK[understanding.intent], lang, name=name).replace(" !", "!"))
            reply.decision = understanding.intent
        elif understanding.intent in NOT_YET:
            reply = Reply(text=self.library.text("not_yet", lang), decision="not_yet")
        else:
            reply = self._answer_or_suggest(understanding, lang)
        reply.intent = reply.intent or self._reported_intent(understanding, reply.article_id)
        reply.confidence = understanding.confidence
        reply.nlu_source = understanding.source
        return reply

    def _answer_or_suggest(self, understanding: Understanding, lang: str) -> Reply:
        candidates = self.steer_by_platform(understanding)
        top = candidates[0] if candidates else None
        confident_intent = understanding.intent == RETRIEVAL_INTENT
        if top and confident_intent and top.confidence >= ANSWER_MIN_CONFIDENCE:
            return self._answer(self.library.articles[top.article_id], lang, decision="answer")
        suggestions = [c for c in candidates[:3] if c.confidence >= SUGGEST_MIN_CONFIDENCE]
        if suggestions and (confident_intent or suggestions[0].confidence >= ANSWER_MIN_CONFIDENCE / 2):
            return self._did_you_mean(suggestions, lang)
        return self._dont_know(lang)

    def steer_by_platform(self, understanding: Understanding) -> list[ArticleCandidate]:
        """Known articles, best first; a named platform lifts the best article about that platform to the top."""
        candidates = [c for c in understanding.articles if c.article_id in self.library.articles]
        platforms = set(understanding.entities.get("platform", []))
        if not candidates or not platforms:
            return candidates
        top_article = self.library.articles[candidates[0].article_id]
        if platforms & set(top_article.platforms):
            return candidates
        for index, candidate in enumerate(candidates[1:], start=1):
            article = self.library.articles[candidate.article_id]
            if (
                platforms & set(article.platforms)
                and candidate.confidence >= PLATFORM_STEER_RATIO * candidates[0].confidence
            ):
                promoted = ArticleCandidate(candidate.article_id, max(candidate.confidence, candidates[0].confidence))
                return [promoted, *candidates[:index], *candidates[index + 1 :]]
        return candidates

    def _reported_intent(self, understanding: Understanding, article_id: str | None) -> str:
        """Retrieval answers report the article's topic intent (ask_payments...), others Rasa's intent."""
        if understanding.intent in (RETRIEVAL_INTENT, "nlu_fallback") and article_id in self.library.articles:
            return self.library.articles[article_id].intent
        if understanding.intent == RETRIEVAL_INTENT and understanding.top_article:
            article = self.library.articles.get(understanding.top_article.article_id)
            if article:
                return article.intent
        return understanding.intent

    # ---- rendering ---------------------------------------------------------------------------------------

    def render_article(self, article: Article, lang: str) -> str:
        source = article.sources[0]
        footer = self.library.text(
            "answer_footer",
            lang,
            reviewed=article.reviewed.isoformat(),
            url=html.escape(source.url),
            source=html.escape(source.title),
        )
        return f"<b>{html.escape(article.title[lang])}</b>\n\n{to_telegram_html(article.body[lang])}\n\n{footer}"

    def _answer(self, article: Article, lang: str, *, decision: str) -> Reply:
        buttons = [[Button("👍", f"fb:up:{article.id}"), Button("👎", f"fb:down:{article.id}")]]
        return Reply(
            text=self.render_article(article, lang),
            buttons=buttons,
            article_id=article.id,
            intent=article.intent,
            decision=decision,
        )

    def _did_you_mean(self, suggestions: list[ArticleCandidate], lang: str) -> Reply:
        buttons = [
            [Button(self.library.articles[c.article_id].title[lang][:60], f"art:{c.article_id}")] for c in suggestions
        ]
        return Reply(text=self.library.text("did_you_mean", lang), buttons=buttons, decision="did_you_mean")

    def _dont_know(self, lang: str) -> Reply:
        return Reply(text=self.library.text("dont_know", lang), decision="dont_know")

    def _language_buttons(self) -> list[Button]:
        return [
            Button(self.library.text("button_english", "en"), "lang:en"),
            Button(self.library.text("button_urdu", "en"), "lang:ur"),
        ]

    # ---- storage -----------------------------------------------------------------------------------------

    async def _load_user(self, person: Person) -> tuple[UserView, bool]:
        """The stored user (created on first contact); a database problem degrades to an unsaved view."""
        try:
            async with self.sessions.begin() as session:
                user, created = await repository.get_or_create_user(
                    session,
                    channel=person.channel,
                    external_id=person.external_id,
                    display_name=person.display_name,
                )
                if created and person.language_hint and person.language_hint.startswith("ur"):
                    user.language = "ur"
                return UserView(user.id, user.language, user.language_chosen, user.display_name), created
        except (SQLAlchemyError, OSError):
            log.exception("Could not load user %s:%s; answering without saving", person.channel, person.external_id)
            language = "ur" if (person.language_hint or "").startswith("ur") else "en"
            return UserView(None, language, False, person.display_name), False

    async def _write(self, action: Callable[[AsyncSession], Awaitable[Any]]) -> bool:
        try:
            async with self.sessions.begin() as session:
                await action(session)
            return True
        except (SQLAlchemyError, OSError):
            log.exception("Could not write to the database")
            return False

    async def _record(
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
        """Append the inbound event and the reply event in one transaction, with the handling latency."""
        reply.latency_ms = (self._clock() - started) * 1000
        if user.id is None:
            return
        user_id = user.id
        meta_in = dict(data_in or {})
        if understanding is not None:
            meta_in.update(
                entities=understanding.entities,
                parse_ms=round(understanding.parse_ms, 3),
                candidates=[[c.article_id, round(c.confidence, 4)] for c in understanding.articles[:3]],
            )
            if understanding.degraded_reason:
                meta_in["fallback_reason"] = understanding.degraded_reason
            meta_in["rasa_intent"] = understanding.intent

        async def write(session: AsyncSession) -> None:
            await repository.record_event(
                session,
                user_id=user_id,
                kind=kind_in,
                text=None if text_in is None else text_in[:MAX_STORED_CHARS],
                intent=reply.intent,
                confidence=reply.confidence,
                article_id=reply.article_id,
                nlu_source=reply.nlu_source,
                data=meta_in or None,
            )
            await repository.record_event(
                session,
                user_id=user_id,
                kind="reply",
                text=reply.text,
                intent=reply.intent,
                confidence=reply.confidence,
                article_id=reply.article_id,
                nlu_source=reply.nlu_source,
                latency_ms=round(reply.latency_ms, 3),
                data={"decision": reply.decision},
            )
            await repository.touch_user(session, user_id=user_id)

        await self._write(write)  # fmt: skip
