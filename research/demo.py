"""`rahnuma demo-data`: realistic synthetic people, so the report and the benchmarks have something to show.

Each person joins on some day of the simulated weeks, gives some of their profile, may consent, climbs the
milestone ladder with a chance to drop out at every rung (keener people climb further and faster), asks questions
(mostly about their next rung, in English, Roman Urdu or Urdu: the articles' own example questions), rates some
answers, and gets nudges by the rules of content/nudges.yml. The `welcome_d3_wording` experiment has a real effect:
`peer_story` is answered more often than `checkin`, and both more than the withheld control. Three broadcasts go to
everyone reachable. Never for a production database: it refuses when real users exist, unless forced.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from content.library import Library
from storage import demo as stored
from storage.codebook import Decision, EventKind
from storage.db import Database

CHUNK = 2_000
DAY = dt.timedelta(days=1)
# (chance to reach the rung once the one before is reached, mean days it takes)
LADDER_PACE = {
    "chose_skill": (0.82, 2), "account_created": (0.78, 3), "profile_complete": (0.72, 4),
    "profile_approved": (0.66, 5), "payment_method_ready": (0.7, 4), "first_proposal_sent": (0.72, 4),
    "first_job_won": (0.38, 16), "first_payment_received": (0.82, 10), "first_review": (0.72, 7),
    "repeat_client": (0.42, 24),
}  # fmt: skip
CITIES = (("lahore", 24), ("karachi", 22), ("islamabad", 11), ("rawalpindi", 8), ("faisalabad", 7), ("multan", 5),
          ("peshawar", 6), ("quetta", 2), ("hyderabad", 3), ("sialkot", 2), ("gujranwala", 2), ("bahawalpur", 1),
          ("Lahore ", 2), ("لاہور", 1), ("abbottabad", 0.5), ("mardan", 0.4), ("chitral", 0.05), ("gilgit", 0.1),
          ("skardu", 0.05), ("dubai", 0.3))  # fmt: skip
SKILLS = (("graphic design", 20), ("web development", 14), ("content writing", 13), ("digital marketing", 10),
          ("video editing", 8), ("data entry", 9), ("virtual assistant", 6), ("seo", 5), ("translation", 3),
          ("app development", 4), ("logo design", 4), ("wordpress", 4), ("3d modelling", 0.3),
          ("voice over in pashto", 0.05), ("calligraphy", 0.1), ("amazon fba", 1.5))  # fmt: skip
PLATFORMS = ((("fiverr",), 38), (("upwork",), 22), (("fiverr", "upwork"), 20), (("freelancer",), 8),
             (("fiverr", "freelancer"), 4), (("upwork", "freelancer"), 2), (("guru",), 1),
             (("fiverr", "upwork", "freelancer"), 3))  # fmt: skip
# A few messages carry personal details, as real ones do: exports must scrub them.
PII_TAILS = (" my number is 0300-1234567", " whatsapp +92 321 7654321", " email me at someone@example.com",
             " mera cnic 35202-1234567-1 hai", " fiverr.com/some_seller_name")  # fmt: skip
# The chance a nudge makes someone write who would not have written anyway: control arms send nothing, so nothing.
ARM_RESPONSE = {"control": 0.0, "checkin": 0.18, "peer_story": 0.30}
RULE_RESPONSE = {"welcome_d1": 0.26, "stuck_rung": 0.21, "inactive_10": 0.11, "after_first_job": 0.45,
                 "still_there": 0.06}  # fmt: skip


class DemoRefused(RuntimeError):
    """Real users are in this database; demo data would mix with them."""


@dataclass
class DemoSummary:
    users: int = 0
    events: int = 0
    outbox: int = 0


@dataclass
class _Person:
    created: dt.datetime
    language: str
    row: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    milestones: list[tuple[str, dt.datetime, str]] = field(default_factory=list)
    nudges: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)  # (outbox row, events)
    assignments: list[tuple[str, str, dt.datetime]] = field(default_factory=list)
    last_seen: dt.datetime | None = None


def _weighted(rng: random.Random, options: Sequence[tuple[Any, float]]) -> Any:
    values, weights = zip(*options, strict=True)
    return rng.choices(values, weights)[0]


class _Simulation:
    def __init__(self, library: Library, rng: random.Random, start: dt.datetime, until: dt.datetime) -> None:
        self.library = library
        self.rng = rng
        self.start = start
        self.until = until
        self.ladder = [m.id for m in library.milestones]
        self.rung_article = {m.id: m.article for m in library.milestones}
        self.articles = sorted(library.articles)
        self.bad_articles = set(rng.sample(self.articles, 4))  # answers people often find unhelpful
        experiment = library.nudges.experiment_for("welcome_d3")
        self.arms = [(arm.name, arm.weight, arm.send) for arm in experiment.arms] if experiment else []
        self.experiment = experiment.id if experiment else None

    def _daytime(self, moment: dt.datetime) -> dt.datetime:
        """Move a time into 09:00-24:00 Pakistan time (UTC+5), when people write."""
        local_hour = (moment.hour + 5) % 24
        if local_hour < 9:
            moment += dt.timedelta(hours=9 - local_hour + self.rng.random() * 6)
        return moment

    def person(self) -> _Person:
        rng = self.rng
        span = (self.until - self.start).total_seconds()
        created = self.start + dt.timedelta(seconds=span * math.sqrt(rng.random()))  # more people join lately
        created = self._daytime(created).replace(microsecond=0)
        if created >= self.until:
            created = self.until - dt.timedelta(hours=1)
        keen = rng.random()
        language = "ur" if rng.random() < 0.55 else "en"
        consent = rng.random() < 0.45
        withdraws = consent and rng.random() < 0.08
        row: dict[str, Any] = {
            "channel": stored.DEMO_CHANNEL, "external_id": f"demo-{uuid.uuid4().hex[:16]}",
            "display_name": None, "language": language, "language_chosen": True,
            "skill": _weighted(rng, SKILLS) if rng.random() < 0.75 else None,
            "platforms": list(_weighted(rng, PLATFORMS)) if rng.random() < 0.7 else None,
            "city": _weighted(rng, CITIES) if rng.random() < 0.7 else None,
            "timezone": "Asia/Karachi", "research_consent": consent and not withdraws,
            "consent_version": 1 if consent or rng.random() < 0.3 else None, "created_at": created,
            "last_seen_at": created, "nudge_pace": "daily",
        }  # fmt: skip
        person = _Person(created=created, language=language, row=row)
        self._event(person, EventKind.COMMAND, created, text="/start")
        self._event(person, EventKind.REPLY, created, data={"decision": Decision.WELCOME}, latency_ms=4.0)
        for field_name in ("skill", "platforms", "city"):
            at = created + dt.timedelta(minutes=2 + rng.random() * 5)
            given = row[field_name] is not None
            self._event(person, EventKind.PROFILE_SET if given else EventKind.PROFILE_SKIPPED, at,
                        data={"field": field_name})  # fmt: skip
        if consent:
            self._event(person, EventKind.CONSENT_GIVEN, created + dt.timedelta(minutes=1), data={"version": 1})
        # The ladder: each rung reached with a chance, after a while; the first rung missed ends the climb.
        moment = created
        for milestone in self.ladder:
            chance, mean_days = LADDER_PACE.get(milestone, (0.5, 7))
            if rng.random() > min(0.97, chance * (0.55 + 0.75 * keen)):
                break
            moment = self._daytime(moment + dt.timedelta(days=rng.expovariate(1 / (mean_days * (1.4 - keen)))))
            if moment >= self.until:
                break
            source = "text" if rng.random() < 0.6 else "button"
            person.milestones.append((milestone, moment, source))
            self._event(person, EventKind.MESSAGE if source == "text" else EventKind.BUTTON, moment - dt.timedelta(
                seconds=30), text="I did it" if source == "text" else f"ms:{milestone}")  # fmt: skip
            self._event(person, EventKind.MILESTONE_DONE, moment, data={"milestone": milestone, "source": source})
        reached = len(person.milestones)
        last_step = person.milestones[-1][1] if person.milestones else created
        active_until = min(self.until, last_step + dt.timedelta(days=rng.expovariate(1 / (6 + 14 * keen))))
        self._questions(person, created, active_until, keen, reached)
        if withdraws:
            at = created + (active_until - created) * rng.random()
            self._event(person, EventKind.CONSENT_WITHDRAWN, at, data={"version": 1})
        self._nudges(person, keen)
        return person

    def _questions(self, person: _Person, start: dt.datetime, end: dt.datetime, keen: float, reached: int) -> None:
        rng = self.rng
        moment = start
        rate = 0.2 + 0.5 * keen  # sessions a day
        sessions = 0
        while sessions < 40:
            moment = self._daytime(moment + dt.timedelta(days=rng.expovariate(rate)))
            if moment >= end:
                break
            sessions += 1
            done = sum(1 for _, at, _ in person.milestones if at <= moment)
            next_rung = self.ladder[min(done, len(self.ladder) - 1)]
            for _ in range(1 + int(rng.random() < 0.45) + int(rng.random() < 0.15)):
                moment += dt.timedelta(minutes=1 + rng.random() * 6)
                wanted = self.rung_article.get(next_rung)
                article_id = wanted if wanted and rng.random() < 0.45 else rng.choice(self.articles)
                self._question(person, moment, article_id)

    def _question(self, person: _Person, at: dt.datetime, article_id: str) -> None:
        rng = self.rng
        article = self.library.articles[article_id]
        text = rng.choice(article.questions)
        if rng.random() < 0.03:
            text += rng.choice(PII_TAILS)
        consent = bool(person.row["research_consent"])
        progress = (at - self.start) / (self.until - self.start)
        dont_know = rng.random() < 0.16 - 0.08 * progress  # content grows: fewer questions go unanswered
        did_you_mean = not dont_know and rng.random() < 0.08
        source = "rasa" if rng.random() < 0.92 else "fallback"
        confidence = round(rng.uniform(0.2, 0.45) if dont_know else rng.uniform(0.55, 0.99), 3)
        intent = "nlu_fallback" if dont_know else article.intent
        data: dict[str, Any] = {"nlu_intent": intent, "parse_ms": round(rng.uniform(8, 25), 1)}
        if not consent:
            data["chars"] = len(text)
        if source == "fallback":
            data["fallback_reason"] = "rasa_low_confidence"
        self._event(person, EventKind.MESSAGE, at, text=text, intent=intent, confidence=confidence,
                    article_id=None if dont_know else article_id, nlu_source=source, data=data)  # fmt: skip
        decision = Decision.DONT_KNOW if dont_know else Decision.DID_YOU_MEAN if did_you_mean else Decision.ANSWER
        reply_at = at + dt.timedelta(seconds=1)
        self._event(person, EventKind.REPLY, reply_at, intent=intent, confidence=confidence,
                    article_id=article_id if decision == Decision.ANSWER else None, nlu_source=source,
                    latency_ms=round(rng.uniform(12, 40), 1), data={"decision": decision})  # fmt: skip
        if dont_know:
            self._event(person, EventKind.UNANSWERED, reply_at, text=text, intent=intent, confidence=confidence,
                        nlu_source=source)  # fmt: skip
        elif decision == Decision.ANSWER and rng.random() < 0.22:
            helpful = rng.random() < (0.45 if article_id in self.bad_articles else 0.86)
            self._event(person, EventKind.BUTTON, reply_at + dt.timedelta(seconds=40), text="fb")
            self._event(person, EventKind.FEEDBACK, reply_at + dt.timedelta(seconds=40), article_id=article_id,
                        data={"helpful": helpful})  # fmt: skip

    def _nudges(self, person: _Person, keen: float) -> None:
        rng = self.rng
        created = person.created
        first_rung = person.milestones[0][1] if person.milestones else None

        def plan(rule: str, due: dt.datetime, arm: tuple[str, bool] | None = None) -> None:
            if due >= self.until or rule not in self.library.nudges.by_id:
                return
            due = self._daytime(due)
            if due >= self.until:
                return
            withheld = arm is not None and not arm[1]
            roll = rng.random()
            status = "withheld" if withheld else "sent" if roll < 0.93 else "expired" if roll < 0.97 else "uncertain"
            sent = due + dt.timedelta(seconds=rng.randint(1, 90)) if status == "sent" else None
            meta: dict[str, Any] = {"rule": rule, "due": due.isoformat(timespec="seconds")}
            if arm is not None:
                meta.update(experiment=self.experiment, arm=arm[0])
            if withheld:
                meta["withhold"] = True
            planned_at = due - dt.timedelta(minutes=rng.randint(1, 50))
            row = {
                "user_id": None, "chat_id": 0, "kind": "nudge", "payload": {"text": f"demo nudge {rule}"},
                "priority": 5, "not_before": due, "expires_at": due + 2 * DAY, "quiet_hours": True, "status": status,
                "attempts": 0 if withheld else 1, "sent_at": sent, "dedupe_key": "", "campaign": f"nudge:{rule}",
                "meta": meta, "created_at": planned_at, "responded_at": None,
            }  # fmt: skip
            data = {k: v for k, v in meta.items() if k in ("rule", "experiment", "arm")}
            events: list[dict[str, Any]] = [
                self._row(EventKind.NUDGE_PLANNED, planned_at, data={**data, "not_before": meta["due"]})
            ]
            reference = sent if status == "sent" else due if withheld else None
            if reference is not None:
                kind = EventKind.NUDGE_SENT if status == "sent" else EventKind.NUDGE_WITHHELD
                events.append(self._row(kind, reference, data=data))
                chance = ARM_RESPONSE.get(arm[0], 0.2) if arm else RULE_RESPONSE.get(rule, 0.2)
                if rng.random() < chance * (0.6 + 0.8 * keen):
                    answered = reference + dt.timedelta(minutes=rng.randint(5, 40 * 60))
                    if answered < self.until:
                        opened = status == "sent" and rng.random() < 0.4
                        self._event(person, EventKind.BUTTON if opened else EventKind.MESSAGE, answered,
                                    text="nudge" if opened else "ok")  # fmt: skip
                        if opened:
                            events.append(self._row(EventKind.NUDGE_OPENED, answered, data={**data, "button": "art"}))
                        if status == "sent":
                            row["responded_at"] = answered
                            minutes = int((answered - reference).total_seconds() // 60)
                            events.append(self._row(EventKind.NUDGE_RESPONDED, answered,
                                                    data={**data, "after_minutes": minutes}))  # fmt: skip
            person.nudges.append((row, events))

        if first_rung is None or first_rung > created + DAY:
            plan("welcome_d1", created + DAY)
        if self.arms and (first_rung is None or first_rung > created + 3 * DAY) and created + 3 * DAY < self.until:
            name, _, send = _weighted(rng, [((n, w, s), w) for n, w, s in self.arms])
            person.assignments.append((self.experiment or "", name, created + 3 * DAY - dt.timedelta(hours=1)))
            plan("welcome_d3", created + 3 * DAY, (name, send))
        if person.milestones and len(person.milestones) < len(self.ladder):
            plan("stuck_rung", person.milestones[-1][1] + 10 * DAY)
        if any(m == "first_job_won" for m, _, _ in person.milestones):
            plan("after_first_job", next(at for m, at, _ in person.milestones if m == "first_job_won") + 2 * DAY)
        inbound = [e["at"] for e in person.events if e["kind"] in ("message", "command", "button")]
        if inbound:
            plan("inactive_10", max(inbound) + 10 * DAY)

    def _row(self, kind: str, at: dt.datetime, **values: Any) -> dict[str, Any]:
        row = {"kind": str(kind), "at": at, "user_id": None, "text": None, "intent": None, "confidence": None,
               "article_id": None, "nlu_source": None, "latency_ms": None, "data": None}  # fmt: skip
        row.update(values)
        return row

    def _event(self, person: _Person, kind: str, at: dt.datetime, **values: Any) -> None:
        if "text" in values and not person.row["research_consent"] and kind != EventKind.COMMAND:
            values["text"] = None
        person.events.append(self._row(kind, at, **values))


async def fill(
    db: Database,
    *,
    library: Library,
    users: int,
    seed: int = 11,
    until: dt.datetime | None = None,
    weeks: int = 16,
    force: bool = False,
    progress: IO[str] | None = None,
) -> DemoSummary:
    """Add `users` synthetic people (in chunks, one transaction each) and everything they did."""
    async with db.read() as session:
        real = await stored.real_users(session)
    if real and not force:
        raise DemoRefused(
            f"This database has {real} real users: demo data would mix with them. Use an empty database, or --force."
        )
    until = (until or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(second=0, microsecond=0)
    rng = random.Random(seed)
    simulation = _Simulation(library, rng, until - dt.timedelta(weeks=weeks), until)
    summary = DemoSummary()
    broadcasts = [until - dt.timedelta(weeks=w, hours=3) for w in (max(1, weeks * 5 // 8), max(1, weeks // 3), 1)]
    while summary.users < users:
        people = [simulation.person() for _ in range(min(CHUNK, users - summary.users))]
        await _write(db, people, broadcasts, rng, summary)
        summary.users += len(people)
        if progress is not None:
            progress.write(f"demo-data  {summary.users:>9,}/{users:,} users  {summary.events:>11,} events\r")
            progress.flush()
    if progress is not None:
        progress.write("\n")
    return summary


async def _write(
    db: Database, people: list[_Person], broadcasts: list[dt.datetime], rng: random.Random, summary: DemoSummary
) -> None:
    for person in people:
        inbound = [e["at"] for e in person.events if e["kind"] in ("message", "command", "button")]
        person.row["last_seen_at"] = max(inbound, default=person.created)
    async with db.write() as session:
        ids = await stored.insert_users(session, rows=[p.row for p in people])
        outbox_rows: list[dict[str, Any]] = []
        owners: list[tuple[int, list[dict[str, Any]]]] = []
        for user_id, person in zip(ids, people, strict=True):
            for row, nudge_events in person.nudges:
                row["user_id"], row["chat_id"] = user_id, 0
                row["dedupe_key"] = f"demo:{row['campaign']}:{user_id}:{row['not_before'].isoformat()}"
                outbox_rows.append(row)
                owners.append((user_id, nudge_events))
            for index, at in enumerate(broadcasts):
                if person.created < at:
                    outbox_rows.append(_broadcast(user_id, index + 1, at, rng))
                    owners.append((user_id, []))
        outbox_ids = await stored.insert_outbox(session, rows=outbox_rows)
        events: list[dict[str, Any]] = []
        for outbox_id, (user_id, planned_events) in zip(outbox_ids, owners, strict=True):
            for event in planned_events:
                event["user_id"] = user_id
                event["data"] = {**(event["data"] or {}), "outbox_id": outbox_id}
                events.append(event)
        milestones = []
        assignments = []
        for user_id, person in zip(ids, people, strict=True):
            for event in person.events:
                event["user_id"] = user_id
            events.extend(person.events)
            milestones += [
                {"user_id": user_id, "milestone": m, "done_at": at, "source": source}
                for m, at, source in person.milestones
            ]
            assignments += [
                {"user_id": user_id, "experiment": e, "arm": a, "assigned_at": at} for e, a, at in person.assignments
            ]
            events += [
                {**_blank(EventKind.EXPERIMENT_ASSIGNED, at, user_id), "data": {"experiment": e, "arm": a}}
                for e, a, at in person.assignments
            ]
        events.sort(key=lambda e: e["at"])
        for start in range(0, len(events), 20_000):
            await stored.insert_events(session, rows=events[start : start + 20_000])
        await stored.insert_milestones(session, rows=milestones)
        await stored.insert_assignments(session, rows=assignments)
    summary.events += len(events)
    summary.outbox += len(outbox_rows)


def _blank(kind: str, at: dt.datetime, user_id: int) -> dict[str, Any]:
    return {"kind": str(kind), "at": at, "user_id": user_id, "text": None, "intent": None, "confidence": None,
            "article_id": None, "nlu_source": None, "latency_ms": None, "data": None}  # fmt: skip


def _broadcast(user_id: int, number: int, at: dt.datetime, rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    status = "sent" if roll < 0.9 else "blocked" if roll < 0.95 else "failed" if roll < 0.965 else "expired"
    return {
        "user_id": user_id, "chat_id": 0, "kind": "broadcast", "payload": {"text": f"demo broadcast {number}"},
        "priority": 7, "not_before": at, "expires_at": at + 7 * DAY, "quiet_hours": True, "status": status,
        "attempts": 1, "sent_at": at + dt.timedelta(minutes=rng.randint(0, 90)) if status == "sent" else None,
        "dedupe_key": f"demo:broadcast:{number}:{user_id}", "campaign": f"broadcast:demo-{number}", "meta": None,
        "created_at": at - dt.timedelta(minutes=5), "responded_at": None,
    }  # fmt: skip
