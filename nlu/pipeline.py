"""Understanding a message: Rasa first, blended with the lexical search; the lexical search alone when Rasa fails.

Only intents the project trains can come out of here, so an intent name stored in the event log is always one of
the known names (never a user's words).
"""

from __future__ import annotations

import dataclasses
import logging

from nlu.build import CONVERSATION_INTENTS
from nlu.client import RETRIEVAL_INTENT, RasaClient, RasaUnavailable
from nlu.lexical import LexicalSearch
from nlu.understanding import ArticleCandidate, Understanding

log = logging.getLogger(__name__)

FALLBACK_INTENT = "nlu_fallback"
KNOWN_INTENTS = frozenset({*CONVERSATION_INTENTS, RETRIEVAL_INTENT, FALLBACK_INTENT})
# Rasa's share of the blended article score; chosen with the answer thresholds by cross-validation on the
# training data (bench/calibrate.py, docs/BENCHMARKS.md). The lexical search ranks better than Rasa's
# ResponseSelector on its own (top-1 0.787 against 0.631 in cross-validation, round 8); with the consonant
# skeletons (round 9) Rasa's best share fell from 0.3 to 0.2; with round 11's 4,627 examples it was 0.3, with
# round 12's 4,777 (150 more conversational examples) 0.2 again, with round 13's 5,110 0.2 (0.3's best first
# reply 0.682 against 0.693), and with round 16's 5,220 (the report data) 0.3, adopted in round 17.
BLEND_WEIGHT = 0.3


class Understander:
    def __init__(self, lexical: LexicalSearch, rasa: RasaClient | None, *, blend_weight: float = BLEND_WEIGHT) -> None:
        self.lexical = lexical
        self.rasa = rasa
        self.blend_weight = blend_weight

    async def understand(self, text: str) -> Understanding:
        """Rasa first; on any Rasa problem the lexical search answers and says why."""
        if self.rasa is None:
            return self.lexical.understand(text, reason="rasa not configured")
        try:
            understanding = await self.rasa.parse(text)
        except RasaUnavailable as exc:
            log.warning("Rasa unavailable, answering through the lexical search: %s", exc)
            return self.lexical.understand(text, reason=str(exc)[:200])
        if understanding.intent not in KNOWN_INTENTS:
            log.warning("Rasa answered an intent this project does not train; treating it as a fallback")
            understanding = dataclasses.replace(understanding, intent=FALLBACK_INTENT, confidence=0.0)
        return self.blend_with_lexical(understanding, text) if self.blend_weight < 1 else understanding

    def blend_with_lexical(self, understanding: Understanding, text: str) -> Understanding:
        """Re-rank Rasa's article candidates with the lexical search: the two make different mistakes."""
        return blend(understanding, self.lexical.rank(text, limit=12), self.blend_weight)


def blend(understanding: Understanding, lexical: list[ArticleCandidate], weight: float) -> Understanding:
    """score = w * ResponseSelector confidence + (1 - w) * lexical score, over the union of both top lists.

    `lexical` is LexicalSearch.rank's answer (its `intent:` owners are ignored here). When Rasa's answer had no
    article ranking at all (a malformed response_selector), the lexical score counts in full rather than at 1 - w.
    """
    if not understanding.articles:
        weight = 0.0
    scores: dict[str, float] = {}
    for candidate in understanding.articles:
        scores[candidate.article_id] = weight * candidate.confidence
    for candidate in lexical:
        if not candidate.article_id.startswith("intent:"):
            scores[candidate.article_id] = scores.get(candidate.article_id, 0.0) + (1 - weight) * candidate.confidence
    ranked = sorted(scores.items(), key=lambda item: -item[1])[:10]
    articles = tuple(ArticleCandidate(article_id, round(score, 4)) for article_id, score in ranked)
    return dataclasses.replace(understanding, articles=articles)
