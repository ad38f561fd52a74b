"""Broadcasts: the /broadcast wizard (its state is the `broadcast` row, so a restart loses nothing), segments,
the preview exactly as recipients see it, the expansion into one outbox row per recipient in batches, the live
counts of /broadcasts and the final report.

The same service backs the CLI (`rahnuma broadcast create|list|show|cancel`, bot/admin.py). Nothing here sends:
rows go into the outbox and the dispatcher delivers them (quiet hours per recipient, /stop, blocked users, 429s).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import json
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.outbox import outbound
from bot.core.roles import Roles, telegram_id
from bot.core.routes import Routes
from bot.core.types import Button, Reply, UserView
from content.library import Library
from storage import broadcasts as stored
from storage import outbox as stored_outbox
from storage.broadcasts import Segment
from storage.codebook import Decision, EventKind
from storage.db import Database
from storage.events import NewEvent, add_events
from storage.models import Broadcast

BATCH_SIZE = 500  # recipients per transaction: short locks, and a crash loses at most one uncommitted batch
DRAFT_TIMEOUT = dt.timedelta(hours=1)  # a wizard question older than this no longer takes the coordinator's text
TWICE_WINDOW = dt.timedelta(days=1)
MAX_TEXT_CHARS = 3500  # leaves room for the footer within Telegram's 4096
TIP_BUTTONS = 8
OPEN_COUNTS = ("pending", "claimed", "held")


class SegmentError(ValueError):
    """A segment the coordinator typed that cannot be understood; the message says what was wrong."""


_CLAUSE = re.compile(r"[;\n]+")


def parse_segment(text: str, *, milestones: set[str]) -> Segment:
    """`everyone`, or clauses joined by `;` or new lines: `language ur`, `platform fiverr`, `reached X`,
    `not reached X`, `inactive 14`, `city Lahore`, `joined 2026-11-01 2026-11-20`, `cohort dgs7`."""
    values: dict[str, object] = {}
    for raw in _CLAUSE.split(text.strip()):
        clause = " ".join(raw.split())
        if not clause:
            continue
        word, _, rest = clause.partition(" ")
        word = word.casefold()
        rest = rest.strip()
        if word in ("everyone", "all", "sab"):
            continue
        if word in ("english", "urdu"):
            values["language"] = "en" if word == "english" else "ur"
        elif word == "language" and rest.casefold() in ("en", "ur", "english", "urdu"):
            values["language"] = "ur" if rest.casefold() in ("ur", "urdu") else "en"
        elif word == "platform" and rest:
            values["platform"] = rest.casefold()
        elif word in ("reached", "not", "not-reached", "not_reached"):
            name = rest.removeprefix("reached ").strip() if word == "not" else rest
            if word == "not" and not rest.startswith("reached "):
                raise SegmentError(f"write 'not reached <milestone>', not {clause!r}")
            if name not in milestones:
                raise SegmentError(f"unknown milestone {name!r}; one of: {', '.join(sorted(milestones))}")
            values["reached" if word == "reached" else "not_reached"] = name
        elif word == "inactive":
            number = rest.split(" ")[0] if rest else ""
            if not number.isdigit() or not 1 <= int(number) <= 365:
                raise SegmentError("write 'inactive N' with N days between 1 and 365")
            values["inactive_days"] = int(number)
        elif word == "city" and rest:
            values["city"] = rest
        elif word == "joined":
            dates = rest.replace("..", " ").split()
            try:
                parsed = [dt.date.fromisoformat(d) for d in dates]
            except ValueError:
                parsed = []
            if len(parsed) != 2 or parsed[0] > parsed[1]:
                raise SegmentError("write 'joined YYYY-MM-DD YYYY-MM-DD' (from, to; inclusive)")
            values["joined_from"], values["joined_to"] = parsed[0].isoformat(), parsed[1].isoformat()
        elif word == "cohort" and re.fullmatch(r"[a-z0-9_-]{1,32}", rest.casefold()):
            values["cohort"] = rest.casefold()
        else:
            raise SegmentError(f"not understood: {clause!r}")
    return Segment(**values)  # type: ignore[arg-type]


def describe(segment: Segment) -> str:
    """A segment in the words parse_segment reads back."""
    parts = []
    if segment.language:
        parts.append(f"language {segment.language}")
    if segment.platform:
        parts.append(f"platform {segment.platform}")
    if segment.reached:
        parts.append(f"reached {segment.reached}")
    if segment.not_reached:
        parts.append(f"not reached {segment.not_reached}")
    if segment.inactive_days is not None:
        parts.append(f"inactive {segment.inactive_days}")
    if segment.city:
        parts.append(f"city {segment.city}")
    if segment.joined_from and segment.joined_to:
        parts.append(f"joined {segment.joined_from} {segment.joined_to}")
    elif segment.joined_from or segment.joined_to:
        parts.append(
            f"joined {'from ' + segment.joined_from if segment.joined_from else 'until ' + str(segment.joined_to)}"
        )
    if segment.cohort:
        parts.append(f"cohort {segment.cohort}")
    return "; ".join(parts) or "everyone"


def fingerprint(text_en: str | None, text_ur: str | None, segment: Segment) -> str:
    key = json.dumps([text_en or "", text_ur or "", segment.as_dict()], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def parse_local_time(text: str, *, now: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """`2026-12-01 10:00`, `10:00` (the next such time), `tomorrow 10:00`, in the coordinator's time zone."""
    words = text.strip().casefold().replace("t", " ", 1) if re.match(r"^\d{4}-\d\d-\d\dt", text.strip().casefold()) \
        else text.strip().casefold()  # fmt: skip
    local_now = now.astimezone(zone)
    match = re.fullmatch(r"(?:(tomorrow|kal)\s+)?(\d{1,2}):(\d{2})", words)
    if match:
        hour, minute = int(match.group(2)), int(match.group(3))
        if hour > 23 or minute > 59:
            return None
        moment = local_now.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if match.group(1) or moment <= local_now:
            moment += dt.timedelta(days=1)
        return moment.astimezone(dt.UTC)
    try:
        moment = dt.datetime.fromisoformat(words)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(dt.UTC)


@dataclass
class Draft:
    """What the CLI asks for, in one go."""

    text_en: str | None
    text_ur: str | None = None
    tip_id: str | None = None
    segment: Segment = field(default_factory=Segment)
    send_at: dt.datetime | None = None


@dataclass(frozen=True)
class Report:
    broadcast: Broadcast
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def open(self) -> int:
        return sum(self.counts.get(status, 0) for status in OPEN_COUNTS)


class Broadcasts:
    """The coordinator's side: /broadcast (wizard), /broadcasts (live counts), and the service the CLI uses."""

    def __init__(
        self, library: Library, db: Database, clock: Clock, journal: Journal, roles: Roles, *, default_timezone: str
    ) -> None:
        self.library = library
        self.db = db
        self.clock = clock
        self.journal = journal
        self.roles = roles
        self.default_timezone = default_timezone
        self.tips = {tip.id: tip for tip in library.tips}
        self.milestones = {m.id for m in library.milestones}

    def routes(self, routes: Routes) -> None:
        routes.command("broadcast", self.start, changes_state=True)
        routes.command("broadcasts", lambda user, _: self.list_recent(user), changes_state=False)
        routes.button(buttons.BroadcastStep, self.press, changes_state=True)
        routes.intercept(self.answer, logged_as=EventKind.BROADCAST_ANSWER)

    # ---- rendering: exactly what recipients get ---------------------------------------------------------------

    def render(self, broadcast: Broadcast | Draft, language: str) -> Reply:
        text = (broadcast.text_ur if language == "ur" and broadcast.text_ur else broadcast.text_en) or ""
        if not text and broadcast.text_ur:
            text = broadcast.text_ur
        body = html.escape(text.strip())
        footer = self.library.text("broadcast_footer", "ur" if language == "ur" else "en")
        return Reply(text=f"{body}\n\n<i>{footer}</i>")

    def _refused(self, user: UserView, command: str) -> Reply:
        self.journal.record(
            NewEvent(kind=EventKind.ADMIN_REFUSED, at=self.clock.now(), user_id=user.id, data={"command": command})
        )
        return Reply(text=self.library.text("admin_refused", user.language), decision=Decision.ADMIN_REFUSED)

    def _zone(self, user: UserView) -> ZoneInfo:
        return ZoneInfo(user.timezone or self.default_timezone)

    # ---- the wizard -------------------------------------------------------------------------------------------

    async def start(self, user: UserView, argument: str) -> Reply:
        """/broadcast: a new draft; the first question is the text (or a tip)."""
        coordinator = telegram_id(user)
        if not self.roles.may_broadcast(coordinator):
            return self._refused(user, "broadcast")
        now = self.clock.now()
        async with self.db.write() as session:
            draft = await stored.new_draft(session, created_by=coordinator, now=now)
            draft_id = draft.id
        lang = user.language
        tip_rows = []
        seen_milestones: set[str | None] = set()
        for tip in self.library.tips:
            if tip.milestone in seen_milestones:
                continue
            seen_milestones.add(tip.milestone)
            tip_rows.append([Button.of(f"💡 {tip.id}", buttons.BroadcastStep("tip", draft_id, tip.id))])
            if len(tip_rows) >= TIP_BUTTONS:
                break
        tip_rows.append([Button.of(self.library.text("button_cancel", lang), buttons.BroadcastStep("x", draft_id))])
        return Reply(
            text=self.library.text("broadcast_ask_text", lang, id=draft_id),
            buttons=tip_rows,
            decision=Decision.BROADCAST_STEP,
        )

    async def answer(self, user: UserView, text: str, received_at: dt.datetime) -> Reply | None:
        """Free text from a coordinator whose draft waits for an answer; anyone else's text is not taken."""
        coordinator = telegram_id(user)
        if not self.roles.may_broadcast(coordinator) or coordinator is None or text.startswith("/"):
            return None
        now = self.clock.now()
        async with self.db.read() as session:
            draft = await stored.open_draft(session, created_by=coordinator, since=now - DRAFT_TIMEOUT)
        if draft is None or draft.step_at is None or draft.step_at > received_at:
            return None
        lang = user.language
        if draft.step in ("text", "text_ur"):
            if len(text) > MAX_TEXT_CHARS:
                return Reply(
                    text=self.library.text("broadcast_too_long", lang, max=MAX_TEXT_CHARS),
                    decision=Decision.BROADCAST_STEP,
                )
            if draft.step == "text":
                await self._update(draft.id, text_en=text, step="text_ur")
                return self._ask_urdu(draft.id, lang)
            await self._update(draft.id, text_ur=text, step="segment")
            return await self._ask_segment(draft.id, lang)
        if draft.step == "segment":
            try:
                segment = parse_segment(text, milestones=self.milestones)
            except SegmentError as exc:
                return Reply(
                    text=self.library.text("broadcast_segment_error", lang, problem=html.escape(str(exc))),
                    decision=Decision.BROADCAST_STEP,
                )
            return await self._preview(user, draft.id, segment)
        if draft.step == "at":
            send_at = parse_local_time(text, now=now, zone=self._zone(user))
            if send_at is None or send_at <= now:
                return Reply(text=self.library.text("broadcast_bad_time", lang), decision=Decision.BROADCAST_STEP)
            return await self._ask_confirm(user, draft.id, send_at)
        return None

    async def press(self, user: UserView, action: buttons.BroadcastStep, _: dt.datetime) -> Reply:
        coordinator = telegram_id(user)
        if not self.roles.may_broadcast(coordinator):
            return self._refused(user, "broadcast")
        lang = user.language
        async with self.db.read() as session:
            broadcast = await stored.get_broadcast(session, broadcast_id=action.broadcast_id)
        if broadcast is None:
            return Reply(text=self.library.text("button_expired", lang), decision=Decision.BUTTON_UNKNOWN)
        if action.verb == "x":
            return await self._cancel_reply(user, broadcast.id)
        if action.verb in ("go", "again"):
            return await self._confirm(user, broadcast.id, twice=action.verb == "again")
        if broadcast.status != "draft":
            return Reply(
                text=self.library.text("broadcast_not_draft", lang, id=broadcast.id, status=broadcast.status),
                decision=Decision.BROADCAST_STEP,
            )
        if action.verb == "tip" and action.arg in self.tips:
            tip = self.tips[action.arg]
            await self._update(
                broadcast.id, text_en=tip.text.get("en"), text_ur=tip.text.get("ur"), tip_id=tip.id, step="segment"
            )
            return await self._ask_segment(broadcast.id, lang)
        if action.verb == "skip":
            await self._update(broadcast.id, step="segment")
            return await self._ask_segment(broadcast.id, lang)
        if action.verb == "seg":
            segment = Segment()
            if action.arg in ("en", "ur"):
                segment = Segment(language=action.arg)
            elif action.arg and action.arg.startswith("c."):
                segment = Segment(cohort=action.arg[2:])
            return await self._preview(user, broadcast.id, segment)
        if action.verb == "now":
            return await self._ask_confirm(user, broadcast.id, self.clock.now())
        if action.verb == "at":
            await self._update(broadcast.id, step="at")
            zone = user.timezone or self.default_timezone
            return Reply(
                text=self.library.text("broadcast_ask_time", lang, zone=zone), decision=Decision.BROADCAST_STEP
            )
        return Reply(text=self.library.text("button_expired", lang), decision=Decision.BUTTON_UNKNOWN)

    def _ask_urdu(self, broadcast_id: int, lang: str) -> Reply:
        rows = [
            [Button.of(self.library.text("button_skip_urdu", lang), buttons.BroadcastStep("skip", broadcast_id))],
            [Button.of(self.library.text("button_cancel", lang), buttons.BroadcastStep("x", broadcast_id))],
        ]
        return Reply(text=self.library.text("broadcast_ask_urdu", lang), buttons=rows, decision=Decision.BROADCAST_STEP)

    async def _ask_segment(self, broadcast_id: int, lang: str) -> Reply:
        from storage.cohorts import cohorts_with_counts

        async with self.db.read() as session:
            cohorts = await cohorts_with_counts(session, limit=4)
        step = buttons.BroadcastStep
        rows = [
            [Button.of(self.library.text("button_segment_everyone", lang), step("seg", broadcast_id, "all"))],
            [
                Button.of(self.library.text("button_segment_en", lang), step("seg", broadcast_id, "en")),
                Button.of(self.library.text("button_segment_ur", lang), step("seg", broadcast_id, "ur")),
            ],
        ]
        rows += [
            [Button.of(f"👥 {tag} ({members})", step("seg", broadcast_id, f"c.{tag}"))]
            for tag, _, members in cohorts
            if len(f"bc:seg:{broadcast_id}:c.{tag}") <= 48
        ]
        rows.append([Button.of(self.library.text("button_cancel", lang), step("x", broadcast_id))])
        milestones = ", ".join(m.id for m in self.library.milestones)
        return Reply(
            text=self.library.text("broadcast_ask_segment", lang, milestones=milestones),
            buttons=rows,
            decision=Decision.BROADCAST_STEP,
        )

    async def _preview(self, user: UserView, broadcast_id: int, segment: Segment) -> Reply:
        """The preview (each language version exactly as recipients will get it) goes to the coordinator through
        the outbox; the reply gives the count and asks when."""
        lang = user.language
        now = self.clock.now()
        async with self.db.write() as session:
            broadcast = await stored.get_broadcast(session, broadcast_id=broadcast_id)
            if broadcast is None or broadcast.status != "draft":
                return Reply(text=self.library.text("button_expired", lang), decision=Decision.BUTTON_UNKNOWN)
            counts = await stored.count_recipients(session, segment=segment, now=now)
            total = counts["en"] + counts["ur"]
            if total == 0:
                return Reply(
                    text=self.library.text("broadcast_nobody", lang, segment=html.escape(describe(segment))),
                    decision=Decision.BROADCAST_STEP,
                )
            await stored.update_broadcast(
                session,
                broadcast_id=broadcast_id,
                segment=segment.as_dict(),
                fingerprint=fingerprint(broadcast.text_en, broadcast.text_ur, segment),
                step="when",
                step_at=now,
            )
            chat = telegram_id(user)
            versions = ["en", "ur"] if broadcast.text_ur and broadcast.text_en else ["en"]
            if chat is not None:
                previews = [
                    outbound(
                        kind="system",
                        reply=self.render(broadcast, version),
                        chat_id=chat,
                        user_id=user.id,
                        dedupe_key=f"broadcast:{broadcast_id}:preview:{version}:{int(now.timestamp())}",
                        not_before=now,
                        campaign=f"preview:{broadcast_id}",
                    )
                    for version in versions
                ]
                await stored_outbox.enqueue(session, messages=previews, now=now)
        step = buttons.BroadcastStep
        rows = [
            [
                Button.of(self.library.text("button_send_now", lang), step("now", broadcast_id)),
                Button.of(self.library.text("button_send_later", lang), step("at", broadcast_id)),
            ],
            [Button.of(self.library.text("button_cancel", lang), step("x", broadcast_id))],
        ]
        text = self.library.text(
            "broadcast_count",
            lang,
            id=broadcast_id,
            total=total,
            en=counts["en"],
            ur=counts["ur"],
            segment=html.escape(describe(segment)),
            previews=len(versions),
        )
        return Reply(text=text, buttons=rows, decision=Decision.BROADCAST_STEP)

    async def _ask_confirm(self, user: UserView, broadcast_id: int, send_at: dt.datetime) -> Reply:
        lang = user.language
        async with self.db.write() as session:
            await stored.update_broadcast(
                session, broadcast_id=broadcast_id, send_at=send_at, step="confirm", step_at=self.clock.now()
            )
            broadcast = await stored.get_broadcast(session, broadcast_id=broadcast_id)
            segment = Segment.of(broadcast.segment if broadcast else None)
            counts = await stored.count_recipients(session, segment=segment, now=self.clock.now())
        when = send_at.astimezone(self._zone(user)).strftime("%Y-%m-%d %H:%M")
        step = buttons.BroadcastStep
        rows = [
            [Button.of(self.library.text("button_confirm_send", lang), step("go", broadcast_id))],
            [Button.of(self.library.text("button_cancel", lang), step("x", broadcast_id))],
        ]
        now_or_later = send_at <= self.clock.now() + dt.timedelta(minutes=1)
        key = "broadcast_confirm_now" if now_or_later else "broadcast_confirm_at"
        text = self.library.text(key, lang, id=broadcast_id, total=counts["en"] + counts["ur"], when=when)
        return Reply(text=text, buttons=rows, decision=Decision.BROADCAST_STEP)

    async def _confirm(self, user: UserView, broadcast_id: int, *, twice: bool) -> Reply:
        lang = user.language
        outcome = await self.confirm(broadcast_id, twice=twice, source="telegram")
        if outcome.status == "twice":
            step = buttons.BroadcastStep
            rows = [
                [Button.of(self.library.text("button_send_again", lang), step("again", broadcast_id))],
                [Button.of(self.library.text("button_cancel", lang), step("x", broadcast_id))],
            ]
            hours = max(1, round(outcome.hours_since or 0))
            return Reply(
                text=self.library.text("broadcast_twice", lang, id=broadcast_id, other=outcome.other_id, hours=hours),
                buttons=rows,
                decision=Decision.BROADCAST_TWICE,
            )
        if outcome.status != "confirmed":
            return Reply(
                text=self.library.text("broadcast_not_draft", lang, id=broadcast_id, status=outcome.status),
                decision=Decision.BROADCAST_STEP,
            )
        return Reply(
            text=self.library.text("broadcast_queued", lang, id=broadcast_id, total=outcome.recipients),
            decision=Decision.BROADCAST_CONFIRMED,
        )

    async def _cancel_reply(self, user: UserView, broadcast_id: int) -> Reply:
        stopped = await self.cancel(broadcast_id)
        if stopped is None:
            text = self.library.text("broadcast_not_cancelled", user.language, id=broadcast_id)
        else:
            text = self.library.text("broadcast_cancelled", user.language, id=broadcast_id, stopped=stopped)
        return Reply(text=text, decision=Decision.BROADCAST_CANCELLED)

    async def _update(self, broadcast_id: int, **values: object) -> None:
        async with self.db.write() as session:
            await stored.update_broadcast(session, broadcast_id=broadcast_id, step_at=self.clock.now(), **values)

    # ---- /broadcasts ------------------------------------------------------------------------------------------

    async def list_recent(self, user: UserView) -> Reply:
        if not self.roles.may_broadcast(telegram_id(user)):
            return self._refused(user, "broadcasts")
        lang = user.language
        reports = await self.recent_reports(limit=8)
        if not reports:
            return Reply(text=self.library.text("broadcasts_none", lang), decision=Decision.BROADCAST_LIST)
        lines = [self.library.text("broadcasts_title", lang)]
        rows = []
        for report in reports:
            lines.append(self.summary_line(report, self._zone(user)))
            if report.broadcast.status in ("scheduled", "sending"):
                label = self.library.text("button_cancel_broadcast", lang, id=report.broadcast.id)
                rows.append([Button.of(label, buttons.BroadcastStep("x", report.broadcast.id))])
        return Reply(text="\n\n".join(lines), buttons=rows, decision=Decision.BROADCAST_LIST)

    def summary_line(self, report: Report, zone: ZoneInfo) -> str:
        b = report.broadcast
        when = (b.send_at or b.created_at).astimezone(zone).strftime("%Y-%m-%d %H:%M")
        head = html.escape(" ".join((b.text_en or b.text_ur or "").split())[:48])
        c = report.counts
        counts = self.library.text(
            "broadcast_counts",
            "en",
            sent=c.get("sent", 0),
            pending=c.get("pending", 0) + c.get("claimed", 0),
            held=c.get("held", 0),
            blocked=c.get("blocked", 0),
            failed=c.get("failed", 0),
            uncertain=c.get("uncertain", 0),
            cancelled=c.get("cancelled", 0) + c.get("expired", 0),
        )
        segment = html.escape(describe(Segment.of(b.segment)))
        return f"<b>#{b.id}</b> {b.status} · {when} · {segment}\n“{head}”\n{counts}"

    # ---- the service (wizard and CLI) -------------------------------------------------------------------------

    async def count(self, segment: Segment) -> dict[str, int]:
        async with self.db.read() as session:
            return await stored.count_recipients(session, segment=segment, now=self.clock.now())

    async def create(self, draft: Draft, *, created_by: int | None = None) -> int:
        """A draft from the CLI, ready to confirm."""
        if draft.tip_id:
            tip = self.tips.get(draft.tip_id)
            if tip is None:
                raise ValueError(f"unknown tip {draft.tip_id!r}")
            draft.text_en = draft.text_en or tip.text.get("en")
            draft.text_ur = draft.text_ur or tip.text.get("ur")
        if not (draft.text_en or draft.text_ur):
            raise ValueError("a broadcast needs a text or a tip")
        now = self.clock.now()
        async with self.db.write() as session:
            row = await stored.new_draft(session, created_by=created_by, now=now)
            await stored.update_broadcast(
                session,
                broadcast_id=row.id,
                text_en=draft.text_en,
                text_ur=draft.text_ur,
                tip_id=draft.tip_id,
                segment=draft.segment.as_dict(),
                fingerprint=fingerprint(draft.text_en, draft.text_ur, draft.segment),
                send_at=draft.send_at or now,
                step="confirm",
            )
            return row.id

    async def confirm(self, broadcast_id: int, *, twice: bool, source: str) -> Confirmation:
        """Draft → scheduled (recipients counted now), unless the same texts went to the same segment within a day
        and this is not the second confirmation. A broadcast due now is expanded at once."""
        now = self.clock.now()
        async with self.db.write() as session:
            broadcast = await stored.get_broadcast(session, broadcast_id=broadcast_id)
            if broadcast is None:
                return Confirmation("missing")
            if broadcast.status != "draft":
                return Confirmation(broadcast.status)
            if broadcast.fingerprint and not twice:
                same = await stored.same_within(
                    session, fingerprint=broadcast.fingerprint, since=now - TWICE_WINDOW, other_than=broadcast.id
                )
                if same is not None and same.confirmed_at is not None:
                    hours = (now - same.confirmed_at).total_seconds() / 3600
                    return Confirmation("twice", other_id=same.id, hours_since=hours)
            segment = Segment.of(broadcast.segment)
            counts = await stored.count_recipients(session, segment=segment, now=now)
            recipients = counts["en"] + counts["ur"]
            send_at = broadcast.send_at or now
            if send_at < now:
                send_at = now
            await stored.update_broadcast(session, broadcast_id=broadcast_id, send_at=send_at)
            await stored.confirm(session, broadcast_id=broadcast_id, recipients=recipients, now=now)
            data: dict[str, object] = {
                "broadcast": broadcast_id, "recipients": recipients, "segment": segment.as_dict(),
                "send_at": send_at.isoformat(timespec="seconds"), "tip": broadcast.tip_id, "source": source,
            }  # fmt: skip
            if twice:
                data["twice"] = True
            await add_events(session, events=[NewEvent(kind=EventKind.BROADCAST_CONFIRMED, at=now, data=data)])
        if send_at <= now:
            await self.expand(broadcast_id)
        return Confirmation("confirmed", recipients=recipients)

    async def expand(self, broadcast_id: int) -> int:
        """One outbox row per recipient, BATCH_SIZE per transaction, the cursor committed with each batch: a crash
        mid-way resumes after the last committed batch, and the dedupe keys make any repeat a no-op."""
        total = 0
        payloads: dict[str, Reply] = {}
        while True:
            now = self.clock.now()
            async with self.db.write() as session:
                broadcast = await stored.get_broadcast(session, broadcast_id=broadcast_id)
                if broadcast is None or broadcast.status != "scheduled":
                    return total
                if not payloads:
                    payloads = {lang: self.render(broadcast, lang) for lang in ("en", "ur")}
                batch = await stored.recipients_after(
                    session,
                    segment=Segment.of(broadcast.segment),
                    now=now,
                    after_user_id=broadcast.cursor_user_id,
                    limit=BATCH_SIZE,
                )
                if not batch:
                    if await stored.mark_expanded(session, broadcast_id=broadcast_id, now=now):
                        event = NewEvent(
                            kind=EventKind.BROADCAST_ENQUEUED,
                            at=now,
                            data={"broadcast": broadcast_id, "enqueued": broadcast.enqueued},
                        )
                        await add_events(session, events=[event])
                    return total
                not_before = broadcast.send_at or now
                messages = [
                    outbound(
                        kind="broadcast",
                        reply=payloads[r.language],
                        chat_id=r.chat_id,
                        user_id=r.user_id,
                        dedupe_key=f"broadcast:{broadcast_id}:{r.user_id}",
                        not_before=not_before,
                        campaign=f"broadcast:{broadcast_id}",
                        meta={"broadcast": broadcast_id},
                    )
                    for r in batch
                ]
                inserted = await stored_outbox.enqueue(session, messages=messages, now=now)
                await stored.advance(
                    session, broadcast_id=broadcast_id, cursor_user_id=batch[-1].user_id, inserted=len(inserted)
                )
                total += len(inserted)

    async def cancel(self, broadcast_id: int) -> int | None:
        """Stop what has not gone yet; None when there was nothing to cancel (done, cancelled, unknown)."""
        now = self.clock.now()
        async with self.db.write() as session:
            if not await stored.cancel(session, broadcast_id=broadcast_id, now=now):
                return None
            stopped = await stored_outbox.cancel_campaign(
                session, campaign=f"broadcast:{broadcast_id}", reason="the broadcast was cancelled"
            )
            await add_events(
                session,
                events=[
                    NewEvent(
                        kind=EventKind.BROADCAST_CANCELLED,
                        at=now,
                        data={"broadcast": broadcast_id, "stopped": stopped},
                    )
                ],
            )
        return stopped

    async def report(self, broadcast_id: int) -> Report | None:
        async with self.db.read() as session:
            broadcast = await stored.get_broadcast(session, broadcast_id=broadcast_id)
            if broadcast is None:
                return None
            counts = await stored.delivery_counts(session, campaign=f"broadcast:{broadcast_id}")
        return Report(broadcast, counts)

    async def recent_reports(self, *, limit: int = 10) -> list[Report]:
        async with self.db.read() as session:
            rows = await stored.recent(session, limit=limit)
            return [Report(b, await stored.delivery_counts(session, campaign=f"broadcast:{b.id}")) for b in rows]


@dataclass(frozen=True)
class Confirmation:
    status: str  # confirmed | twice | missing | scheduled | sending | done | cancelled
    recipients: int = 0
    other_id: int | None = None
    hours_since: float | None = None


@dataclass
class PlanResult:
    enqueued: int = 0
    finished: list[int] = field(default_factory=list)


class BroadcastPlanner:
    """Runs with the dispatcher's planning pass: expands broadcasts that became due (or whose expansion was cut
    short by a restart), and sends the coordinator the final report once nothing of a broadcast is left to send."""

    def __init__(self, broadcasts: Broadcasts, clock: Clock) -> None:
        self.broadcasts = broadcasts
        self.clock = clock

    async def plan(self, *, now: dt.datetime | None = None, use_cursor: bool = True) -> PlanResult:
        service = self.broadcasts
        service.clock = self.clock
        result = PlanResult()
        now = now or self.clock.now()
        async with service.db.read() as session:
            due = await stored.due_for_expansion(session, now=now)
        for broadcast_id in due:
            result.enqueued += await service.expand(broadcast_id)
        async with service.db.read() as session:
            in_flight = await stored.sending(session)
        for broadcast in in_flight:
            report = await service.report(broadcast.id)
            if report is None or report.open:
                continue
            if await self._finish(report, now):
                result.finished.append(broadcast.id)
        return result

    async def _finish(self, report: Report, now: dt.datetime) -> bool:
        service = self.broadcasts
        b = report.broadcast
        async with service.db.write() as session:
            if not await stored.finish(session, broadcast_id=b.id, now=now):
                return False
            if b.created_by is not None:
                zone = ZoneInfo(service.default_timezone)
                text = service.library.text("broadcast_report", "en", line=service.summary_line(report, zone))
                message = outbound(
                    kind="system",
                    reply=Reply(text=text),
                    chat_id=b.created_by,
                    user_id=None,
                    dedupe_key=f"broadcast:{b.id}:report",
                    not_before=now,
                    campaign=f"report:{b.id}",
                )
                await stored_outbox.enqueue(session, messages=[message], now=now)
            event = NewEvent(
                kind=EventKind.BROADCAST_FINISHED, at=now, data={"broadcast": b.id, "counts": report.counts}
            )
            await add_events(session, events=[event])
        return True
