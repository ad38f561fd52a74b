"""Coordinator content as data: risk rules (content/risk.yml) and canned hand-off replies (content/canned.yml)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from content import yamlio

CONTENT_DIR = Path(__file__).resolve().parent
LANGUAGES = ("en", "ur")


@dataclass(frozen=True)
class RiskRule:
    id: str
    article: str
    patterns: tuple[re.Pattern[str], ...]
    examples: tuple[str, ...] = ()
    not_examples: tuple[str, ...] = ()

    def matches(self, text: str) -> bool:
        return any(pattern.search(text) for pattern in self.patterns)


@dataclass(frozen=True)
class RiskBook:
    rules: tuple[RiskRule, ...] = ()
    alert_every_hours: int = 6
    alerts_per_hour: int = 20
    errors: tuple[str, ...] = ()  # patterns that did not compile (reported by `content check`)

    def first_match(self, text: str) -> RiskRule | None:
        folded = text.casefold()
        return next((rule for rule in self.rules if rule.matches(folded)), None)


@dataclass(frozen=True)
class Canned:
    id: str
    text: Mapping[str, str]


@dataclass(frozen=True)
class CoordinatorContent:
    risk: RiskBook = field(default_factory=RiskBook)
    canned: dict[str, Canned] = field(default_factory=dict)


def _yaml(path: Path) -> Any:
    return yamlio.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None


def load_risk(path: Path = CONTENT_DIR / "risk.yml") -> RiskBook:
    data = _yaml(path) or {}
    rules = []
    errors = []
    for raw in data.get("rules") or []:
        compiled = []
        for pattern in raw.get("patterns") or []:
            try:
                compiled.append(re.compile(str(pattern), re.IGNORECASE))
            except re.error as exc:
                errors.append(f"risk.yml: {raw.get('id')}: pattern {pattern!r} does not compile ({exc})")
        rules.append(
            RiskRule(
                id=str(raw.get("id", "")),
                article=str(raw.get("article", "")),
                patterns=tuple(compiled),
                examples=tuple(str(e) for e in raw.get("examples") or ()),
                not_examples=tuple(str(e) for e in raw.get("not_examples") or ()),
            )
        )
    return RiskBook(
        rules=tuple(rules),
        alert_every_hours=int(data.get("alert_every_hours", 6)),
        alerts_per_hour=int(data.get("alerts_per_hour", 20)),
        errors=tuple(errors),
    )


def load_canned(path: Path = CONTENT_DIR / "canned.yml") -> dict[str, Canned]:
    data = _yaml(path) or {}
    return {str(c["id"]): Canned(id=str(c["id"]), text=c.get("text") or {}) for c in data.get("canned") or []}


def load_coordinator_content(directory: Path = CONTENT_DIR) -> CoordinatorContent:
    return CoordinatorContent(risk=load_risk(directory / "risk.yml"), canned=load_canned(directory / "canned.yml"))


def check_coordinator_content(content: CoordinatorContent, *, articles: set[str]) -> list[str]:
    """Errors `rahnuma content check` reports: unknown articles, broken patterns, examples that do not behave."""
    errors = list(content.risk.errors)
    seen: set[str] = set()
    for rule in content.risk.rules:
        where = f"risk.yml: {rule.id or '(no id)'}"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", rule.id):
            errors.append(f"{where}: id must be snake_case")
        if rule.id in seen:
            errors.append(f"{where}: id is used twice")
        seen.add(rule.id)
        if rule.article not in articles:
            errors.append(f"{where}: article {rule.article!r} does not exist")
        if not rule.patterns:
            errors.append(f"{where}: no patterns")
        for example in rule.examples:
            if not rule.matches(example.casefold()):
                errors.append(f"{where}: example {example!r} matches none of its patterns")
        for example in rule.not_examples:
            hit = content.risk.first_match(example)
            if hit is not None:
                errors.append(f"{where}: not_example {example!r} matches rule {hit.id}")
    if content.risk.alert_every_hours < 1 or content.risk.alerts_per_hour < 1:
        errors.append("risk.yml: alert_every_hours and alerts_per_hour must be at least 1")
    for canned in content.canned.values():
        if not re.fullmatch(r"[a-z][a-z0-9_]*", canned.id):
            errors.append(f"canned.yml: {canned.id}: id must be snake_case")
        for lang in LANGUAGES:
            if not canned.text.get(lang):
                errors.append(f"canned.yml: {canned.id}.{lang} is missing")
    return errors
