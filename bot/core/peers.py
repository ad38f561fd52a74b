"""Peer support: buddies (double opt-in, an anonymous relay) and circles (anonymous weekly aggregates).

/buddy (or "koi aur freelancer jis se baat kar sakun") asks what the person wants — someone at their step, someone a
step ahead, or to help someone one step behind — shows exactly what a buddy would see, and puts them on the list.
Matching runs in the dispatcher's planning pass (`PeerPlanner`): `match()` is a pure function over the waiting
people, the pairs are inserted under two schema invariants (storage/peers.py), and each side gets a card with
Accept / Skip. Only when both accept are they introduced; then they talk through Rahnuma (`/b <message>`, or the
"Message my buddy" button), every relayed message carrying Report and End. Everything proactive is an outbox row.
Rules, safety and privacy: docs/PEERS.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.nudges import earliest_allowed
from bot.core.outbox import outbound
from bot.core.roles import Roles
from bot.core.routes import Routes
from bot.core.types import Button, InboundKind, Reply, UserView
from content.library import Library
from nlu.understanding import Understanding
from storage import nudges as planning
from storage import outbox as stored_outbox
from storage import peers as stored
from storage import users as stored_users
from storage.codebook import Decision, EventKind
from storage.db import Database, Session
from storage.events import NewEvent, add_events
from storage.models import PeerPair, User
from storage.outbox import NewMessage
from storage.peers import ActivePair, CircleRecipient, Contact, Waiting, campaign_of

GROUP_LANGUAGE = "en"
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")  # Telegram's rule (5-32 characters in practice)
SEEKING = ("peer", "ahead", "help")
DIGEST_MILESTONES = ("first_proposal_sent", "first_job_won")
WEEK = dt.timedelta(days=7)


@dataclass(frozen=True)
class PeerSettings:
    compose_window: dt.timedelta = dt.timedelta(minutes=15)  # "Message my buddy" → the next text, within this
    relay_per_hour: int = 20  # messages one person may relay in an hour
    max_relay_chars: int = 1500
    card_ttl: dt.timedelta = dt.timedelta(days=3)  # a card nobody answered: the pair lapses, both may be re-matched
    silent_after: dt.timedelta = dt.timedelta(weeks=3)  # no relayed message for this long: ended gently
    checkin_every: dt.timedelta = WEEK
    checkin_expires: dt.timedelta = dt.timedelta(days=2)
    daily_cap: int = 1  # the nudge caps, which check-ins respect
    weekly_cap: int = 3
    digest_weekday: int = 0  # Monday
    digest_hour_utc: int = 5  # 10:00 in Pakistan
    min_cell: int = 5  # a digest never shows a count below this
    story_chars: int = 300  # a win story is one line
    story_fresh: dt.timedelta = dt.timedelta(weeks=4)  # an approved story is quoted in digests for this long
    # One pass stays short (it runs inside the dispatcher's tick): at most this many new pairs, and this many digests;
    # the rest follow in the next passes, a minute apart.
    max_pairs_per_pass: int = 1000
    max_waiting_per_pass: int = 10_000  # matching looks at the longest-waiting this many (the pool for this pass)
    digests_per_pass: int = 10_000
    digest_window: dt.timedelta = dt.timedelta(days=2)  # a digest not planned within this after its slot is skipped


# ---- matching: a pure function ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seeker:
    """One waiting person as matching sees them; `city` is set only when they chose to share it."""

    user_id: int
    language: str
    rung: int
    seeking: str  # peer | ahead | help
    skill: str | None = None
    platforms: frozenset[str] = frozenset()
    city: str | None = None


def compatible(a: Seeker, b: Seeker) -> bool:
    """Same language, never oneself; two `peer` seekers on the same rung, or an `ahead` seeker with a `help`er at
    least one rung ahead."""
    if a.user_id == b.user_id or a.language != b.language:
        return False
    if a.seeking == b.seeking == "peer":
        return a.rung == b.rung
    if {a.seeking, b.seeking} == {"ahead", "help"}:
        seeker, helper = (a, b) if a.seeking == "ahead" else (b, a)
        return helper.rung >= seeker.rung + 1
    return False


def affinity(a: Seeker, b: Seeker) -> int:
    """How well two compatible people fit: the same skill counts most, then a shared platform, then the same city
    (only when both shared theirs)."""
    return (
        (4 if a.skill and a.skill == b.skill else 0)
        + (2 if a.platforms & b.platforms else 0)
        + (1 if a.city and a.city == b.city else 0)
    )


def match(
    seekers: Sequence[Seeker],
    *,
    excluded: Collection[tuple[int, int]] = frozenset(),
    window: int = 8,
    limit: int | None = None,
) -> list[tuple[int, int]]:
    """Pairs (user_id, user_id) among `seekers`, who come longest-waiting first. Each person is in at most one pair;
    a pair in `excluded` ((low, high): proposed before) is never made. Greedy: the longest-waiting person takes the
    best-fitting partner among the first `window` free candidates of each pool (same language, an allowed rung),
    nearest rung first for helpers; the same skill is looked for first. Stops after `limit` pairs (the longest-waiting
    go first; the rest wait for the next pass). Cost: O(people x window)."""
    pools: dict[tuple[str, str, int], list[Seeker]] = defaultdict(list)
    by_skill: dict[tuple[str, str, int, str], list[Seeker]] = defaultdict(list)
    rungs: set[int] = set()
    for s in seekers:
        pools[(s.language, s.seeking, s.rung)].append(s)
        if s.skill:
            by_skill[(s.language, s.seeking, s.rung, s.skill)].append(s)
        rungs.add(s.rung)
    top = max(rungs, default=0)
    taken: set[int] = set()
    starts: dict[object, int] = defaultdict(int)
    pairs: list[tuple[int, int]] = []

    def best_in(key: object, pool: list[Seeker], me: Seeker) -> tuple[int, Seeker] | None:
        start = starts[key]
        while start < len(pool) and pool[start].user_id in taken:
            start += 1
        starts[key] = start
        best: tuple[int, Seeker] | None = None
        seen = 0
        for other in pool[start:]:
            if seen >= window:
                break
            if other.user_id in taken or other.user_id == me.user_id:
                continue
            seen += 1
            low, high = (me.user_id, other.user_id) if me.user_id < other.user_id else (other.user_id, me.user_id)
            if (low, high) in excluded or not compatible(me, other):
                continue
            score = affinity(me, other)
            if best is None or score > best[0]:
                best = (score, other)
        return best

    for me in seekers:
        if limit is not None and len(pairs) >= limit:
            break
        if me.user_id in taken:
            continue
        if me.seeking == "peer":
            targets = [("peer", me.rung)]
        elif me.seeking == "ahead":
            targets = [("help", rung) for rung in range(me.rung + 1, top + 1)]
        else:
            targets = [("ahead", rung) for rung in range(me.rung - 1, -1, -1)]
        found: tuple[int, Seeker] | None = None
        if me.skill:  # the same skill first, at any allowed rung (nearest first)
            for seeking, rung in targets:
                key = (me.language, seeking, rung, me.skill)
                if key in by_skill and (found := best_in(key, by_skill[key], me)) is not None:
                    break
        if found is None:
            for seeking, rung in targets:
                key2 = (me.language, seeking, rung)
                if key2 in pools and (found := best_in(key2, pools[key2], me)) is not None:
                    break
        if found is not None:
            other = found[1]
            taken.update((me.user_id, other.user_id))
            pairs.append((me.user_id, other.user_id))
    return pairs


def seeker_of(w: Waiting) -> Seeker:
    return Seeker(
        user_id=w.user_id,
        language=w.language,
        rung=w.rung,
        seeking=w.seeking,
        skill=(w.skill or "").strip().casefold() or None,
        platforms=frozenset(p.casefold() for p in w.platforms),
        city=(w.city or "").strip().casefold() or None if w.share_city else None,
    )


# ---- circles: anonymous aggregates -----------------------------------------------------------------------------


def start_cohort(started_at: dt.datetime) -> str:
    """The people who "started with you": everyone whose first message fell in the same ISO week."""
    year, week, _ = started_at.isocalendar()
    return f"{year}-W{week:02d}"


def visible_cells(counts: dict[str, int], *, min_cell: int) -> dict[str, int]:
    """Only the cells a digest may show: a count below `min_cell` is never shown (nor hinted at)."""
    return {name: count for name, count in counts.items() if count >= min_cell}


def digest_slot(now: dt.datetime, settings: PeerSettings) -> dt.datetime:
    """The latest weekly digest moment at or before `now`."""
    day = now.date() - dt.timedelta(days=(now.weekday() - settings.digest_weekday) % 7)
    slot = dt.datetime.combine(day, dt.time(settings.digest_hour_utc), tzinfo=dt.UTC)
    return slot if slot <= now else slot - WEEK


def first_name(name: str | None, fallback: str) -> str:
    return (name or "").strip().split(" ")[0] or fallback


@dataclass
class PeerPlan:
    enqueued: int = 0
    matched: int = 0
    waiting_told: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    checkins: int = 0
    digests: int = 0


class Peers:
    """/buddy, /b, /circle, the `find_peers` intent, every buddy button and the relay."""

    def __init__(
        self,
        library: Library,
        db: Database,
        clock: Clock,
        journal: Journal,
        *,
        chat_id: int | None = None,
        settings: PeerSettings | None = None,
        roles: Roles | None = None,
    ) -> None:
        self.library = library
        self.db = db
        self.clock = clock
        self.journal = journal
        self.chat_id = chat_id  # the coordinators' group: reports go there
        self.settings = settings or PeerSettings()
        self.roles = roles  # who may decide on a report in the coordinators' group

    def routes(self, routes: Routes) -> None:
        routes.command("buddy", lambda user, _: self.start(user), changes_state=False)
        routes.command("b", self._slash_b, changes_state=True)
        routes.command("circle", lambda user, _: self.circle(user), changes_state=False)
        routes.intent("find_peers", self._asked_in_words, changes_state=False)
        routes.button(buttons.BuddyWant, lambda user, act, _: self.preview(user, act.seeking), changes_state=False)
        routes.button(buttons.BuddyJoin, lambda user, action, _: self.join(user, action), changes_state=True)
        routes.button(buttons.BuddyStop, lambda user, _, __: self.stop(user), changes_state=True)
        routes.button(buttons.BuddyPair, self._press_pair, changes_state=True)
        routes.button(buttons.CircleSet, lambda user, action, _: self.set_circle(user, action.on), changes_state=True)
        routes.button(buttons.WinStoryAnswer, lambda user, a, _: self.story_answer(user, a.verb), changes_state=True)
        routes.intercept(self.compose, logged_as=EventKind.PEER_MESSAGE)
        routes.intercept(self.story_text, logged_as=EventKind.MESSAGE)
        routes.non_text_handler(self.refuse_media)

    async def _asked_in_words(self, user: UserView, _: str, __: Understanding) -> Reply:
        return await self.start(user)

    async def _slash_b(self, user: UserView, argument: str) -> Reply:
        if not argument.strip():
            return await self.open_compose(user)
        return await self.relay(user, argument.strip(), source="command")

    def _t(self, key: str, lang: str, **values: object) -> str:
        return self.library.text(key, lang, **values)

    # ---- opting in -------------------------------------------------------------------------------------------

    async def start(self, user: UserView) -> Reply:
        """/buddy: on the list or paired already → where things stand; otherwise, what kind of buddy?"""
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("storage_unavailable", lang), decision=Decision.STORAGE_UNAVAILABLE)
        async with self.db.read() as session:
            optin = await stored.get_optin(session, user_id=user.id)
            pair = await stored.open_pair_of(session, user_id=user.id)
            other = await self._other(session, pair, user.id) if pair is not None else None
        if optin is not None or pair is not None:
            return self._status(lang, pair, other)
        rows = [[Button.of(self._t(f"button_buddy_{s}", lang), buttons.BuddyWant(s))] for s in SEEKING]  # type: ignore[arg-type]
        return Reply(text=self._t("buddy_ask", lang), buttons=rows, decision=Decision.BUDDY_ASK)

    def _status(self, lang: str, pair: PeerPair | None, other: User | None) -> Reply:
        name = html.escape(first_name(other.display_name if other else None, self._t("friend", lang)))
        stop = [Button.of(self._t("button_buddy_stop", lang), buttons.BuddyStop())]
        if pair is None:
            return Reply(text=self._t("buddy_status_waiting", lang), buttons=[stop], decision=Decision.BUDDY_STATUS)
        if pair.status == "proposed":
            return Reply(text=self._t("buddy_status_proposed", lang), decision=Decision.BUDDY_STATUS)
        if pair.status == "paused":
            return Reply(text=self._t("buddy_paused", lang), decision=Decision.BUDDY_STATUS)
        return Reply(
            text=self._t("buddy_status_active", lang, name=name),
            buttons=self._pair_buttons(pair.id, lang),
            decision=Decision.BUDDY_STATUS,
        )

    async def preview(self, user: UserView, seeking: str) -> Reply:
        """Exactly what a buddy would see, before anything is stored; the city only if the person chooses."""
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("storage_unavailable", lang), decision=Decision.STORAGE_UNAVAILABLE)
        async with self.db.read() as session:
            stored_user = await stored_users.get_user_by_id(session, user_id=user.id)
            rung = (await stored.rungs_of(session, user_ids=[user.id])).get(user.id, 0)
        not_set = self._t("profile_not_set", lang)
        city = stored_user.city if stored_user else None
        text = self._t(
            "buddy_preview",
            lang,
            name=html.escape(first_name(user.display_name, self._t("friend", lang))),
            skill=html.escape((stored_user.skill if stored_user else None) or not_set),
            rung=self._rung_text(rung, lang),
            city=html.escape(city or not_set),
        )
        choice = seeking if seeking in SEEKING else "peer"
        rows = []
        if city:
            rows.append([Button.of(self._t("button_buddy_with_city", lang), buttons.BuddyJoin(choice, True))])  # type: ignore[arg-type]
        rows.append([Button.of(self._t("button_buddy_without_city", lang), buttons.BuddyJoin(choice, False))])  # type: ignore[arg-type]
        rows.append([Button.of(self._t("button_cancel", lang), buttons.BuddyStop())])
        return Reply(text=text, buttons=rows, decision=Decision.BUDDY_PREVIEW)

    async def join(self, user: UserView, action: buttons.BuddyJoin) -> Reply:
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("save_failed", lang), decision=Decision.SAVE_FAILED)
        now = self.clock.now()
        async with self.db.write() as session:
            await stored.opt_in(session, user_id=user.id, seeking=action.seeking, share_city=action.city, now=now)
            data = {"seeking": action.seeking, "city_shared": action.city}
            event = NewEvent(kind=EventKind.PEER_OPTED_IN, at=now, user_id=user.id, data=data)
            await add_events(session, events=[event])
        return Reply(text=self._t("buddy_opted_in", lang), decision=Decision.BUDDY_OPTED_IN)

    async def stop(self, user: UserView) -> Reply:
        """Stop looking: off the list; a card not yet answered lapses. An active pair is ended with End first; a
        paused one (a report) stays paused."""
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("save_failed", lang), decision=Decision.SAVE_FAILED)
        now = self.clock.now()
        async with self.db.write() as session:
            pair = await stored.open_pair_of(session, user_id=user.id)
            if pair is not None and pair.status == "active":  # End comes first (a paused pair stays as it is)
                other = await self._other(session, pair, user.id)
                return self._status(lang, pair, other)
            if pair is not None:
                await self._end(session, pair, by=user.id, status="declined", reason="withdrew", now=now)
            if await stored.opt_out(session, user_id=user.id):
                await add_events(session, events=[NewEvent(kind=EventKind.PEER_OPTED_OUT, at=now, user_id=user.id)])
        return Reply(text=self._t("buddy_opted_out", lang), decision=Decision.BUDDY_OPTED_OUT)

    # ---- a pair's buttons ------------------------------------------------------------------------------------

    async def _press_pair(self, user: UserView, action: buttons.BuddyPair, _: dt.datetime) -> Reply:
        lang = user.language
        expired = Reply(text=self._t("button_expired", lang), decision=Decision.BUTTON_UNKNOWN)
        if user.id is None:
            return expired
        if action.verb == "msg":
            return await self.open_compose(user, pair_id=action.pair_id)
        now = self.clock.now()
        async with self.db.write() as session:
            pair = await stored.get_pair(session, pair_id=action.pair_id, lock=True)
            if pair is None or user.id not in (pair.user_low, pair.user_high):
                return expired
            other = await self._other(session, pair, user.id)
            name = html.escape(first_name(other.display_name if other else None, self._t("friend", lang)))
            if action.verb in ("met", "nomet"):
                talked = action.verb == "met"
                data = {"pair": pair.id, "talked": talked}
                event = NewEvent(kind=EventKind.PEER_CHECKIN, at=now, user_id=user.id, data=data)
                await add_events(session, events=[event])
                key = "buddy_checkin_yes" if talked else "buddy_checkin_no"
                return Reply(text=self._t(key, lang, name=name), decision=Decision.BUDDY_CHECKIN)
            if action.verb in ("yes", "skip"):
                if pair.status != "proposed":
                    return expired
                if action.verb == "skip":
                    await self._end(session, pair, by=user.id, status="declined", reason="skip", now=now)
                    return Reply(text=self._t("buddy_skipped", lang, name=name), decision=Decision.BUDDY_SKIPPED)
                return await self._accept(session, pair, user, other, name, now)
            if pair.status == "paused":
                return Reply(text=self._t("buddy_paused", lang), decision=Decision.BUDDY_RELAY_REFUSED)
            if pair.status != "active":
                return expired
            if action.verb == "end":
                await self._end(session, pair, by=user.id, status="ended", reason="end", now=now)
                return Reply(text=self._t("buddy_ended", lang, name=name), decision=Decision.BUDDY_ENDED)
            if action.verb == "name":
                return await self._share_username(session, pair, user, other, name, now)
            return await self._report(session, pair, user, now)

    async def _share_username(
        self, session: Session, pair: PeerPair, user: UserView, other: User | None, name: str, now: dt.datetime
    ) -> Reply:
        """Only on this press does the buddy learn the @username (read from this very update, never stored)."""
        assert user.id is not None
        lang = user.language
        username = user.username or ""
        if not _USERNAME.fullmatch(username) or other is None:
            return Reply(text=self._t("buddy_no_username", lang), decision=Decision.BUDDY_USERNAME_SHARED)
        other_lang = _lang(other.language)
        mine = html.escape(first_name(user.display_name, self._t("friend", other_lang)))
        notice = Reply(text=self._t("buddy_username_from", other_lang, name=mine, username=username))
        await self._send(session, "relay", other, notice, pair.id, key=f"peer:name:{pair.id}:{user.id}", now=now)
        event = NewEvent(kind=EventKind.PEER_USERNAME_SHARED, at=now, user_id=user.id, data={"pair": pair.id})
        await add_events(session, events=[event])
        return Reply(
            text=self._t("buddy_username_shared", lang, name=name, username=username),
            decision=Decision.BUDDY_USERNAME_SHARED,
        )

    async def _accept(
        self, session: Session, pair: PeerPair, user: UserView, other: User | None, name: str, now: dt.datetime
    ) -> Reply:
        assert user.id is not None
        lang = user.language
        await stored.accept(session, pair=pair, user_id=user.id, now=now)
        events = [NewEvent(kind=EventKind.PEER_ACCEPTED, at=now, user_id=user.id, data={"pair": pair.id})]
        both = pair.low_accepted_at is not None and pair.high_accepted_at is not None
        if not both or not await stored.activate(session, pair_id=pair.id, now=now):
            await add_events(session, events=events)
            return Reply(text=self._t("buddy_accepted", lang, name=name), decision=Decision.BUDDY_ACCEPTED)
        events += [
            NewEvent(kind=EventKind.PEER_INTRODUCED, at=now, user_id=who, data={"pair": pair.id})
            for who in (pair.user_low, pair.user_high)
            if who is not None
        ]
        await add_events(session, events=events)
        if other is not None:
            other_lang = _lang(other.language)
            my_name = html.escape(first_name(user.display_name, self._t("friend", other_lang)))
            intro = Reply(
                text=self._t("buddy_introduced", other_lang, name=my_name),
                buttons=self._pair_buttons(pair.id, other_lang),
            )
            await self._send(session, "intro", other, intro, pair.id, key=f"peer:intro:{pair.id}:{other.id}", now=now)
        return Reply(
            text=self._t("buddy_introduced", lang, name=name),
            buttons=self._pair_buttons(pair.id, lang),
            decision=Decision.BUDDY_INTRODUCED,
        )

    async def _report(self, session: Session, pair: PeerPair, user: UserView, now: dt.datetime) -> Reply:
        """Report: the pair pauses at once (no more messages either way), the reporter is free to be matched again,
        the reported person is held until a coordinator looks, and the coordinators' group gets the last messages."""
        assert user.id is not None
        other_id = pair.user_high if pair.user_low == user.id else pair.user_low
        await stored.close_pair(
            session, pair_id=pair.id, status="paused", reason="report", now=now, keep_seat_of=other_id
        )
        await add_events(
            session, events=[NewEvent(kind=EventKind.PEER_REPORTED, at=now, user_id=user.id, data={"pair": pair.id})]
        )
        if self.chat_id is not None:
            recent = await stored.recent_relays_to(session, pair_id=pair.id, user_id=user.id)
            # each relayed message is "💬 <name> (your buddy):\n<words>": the group sees the words, never the name
            lines = "\n".join(f"• {text.split(chr(10), 1)[-1]}" for text in reversed(recent)) or "—"
            post = self._t(
                "buddy_report_post", GROUP_LANGUAGE, pair=pair.id, reporter=f"№{user.id}", reported=f"№{other_id}",
                recent=lines,
            )  # fmt: skip
            decide = [
                Button.of(self._t("button_pair_free", GROUP_LANGUAGE), buttons.PairReview("free", pair.id)),
                Button.of(self._t("button_pair_ban", GROUP_LANGUAGE), buttons.PairReview("ban", pair.id)),
            ]
            message = outbound(
                kind="relay",
                reply=Reply(text=post, buttons=[decide]),
                chat_id=self.chat_id,
                user_id=None,
                dedupe_key=f"peer:report:{pair.id}",
                not_before=now,
                campaign=campaign_of(pair.id),
                meta={"pair": pair.id},
            )
            await stored_outbox.enqueue(session, messages=[message], now=now)
        return Reply(text=self._t("buddy_reported", user.language), decision=Decision.BUDDY_REPORTED)

    async def _end(
        self, session: Session, pair: PeerPair, *, by: int | None, status: str, reason: str, now: dt.datetime
    ) -> bool:
        """End a pair (declined, ended...) and tell the side that did not end it, kindly and without blame."""
        if not await stored.close_pair(session, pair_id=pair.id, status=status, reason=reason, now=now):
            return False
        sides = [who for who in (pair.user_low, pair.user_high) if who is not None]
        if reason == "skip":
            events = [NewEvent(kind=EventKind.PEER_SKIPPED, at=now, user_id=by, data={"pair": pair.id})]
        else:
            events = [
                NewEvent(kind=EventKind.PEER_ENDED, at=now, user_id=who, data={"pair": pair.id, "reason": reason})
                for who in sides
                if by is None or who == by
            ]
        await add_events(session, events=events)
        notice = {"skip": "buddy_not_going_ahead", "withdrew": "buddy_not_going_ahead", "end": "buddy_ended_notice",
                  "silence": "buddy_silence_notice", "expired": "buddy_expired_notice"}.get(reason)  # fmt: skip
        if notice is None:
            return True
        people = await stored.users_for(session, user_ids=sides)
        for who in sides:
            if who == by or who not in people:
                continue
            person = people[who]
            other_id = pair.user_high if pair.user_low == who else pair.user_low
            other = people.get(other_id) if other_id is not None else None
            lang = _lang(person.language)
            name = html.escape(first_name(other.display_name if other else None, self._t("friend", lang)))
            await self._send(
                session, "system", person, Reply(text=self._t(notice, lang, name=name)), pair.id,
                key=f"peer:ended:{pair.id}:{who}", now=now,
            )  # fmt: skip
            # the notice says they stay on the list: no second "you're first in line" right after it
            await stored.mark_told_waiting(session, user_ids=[who], now=now)
        return True

    async def review_from_group(self, *, coordinator: int, pair_id: int, verb: str) -> str:
        """A coordinator's decision on a reported (paused) pair; returns the toast. "free": the pair ends and the
        reported person may be matched again (never with the reporter); "ban": the pair ends and they are taken off
        the buddy list and told kindly."""
        now = self.clock.now()
        if self.roles is None or not self.roles.is_coordinator(coordinator):
            self.journal.record(NewEvent(kind=EventKind.ADMIN_REFUSED, at=now, data={"command": "buddy_review"}))
            return self._t("admin_refused", GROUP_LANGUAGE)
        async with self.db.write() as session:
            pair = await stored.get_pair(session, pair_id=pair_id, lock=True)
            if pair is None or pair.status != "paused":
                return self._t("pair_review_done_already", GROUP_LANGUAGE, pair=pair_id)
            held = await stored.seated_in(session, pair_id=pair.id)  # the reported side: the reporter was freed
            await stored.close_pair(session, pair_id=pair.id, status="ended", reason="report", now=now)
            data = {"pair": pair.id, "decision": verb}
            events = [NewEvent(kind=EventKind.PEER_REVIEWED, at=now, user_id=who, data=data) for who in held]
            if verb == "ban":
                people = await stored.users_for(session, user_ids=held)
                for who in held:
                    await stored.opt_out(session, user_id=who)
                    if who in people:
                        notice = Reply(text=self._t("buddy_removed_notice", _lang(people[who].language)))
                        await self._send(
                            session, "system", people[who], notice, pair.id, key=f"peer:ban:{pair.id}", now=now
                        )
            await add_events(session, events=events)
        return self._t(f"pair_review_{verb}", GROUP_LANGUAGE, pair=pair_id)

    # ---- the relay ---------------------------------------------------------------------------------------------

    async def open_compose(self, user: UserView, pair_id: int | None = None) -> Reply:
        """ "Message my buddy" (or /b alone): the next text goes to the buddy."""
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("save_failed", lang), decision=Decision.SAVE_FAILED)
        now = self.clock.now()
        async with self.db.write() as session:
            pair = await stored.open_pair_of(session, user_id=user.id)
            refused = self._refusal(pair, lang, pair_id)
            if refused is not None or pair is None:
                return refused or self._no_buddy(lang)
            other = await self._other(session, pair, user.id)
            await stored.set_compose(session, user_id=user.id, at=now)
        name = html.escape(first_name(other.display_name if other else None, self._t("friend", lang)))
        return Reply(text=self._t("buddy_compose", lang, name=name), decision=Decision.BUDDY_COMPOSE)

    def _refusal(self, pair: PeerPair | None, lang: str, pair_id: int | None) -> Reply | None:
        if pair is None or pair.status == "proposed" or (pair_id is not None and pair.id != pair_id):
            return self._no_buddy(lang)
        if pair.status == "paused":
            return Reply(text=self._t("buddy_paused", lang), decision=Decision.BUDDY_RELAY_REFUSED)
        return None

    def _no_buddy(self, lang: str) -> Reply:
        return Reply(text=self._t("buddy_no_pair", lang), decision=Decision.BUDDY_RELAY_REFUSED)

    async def compose(self, user: UserView, text: str, received_at: dt.datetime) -> Reply | None:
        """Free text right after "Message my buddy" goes to the buddy instead of the NLU (one message per press)."""
        if user.id is None or text.startswith("/"):
            return None
        async with self.db.read() as session:  # every message asks: one primary-key read
            optin = await stored.get_optin(session, user_id=user.id)
        if optin is None or optin.compose_at is None:
            return None
        if not (optin.compose_at <= received_at <= optin.compose_at + self.settings.compose_window):
            return None
        return await self.relay(user, text, source="compose")

    async def refuse_media(self, user: UserView, kind: InboundKind) -> Reply | None:
        """A photo or voice note right after "Message my buddy": the relay takes text only, said kindly."""
        if user.id is None:
            return None
        now = self.clock.now()
        async with self.db.read() as session:
            optin = await stored.get_optin(session, user_id=user.id)
        if optin is None or optin.compose_at is None or now > optin.compose_at + self.settings.compose_window:
            return None
        self.journal.record(
            NewEvent(kind=EventKind.PEER_RELAY_REFUSED, at=now, user_id=user.id, data={"reason": "media", "kind": kind})
        )
        return Reply(text=self._t("buddy_media_refused", user.language), decision=Decision.BUDDY_RELAY_REFUSED)

    async def relay(self, user: UserView, text: str, *, source: str) -> Reply:
        """A message for the buddy: into the outbox with Reply, Report and End, within the hourly limit."""
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("save_failed", lang), decision=Decision.SAVE_FAILED)
        now = self.clock.now()
        async with self.db.write() as session:
            pair = await stored.open_pair_of(session, user_id=user.id)
            refused = self._refusal(pair, lang, None)
            if refused is not None or pair is None:
                reason = "paused" if pair is not None and pair.status == "paused" else "no_buddy"
                await self._refused(session, user.id, reason, now)
                return refused or self._no_buddy(lang)
            since = now - dt.timedelta(hours=1)
            if await stored.relayed_since(session, user_id=user.id, since=since) >= self.settings.relay_per_hour:
                await self._refused(session, user.id, "rate_limit", now)
                return Reply(text=self._t("buddy_rate_limited", lang), decision=Decision.BUDDY_RELAY_REFUSED)
            other = await self._other(session, pair, user.id)
            if other is None:
                return self._no_buddy(lang)
            other_lang = _lang(other.language)
            body = html.escape(text[: self.settings.max_relay_chars])
            sender_name = html.escape(first_name(user.display_name, self._t("friend", other_lang)))
            message = Reply(
                text=self._t("buddy_relay", other_lang, name=sender_name, text=body),
                buttons=self._pair_buttons(pair.id, other_lang, reply=True),
            )
            await self._send(session, "relay", other, message, pair.id, key=f"peer:msg:{uuid.uuid4().hex}", now=now)
            await stored.touch_pair(session, pair_id=pair.id, now=now)
            await stored.set_compose(session, user_id=user.id, at=None)
            data = {"pair": pair.id, "chars": len(text), "source": source}
            event = NewEvent(kind=EventKind.PEER_RELAYED, at=now, user_id=user.id, data=data)
            await add_events(session, events=[event])
            name = html.escape(first_name(other.display_name, self._t("friend", lang)))
        return Reply(text=self._t("buddy_relayed", lang, name=name), decision=Decision.BUDDY_RELAYED)

    async def _refused(self, session: Session, user_id: int, reason: str, now: dt.datetime) -> None:
        event = NewEvent(kind=EventKind.PEER_RELAY_REFUSED, at=now, user_id=user_id, data={"reason": reason})
        await add_events(session, events=[event])

    # ---- win stories -------------------------------------------------------------------------------------------

    async def story_answer(self, user: UserView, verb: str) -> Reply:
        """The buttons under "Want to share one line of advice?": write it now, or no thanks."""
        lang = user.language
        if verb == "no" or user.id is None:
            return Reply(text=self._t("win_story_declined", lang), decision=Decision.WIN_STORY_DECLINED)
        async with self.db.write() as session:
            await stored.start_story(session, user_id=user.id, now=self.clock.now())
        return Reply(text=self._t("win_story_write", lang), decision=Decision.WIN_STORY_ASK)

    async def story_text(self, user: UserView, text: str, received_at: dt.datetime) -> Reply | None:
        """The line right after "Share advice": stored for review and posted to the coordinators' group."""
        if user.id is None or text.startswith("/"):
            return None
        since = received_at - self.settings.compose_window
        async with self.db.read() as session:
            if await stored.story_being_written(session, user_id=user.id, since=since) is None:
                return None
        now = self.clock.now()
        words = text.strip()[: self.settings.story_chars]
        async with self.db.write() as session:
            story = await stored.story_being_written(session, user_id=user.id, since=since)
            if story is None or not await stored.write_story(session, story_id=story.id, text=words, now=now):
                return None
            data = {"story": story.id, "chars": len(words)}
            event = NewEvent(kind=EventKind.WIN_STORY_WRITTEN, at=now, user_id=user.id, data=data)
            await add_events(session, events=[event])
            if self.chat_id is not None:
                post = self._t(
                    "win_story_post", GROUP_LANGUAGE, story=story.id, user=f"№{user.id}", text=html.escape(words)
                )
                decide = [
                    Button.of(self._t("button_story_approve", GROUP_LANGUAGE), buttons.WinStoryReview("ok", story.id)),
                    Button.of(self._t("button_story_reject", GROUP_LANGUAGE), buttons.WinStoryReview("no", story.id)),
                ]
                message = outbound(
                    kind="relay", reply=Reply(text=post, buttons=[decide]), chat_id=self.chat_id, user_id=None,
                    dedupe_key=f"story:{story.id}:post", not_before=now, campaign=stored.story_campaign(story.id),
                )  # fmt: skip
                await stored_outbox.enqueue(session, messages=[message], now=now)
        return Reply(text=self._t("win_story_thanks", user.language), decision=Decision.WIN_STORY_THANKS)

    async def review_story(self, *, coordinator: int, story_id: int, approve: bool) -> str:
        """A coordinator's decision under a win story in the group; returns the toast."""
        now = self.clock.now()
        if self.roles is None or not self.roles.is_coordinator(coordinator):
            self.journal.record(NewEvent(kind=EventKind.ADMIN_REFUSED, at=now, data={"command": "win_story"}))
            return self._t("admin_refused", GROUP_LANGUAGE)
        async with self.db.write() as session:
            story = await stored.decide_story(
                session, story_id=story_id, approved=approve, coordinator=coordinator, now=now
            )
            if story is None:
                return self._t("win_story_decided_already", GROUP_LANGUAGE, story=story_id)
            data = {"story": story.id, "approved": approve}
            event = NewEvent(kind=EventKind.WIN_STORY_REVIEWED, at=now, user_id=story.user_id, data=data)
            await add_events(session, events=[event])
        return self._t("win_story_approved" if approve else "win_story_rejected", GROUP_LANGUAGE, story=story_id)

    # ---- circles -----------------------------------------------------------------------------------------------

    async def circle(self, user: UserView) -> Reply:
        lang = user.language
        member = False
        if user.id is not None:
            async with self.db.read() as session:
                member = await stored.in_circle(session, user_id=user.id)
        key = "button_circle_leave" if member else "button_circle_join"
        rows = [[Button.of(self._t(key, lang), buttons.CircleSet(not member))]]
        text = self._t("circle_about", lang, min_cell=self.settings.min_cell) + "\n\n"
        text += self._t("circle_on" if member else "circle_off", lang)
        return Reply(text=text, buttons=rows, decision=Decision.CIRCLE)

    async def set_circle(self, user: UserView, on: bool) -> Reply:
        lang = user.language
        if user.id is None:
            return Reply(text=self._t("save_failed", lang), decision=Decision.SAVE_FAILED)
        now = self.clock.now()
        async with self.db.write() as session:
            changed = (
                await stored.join_circle(session, user_id=user.id, now=now)
                if on
                else await stored.leave_circle(session, user_id=user.id)
            )
            if changed:
                kind = EventKind.CIRCLE_JOINED if on else EventKind.CIRCLE_LEFT
                await add_events(session, events=[NewEvent(kind=kind, at=now, user_id=user.id)])
        return Reply(text=self._t("circle_joined" if on else "circle_left", lang), decision=Decision.CIRCLE_SET)

    # ---- plumbing ----------------------------------------------------------------------------------------------

    def _pair_buttons(self, pair_id: int, lang: str, *, reply: bool = False) -> list[list[Button]]:
        """Write (or Reply), then Report and End on every relayed message; the introduction and /buddy also offer
        "Share my @username"."""
        write = "button_buddy_reply" if reply else "button_buddy_message"
        rows = [
            [Button.of(self._t(write, lang), buttons.BuddyPair("msg", pair_id))],
            [
                Button.of(self._t("button_buddy_report", lang), buttons.BuddyPair("rep", pair_id)),
                Button.of(self._t("button_buddy_end", lang), buttons.BuddyPair("end", pair_id)),
            ],
        ]
        if not reply:
            rows.append([Button.of(self._t("button_buddy_share_name", lang), buttons.BuddyPair("name", pair_id))])
        return rows

    def _rung_text(self, rung: int, lang: str) -> str:
        total = len(self.library.milestones)
        milestones = self.library.milestones
        title = milestones[rung - 1].title[lang] if 0 < rung <= total else self._t("buddy_rung_start", lang)
        return self._t("buddy_rung", lang, done=rung, total=total, title=html.escape(title))

    async def _other(self, session: Session, pair: PeerPair | None, user_id: int) -> User | None:
        if pair is None:
            return None
        other_id = pair.user_high if pair.user_low == user_id else pair.user_low
        return await stored_users.get_user_by_id(session, user_id=other_id) if other_id is not None else None

    async def _send(
        self, session: Session, kind: str, to: User, reply: Reply, pair_id: int, *, key: str, now: dt.datetime
    ) -> int:
        """One message to one side of a pair, filed under the pair's campaign (what /delete_me blanks). Buddy
        messages wait for the recipient's quiet hours, unlike a coordinator's relay."""
        if not to.external_id.lstrip("-").isdigit():
            return 0
        message = outbound(
            kind=kind, reply=reply, chat_id=int(to.external_id), user_id=to.id, dedupe_key=key, not_before=now,
            campaign=campaign_of(pair_id), meta={"pair": pair_id},
        )  # fmt: skip
        if kind == "relay":
            message = dataclasses.replace(message, quiet_hours=True)
        return len(await stored_outbox.enqueue(session, messages=[message], now=now))


def _lang(language: str | None) -> str:
    return language if language in ("en", "ur") else "en"


class PeerPlanner:
    """With the dispatcher's planning pass: lapse unanswered cards, end silent pairs, tell buddies of an erasure,
    match who waits, send the weekly check-ins and, once a week, the circle digests."""

    def __init__(self, peers: Peers, clock: Clock) -> None:
        self.peers = peers
        self.clock = clock

    async def plan(self, *, now: dt.datetime | None = None, use_cursor: bool = True) -> PeerPlan:
        peers = self.peers
        settings = peers.settings
        now = now or self.clock.now()
        result = PeerPlan()
        async with peers.db.write() as session:
            # One matching pass at a time across processes: the cursor row is locked for the whole transaction.
            previous = await planning.cursor(session, name="peers", lock=True)
            if previous is None:
                await planning.advance_cursor(session, name="peers", until=now - dt.timedelta(days=1))
                previous = await planning.cursor(session, name="peers", lock=True)
            since = previous if use_cursor and previous is not None else now - dt.timedelta(days=1)
            for pair in await stored.proposed_before(session, before=now - settings.card_ttl):
                if await peers._end(session, pair, by=None, status="declined", reason="expired", now=now):
                    result.ended["expired"] += 1
            for pair in await stored.silent_before(session, before=now - settings.silent_after):
                if await peers._end(session, pair, by=None, status="ended", reason="silence", now=now):
                    result.ended["silence"] += 1
            await self._tell_left(session, now, result)
            await self._match(session, now, result)
            await self._checkins(session, since, now, result)
            await self._story_asks(session, since, now, result)
            await self._digests(session, now, result)
            if use_cursor:
                await planning.advance_cursor(session, name="peers", until=now)
        return result

    async def _tell_left(self, session: Session, now: dt.datetime, result: PeerPlan) -> None:
        peers = self.peers
        for pair in await stored.left_unnoticed(session):
            who = pair.user_low if pair.user_low is not None else pair.user_high
            person = await stored_users.get_user_by_id(session, user_id=who) if who is not None else None
            if person is not None:
                notice = Reply(text=peers._t("buddy_left_notice", _lang(person.language)))
                result.enqueued += await peers._send(
                    session, "system", person, notice, pair.id, key=f"peer:left:{pair.id}", now=now
                )
            await stored.mark_noticed(session, pair_id=pair.id, now=now)

    async def _match(self, session: Session, now: dt.datetime, result: PeerPlan) -> None:
        peers = self.peers
        settings = self.peers.settings
        waiting = await stored.waiting(session, limit=settings.max_waiting_per_pass)
        if not waiting:
            return
        by_id = {w.user_id: w for w in waiting}
        excluded = await stored.known_pairs(session)
        limit = self.peers.settings.max_pairs_per_pass
        pairs = match([seeker_of(w) for w in waiting], excluded=excluded, limit=limit)
        created = await stored.propose(session, pairs=pairs, now=now)
        result.matched = len(created)
        seated = {user for _, low, high in created for user in (low, high)}
        # The odd ones out: only when this pass saw everyone waiting and matched everyone it could.
        cut_short = len(pairs) >= limit or len(waiting) >= settings.max_waiting_per_pass
        told = [w for w in waiting if not cut_short and w.user_id not in seated and not w.told]
        contacts = await stored.contacts(session, user_ids=seated | {w.user_id for w in told})
        messages: list[NewMessage] = []
        events: list[NewEvent] = []
        for pair_id, low, high in created:
            for me, other in ((by_id[low], by_id[high]), (by_id[high], by_id[low])):
                if me.user_id in contacts and other.user_id in contacts:
                    messages.append(self._card(pair_id, me, other, contacts[me.user_id], contacts[other.user_id], now))
                data = {
                    "pair": pair_id, "seeking": me.seeking, "rung_gap": other.rung - me.rung,
                    "same_skill": bool(me.skill) and (me.skill or "").casefold() == (other.skill or "").casefold(),
                }  # fmt: skip
                events.append(NewEvent(kind=EventKind.PEER_PROPOSED, at=now, user_id=me.user_id, data=data))
        for w in told:
            contact = contacts.get(w.user_id)
            if contact is None or not contact.external_id.lstrip("-").isdigit():
                continue
            reply = Reply(text=peers._t("buddy_waiting_notice", _lang(w.language)))
            messages.append(
                outbound(
                    kind="system",
                    reply=reply,
                    chat_id=int(contact.external_id),
                    user_id=w.user_id,
                    dedupe_key=f"peer:wait:{w.user_id}:{int(contact.opted_in_at.timestamp())}",
                    not_before=now,
                    campaign="peer:waiting",
                )  # fmt: skip
            )
            events.append(NewEvent(kind=EventKind.PEER_WAITING, at=now, user_id=w.user_id))
        await stored.mark_told_waiting(session, user_ids=[w.user_id for w in told], now=now)
        result.waiting_told = len(told)
        result.enqueued += len(await stored_outbox.enqueue(session, messages=messages, now=now))
        await add_events(session, events=events)

    def _card(
        self, pair_id: int, me: Waiting, other: Waiting, mine: Contact, theirs: Contact, now: dt.datetime
    ) -> NewMessage:
        """The buddy card: the other's first name, skill, rung and (if they shared it) city; never their username."""
        peers = self.peers
        lang = _lang(me.language)
        not_set = peers._t("profile_not_set", lang)
        lines = [
            peers._t(
                "buddy_card", lang,
                name=html.escape(first_name(theirs.display_name, peers._t("friend", lang))),
                skill=html.escape(other.skill or not_set),
                rung=peers._rung_text(other.rung, lang),
            )
        ]  # fmt: skip
        if other.share_city and other.city:
            lines.append(peers._t("buddy_card_city", lang, city=html.escape(other.city)))
        lines.append(peers._t(f"buddy_card_{other.seeking}", lang))
        lines.append(peers._t("buddy_card_footer", lang))
        rows = [
            [
                Button.of(peers._t("button_buddy_accept", lang), buttons.BuddyPair("yes", pair_id)),
                Button.of(peers._t("button_buddy_skip", lang), buttons.BuddyPair("skip", pair_id)),
            ]
        ]
        return outbound(
            kind="intro", reply=Reply(text="\n".join(lines), buttons=rows), chat_id=int(mine.external_id),
            user_id=me.user_id, dedupe_key=f"peer:card:{pair_id}:{me.user_id}", not_before=now,
            expires_at=now + peers.settings.card_ttl, campaign=campaign_of(pair_id), meta={"pair": pair_id},
        )  # fmt: skip

    async def _checkins(self, session: Session, since: dt.datetime, now: dt.datetime, result: PeerPlan) -> None:
        """ "Have you and Sana talked this week?" a week after the introduction and weekly after, under the nudge caps
        and quiet hours (kind `nudge`: /stop and /nudges off stop it too)."""
        peers = self.peers
        settings = peers.settings
        due: list[tuple[ActivePair, int, dt.datetime, int]] = []
        for pair in await stored.active_pairs(session):
            week = int((now - pair.started_at) / settings.checkin_every)
            moment = pair.started_at + week * settings.checkin_every
            if week >= 1 and since < moment <= now:
                due.extend((pair, who, moment, week) for who in (pair.user_low, pair.user_high) if who is not None)
        if not due:
            return
        people = await stored.users_for(session, user_ids=[who for _, who, _, _ in due])
        history = await stored_outbox.nudges_for_users(
            session, user_ids=sorted(people), since=min(m for _, _, m, _ in due) - WEEK
        )
        messages: list[NewMessage] = []
        for pair, who, moment, week in due:
            person = people.get(who)
            other_id = pair.user_high if pair.user_low == who else pair.user_low
            other = people.get(other_id) if other_id is not None else None
            if person is None or person.nudge_pace == "off" or not person.external_id.lstrip("-").isdigit():
                continue
            taken = [when for when, _, _ in history.get(who, [])]
            not_before = earliest_allowed(moment, taken, daily=settings.daily_cap, weekly=settings.weekly_cap)
            expires_at = moment + settings.checkin_expires
            if not_before > expires_at:
                continue
            history.setdefault(who, []).append((not_before, "pending", None))
            lang = _lang(person.language)
            name = html.escape(first_name(other.display_name if other else None, peers._t("friend", lang)))
            rows = [
                [
                    Button.of(peers._t("button_buddy_met", lang), buttons.BuddyPair("met", pair.id)),
                    Button.of(peers._t("button_buddy_not_met", lang), buttons.BuddyPair("nomet", pair.id)),
                ]
            ]
            messages.append(
                outbound(
                    kind="nudge",
                    reply=Reply(text=peers._t("buddy_checkin", lang, name=name), buttons=rows),
                    chat_id=int(person.external_id),
                    user_id=who,
                    dedupe_key=f"peer:checkin:{pair.id}:{who}:{week}",
                    not_before=max(not_before, moment),
                    expires_at=expires_at,
                    campaign=campaign_of(pair.id),
                    meta={"pair": pair.id, "rule": "buddy_checkin"},
                )  # fmt: skip
            )
        added = len(await stored_outbox.enqueue(session, messages=messages, now=now))
        result.checkins += added
        result.enqueued += added

    async def _story_asks(self, session: Session, since: dt.datetime, now: dt.datetime, result: PeerPlan) -> None:
        """After a first job won: "Want to share one line of advice for people one step behind?" (optional), once,
        as a nudge (quiet hours, /stop and /nudges off apply)."""
        peers = self.peers
        messages = []
        for user in await stored.first_jobs_between(session, after=since, until=now):
            if user.nudge_pace == "off" or not user.external_id.lstrip("-").isdigit():
                continue
            lang = _lang(user.language)
            rows = [
                [
                    Button.of(peers._t("button_story_write", lang), buttons.WinStoryAnswer("write")),
                    Button.of(peers._t("button_story_no", lang), buttons.WinStoryAnswer("no")),
                ]
            ]
            messages.append(
                outbound(
                    kind="nudge",
                    reply=Reply(text=peers._t("win_story_ask", lang), buttons=rows),
                    chat_id=int(user.external_id),
                    user_id=user.id,
                    dedupe_key=f"story:ask:{user.id}",
                    not_before=now,
                    campaign="story:ask",
                    meta={"rule": "win_story"},
                )  # fmt: skip
            )
        added = len(await stored_outbox.enqueue(session, messages=messages, now=now))
        result.enqueued += added

    async def _digests(self, session: Session, now: dt.datetime, result: PeerPlan) -> None:
        """Each week's digests, in batches of `digests_per_pass` members by user id (a `circle_digest` row keeps how
        far it got, so several passes, or a restart, never send twice or skip anyone)."""
        settings = self.peers.settings
        slot = digest_slot(now, settings)
        if now >= slot + settings.digest_window:
            return
        day = f"{slot:%Y-%m-%d}"
        run = await stored.digest_run(session, day=day)
        if run.finished_at is not None:
            return
        recipients = await stored.circle_recipients(
            session, after_user_id=run.cursor_user_id, limit=settings.digests_per_pass, joined_before=slot
        )
        reached = await stored.reached_between(session, milestones=DIGEST_MILESTONES, after=slot - WEEK, until=slot)
        story = await stored.latest_approved_story(session, since=slot - settings.story_fresh)
        messages = plan_digests(self.peers.library, recipients, reached, slot=slot, settings=settings, story=story)
        added = len(await stored_outbox.enqueue(session, messages=messages, now=now))
        await stored.advance_digest_run(
            session,
            day=day,
            cursor_user_id=recipients[-1].user_id if recipients else run.cursor_user_id,
            enqueued=added,
            finished_at=now if len(recipients) < settings.digests_per_pass else None,
        )
        result.digests += added
        result.enqueued += added


def cohort_counts(reached: Sequence[tuple[str, dt.datetime]]) -> dict[str, dict[str, int]]:
    """{start cohort: {milestone: how many of that cohort reached it}}."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for milestone, started_at in reached:
        counts[start_cohort(started_at)][milestone] += 1
    return {cohort: dict(found) for cohort, found in counts.items()}


def plan_digests(
    library: Library,
    recipients: Sequence[CircleRecipient],
    reached: Sequence[tuple[str, dt.datetime]],
    *,
    slot: dt.datetime,
    settings: PeerSettings,
    story: str | None = None,
) -> list[NewMessage]:
    """The week's digests: one per recipient whose start cohort has at least one cell worth showing; rendered once
    per (cohort, language). Nobody is named, and a count below `min_cell` never appears."""
    counts = cohort_counts(reached)
    rendered: dict[tuple[str, str], Reply | None] = {}
    messages: list[NewMessage] = []
    day = f"{slot:%Y-%m-%d}"
    for r in recipients:
        cohort = start_cohort(r.started_at)
        lang = _lang(r.language)
        if (cohort, lang) not in rendered:
            cells = visible_cells(counts.get(cohort, {}), min_cell=settings.min_cell)
            lines = [library.text(f"digest_{m}", lang, count=cells[m]) for m in DIGEST_MILESTONES if m in cells]
            if lines and story:  # a coordinator-approved line of advice, never with its author's name
                lines.append(library.text("digest_story", lang, text=html.escape(story)))
            rendered[(cohort, lang)] = (
                Reply(text="\n".join([library.text("digest_title", lang), *lines, library.text("digest_footer", lang)]))
                if lines
                else None
            )
        reply = rendered[(cohort, lang)]
        if reply is None or not r.external_id.lstrip("-").isdigit():
            continue
        messages.append(
            outbound(
                kind="digest",
                reply=reply,
                chat_id=int(r.external_id),
                user_id=r.user_id,
                dedupe_key=f"digest:{day}:{r.user_id}",
                not_before=slot,
                campaign=f"digest:{day}",
            )  # fmt: skip
        )
    return messages
