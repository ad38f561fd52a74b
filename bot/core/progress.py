"""The onboarding ladder: which rung each user is on, progress reported in words or ticked with buttons."""

from __future__ import annotations

import html
import re

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.turns import Turns, UserView
from bot.core.types import Button, Reply
from content.library import Library, Milestone
from storage import repository

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


def guess_milestone(text: str, milestones: list[Milestone]) -> Milestone | None:
    """The rung a progress report is about: the most keyword hits, the later rung on a tie."""
    folded = text.casefold()
    best: tuple[int, int, Milestone] | None = None
    for position, milestone in enumerate(milestones):
        hits = sum(1 for keyword in milestone.keywords if keyword in folded)
        if hits and (best is None or (hits, position) > best[:2]):
            best = (hits, position, milestone)
    return best[2] if best else None


class Progress:
    """Milestones from content/milestones.yml; state in SQL (`milestone_done`), every change an event."""

    def __init__(self, library: Library, turns: Turns) -> None:
        self.library = library
        self.turns = turns
        self.by_id = {m.id: m for m in library.milestones}

    def recognises(self, text: str) -> bool:
        """True when a report names a rung or a proposal count; otherwise it is answered like a question."""
        return proposals_count(text) is not None or guess_milestone(text, self.library.milestones) is not None

    async def done_ids(self, user: UserView) -> set[str]:
        if user.id is None:
            return set()
        user_id = user.id

        async def read(session: AsyncSession) -> set[str]:
            return set(await repository.milestones_done(session, user_id=user_id))

        return await self.turns.write(read) or set()

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
        if count is not None:
            await self.turns.event(user, "effort_reported", data={"metric": "proposals_sent", "count": count})
        milestone = guess_milestone(text, self.library.milestones)
        if milestone is None and count is not None:
            milestone = self.by_id.get("first_proposal_sent")
        done = await self.done_ids(user)
        prefix = self.library.text("effort_noted", lang, count=count) + "\n" if count is not None else ""
        if milestone is None:
            reply = self.checklist(done, lang)
            reply.text = prefix + self.library.text("progress_which", lang) + "\n\n" + reply.text
            reply.decision = "progress_which"
            return reply
        if milestone.id in done:
            reply = self._next_step_reply(
                done, lang, intro=self.library.text("milestone_already", lang, title=milestone.title[lang])
            )
            reply.text = prefix + reply.text
            return reply
        title = html.escape(milestone.title[lang])
        return Reply(
            text=prefix + self.library.text("milestone_confirm", lang, title=title),
            buttons=[[
                Button(self.library.text("button_yes_mark", lang), f"ms:yes:{milestone.id}"),
                Button(self.library.text("button_not_yet", lang), f"ms:no:{milestone.id}"),
            ]],
            decision="milestone_confirm",
        )  # fmt: skip

    async def confirm(self, user: UserView, milestone_id: str, *, source: str) -> Reply:
        """Mark a rung done (idempotent), celebrate, and show the next step."""
        lang = user.language
        milestone = self.by_id.get(milestone_id)
        if milestone is None or user.id is None:
            return Reply(text=self.library.text("error", lang), decision="milestone_unknown")
        user_id = user.id

        async def mark(session: AsyncSession) -> bool:
            newly = await repository.mark_milestone(session, user_id=user_id, milestone=milestone_id, source=source)
            if newly:
                await repository.record_event(
                    session, user_id=user_id, kind="milestone_done", data={"milestone": milestone_id, "source": source}
                )
            return newly

        newly = await self.turns.write(mark)
        done = await self.done_ids(user)
        key = "milestone_celebrate" if newly else "milestone_already"
        reply = self._next_step_reply(done, lang, intro=self.library.text(key, lang, title=milestone.title[lang]))
        reply.decision = "milestone_done" if newly else "milestone_already"
        return reply

    async def toggle(self, user: UserView, milestone_id: str) -> Reply:
        """A tick or untick from the /progress checklist; the reply is the updated checklist."""
        if milestone_id not in self.by_id or user.id is None:
            return Reply(text=self.library.text("error", user.language), decision="milestone_unknown")
        user_id = user.id

        async def flip(session: AsyncSession) -> None:
            if await repository.unmark_milestone(session, user_id=user_id, milestone=milestone_id):
                kind = "milestone_undone"
            else:
                await repository.mark_milestone(session, user_id=user_id, milestone=milestone_id, source="button")
                kind = "milestone_done"
            await repository.record_event(
                session, user_id=user_id, kind=kind, data={"milestone": milestone_id, "source": "button"}
            )

        await self.turns.write(flip)
        reply = self.checklist(await self.done_ids(user), user.language)
        reply.decision = "milestone_toggled"
        return reply

    async def show(self, user: UserView) -> Reply:
        return self.checklist(await self.done_ids(user), user.language)

    async def what_next(self, user: UserView) -> Reply:
        """ "What should I do next?": the next rung and the article that helps with it."""
        done = await self.done_ids(user)
        return self._next_step_reply(
            done,
            user.language,
            intro=self.library.text(
                "progress_count", user.language, done=len(done), total=len(self.library.milestones)
            ),
        )

    def checklist(self, done: set[str], lang: str) -> Reply:
        next_step = self.next_step(done)
        lines = [self.library.text("progress_title", lang, done=len(done), total=len(self.library.milestones))]
        buttons = []
        for milestone in self.library.milestones:
            mark = "✅" if milestone.id in done else ("👉" if milestone is next_step else "⬜")
            lines.append(f"{mark} {html.escape(milestone.title[lang])}")
            buttons.append(
                [
                    Button(
                        f"{'✅' if milestone.id in done else '⬜'} {milestone.title[lang]}"[:60],
                        f"ms:tog:{milestone.id}",
                    )
                ]
            )
        lines.append("")
        lines.append(self.library.text("progress_hint", lang))
        return Reply(text="\n".join(lines), buttons=buttons, intent="ask_progress", decision="progress")

    def _next_step_reply(self, done: set[str], lang: str, *, intro: str) -> Reply:
        next_step = self.next_step(done)
        if next_step is None:
            return Reply(text=f"{intro}\n\n{self.library.text('progress_all_done', lang)}", decision="progress_next")
        text = f"{intro}\n\n{self.library.text('progress_next', lang, title=html.escape(next_step.title[lang]))}"
        buttons = []
        if next_step.article and next_step.article in self.library.articles:
            article = self.library.articles[next_step.article]
            buttons.append([Button(f"📖 {article.title[lang]}"[:60], f"art:{article.id}")])
        buttons.append([Button(self.library.text("button_progress", lang), "ms:show")])
        return Reply(text=text, buttons=buttons, intent="ask_progress", decision="progress_next")
