"""The onboarding ladder: which rung each user is on, progress reported in words or ticked with buttons."""

from __future__ import annotations

import functools
import html
import re

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.routes import Routes
from bot.core.types import Button, Reply, UserView
from content.library import Library, Milestone
from nlu.script import with_urdu_letters
from nlu.understanding import Understanding
from storage import milestones as stored_milestones
from storage.codebook import Decision, EventKind
from storage.db import Database
from storage.events import NewEvent, add_event

REPORT_INTENT = "report_progress"
# "sent 5 proposals", "aaj 3 proposal bheje", "۵ پروپوزل" — a number next to a word for proposals or bids.
_EFFORT = re.compile(
    r"(\d+)\s*(?:\w+\s+)?(?:proposals?|bids?|applications?|پروپوزل)|(?:proposals?|bids?)\D{0,12}(\d+)", re.IGNORECASE
)
_URDU_DIGITS = str.maketrans("۰۱۲۳۴۵۶۷۸۹٠١٢٣٤٥٦٧٨٩", "01234567890123456789")


def proposals_count(text: str) -> int | None:
    """How many proposals the message says were sent, if it says so."""
    match = _EFFORT.search(text.translate(_URDU_DIGITS))
    if not match:
        return None
    count = int(match.group(1) or match.group(2))
    return count if 0 < count <= 500 else None


_WORD_GAP = 2  # words allowed between a keyword's own words: "pehla fiverr order" names "pehla order"
_PUNCTUATION = "!?.,;:()\"'۔؟،…"


def _mentions(keyword: str, folded: str, words: list[str]) -> bool:
    """The keyword as written, or its words in order with at most _WORD_GAP others between them, each word a prefix
    of the one in the text ("paise aa" in "paise bank mein aa gaye", "published my gig" in "published my first gig")."""
    if keyword in folded:
        return True
    wanted = keyword.split()
    if len(wanted) < 2:
        return False
    for start, word in enumerate(words):
        if not word.startswith(wanted[0]):
            continue
        position, found = start, 1
        while found < len(wanted):
            window = words[position + 1 : position + 2 + _WORD_GAP]
            step = next((i for i, w in enumerate(window) if w.startswith(wanted[found])), None)
            if step is None:
                break
            position, found = position + 1 + step, found + 1
        if found == len(wanted):
            return True
    return False


def guess_milestone(text: str, milestones: list[Milestone]) -> Milestone | None:
    """The rung a progress report is about: the most keyword hits, the later rung on a tie."""
    position = _rung_position(text, tuple(milestone.keywords for milestone in milestones))
    return None if position is None else milestones[position]


@functools.lru_cache(maxsize=8)
def _spelled_as_trained(keywords_by_rung: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """The keywords with the spellings the NLU reads (nlu/script.py): one keyword serves every Payoneer spelling."""
    return tuple(tuple(with_urdu_letters(keyword) for keyword in keywords) for keywords in keywords_by_rung)


@functools.lru_cache(maxsize=8192)
def _rung_position(text: str, keywords_by_rung: tuple[tuple[str, ...], ...]) -> int | None:
    """Cached: the evaluation and calibrate.py ask about the same message once per threshold setting."""
    folded = with_urdu_letters(text).casefold()
    words = [word.strip(_PUNCTUATION) for word in folded.split()]
    best: tuple[int, int] | None = None
    for position, keywords in enumerate(_spelled_as_trained(keywords_by_rung)):
        hits = sum(1 for keyword in keywords if _mentions(keyword, folded, words))
        if hits and (best is None or (hits, position) > best):
            best = (hits, position)
    return best[1] if best else None


def reads_as_report(text: str, milestones: list[Milestone]) -> bool:
    """True when a message names a rung or a proposal count."""
    return proposals_count(text) is not None or guess_milestone(text, milestones) is not None


@functools.lru_cache(maxsize=4)
def _doubt_pattern(doubt_words: tuple[str, ...]) -> re.Pattern[str]:
    """A question mark, a word from content/milestones.yml `doubt_words`, or "کیا" before other words (at the end it
    is "did", as in "کام مکمل کیا")."""
    words = "|".join(re.escape(with_urdu_letters(word)) for word in doubt_words)
    return re.compile(rf"[?؟]|\b(?:{words})\b|کیا(?=\s+\S)", re.IGNORECASE)


def asks_something(text: str, library: Library) -> bool:
    """True when a message asks something, or says it has not happened or went wrong: not news of a rung reached.
    Read with the spellings the NLU reads, like the rung keywords."""
    return _doubt_pattern(library.doubt_words).search(with_urdu_letters(text)) is not None


def rescued_as_report(text: str, library: Library) -> bool:
    """An "I don't know" becomes a report only when its words name a rung and ask nothing: "pehli kamai ka kya karun"
    names a rung too, and asking it "did you get your first payment?" would not help."""
    return reads_as_report(text, library.milestones) and not asks_something(text, library)


def takes_as_report(text: str, understanding: Understanding, library: Library, bar: float) -> bool:
    """Rasa's report is taken when it names a rung or a count, or when Rasa is at least `bar` sure and it asks nothing
    (then the checklist asks which rung); otherwise it is answered like a question ("aaaaaa" read as a report)."""
    if reads_as_report(text, library.milestones):
        return True
    sure = understanding.source == "rasa" and understanding.confidence >= bar
    return understanding.intent == REPORT_INTENT and sure and not asks_something(text, library)


class Progress:
    """Milestones from content/milestones.yml; state in SQL (`milestone_done`), every change an event."""

    def __init__(
        self, library: Library, db: Database, journal: Journal, clock: Clock, *, report_confidence: float
    ) -> None:
        self.library = library
        self.report_confidence = report_confidence  # Thresholds.report_confidence
        self.db = db
        self.journal = journal
        self.clock = clock
        self.by_id = {m.id: m for m in library.milestones}

    def routes(self, routes: Routes) -> None:
        routes.command("progress", lambda user, _: self.show(user), changes_state=False)
        routes.button(buttons.ConfirmMilestone, self._press_confirm, changes_state=True)
        routes.button(buttons.DeclineMilestone, self._press_decline, changes_state=False)
        routes.button(buttons.SetMilestone, self._press_set, changes_state=True)
        routes.button(buttons.ShowProgress, lambda user, _, __: self.show(user), changes_state=False)
        routes.button(buttons.LegacyToggle, self._press_legacy, changes_state=False)
        routes.intent(REPORT_INTENT, self._told, changes_state=False)
        # "الحمدللہ آج میرا پہلا آرڈر آیا ہے" read by Rasa as an unsure question: a report beats "I don't know"
        routes.unanswered_message(self._unanswered, changes_state=False)
        routes.intent("ask_progress", lambda user, _, __: self.what_next(user), changes_state=False)

    async def _press_confirm(self, user: UserView, action: buttons.ConfirmMilestone, _: object) -> Reply:
        return await self.confirm(user, action.milestone_id, source="text")

    async def _press_decline(self, user: UserView, action: buttons.DeclineMilestone, _: object) -> Reply:
        return Reply(
            text=self.library.text("milestone_not_marked", user.language), decision=Decision.MILESTONE_DECLINED
        )

    async def _press_set(self, user: UserView, action: buttons.SetMilestone, _: object) -> Reply:
        reply = await self.set_state(user, action.milestone_id, done=action.done)
        reply.replace = reply.decision is Decision.MILESTONE_TOGGLED
        return reply

    async def _press_legacy(self, user: UserView, action: buttons.LegacyToggle, _: object) -> Reply:
        reply = await self.show(user)
        reply.replace = True
        return reply

    async def _told(self, user: UserView, text: str, understanding: Understanding) -> Reply | None:
        """A report in words ("pehla order mil gaya"); None when it is not taken (answered as a question)."""
        taken = takes_as_report(text, understanding, self.library, self.report_confidence)
        return await self.report(user, text) if taken else None

    async def _unanswered(self, user: UserView, text: str, _: Understanding) -> Reply | None:
        return await self.report(user, text) if rescued_as_report(text, self.library) else None

    def named_rung(self, text: str) -> Milestone | None:
        """The rung the words name; a proposal count alone names the first proposal."""
        milestone = guess_milestone(text, self.library.milestones)
        if milestone is None and proposals_count(text) is not None:
            return self.by_id.get("first_proposal_sent")
        return milestone

    def offer_to_mark(self, text: str, lang: str) -> list[Button] | None:
        """A button row for an article answered to words that read as a report: "yar meri fiverr gig approve ho gai!!"
        gets the gig article and "✅ Mark done: Profile approved". Nothing is read here; pressing it on a rung already
        reached says so (confirm is idempotent)."""
        milestone = self.named_rung(text) if rescued_as_report(text, self.library) else None
        if milestone is None:
            return None
        label = self.library.text("button_mark_done", lang, title=milestone.title[lang])
        return [Button.of(label, buttons.ConfirmMilestone(milestone.id))]

    async def done_ids(self, user: UserView) -> set[str]:
        """The rungs this user has reached (raises StorageError: an outage must not look like an empty ladder)."""
        if user.id is None:
            return set()
        async with self.db.read() as session:
            return set(await stored_milestones.done(session, user_id=user.id))

    def next_step(self, done: set[str]) -> Milestone | None:
        """The first open rung above the highest one reached (someone with a first order needs no sign-up tips)."""
        ladder = self.library.milestones
        highest = max((i for i, m in enumerate(ladder) if m.id in done), default=-1)
        above = next((m for m in ladder[highest + 1 :] if m.id not in done), None)
        return above or next((m for m in ladder if m.id not in done), None)

    async def report(self, user: UserView, text: str) -> Reply:
        """A progress report in words: record any effort count, then ask to confirm the rung before marking it."""
        lang = user.language
        count = proposals_count(text)
        if count is not None and user.id is not None:
            self.journal.record(
                NewEvent(
                    kind=EventKind.EFFORT_REPORTED,
                    at=self.clock.now(),
                    user_id=user.id,
                    data={"metric": "proposals_sent", "count": count},
                )
            )
        milestone = self.named_rung(text)
        done = await self.done_ids(user)
        prefix = self.library.text("effort_noted", lang, count=count) + "\n" if count is not None else ""
        if milestone is None:
            reply = self.checklist(done, lang)
            reply.text = prefix + self.library.text("progress_which", lang) + "\n\n" + reply.text
            reply.decision = Decision.PROGRESS_WHICH
            return reply
        if milestone.id in done:
            reply = self._next_step_reply(
                done, lang, intro=self.library.text("milestone_already", lang, title=milestone.title[lang])
            )
            reply.text = prefix + reply.text
            reply.decision = Decision.MILESTONE_ALREADY
            return reply
        title = html.escape(milestone.title[lang])
        row = [
            Button.of(self.library.text("button_yes_mark", lang), buttons.ConfirmMilestone(milestone.id)),
            Button.of(self.library.text("button_not_yet", lang), buttons.DeclineMilestone(milestone.id)),
        ]
        return Reply(
            text=prefix + self.library.text("milestone_confirm", lang, title=title),
            buttons=[row],
            decision=Decision.MILESTONE_CONFIRM,
        )

    async def confirm(self, user: UserView, milestone_id: str, *, source: str) -> Reply:
        """Mark a rung done (idempotent), celebrate, and show the next step. Raises StorageError if not saved."""
        lang = user.language
        milestone = self.by_id.get(milestone_id)
        if milestone is None or user.id is None:
            return Reply(text=self.library.text("button_expired", lang), decision=Decision.MILESTONE_UNKNOWN)
        newly = await self._set(user.id, milestone_id, done=True, source=source)
        done = await self.done_ids(user)
        key = "milestone_celebrate" if newly else "milestone_already"
        reply = self._next_step_reply(done, lang, intro=self.library.text(key, lang, title=milestone.title[lang]))
        reply.decision = Decision.MILESTONE_DONE if newly else Decision.MILESTONE_ALREADY
        return reply

    async def set_state(self, user: UserView, milestone_id: str, *, done: bool) -> Reply:
        """A tick or untick from the /progress checklist; the reply is the updated checklist.

        The button says which state it sets, so pressing it twice (or a replayed update) changes nothing.
        """
        if milestone_id not in self.by_id or user.id is None:
            return Reply(text=self.library.text("button_expired", user.language), decision=Decision.MILESTONE_UNKNOWN)
        await self._set(user.id, milestone_id, done=done, source="button")
        reply = self.checklist(await self.done_ids(user), user.language)
        reply.decision = Decision.MILESTONE_TOGGLED
        return reply

    async def _set(self, user_id: int, milestone_id: str, *, done: bool, source: str) -> bool:
        """Mark or unmark, with its event, in one transaction; True when the state changed."""
        now = self.clock.now()
        async with self.db.write() as session:
            if done:
                changed = await stored_milestones.mark(
                    session, user_id=user_id, milestone=milestone_id, source=source, now=now
                )
            else:
                changed = await stored_milestones.unmark(session, user_id=user_id, milestone=milestone_id)
            if changed:
                kind = EventKind.MILESTONE_DONE if done else EventKind.MILESTONE_UNDONE
                data = {"milestone": milestone_id, "source": source}
                await add_event(session, NewEvent(kind=kind, at=now, user_id=user_id, data=data))
        return changed

    async def show(self, user: UserView) -> Reply:
        return self.checklist(await self.done_ids(user), user.language)

    async def what_next(self, user: UserView) -> Reply:
        """ "What should I do next?": the next rung and the article that helps with it."""
        done = await self.done_ids(user)
        total = len(self.library.milestones)
        intro = self.library.text("progress_count", user.language, done=len(done), total=total)
        return self._next_step_reply(done, user.language, intro=intro)

    def checklist(self, done: set[str], lang: str) -> Reply:
        next_step = self.next_step(done)
        lines = [self.library.text("progress_title", lang, done=len(done), total=len(self.library.milestones))]
        rows = []
        for milestone in self.library.milestones:
            reached = milestone.id in done
            mark = "✅" if reached else ("👉" if milestone is next_step else "⬜")
            lines.append(f"{mark} {html.escape(milestone.title[lang])}")
            label = f"{'✅' if reached else '⬜'} {milestone.title[lang]}"
            rows.append([Button.of(label, buttons.SetMilestone(milestone.id, not reached))])
        lines.append("")
        lines.append(self.library.text("progress_hint", lang))
        return Reply(text="\n".join(lines), buttons=rows, intent="ask_progress", decision=Decision.PROGRESS)

    def _next_step_reply(self, done: set[str], lang: str, *, intro: str) -> Reply:
        next_step = self.next_step(done)
        if next_step is None:
            text = f"{intro}\n\n{self.library.text('progress_all_done', lang)}"
            return Reply(text=text, decision=Decision.PROGRESS_NEXT, intent="ask_progress")
        text = f"{intro}\n\n{self.library.text('progress_next', lang, title=html.escape(next_step.title[lang]))}"
        rows = []
        if next_step.article and next_step.article in self.library.articles:
            article = self.library.articles[next_step.article]
            rows.append([Button.of(f"📖 {article.title[lang]}", buttons.OpenArticle(article.id))])
        rows.append([Button.of(self.library.text("button_progress", lang), buttons.ShowProgress())])
        return Reply(text=text, buttons=rows, intent="ask_progress", decision=Decision.PROGRESS_NEXT)
