"""Risk triage: a message that looks like a scam or a payment risk ("pay a fee first", "send your CNIC", "move to
WhatsApp", "buy my verified account") gets the safety article first, whatever else it asks, and the coordinators'
group gets a pseudonymous alert (at most one per person and rule every few hours, and a cap per hour in all).
The patterns are data: content/risk.yml, checked by `rahnuma content check`."""

from __future__ import annotations

import datetime as dt
import html

from bot.core.answers import Answers
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.outbox import outbound
from bot.core.routes import Routes
from bot.core.types import Reply, UserView
from content.coordinators import CoordinatorContent, RiskRule
from content.library import Library
from storage import handoff as stored_handoff
from storage import outbox as stored_outbox
from storage.codebook import Decision, EventKind
from storage.db import Database, StorageError
from storage.events import NewEvent

CAMPAIGN = "risk"


class Risk:
    def __init__(
        self,
        library: Library,
        content: CoordinatorContent,
        db: Database,
        clock: Clock,
        journal: Journal,
        answers: Answers,
        *,
        chat_id: int | None,
    ) -> None:
        self.library = library
        self.book = content.risk
        self.db = db
        self.clock = clock
        self.journal = journal
        self.answers = answers
        self.chat_id = chat_id

    def routes(self, routes: Routes) -> None:
        routes.intercept(self.check, logged_as=EventKind.MESSAGE)

    async def check(self, user: UserView, text: str, received_at: dt.datetime) -> Reply | None:
        rule = self.book.first_match(text)
        if rule is None or rule.article not in self.library.articles:
            return None
        lang = user.language
        article = self.library.articles[rule.article]
        reply = self.answers.answer(article, lang, decision=Decision.RISK_WARNING)
        reply.text = "\n\n".join(
            [self.library.text("risk_warning", lang), reply.text, self.library.text("risk_more", lang)]
        )
        alerted = False
        if user.id is not None and self.chat_id is not None:
            try:
                alerted = await self._alert(user, rule, text)
            except StorageError:
                alerted = False  # the safety answer matters more than the alert
        self.journal.record(
            NewEvent(
                kind=EventKind.RISK_FLAGGED,
                at=self.clock.now(),
                user_id=user.id,
                article_id=article.id,
                data={"rule": rule.id, "article": article.id, "alerted": alerted},
            )
        )
        return reply

    async def _alert(self, user: UserView, rule: RiskRule, text: str) -> bool:
        assert self.chat_id is not None and user.id is not None
        now = self.clock.now()
        bucket = int(now.timestamp() // (self.book.alert_every_hours * 3600))
        words = (
            self.library.text("risk_alert_words", "en", text=html.escape(text[:300]))
            if user.research_consent
            else self.library.text("risk_alert_no_words", "en")
        )
        body = self.library.text(
            "risk_alert",
            "en",
            rule=rule.id,
            user=f"№{user.id}",
            lang=user.language,
            article=html.escape(self.library.articles[rule.article].title["en"]),
            words=words,
        )
        message = outbound(
            kind="system",
            reply=Reply(text=body),
            chat_id=self.chat_id,
            user_id=None,
            dedupe_key=f"risk:{user.id}:{rule.id}:{bucket}",
            not_before=now,
            campaign=CAMPAIGN,
            meta={"rule": rule.id},
        )
        async with self.db.write() as session:
            recent = await stored_handoff.enqueued_since(session, campaign=CAMPAIGN, since=now - dt.timedelta(hours=1))
            if recent >= self.book.alerts_per_hour:
                return False
            return bool(await stored_outbox.enqueue(session, messages=[message], now=now))
