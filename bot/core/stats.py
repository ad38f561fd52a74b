"""/stats and /unanswered for coordinators and researchers: aggregates from storage/stats.py, rendered short."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re
from dataclasses import dataclass, field

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.roles import Roles, telegram_id
from bot.core.routes import Routes
from bot.core.types import Button, Reply, UserView
from content.library import Library
from storage import stats as stored
from storage.codebook import Decision, EventKind
from storage.db import Database
from storage.events import NewEvent

WINDOW_DAYS = 30
SIMILARITY = 0.5  # Jaccard overlap of word sets for two questions to fall in one group
MAX_GROUPS = 8
_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "is",
        "are",
        "am",
        "i",
        "me",
        "my",
        "to",
        "of",
        "in",
        "on",
        "for",
        "and",
        "or",
        "how",
        "do",
        "does",
        "can",
        "what",
        "why",
        "when",
        "where",
        "which",
        "ka",
        "ki",
        "ke",
        "ko",
        "se",
        "hai",
        "hain",
        "kya",
        "kaise",
        "mein",
        "main",
        "mera",
        "meri",
        "mujhe",
        "ho",
        "hota",
        "hoti",
        "hy",
        "he",
        "se",
        "kar",
        "karna",
        "karen",
    ]
)


def words_of(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.casefold()) if w not in _STOP and len(w) > 1)


@dataclass
class QuestionGroup:
    """Similar unanswered questions: one example (from a consenting user) and how many there were."""

    example: str
    words: frozenset[str]
    count: int = 1
    key: str = ""
    samples: list[str] = field(default_factory=list)


def group_questions(texts: list[str]) -> list[QuestionGroup]:
    """Greedy grouping by word overlap, biggest groups first; deterministic for the same input."""
    groups: list[QuestionGroup] = []
    for text in texts:
        words = words_of(text)
        if not words:
            continue
        best: QuestionGroup | None = None
        best_score = 0.0
        for group in groups:
            score = len(words & group.words) / len(words | group.words)
            if score > best_score:
                best, best_score = group, score
        if best is not None and best_score >= SIMILARITY:
            best.count += 1
            if len(best.samples) < 3 and text not in best.samples:
                best.samples.append(text)
        else:
            groups.append(QuestionGroup(example=text, words=words, samples=[text]))
    for group in groups:
        group.key = hashlib.sha1(" ".join(sorted(group.words)).encode()).hexdigest()[:12]
    return sorted(groups, key=lambda g: (-g.count, g.example))


class Stats:
    def __init__(self, library: Library, db: Database, clock: Clock, journal: Journal, roles: Roles) -> None:
        self.library = library
        self.db = db
        self.clock = clock
        self.journal = journal
        self.roles = roles

    def routes(self, routes: Routes) -> None:
        routes.command("stats", lambda user, _: self.stats(user), changes_state=False)
        routes.command("unanswered", lambda user, _: self.unanswered(user), changes_state=False)
        routes.command("export", lambda user, _: self.export_elsewhere(user), changes_state=False)
        routes.button(buttons.UnansweredAdded, self.mark_added, changes_state=False)

    def _refused(self, user: UserView, command: str) -> Reply:
        self.journal.record(
            NewEvent(kind=EventKind.ADMIN_REFUSED, at=self.clock.now(), user_id=user.id, data={"command": command})
        )
        return Reply(text=self.library.text("admin_refused", user.language), decision=Decision.ADMIN_REFUSED)

    async def export_elsewhere(self, user: UserView) -> Reply:
        """/export where no document can be sent (the terminal; Telegram's own /export handler answers staff there
        with the zip): staff learn where the export is made, everyone else gets the same polite no as /stats."""
        if not self.roles.may_read_stats(telegram_id(user)):
            return self._refused(user, "export")
        return Reply(text=self.library.text("export_elsewhere", user.language), decision=Decision.EXPORT_ELSEWHERE)

    async def stats(self, user: UserView) -> Reply:
        """/stats: the flock at a glance."""
        if not self.roles.may_read_stats(telegram_id(user)):
            return self._refused(user, "stats")
        lang = user.language
        now = self.clock.now()
        milestones = [m.id for m in self.library.milestones]
        medians_for: list[str] = [m for m in ("first_proposal_sent", "first_job_won") if m in milestones]
        async with self.db.read() as session:
            o = await stored.overview(session, now=now, milestones=milestones, medians_for=medians_for)
        text = self.library.text
        lines = [
            text("stats_title", lang, days=WINDOW_DAYS),
            text("stats_users", lang, users=o.users, active_7=o.active_7, active_30=o.active_30),
            "",
            text("stats_funnel", lang),
        ]
        titles = {m.id: m.title.get(lang) or m.id for m in self.library.milestones}
        for milestone, count in o.funnel.items():
            share = f"{100 * count / o.users:.0f}%" if o.users else "–"
            lines.append(f"• {html.escape(titles[milestone])}: {count} ({share})")
        for milestone, days in o.median_days.items():
            value = f"{days:g}" if days is not None else "–"
            lines.append(text("stats_median", lang, milestone=html.escape(titles[milestone]), days=value))
        share = f"{100 * o.unanswered / o.questions:.0f}%" if o.questions else "–"
        lines += ["", text("stats_questions", lang, questions=o.questions, unanswered=o.unanswered, share=share)]
        if o.top_articles:
            lines.append(text("stats_top", lang))
            for article, count in o.top_articles[:5]:
                up, down = o.feedback.get(article, (0, 0))
                title = self.library.articles[article].title[lang] if article in self.library.articles else article
                lines.append(f"• {html.escape(title)}: {count} · 👍 {up} 👎 {down}")
        lines.append(text("stats_nudges", lang, sent=o.nudges_sent, responded=o.nudges_responded))
        return Reply(text="\n".join(lines), decision=Decision.STATS)

    async def unanswered(self, user: UserView) -> Reply:
        """/unanswered: what the bot could not answer, grouped, and the answers people disliked."""
        if not self.roles.may_read_stats(telegram_id(user)):
            return self._refused(user, "unanswered")
        lang = user.language
        since = self.clock.now() - dt.timedelta(days=WINDOW_DAYS)
        async with self.db.read() as session:
            questions = await stored.unanswered_since(session, since=since)
            disliked = await stored.disliked_since(session, since=since)
            done = await stored.marked_added_since(session, since=since)
        with_words = [q.text for q in questions if q.text]
        without = len(questions) - len(with_words)
        groups = [g for g in group_questions(with_words) if g.key not in done][:MAX_GROUPS]
        lines = [self.library.text("unanswered_title", lang, days=WINDOW_DAYS, total=len(questions))]
        rows = []
        for number, group in enumerate(groups, start=1):
            example = html.escape(group.example[:120])
            lines.append(f"{number}. ({group.count}×) “{example}”")
            label = self.library.text("button_added_to_content", lang, number=number)
            rows.append([Button.of(label, buttons.UnansweredAdded(group.key))])
        if without:
            lines.append(self.library.text("unanswered_without_words", lang, count=without))
        if disliked:
            lines.append(self.library.text("unanswered_disliked", lang))
            for article, count in disliked:
                title = self.library.articles[article].title[lang] if article in self.library.articles else article
                lines.append(f"• 👎 {count}: {html.escape(title)}")
        if not questions and not disliked:
            lines.append(self.library.text("unanswered_none", lang))
        return Reply(text="\n".join(lines), buttons=rows, decision=Decision.UNANSWERED_LIST)

    async def mark_added(self, user: UserView, action: buttons.UnansweredAdded, _: dt.datetime) -> Reply:
        if not self.roles.may_read_stats(telegram_id(user)):
            return self._refused(user, "unanswered")
        since = self.clock.now() - dt.timedelta(days=WINDOW_DAYS)
        async with self.db.read() as session:
            questions = await stored.unanswered_since(session, since=since)
        groups = {g.key: g for g in group_questions([q.text for q in questions if q.text])}
        group = groups.get(action.group)
        self.journal.record(
            NewEvent(
                kind=EventKind.UNANSWERED_ADDED,
                at=self.clock.now(),
                user_id=user.id,
                data={"group": action.group, "count": group.count if group else 0},
            )
        )
        reply = Reply(text=self.library.text("unanswered_marked", user.language), decision=Decision.UNANSWERED_ADDED)
        reply.toast_only = True
        return reply
