"""Nudge rules and experiments from content/nudges.yml: what Rahnuma may say on its own, and when."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from content import yamlio

TriggerType = Literal["joined", "inactive", "stuck", "milestone", "weekly_effort"]
TRIGGER_TYPES: tuple[str, ...] = ("joined", "inactive", "stuck", "milestone", "weekly_effort")
NEXT_RUNG = "next_rung"
MAX_NUDGE_CHARS = 600
_RULE_ID = re.compile(r"[a-z][a-z0-9_]{0,23}")  # ids travel in button data (64 bytes in all)
_PLACEHOLDERS = {"name", "article_title", "rung"}


@dataclass(frozen=True)
class Trigger:
    type: str
    days: int = 0
    milestone: str | None = None
    active_days: int = 30


@dataclass(frozen=True)
class NudgeButton:
    article: str | None = None  # an article id, or "next_rung"
    effort: bool = False


@dataclass(frozen=True)
class NudgeRule:
    id: str
    trigger: Trigger
    priority: int
    expires_after_hours: int
    text: Mapping[str, str]
    buttons: tuple[NudgeButton, ...] = ()


@dataclass(frozen=True)
class Arm:
    name: str
    weight: int = 1
    send: bool = True
    text: Mapping[str, str] | None = None  # None: the rule's own text


@dataclass(frozen=True)
class Experiment:
    id: str
    rule: str
    arms: tuple[Arm, ...]


@dataclass(frozen=True)
class NudgeBook:
    rules: tuple[NudgeRule, ...] = ()
    experiments: tuple[Experiment, ...] = ()
    by_id: Mapping[str, NudgeRule] = field(default_factory=dict)

    def experiment_for(self, rule_id: str) -> Experiment | None:
        return next((e for e in self.experiments if e.rule == rule_id), None)


def load_nudges(path: Path) -> NudgeBook:
    raw: dict[str, Any] = (yamlio.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None) or {}
    rules = []
    for item in raw.get("rules") or []:
        trigger = item.get("trigger") or {}
        rules.append(
            NudgeRule(
                id=str(item.get("id", "")),
                trigger=Trigger(
                    type=str(trigger.get("type", "")),
                    days=int(trigger.get("days", 0)),
                    milestone=trigger.get("milestone"),
                    active_days=int(trigger.get("active_days", 30)),
                ),
                priority=int(item.get("priority", 5)),
                expires_after_hours=int(item.get("expires_after_hours", 48)),
                text=dict(item.get("text") or {}),
                buttons=tuple(
                    NudgeButton(article=b.get("article"), effort=bool(b.get("effort")))
                    for b in item.get("buttons") or []
                ),
            )
        )
    experiments = [
        Experiment(
            id=str(item.get("id", "")),
            rule=str(item.get("rule", "")),
            arms=tuple(
                Arm(
                    name=str(arm.get("name", "")),
                    weight=int(arm.get("weight", 1)),
                    send=bool(arm.get("send", True)),
                    text=dict(arm["text"]) if arm.get("text") else None,
                )
                for arm in item.get("arms") or []
            ),
        )
        for item in raw.get("experiments") or []
    ]
    return NudgeBook(rules=tuple(rules), experiments=tuple(experiments), by_id={rule.id: rule for rule in rules})


def check_nudges(book: NudgeBook, *, articles: set[str], milestones: set[str]) -> list[str]:
    """The errors `rahnuma content check` reports for content/nudges.yml."""
    errors: list[str] = []
    seen: set[str] = set()
    for rule in book.rules:
        where = f"nudges.yml: rule {rule.id or '?'}"
        if not _RULE_ID.fullmatch(rule.id):
            errors.append(f"{where}: id must be snake_case, at most 24 characters (it travels in button data)")
        if rule.id in seen:
            errors.append(f"{where}: id used twice")
        seen.add(rule.id)
        if rule.trigger.type not in TRIGGER_TYPES:
            errors.append(f"{where}: trigger type {rule.trigger.type!r} is not one of {', '.join(TRIGGER_TYPES)}")
        if rule.trigger.type in ("joined", "inactive", "stuck", "milestone") and rule.trigger.days < 1:
            errors.append(f"{where}: a {rule.trigger.type} trigger needs days >= 1")
        if rule.trigger.type == "milestone" and rule.trigger.milestone not in milestones:
            errors.append(f"{where}: unknown milestone {rule.trigger.milestone!r}")
        if not 1 <= rule.expires_after_hours <= 24 * 14:
            errors.append(f"{where}: expires_after_hours must be between 1 and 336")
        errors.extend(_check_text(rule.text, where))
        for button in rule.buttons:
            if button.article == NEXT_RUNG and rule.trigger.type != "stuck":
                errors.append(f"{where}: only a stuck rule knows the next rung")
            elif button.article and button.article != NEXT_RUNG and button.article not in articles:
                errors.append(f"{where}: unknown article {button.article!r}")
            if not button.article and not button.effort:
                errors.append(f"{where}: a button needs an article or effort: true")
    for experiment in book.experiments:
        where = f"nudges.yml: experiment {experiment.id or '?'}"
        if experiment.rule not in book.by_id:
            errors.append(f"{where}: unknown rule {experiment.rule!r}")
        if len(experiment.arms) < 2 or len({arm.name for arm in experiment.arms}) != len(experiment.arms):
            errors.append(f"{where}: needs two or more arms with distinct names")
        for arm in experiment.arms:
            if arm.weight < 1:
                errors.append(f"{where}: arm {arm.name} needs a weight >= 1")
            if arm.text is not None:
                errors.extend(_check_text(arm.text, f"{where} arm {arm.name}"))
    return errors


def _check_text(text: Mapping[str, str], where: str) -> list[str]:
    errors = []
    for lang in ("en", "ur"):
        value = text.get(lang, "")
        if not value:
            errors.append(f"{where}: text.{lang} is missing")
            continue
        if len(value) > MAX_NUDGE_CHARS:
            errors.append(f"{where}: text.{lang} has {len(value)} characters (max {MAX_NUDGE_CHARS})")
        unknown = set(re.findall(r"\{(\w+)\}", value)) - _PLACEHOLDERS
        if unknown:
            errors.append(f"{where}: text.{lang} uses unknown placeholders {sorted(unknown)}")
    return errors
