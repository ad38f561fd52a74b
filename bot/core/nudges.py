"""Nudges: Rahnuma checks in on its own, at the right time, at the pace each person chose.

Planning (run by the dispatcher) turns the rules of content/nudges.yml into outbox rows: it finds whose trigger
fired since the last pass, respects each person's pace, caps (one a day, three a week, weekly once three went
unanswered) and experiments, and enqueues each nudge once (its dedupe key names the rule, the user and the
occurrence). Quiet hours and expiry are applied when the dispatcher sends, so a held nudge waits for morning.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.core import buttons
from bot.core.answers import Answers
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.outbox import PROACTIVE_KINDS, outbound
from bot.core.routes import Routes
from bot.core.types import Button, Reply, UserView
from content.library import Library, Milestone
from content.nudges import NEXT_RUNG, Arm, Experiment, NudgeRule
from storage import nudges as planning
from storage import outbox as stored_outbox
from storage import users as stored_users
from storage.codebook import Decision, EventKind
from storage.db import Database, Session
from storage.events import NewEvent, add_events
from storage.nudges import Candidate
from storage.outbox import NewMessage

DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(days=7)
WEEKLY_SLOT_HOUR_UTC = 5  # 10:00 in Pakistan: each weekday, one seventh of the eligible users get the check-in
EFFORT_CHOICES = (("0", "0"), ("1", "1–2"), ("3", "3–5"), ("6", "6–9"), ("10", "10+"))
PACES: tuple[Literal["daily", "weekly", "off"], ...] = ("daily", "weekly", "off")


@dataclass(frozen=True)
class NudgeSettings:
    daily_cap: int = 1
    weekly_cap: int = 3
    ignored_after: int = 3  # this many unanswered nudges in a row: one a week at most, until the user writes


@dataclass(frozen=True)
class PlannedNudge:
    user_id: int
    rule: str
    due: dt.datetime
    not_before: dt.datetime
    expires_at: dt.datetime
    arm: str | None
    withheld: bool
    reason: str


@dataclass
class PlanReport:
    candidates: int = 0
    planned: list[PlannedNudge] = field(default_factory=list)
    enqueued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)


def arm_for(experiment: Experiment, user_id: int) -> Arm:
    """A stable, even assignment: the same user always lands in the same arm of an experiment."""
    digest = hashlib.sha256(f"{experiment.id}:{user_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % sum(arm.weight for arm in experiment.arms)
    for arm in experiment.arms:
        if point < arm.weight:
            return arm
        point -= arm.weight
    return experiment.arms[-1]


def fits(moment: dt.datetime, taken: Sequence[dt.datetime], span: dt.timedelta, cap: int) -> bool:
    """True when one more nudge at `moment` keeps every window of length `span` at `cap` nudges or fewer."""
    starts = [t for t in taken if moment - span < t <= moment] + [moment]
    for start in starts:
        inside = sum(1 for t in taken if start <= t < start + span) + (1 if start <= moment < start + span else 0)
        if inside > cap:
            return False
    return True


def earliest_allowed(due: dt.datetime, taken: Sequence[dt.datetime], *, daily: int, weekly: int) -> dt.datetime:
    """The first moment at or after `due` when a nudge keeps within the caps."""
    options = sorted({due, *(t + DAY for t in taken), *(t + WEEK for t in taken)})
    for moment in options:
        if moment >= due and fits(moment, taken, DAY, daily) and fits(moment, taken, WEEK, weekly):
            return moment
    return max(options) + WEEK


class NudgePlanner:
    def __init__(self, library: Library, db: Database, clock: Clock, settings: NudgeSettings | None = None) -> None:
        self.library = library
        self.db = db
        self.clock = clock
        self.settings = settings or NudgeSettings()
        self.rules = sorted(library.nudges.rules, key=lambda rule: rule.priority)
        self.ladder = [m.id for m in library.milestones]

    async def plan(
        self,
        *,
        now: dt.datetime | None = None,
        dry_run: bool = False,
        use_cursor: bool = True,
        user_id: int | None = None,
    ) -> PlanReport:
        """One planning pass. Without the cursor (previews, `dispatch --at`) it looks back over each rule's expiry
        window and moves no cursor; enqueueing is still once per dedupe key."""
        now = now or self.clock.now()
        report = PlanReport()
        unit = self.db.read() if dry_run else self.db.write()
        async with unit as session:
            found: list[tuple[NudgeRule, Candidate]] = []
            for rule in self.rules:
                lookback = now - dt.timedelta(hours=rule.expires_after_hours)
                start = lookback
                if use_cursor and not dry_run:
                    start = max(
                        await planning.cursor(session, name=f"nudge:{rule.id}", lock=True) or lookback, lookback
                    )
                if start < now:
                    found.extend((rule, c) for c in await self._candidates(session, rule, start, now))
            if user_id is not None:
                found = [(rule, c) for rule, c in found if c.user_id == user_id]
            report.candidates = len(found)
            user_ids = sorted({c.user_id for _, c in found})
            earliest = min((c.due for _, c in found), default=now) - WEEK
            history = await stored_outbox.nudges_for_users(session, user_ids=user_ids, since=earliest)
            rungs = (
                await planning.milestones_of(session, user_ids=user_ids)
                if any(rule.trigger.type == "stuck" for rule, _ in found)
                else {}
            )
            messages: list[NewMessage] = []
            assignments: list[tuple[int, str, str]] = []
            for rule, candidate in sorted(found, key=lambda pair: (pair[1].due, pair[0].priority)):
                planned = self._plan_one(rule, candidate, history, rungs, report, now)
                if planned is None:
                    continue
                message, nudge, experiment = planned
                messages.append(message)
                report.planned.append(nudge)
                history.setdefault(candidate.user_id, []).append((nudge.not_before, "pending", None))
                if experiment is not None and nudge.arm is not None:
                    assignments.append((candidate.user_id, experiment.id, nudge.arm))
            if dry_run:
                return report
            inserted = await stored_outbox.enqueue(session, messages=messages, now=now)
            report.enqueued = len(inserted)
            await self._record(session, messages, inserted, assignments, now)
            if use_cursor:
                for rule in self.rules:
                    await planning.advance_cursor(session, name=f"nudge:{rule.id}", until=now)
        return report

    async def _candidates(self, s: Session, rule: NudgeRule, start: dt.datetime, end: dt.datetime) -> list[Candidate]:
        trigger = rule.trigger
        if trigger.type == "joined":
            return await planning.joined_between(s, after=start, until=end, days=trigger.days)
        if trigger.type == "inactive":
            return await planning.silent_between(s, after=start, until=end, days=trigger.days)
        if trigger.type == "stuck":
            return await planning.reached_between(s, after=start, until=end, days=trigger.days, only_latest=True)
        if trigger.type == "milestone":
            return await planning.reached_between(
                s, after=start, until=end, days=trigger.days, milestone=trigger.milestone
            )
        if trigger.type == "weekly_effort":
            found: list[Candidate] = []
            day = start.date()
            while day <= end.date():
                slot = dt.datetime.combine(day, dt.time(WEEKLY_SLOT_HOUR_UTC), tzinfo=dt.UTC)
                if start < slot <= end:
                    found.extend(
                        await planning.weekly_slot(
                            s,
                            weekday=day.weekday(),
                            due=slot,
                            reached="first_proposal_sent",
                            not_reached="first_job_won",
                            active_since=slot - dt.timedelta(days=trigger.active_days),
                        )
                    )
                day += DAY
            return found
        return []

    def _plan_one(
        self,
        rule: NudgeRule,
        candidate: Candidate,
        history: dict[int, list[tuple[dt.datetime, str, dt.datetime | None]]],
        rungs: dict[int, set[str]],
        report: PlanReport,
        now: dt.datetime,
    ) -> tuple[NewMessage, PlannedNudge, Experiment | None] | None:
        past = history.get(candidate.user_id, [])
        ignored = sum(
            1
            for when, status, responded in past
            if status == "sent" and responded is None and when > candidate.last_seen_at
        )
        weekly_only = candidate.nudge_pace == "weekly" or ignored >= self.settings.ignored_after
        weekly = 1 if weekly_only else self.settings.weekly_cap
        taken = [when for when, _, _ in past]
        not_before = earliest_allowed(candidate.due, taken, daily=self.settings.daily_cap, weekly=weekly)
        expires_at = candidate.due + dt.timedelta(hours=rule.expires_after_hours)
        if not_before > expires_at:
            report.skipped["caps"] += 1
            return None
        not_before = max(not_before, candidate.due)
        next_rung = None
        if rule.trigger.type == "stuck":
            done = rungs.get(candidate.user_id, set())
            next_rung = next((m for m in self.library.milestones if m.id not in done), None)
            if next_rung is None or not next_rung.article:
                report.skipped["ladder complete"] += 1
                return None
        experiment = self.library.nudges.experiment_for(rule.id)
        arm = arm_for(experiment, candidate.user_id) if experiment else None
        reply = self.render(rule, candidate, arm, next_rung)
        withheld = arm is not None and not arm.send
        meta: dict[str, object] = {"rule": rule.id, "due": candidate.due.isoformat(timespec="seconds")}
        if experiment is not None and arm is not None:
            meta.update(experiment=experiment.id, arm=arm.name)
        if withheld:
            meta["withhold"] = True
        message = outbound(
            kind="nudge",
            reply=reply,
            chat_id=int(candidate.external_id),
            user_id=candidate.user_id,
            dedupe_key=f"nudge:{rule.id}:{candidate.user_id}:{candidate.period}",
            not_before=not_before,
            expires_at=expires_at,
            priority=rule.priority,
            campaign=f"nudge:{rule.id}",
            meta=meta,
        )
        reason = self.explain(rule)
        nudge = PlannedNudge(
            candidate.user_id,
            rule.id,
            candidate.due,
            not_before,
            expires_at,
            arm.name if arm else None,
            withheld,
            reason,
        )
        return message, nudge, experiment

    def render(self, rule: NudgeRule, candidate: Candidate, arm: Arm | None, next_rung: Milestone | None) -> Reply:
        """The nudge as its recipient will see it, in their language."""
        lang = candidate.language if candidate.language in ("en", "ur") else "en"
        template = (arm.text if arm is not None and arm.text else rule.text)[lang]
        first_name = (candidate.display_name or "").split(" ")[0] or self.library.text("friend", lang)
        next_article = next_rung.article if next_rung else None
        articles = [next_article if b.article == NEXT_RUNG else b.article for b in rule.buttons if b.article]
        titles = [self.library.articles[a].title[lang] for a in articles if a in self.library.articles]
        rung = next_rung.title[lang] if next_rung else ""
        text = template.format(
            name=html.escape(first_name), article_title=html.escape(titles[0] if titles else ""), rung=html.escape(rung)
        )
        rows: list[list[Button]] = []
        for article_id in articles:
            if article_id in self.library.articles:
                title = self.library.articles[article_id].title[lang]
                rows.append([Button.of(f"📖 {title}", buttons.NudgeTap(rule.id, "art", article_id))])
        if any(b.effort for b in rule.buttons):
            rows.append([Button.of(label, buttons.NudgeTap(rule.id, "eff", value)) for value, label in EFFORT_CHOICES])
        rows.append([Button.of(self.library.text("button_nudge_why", lang), buttons.NudgeTap(rule.id, "why"))])
        return Reply(text=text, buttons=rows)

    def explain(self, rule: NudgeRule) -> str:
        return f"{rule.trigger.type}" + (f" {rule.trigger.days} days" if rule.trigger.days else "")

    async def _record(
        self,
        session: Session,
        messages: list[NewMessage],
        inserted: list[tuple[int, str]],
        assignments: list[tuple[int, str, str]],
        now: dt.datetime,
    ) -> None:
        new_keys = {key: outbox_id for outbox_id, key in inserted}
        events = []
        for message in messages:
            if message.dedupe_key in new_keys and message.meta is not None:
                data: dict[str, object] = {
                    "outbox_id": new_keys[message.dedupe_key],
                    "rule": message.meta["rule"],
                    "not_before": message.not_before.isoformat(timespec="seconds"),
                    **{k: message.meta[k] for k in ("experiment", "arm") if k in message.meta},
                }
                events.append(NewEvent(kind=EventKind.NUDGE_PLANNED, at=now, user_id=message.user_id, data=data))
        fresh = await planning.assign_arms(session, assignments=assignments, at=now)
        events.extend(
            NewEvent(kind=EventKind.EXPERIMENT_ASSIGNED, at=now, user_id=u, data={"experiment": e, "arm": a})
            for u, e, a in fresh
        )
        await add_events(session, events=events)


class Nudges:
    """What a person does about nudges: /nudges (pace), /stop and /resume, and the buttons on a nudge."""

    def __init__(self, library: Library, db: Database, clock: Clock, journal: Journal, answers: Answers) -> None:
        self.library = library
        self.db = db
        self.clock = clock
        self.journal = journal
        self.answers = answers

    def routes(self, routes: Routes) -> None:
        routes.command("nudges", lambda user, _: self.settings(user), changes_state=False)
        routes.command("stop", lambda user, _: self.stop(user), changes_state=True)
        routes.command("resume", lambda user, _: self.resume(user), changes_state=True)
        routes.button(buttons.NudgeTap, lambda user, action, _: self.tap(user, action), changes_state=False)
        routes.button(buttons.NudgePace, self._press_pace, changes_state=True)
        routes.button(buttons.Proactive, self._press_proactive, changes_state=True)
        routes.intent("stop_nudges", lambda user, _, __: self.stop(user), changes_state=True)
        routes.intent("resume_nudges", lambda user, _, __: self.resume(user), changes_state=True)

    async def _press_pace(self, user: UserView, action: buttons.NudgePace, _: object) -> Reply:
        return await (self.settings(user) if action.pace == "show" else self.set_pace(user, action.pace))

    async def _press_proactive(self, user: UserView, action: buttons.Proactive, _: object) -> Reply:
        return await (self.stop(user) if action.action == "stop" else self.resume(user))

    async def settings(self, user: UserView) -> Reply:
        """/nudges: the current pace and whether proactive messages are on, with buttons to change both."""
        lang = user.language
        pace, stopped = await self._state(user)
        lines = [self.library.text("nudges_title", lang)]
        lines.append(self.library.text("nudges_stopped" if stopped else f"nudges_pace_{pace}", lang))
        rows = [
            [
                Button.of(
                    ("✅ " if p == pace else "") + self.library.text(f"button_pace_{p}", lang), buttons.NudgePace(p)
                )
                for p in PACES
            ],
            [
                Button.of(self.library.text("button_resume", lang), buttons.Proactive("resume"))
                if stopped
                else Button.of(self.library.text("button_stop", lang), buttons.Proactive("stop"))
            ],
        ]
        return Reply(text="\n".join(lines), buttons=rows, decision=Decision.NUDGE_SETTINGS)

    async def set_pace(self, user: UserView, pace: str) -> Reply:
        if user.id is not None:
            now = self.clock.now()
            async with self.db.write() as session:
                if await stored_users.set_nudge_pace(session, user_id=user.id, pace=pace):
                    if pace == "off":
                        await stored_outbox.cancel_open_for_user(
                            session, user_id=user.id, reason="nudges turned off", kinds=["nudge"]
                        )
                    await add_events(
                        session,
                        events=[NewEvent(kind=EventKind.NUDGE_PACE_SET, at=now, user_id=user.id, data={"pace": pace})],
                    )
        return Reply(text=self.library.text(f"nudges_pace_{pace}", user.language), decision=Decision.NUDGE_PACE_SET)

    async def stop(self, user: UserView) -> Reply:
        """/stop (or "mujhe messages mat bhejo"): no proactive message of any kind until /resume."""
        if user.id is not None:
            now = self.clock.now()
            async with self.db.write() as session:
                if await stored_users.set_proactive_stopped(session, user_id=user.id, stopped_at=now):
                    await stored_outbox.cancel_open_for_user(
                        session, user_id=user.id, reason="the user used /stop", kinds=PROACTIVE_KINDS
                    )
                    await add_events(
                        session, events=[NewEvent(kind=EventKind.PROACTIVE_STOPPED, at=now, user_id=user.id)]
                    )
        return Reply(text=self.library.text("proactive_stopped", user.language), decision=Decision.PROACTIVE_STOPPED)

    async def resume(self, user: UserView) -> Reply:
        if user.id is not None:
            now = self.clock.now()
            async with self.db.write() as session:
                if await stored_users.set_proactive_stopped(session, user_id=user.id, stopped_at=None):
                    await add_events(
                        session, events=[NewEvent(kind=EventKind.PROACTIVE_RESUMED, at=now, user_id=user.id)]
                    )
        return Reply(text=self.library.text("proactive_resumed", user.language), decision=Decision.PROACTIVE_RESUMED)

    async def tap(self, user: UserView, action: buttons.NudgeTap) -> Reply:
        """A button on a nudge: the nudge was opened (recorded), then what the button does."""
        lang = user.language
        rule = self.library.nudges.by_id.get(action.rule)
        if rule is None:
            return Reply(
                text=self.library.text("button_expired", lang), decision=Decision.BUTTON_UNKNOWN, toast_only=True
            )
        if user.id is not None:
            async with self.db.read() as session:
                sent = await stored_outbox.latest_sent(session, user_id=user.id, campaign=f"nudge:{rule.id}")
            data = {"rule": rule.id, "button": action.verb, "outbox_id": sent.id if sent else None}
            if sent is not None and sent.meta and "arm" in sent.meta:
                data["arm"] = sent.meta["arm"]
            self.journal.record(NewEvent(kind=EventKind.NUDGE_OPENED, at=self.clock.now(), user_id=user.id, data=data))
        if action.verb == "art" and action.arg in self.library.articles:
            return self.answers.answer(self.library.articles[action.arg], lang, decision=Decision.PICKED)
        if action.verb == "eff" and action.arg is not None:
            if user.id is not None:
                self.journal.record(
                    NewEvent(
                        kind=EventKind.EFFORT_REPORTED,
                        at=self.clock.now(),
                        user_id=user.id,
                        data={"metric": "proposals_sent", "count": int(action.arg), "source": "nudge"},
                    )
                )
            key = "effort_thanks_none" if action.arg == "0" else "effort_thanks"
            return Reply(text=self.library.text(key, lang), decision=Decision.EFFORT_NOTED)
        why = self.library.text(f"nudge_why_{rule.trigger.type}", lang, days=rule.trigger.days)
        settings_button = Button.of(self.library.text("button_nudge_settings", lang), buttons.NudgePace("show"))
        rows = [[settings_button]]
        return Reply(
            text=why + "\n\n" + self.library.text("nudge_why_footer", lang), buttons=rows, decision=Decision.NUDGE_WHY
        )

    async def _state(self, user: UserView) -> tuple[str, bool]:
        if user.id is None:
            return "daily", False
        async with self.db.read() as session:
            stored = await stored_users.get_user_by_id(session, user_id=user.id)
        if stored is None:
            return "daily", False
        return stored.nudge_pace, stored.proactive_stopped_at is not None
