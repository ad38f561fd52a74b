"""Load and validate the curated articles and UI texts once at start; nothing else reads content files."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from content import yamlio
from content.nudges import NudgeBook, check_nudges, load_nudges

CONTENT_DIR = Path(__file__).resolve().parent
ARTICLES_DIR = CONTENT_DIR / "articles"
TOPICS = ("getting_started", "onboarding", "bidding", "payments", "safety")
Language = Literal["en", "ur"]
LANGUAGES: tuple[Language, ...] = ("en", "ur")
MAX_BODY_CHARS = 1200
MIN_QUESTIONS = 8
STALE_AFTER_DAYS = 180

# A question that asks for a figure (an amount, a count, a duration, a fee or a limit), in English, Roman Urdu
# (as Pakistanis type it) or Urdu script. An article with such a question must state a figure in each body.
ASKS_FOR_A_NUMBER = re.compile(
    r"\bhow (?:much|many|long|soon)\b|\bwhat percent|\bpercentage\b|\bcommission\b|\blimits?\b|\bminimum\b|\bmaximum\b"
    r"|\b(?:what|which)(?: is| are)?(?: the)? (?:fees?|charges)\b|\b(?:fees?|charges) (?:for|of|kya|kia|kitni|kitna)\b"
    r"|\bkit(?:na|ni|ne|nay|ny|nai|nee)\b|\bketne\b|\bkab tak\b"
    r"|کتنا|کتنی|کتنے|کمیشن|کم از کم|لمٹ|(?<!\w)حد(?!\w)",
    re.IGNORECASE,
)
DIGIT = re.compile(r"[0-9۰-۹٠-٩]")


class ContentError(ValueError):
    """The content files break a rule; the message names the file."""


@dataclass(frozen=True)
class Source:
    title: str
    url: str


@dataclass(frozen=True)
class Article:
    id: str
    topic: str
    platforms: tuple[str, ...]
    title: Mapping[str, str]
    questions: tuple[str, ...]
    reviewed: dt.date
    sources: tuple[Source, ...]
    body: Mapping[str, str]

    @property
    def intent(self) -> str:
        """The top-level intent this article answers (getting started counts as onboarding)."""
        return "ask_onboarding" if self.topic == "getting_started" else f"ask_{self.topic}"


@dataclass(frozen=True)
class Milestone:
    id: str
    title: Mapping[str, str]
    article: str | None
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class Tip:
    id: str
    milestone: str | None
    text: Mapping[str, str]


@dataclass
class Library:
    """All articles by id, UI texts, milestones and tips."""

    articles: dict[str, Article]
    ui: dict[str, dict[str, str]]
    milestones: list[Milestone] = field(default_factory=list)
    tips: list[Tip] = field(default_factory=list)
    nudges: NudgeBook = field(default_factory=NudgeBook)
    # Words that make a message a question or a doubt, not news of a rung reached (milestones.yml `doubt_words`)
    doubt_words: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[Article]:
        return iter(self.articles.values())

    def text(self, key: str, language: str, **values: object) -> str:
        """A UI text in the language (English when missing), with `{placeholders}` filled."""
        entry = self.ui[key]
        template = entry.get(language) or entry["en"]
        return template.format(**values) if values else template


_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)
_SECTION = re.compile(r"^## (en|ur)\s*$", re.MULTILINE)


def parse_article(path: Path) -> Article:
    """Parse one Markdown article; raise ContentError naming the file on any schema problem."""
    match = _FRONT_MATTER.match(path.read_text(encoding="utf-8"))
    if not match:
        raise ContentError(f"{path.name}: missing YAML front matter between '---' lines")
    try:
        meta = yamlio.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ContentError(f"{path.name}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ContentError(f"{path.name}: front matter must be a mapping")
    body = _split_sections(path.name, match.group(2))
    try:
        return Article(
            id=path.stem,
            topic=_require(meta, "topic", str, path),
            platforms=tuple(_require(meta, "platforms", list, path)),
            title={lang: str(_require(meta, "title", dict, path).get(lang, "")).strip() for lang in LANGUAGES},
            questions=tuple(str(q).strip() for q in _require(meta, "questions", list, path)),
            reviewed=_as_date(_require(meta, "reviewed", object, path), path),
            sources=tuple(
                Source(title=str(s.get("title", "")).strip(), url=str(s.get("url", "")).strip())
                for s in _require(meta, "sources", list, path)
                if isinstance(s, dict)
            ),
            body=body,
        )
    except (AttributeError, TypeError) as exc:
        raise ContentError(f"{path.name}: {exc}") from exc


def _require(meta: dict[str, Any], key: str, kind: type, path: Path) -> Any:
    if key not in meta or meta[key] is None:
        raise ContentError(f"{path.name}: front matter lacks '{key}'")
    if not isinstance(meta[key], kind):
        raise ContentError(f"{path.name}: '{key}' should be a {kind.__name__}")
    return meta[key]


def _as_date(value: object, path: Path) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ContentError(f"{path.name}: 'reviewed' must be a date like 2026-11-27") from exc


def _split_sections(name: str, text: str) -> dict[str, str]:
    parts = _SECTION.split(text)
    sections = {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}
    return {lang: sections.get(lang, "") for lang in LANGUAGES}


def _load_yaml(path: Path) -> Any:
    return yamlio.safe_load(path.read_text(encoding="utf-8")) if path.exists() else None


def load_library(directory: Path = CONTENT_DIR) -> Library:
    """Read every article, the UI texts, milestones and tips. Raises ContentError on a broken file."""
    articles = {article.id: article for article in map(parse_article, sorted((directory / "articles").glob("*.md")))}
    ui = _load_yaml(directory / "ui.yml") or {}
    ladder = _load_yaml(directory / "milestones.yml") or {}
    milestones = [
        Milestone(
            id=m["id"],
            title=m["title"],
            article=m.get("article"),
            keywords=tuple(str(k).casefold() for k in m.get("keywords") or ()),
        )
        for m in ladder.get("milestones", [])
    ]
    doubt_words = tuple(str(word).casefold() for words in (ladder.get("doubt_words") or {}).values() for word in words)
    tips = [
        Tip(id=t["id"], milestone=t.get("milestone"), text=t["text"])
        for t in (_load_yaml(directory / "tips.yml") or {}).get("tips", [])
    ]
    nudges = load_nudges(directory / "nudges.yml")
    return Library(articles=articles, ui=ui, milestones=milestones, tips=tips, nudges=nudges, doubt_words=doubt_words)


@dataclass(frozen=True)
class CheckReport:
    errors: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.errors


def check_library(library: Library, *, today: dt.date | None = None) -> CheckReport:
    """The rules of content/README.md: what `rahnuma content check` reports."""
    today = today or dt.date.today()
    errors: list[str] = []
    warnings: list[str] = []
    owner_of_question: dict[str, str] = {}
    for article in library:
        where = f"{article.id}.md"
        if not re.fullmatch(r"[a-z][a-z0-9_]*", article.id):
            errors.append(f"{where}: file name must be snake_case (it is the intent faq/<id>)")
        if article.topic not in TOPICS:
            errors.append(f"{where}: topic {article.topic!r} is not one of {', '.join(TOPICS)}")
        if not article.platforms:
            errors.append(f"{where}: list at least one platform (or 'general')")
        for lang in LANGUAGES:
            if not article.title.get(lang):
                errors.append(f"{where}: title.{lang} is missing")
            if not article.body.get(lang):
                errors.append(f"{where}: the '## {lang}' body is missing")
            elif len(article.body[lang]) > MAX_BODY_CHARS:
                errors.append(
                    f"{where}: the {lang} body has {len(article.body[lang])} characters (max {MAX_BODY_CHARS})"
                )
        errors.extend(_missing_figures(article, where))
        if len(article.questions) < MIN_QUESTIONS:
            errors.append(f"{where}: {len(article.questions)} questions; at least {MIN_QUESTIONS} train the NLU")
        for question in article.questions:
            key = normalise_question(question)
            if key in owner_of_question and owner_of_question[key] != article.id:
                errors.append(f"{where}: question {question!r} is also in {owner_of_question[key]}.md")
            owner_of_question.setdefault(key, article.id)
        if not article.sources or not all(s.url.startswith(("https://", "http://")) for s in article.sources):
            errors.append(f"{where}: every article needs sources with http(s) URLs")
        age = (today - article.reviewed).days
        if age > STALE_AFTER_DAYS:
            warnings.append(f"{where}: reviewed {age} days ago ({article.reviewed}); check the sources again")
        if article.reviewed > today:
            errors.append(f"{where}: reviewed date {article.reviewed} is in the future")
    for milestone in library.milestones:
        if milestone.article and milestone.article not in library.articles:
            errors.append(f"milestones.yml: {milestone.id} points to unknown article {milestone.article!r}")
    if library.milestones and not library.doubt_words:
        errors.append("milestones.yml: doubt_words is missing (every question naming a rung would read as a report)")
    for key, entry in library.ui.items():
        for lang in LANGUAGES:
            if not entry.get(lang):
                errors.append(f"ui.yml: {key}.{lang} is missing")
    errors.extend(
        check_nudges(library.nudges, articles=set(library.articles), milestones={m.id for m in library.milestones})
    )
    return CheckReport(errors=errors, warnings=warnings)


def asks_for_a_number(question: str) -> bool:
    """True for "how much does fiverr take", "kitne din lagte hain", "فیس کتنی ہے"…"""
    return ASKS_FOR_A_NUMBER.search(question) is not None


def _missing_figures(article: Article, where: str) -> list[str]:
    """Errors for each body without a digit when the article's own questions ask for a number."""
    asking = [q for q in article.questions if asks_for_a_number(q)]
    if not asking:
        return []
    return [
        f"{where}: questions ask for a number (e.g. {asking[0]!r}) but the {lang} body has no digit; "
        "give the sourced figure with its date"
        for lang in LANGUAGES
        if article.body.get(lang) and not DIGIT.search(article.body[lang])
    ]


def normalise_question(text: str) -> str:
    """Case- and punctuation-insensitive form used to find the same question in two articles."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")


def to_telegram_html(markdown: str) -> str:
    """Render the small Markdown subset of articles as Telegram HTML (everything else escaped)."""
    escaped = html.escape(markdown, quote=False)
    escaped = _LINK.sub(lambda m: f'<a href="{m.group(2).replace(chr(34), "%22")}">{m.group(1)}</a>', escaped)
    escaped = _BOLD.sub(r"<b>\1</b>", escaped)
    return re.sub(r"^- ", "• ", escaped, flags=re.MULTILINE)
