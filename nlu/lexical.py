"""Lexical search over the articles' questions and titles: answers keep coming when Rasa is down."""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict

from content.library import Library
from nlu.entities import extract_entities
from nlu.examples import intent_examples as load_intent_examples
from nlu.understanding import ArticleCandidate, Understanding

NGRAM = 3
MIN_SCORE = 0.3


def _ngrams(text: str) -> Counter[str]:
    words = re.sub(r"[^\w\s]", " ", text.casefold()).split()
    grams: Counter[str] = Counter()
    for word in words:
        padded = f" {word} "
        grams.update(padded[i : i + NGRAM] for i in range(max(1, len(padded) - NGRAM + 1)))
    return grams


class LexicalSearch:
    """Character-trigram TF-IDF cosine over every article question and title and every conversational example.

    A document's owner is an article id, or `intent:<name>` for the conversational examples.
    Both come from the same files Rasa trains on (the articles' questions and nlu/data/conversation.yml).
    """

    def __init__(self, library: Library, intent_examples: dict[str, list[str]] | None = None) -> None:
        documents: list[tuple[str, Counter[str]]] = []
        for article in library:
            for text in (*article.questions, *article.title.values()):
                documents.append((article.id, _ngrams(text)))
        examples = load_intent_examples() if intent_examples is None else intent_examples
        for intent, texts in examples.items():
            # conversation.yml also holds a few article examples (faq/<id>): they count for that article
            article_id = intent.removeprefix("faq/")
            owner = article_id if intent.startswith("faq/") and article_id in library.articles else f"intent:{intent}"
            documents.extend((owner, _ngrams(text)) for text in texts)
        document_frequency: Counter[str] = Counter()
        for _, grams in documents:
            document_frequency.update(grams.keys())
        total = len(documents) or 1
        self._idf = {gram: math.log((1 + total) / (1 + df)) + 1 for gram, df in document_frequency.items()}
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self._owner: list[str] = []
        for index, (article_id, grams) in enumerate(documents):
            weights = {gram: count * self._idf[gram] for gram, count in grams.items()}
            norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
            for gram, weight in weights.items():
                self._postings[gram].append((index, weight / norm))
            self._owner.append(article_id)

    def rank(self, text: str, *, limit: int = 3) -> list[ArticleCandidate]:
        """Best owners first: article ids, or `intent:<name>` when a conversational example is closest."""
        query = {gram: count * self._idf.get(gram, 0.0) for gram, count in _ngrams(text).items()}
        norm = math.sqrt(sum(w * w for w in query.values()))
        if not norm:
            return []
        scores: dict[int, float] = defaultdict(float)
        for gram, weight in query.items():
            for index, doc_weight in self._postings.get(gram, ()):
                scores[index] += weight / norm * doc_weight
        best: dict[str, float] = {}
        for index, score in scores.items():
            article_id = self._owner[index]
            best[article_id] = max(best.get(article_id, 0.0), score)
        ranked = sorted(best.items(), key=lambda item: -item[1])[:limit]
        return [ArticleCandidate(article_id, round(score, 4)) for article_id, score in ranked]

    def understand(self, text: str, *, reason: str) -> Understanding:
        """An Understanding from lexical similarity alone, marked as the fallback with the reason."""
        started = time.perf_counter()
        ranked = self.rank(text, limit=8)
        articles = [c for c in ranked if not c.article_id.startswith("intent:")][:3]
        top = ranked[0] if ranked else None
        if top is None or top.confidence < MIN_SCORE:
            intent = "nlu_fallback"
        elif top.article_id.startswith("intent:"):
            intent = top.article_id.split(":", 1)[1]
        else:
            intent = "faq"
        return Understanding(
            intent=intent,
            confidence=top.confidence if top else 0.0,
            source="fallback",
            entities=extract_entities(text),
            articles=tuple(articles),
            parse_ms=(time.perf_counter() - started) * 1000,
            degraded_reason=reason,
        )
