"""What to say to a question: the answer policy (answer, did-you-mean, honest don't-know) and article rendering.

Pure: it takes an Understanding and returns a Reply, so every branch is testable without Rasa or a database.
"""

from __future__ import annotations

import html

from bot.core import buttons
from bot.core.types import Button, Reply, UserView
from content.library import Article, Library, to_telegram_html
from nlu.client import RETRIEVAL_INTENT
from nlu.pipeline import FALLBACK_INTENT
from nlu.understanding import ArticleCandidate, Understanding
from storage.codebook import Decision

ANSWER_MIN_CONFIDENCE = 0.45
SUGGEST_MIN_CONFIDENCE = 0.1  # a suggestion button at all
SUGGEST_FIRST_MIN_CONFIDENCE = 0.3  # the best candidate, before any "did you mean" is shown
PLATFORM_STEER_RATIO = 0.25
SMALL_TALK = {"greet", "goodbye", "thanks", "help", "out_of_scope"}  # each answered by the ui.yml text of that name


class Answers:
    def __init__(self, library: Library) -> None:
        self.library = library

    def decide(self, understanding: Understanding, user: UserView, *, personal: bool = True) -> Reply:
        """The reply to a question; `personal=False` (groups) never uses the user's name."""
        lang = user.language
        reply: Reply
        if understanding.intent in SMALL_TALK:
            name = html.escape(user.display_name or "") if personal else ""
            reply = Reply(text=self.library.text(understanding.intent, lang, name=name).replace(" !", "!"))
            reply.decision = Decision(understanding.intent)
        else:
            reply = self._answer_or_suggest(understanding, lang)
        reply.intent = reply.intent or self.reported_intent(understanding, reply.article_id)
        reply.confidence = understanding.confidence
        reply.nlu_source = understanding.source
        return reply

    def _answer_or_suggest(self, understanding: Understanding, lang: str) -> Reply:
        candidates = self.steer_by_platform(understanding)
        top = candidates[0] if candidates else None
        confident_intent = understanding.intent == RETRIEVAL_INTENT
        if top and confident_intent and top.confidence >= ANSWER_MIN_CONFIDENCE:
            return self.answer(self.library.articles[top.article_id], lang, decision=Decision.ANSWER)
        suggestions = [c for c in candidates[:3] if c.confidence >= SUGGEST_MIN_CONFIDENCE]
        if suggestions and suggestions[0].confidence >= SUGGEST_FIRST_MIN_CONFIDENCE:
            return self.did_you_mean(suggestions, lang)
        return self.dont_know(lang)

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

    def reported_intent(self, understanding: Understanding, article_id: str | None) -> str:
        """Retrieval answers report the article's topic intent (ask_payments...), others the NLU's intent."""
        if understanding.intent in (RETRIEVAL_INTENT, FALLBACK_INTENT) and article_id in self.library.articles:
            return self.library.articles[article_id].intent
        if understanding.intent == RETRIEVAL_INTENT and understanding.top_article:
            article = self.library.articles.get(understanding.top_article.article_id)
            if article:
                return article.intent
        return understanding.intent

    # ---- rendering -----------------------------------------------------------------------------------------

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

    def answer(self, article: Article, lang: str, *, decision: Decision, feedback: bool = True) -> Reply:
        rows = []
        if feedback:
            rows.append(
                [
                    Button.of("👍", buttons.Feedback("up", article.id)),
                    Button.of("👎", buttons.Feedback("down", article.id)),
                ]
            )
        return Reply(
            text=self.render_article(article, lang),
            buttons=rows,
            article_id=article.id,
            intent=article.intent,
            decision=decision,
        )

    def did_you_mean(self, suggestions: list[ArticleCandidate], lang: str) -> Reply:
        rows = [
            [Button.of(self.library.articles[c.article_id].title[lang], buttons.OpenArticle(c.article_id))]
            for c in suggestions
        ]
        return Reply(text=self.library.text("did_you_mean", lang), buttons=rows, decision=Decision.DID_YOU_MEAN)

    def dont_know(self, lang: str) -> Reply:
        return Reply(text=self.library.text("dont_know", lang), decision=Decision.DONT_KNOW)
