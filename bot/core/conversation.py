"""The conversation, free of Telegram: understand → decide → reply, and record every turn in the event log."""

from __future__ import annotations

import dataclasses
import html
import logging
import re
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.privacy import Privacy
from bot.core.profile import Profile
from bot.core.progress import Progress
from bot.core.turns import MAX_STORED_CHARS, Turns, UserView
from bot.core.types import Button, InboundKind, Person, Reply
from content.library import Article, Library, to_telegram_html
from nlu.client import RETRIEVAL_INTENT, RasaClient, RasaUnavailable
from nlu.fallback import LexicalSearch
from nlu.understanding import ArticleCandidate, Understanding

log = logging.getLogger(__name__)

COMMANDS = ("start", "help", "language", "progress", "profile", "cancel", "privacy", "delete_me")
MAX_NLU_CHARS = 1000
ANSWER_MIN_CONFIDENCE = 0.45
SUGGEST_MIN_CONFIDENCE = 0.1  # a suggestion button at all
SUGGEST_FIRST_MIN_CONFIDENCE = 0.3  # the best candidate, before any "did you mean" is shown
PLATFORM_STEER_RATIO = 0.25
SMALL_TALK = {"greet", "goodbye", "thanks", "help", "out_of_scope"}  # each answered by the ui.yml text of that name
NOT_YET = {"stop_nudges", "resume_nudges", "request_human", "find_peers"}
_ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\uFB50-\uFDFF\uFE70-\uFEFF]")
_LETTER = re.compile(r"[^\W\d_]")


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
        blend_weight: float = 0.5,
    ) -> None:
        self.library = library
        self.sessions = sessions
        self.rasa = rasa
        self.lexical = lexical or LexicalSearch(library)
        self.blend_weight = blend_weight
        self.turns = Turns(sessions, clock)
        self.progress = Progress(library, self.turns)
        self.profile = Profile(library, self.turns)
        self.privacy = Privacy(library, self.turns)
        self._clock = clock

    # ---- turns: each public method is one turn, recorded with its latency ------------------------------------

    async def command(self, person: Person, name: str) -> Reply:
        """A slash command (`start`, `help`, `language`, `progress`, `profile`, `cancel`, `privacy`, `delete_me`)."""
        started = self._clock()
        user = await self.turns.load_user(person) if name != "delete_me" else await self.turns.find_or_guest(person)
        lang = user.language
        reply: Reply
        if name == "start":
            name_html = html.escape(person.display_name or "friend")
            text = (
                f"{self.library.text('welcome', lang, name=name_html)}\n\n{self.library.text('privacy_notice', lang)}"
            )
            buttons = [self._language_buttons()]
            if not user.research_consent:
                buttons.append(self.privacy.consent_buttons(lang))
            reply = Reply(text=text, buttons=buttons, intent="start", decision="welcome")
        elif name == "help":
            reply = Reply(text=self.library.text("help", lang), intent="help", decision="help")
        elif name == "language":
            reply = Reply(text=self.library.text("choose_language", lang), buttons=[self._language_buttons()])
            reply.decision = "choose_language"
        elif name == "progress":
            reply = await self.progress.show(user)
        elif name == "profile":
            reply = await self.profile.show(user)
        elif name == "cancel":
            reply = await self.profile.cancel(user)
        elif name == "privacy":
            reply = await self.privacy.report(person, lang)
        elif name == "delete_me":
            reply = self.privacy.confirm_delete(lang)
        else:
            reply = Reply(text=self.library.text("help", lang), intent="help", decision="unknown_command")
        await self.turns.record(user, started, f"/{name}", reply, kind_in="command")
        return reply

    async def press(self, person: Person, data: str) -> Reply:
        """An inline button: its callback data is `prefix:...`; old buttons keep working after a restart."""
        started = self._clock()
        prefix, _, rest = data.partition(":")
        if prefix == "del":
            reply = await self._press_delete(person, rest)
            await self.turns.record(await self.turns.find_or_guest(person), started, data, reply, kind_in="button")
            return reply
        user = await self.turns.load_user(person)
        lang = user.language
        if prefix == "lang" and rest in ("en", "ur"):
            await self.profile.set_field(user, "language", rest)
            user = dataclasses.replace(user, language=rest, language_chosen=True)
            reply = Reply(text=self.library.text("language_set", rest), intent="language", decision="language_set")
        elif prefix == "fb":
            verdict, _, article_id = rest.partition(":")
            key = "feedback_thanks" if verdict == "up" else "feedback_sorry"
            reply = Reply(text=self.library.text(key, lang), article_id=article_id, decision="feedback")
            await self.turns.event(user, "feedback", article_id=article_id, data={"helpful": verdict == "up"})
        elif prefix == "art":
            article = self.library.articles.get(rest)
            reply = self._answer(article, lang, decision="picked") if article else self._dont_know(lang)
        elif prefix == "ms":
            action, _, milestone_id = rest.partition(":")
            if action == "yes":
                reply = await self.progress.confirm(user, milestone_id, source="text")
            elif action == "tog":
                reply = await self.progress.toggle(user, milestone_id)
                reply.replace = True
            elif action == "no":
                reply = Reply(text=self.library.text("milestone_not_marked", lang), decision="milestone_declined")
            else:
                reply = await self.progress.show(user)
        elif prefix == "pf":
            reply = await self._press_profile(user, rest)
        elif prefix == "consent":
            reply = await self.privacy.set_consent(user, rest == "yes")
        else:
            reply = Reply(text=self.library.text("button_expired", lang), decision="button_unknown")
        await self.turns.record(user, started, data, reply, kind_in="button")
        return reply

    async def _press_profile(self, user: UserView, rest: str) -> Reply:
        if rest == "edit":
            return await self.profile.begin(user)
        if rest == "skip":
            return await self.profile.skip(user)
        if rest.startswith("set:"):
            _, field, value = rest.split(":", 2)
            return await self.profile.store(user, field, value)
        return await self.profile.show(user)

    async def _press_delete(self, person: Person, rest: str) -> Reply:
        user = await self.turns.find_or_guest(person)
        if rest == "yes":
            return await self.privacy.delete(person, user.language)
        if rest == "ask":
            return self.privacy.confirm_delete(user.language)
        return Reply(text=self.library.text("delete_cancelled", user.language), decision="delete_cancelled")

    async def handle_non_text(self, person: Person, kind: InboundKind) -> Reply:
        """Stickers, voice notes, photos: a kind text reply, and the event is kept."""
        started = self._clock()
        user = await self.turns.load_user(person)
        reply = Reply(text=self.library.text("non_text", user.language), decision="non_text")
        await self.turns.record(user, started, None, reply, kind_in=f"message_{kind}")
        return reply

    async def handle_text(self, person: Person, text: str) -> Reply:
        """A free-text message: the main path (or the answer to an open /profile question)."""
        started = self._clock()
        user = await self.turns.load_user(person)
        stripped = (text or "").strip()
        if not stripped:
            reply = Reply(text=self.library.text("empty_message", user.language), decision="empty")
            await self.turns.record(user, started, text, reply)
            return reply
        if user.profile_step:
            reply = await self.profile.answer(user, stripped)
            await self.turns.record(user, started, text, reply, kind_in="profile_answer")
            return reply
        understanding = await self.understand(stripped[:MAX_NLU_CHARS])
        if understanding.intent == "report_progress" and self.progress.recognises(stripped):
            reply = await self.progress.report(user, stripped)
        elif understanding.intent == "ask_progress":
            reply = await self.progress.what_next(user)
        else:
            reply = self.decide(understanding, user)
        reply.intent = reply.intent or understanding.intent
        reply.confidence = understanding.confidence
        reply.nlu_source = understanding.source
        if len(stripped) > MAX_NLU_CHARS:
            reply.text = f"<i>{self.library.text('too_long', user.language)}</i>\n\n{reply.text}"
        if user.language == "en" and is_mostly_urdu_script(stripped):
            reply.text += f"\n\n{self.library.text('offer_urdu', 'en')}"
            reply.buttons.append([Button(self.library.text("button_urdu", "en"), "lang:ur")])
        await self.turns.record(user, started, text, reply, understanding=understanding)
        if reply.decision == "dont_know":
            await self.turns.event(
                user, "unanswered", text=stripped[:MAX_STORED_CHARS] if user.research_consent else None,
                intent=understanding.intent, confidence=understanding.confidence, nlu_source=understanding.source,
            )  # fmt: skip
        return reply

    # ---- understand and decide ---------------------------------------------------------------------------

    async def understand(self, text: str) -> Understanding:
        """Rasa first; on any Rasa problem the lexical search answers and says why."""
        if self.rasa is None:
            return self.lexical.understand(text, reason="rasa not configured")
        try:
            understanding = await self.rasa.parse(text)
        except RasaUnavailable as exc:
            log.warning("Rasa unavailable, answering through lexical fallback: %s", exc)
            return self.lexical.understand(text, reason=str(exc)[:200])
        return self.blend_with_lexical(understanding, text) if self.blend_weight < 1 else understanding

    def blend_with_lexical(self, understanding: Understanding, text: str) -> Understanding:
        """Re-rank Rasa's article candidates with the lexical search: the two make different mistakes.

        score = w * ResponseSelector confidence + (1 - w) * trigram cosine, over the union of both top lists.
        """
        weight = self.blend_weight
        scores: dict[str, float] = {}
        for candidate in understanding.articles:
            scores[candidate.article_id] = weight * candidate.confidence
        for candidate in self.lexical.rank(text, limit=12):
            if not candidate.article_id.startswith("intent:"):
                scores[candidate.article_id] = (
                    scores.get(candidate.article_id, 0.0) + (1 - weight) * candidate.confidence
                )
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:10]
        articles = tuple(ArticleCandidate(article_id, round(score, 4)) for article_id, score in ranked)
        return dataclasses.replace(understanding, articles=articles)

    def decide(self, understanding: Understanding, user: UserView) -> Reply:
        lang = user.language
        reply: Reply
        if understanding.intent in SMALL_TALK:
            name = html.escape(user.display_name or "")
            reply = Reply(text=self.library.text(understanding.intent, lang, name=name).replace(" !", "!"))
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
        if suggestions and suggestions[0].confidence >= SUGGEST_FIRST_MIN_CONFIDENCE:
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
