"""What the NLU made of one message, whichever engine produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NluSource = Literal["rasa", "fallback"]


@dataclass(frozen=True)
class ArticleCandidate:
    article_id: str
    confidence: float


@dataclass(frozen=True)
class Understanding:
    """Intent, entities and the ranked article candidates for one message."""

    intent: str
    confidence: float
    source: NluSource
    entities: dict[str, list[str]] = field(default_factory=dict)
    articles: tuple[ArticleCandidate, ...] = ()
    parse_ms: float = 0.0
    degraded_reason: str | None = None

    @property
    def top_article(self) -> ArticleCandidate | None:
        return self.articles[0] if self.articles else None
