"""Buddies and circles through the core: /buddy and "koi aur freelancer jis se baat kar sakun" opt in, matching in
the dispatcher's pass, the double opt-in, the anonymous relay both ways, Report to the coordinators' group, End,
/delete_me of one side, the odd one out, check-ins, silent pairs, and the weekly circle digest. Telegram's side is the
local stand-in for the Bot API (tests/fake_bot_api.py); the database is real (SQLite, and PostgreSQL with
TEST_DATABASE_URL)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert, select
from telegram.ext import ExtBot

from bot.core import buttons
from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.coordination import Coordination, CoordinationSettings
from bot.core.journal import Journal
from bot.core.peers import PeerPlanner
from bot.core.types import Person, Reply
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.sender import TelegramSender
from bot.runtime import build_conversation
from content.library import Library
from nlu.lexical import LexicalSearch
from storage import peers as stored_peers
from storage import users as stored_users
from storage.codebook import Decision
from storage.db import Database
from storage.events import list_events
from storage.models import MilestoneDone, OutboxMessage, PeerOptIn, PeerPair, PeerSeat, User
from tests.fake_bot_api import FakeBotApi, Sent
from tests.helpers import button_data, stored_user

GROUP = -100_777_000
COORDINATOR = 500_101
MORNING = dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC)  # 10:00 in Karachi, Friday
TOKEN = "123456:FAKE-token-for-peer-tests"


def coordination_for(library: Library, db: Database, clock: FrozenClock, journal: Journal) -> Coordination:
    settings = CoordinationSettings(coordinators=frozenset({COORDINATOR}), chat_id=GROUP)
    return Coordination(library=library, db=db, clock=clock, journal=journal, settings=settings)


@pytest.fixture
def coordination(library: Library, db: Database, clock: FrozenClock, journal: Journal) -> Coordination:
    return coordination_for(library, db, clock, journal)


@pytest.fixture
def core(
    library: Library, db: Database, journal: Journal, clock: FrozenClock, lexical: LexicalSearch,
    coordination: Coordination,
) -> Conversation:  # fmt: skip
    return build_conversation(
        library=library, db=db, journal=journal, clock=clock, rasa=None, lexical=lexical, coordination=coordination
    )


@pytest.fixture
def planner(coordination: Coordination, clock: FrozenClock) -> PeerPlanner:
    return PeerPlanner(coordination.peers, clock)


def person(telegram_id: int, name: str, language: str = "en", username: str | None = None) -> Person:
    return Person(
        channel="telegram", external_id=str(telegram_id), display_name=name, language_hint=language, username=username
    )


def data(action: buttons.ButtonAction) -> str:
    return buttons.encode(action)


async def opt_in(
    core: Conversation, db: Database, who: Person, *, seeking: str = "peer", skill: str | None = None,
    city: str | None = None, share_city: bool = False, rungs: int = 0, language: str = "en",
) -> int:  # fmt: skip
    """A freelancer who starts, picks a language, has a profile and some rungs, and says yes to /buddy."""
    await core.command(who, "start")
    await core.press(who, f"lang:{language}")
    user = await stored_user(db, who)
    assert user is not None
    async with db.write() as session:
        if skill:
            await stored_users.set_profile_field(session, user_id=user.id, field="skill", value=skill)
        if city:
            await stored_users.set_profile_field(session, user_id=user.id, field="city", value=city)
    ladder = ["chose_skill", "account_created", "profile_complete", "profile_approved", "payment_method_ready"]
    for milestone in ladder[:rungs]:
        await core.press(who, data(buttons.SetMilestone(milestone, True)))
    asked = await core.command(who, "buddy")
    assert asked.decision is Decision.BUDDY_ASK
    preview = await core.press(who, data(buttons.BuddyWant(seeking)))  # type: ignore[arg-type]
    assert preview.decision is Decision.BUDDY_PREVIEW
    joined = await core.press(who, data(buttons.BuddyJoin(seeking, share_city)))  # type: ignore[arg-type]
    assert joined.decision is Decision.BUDDY_OPTED_IN
    return user.id


async def rows(db: Database, **where: Any) -> list[OutboxMessage]:
    async with db.read() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for column, value in where.items():
            query = query.where(getattr(OutboxMessage, column) == value)
        return list(await session.scalars(query))


async def pairs(db: Database) -> list[PeerPair]:
    async with db.read() as session:
        return list(await session.scalars(select(PeerPair).order_by(PeerPair.id)))


def pressable(message: Sent | OutboxMessage) -> list[str]:
    """The callback data of every button on a delivered (or queued) message."""
    if isinstance(message, OutboxMessage):
        return [b["data"] for row in message.payload.get("buttons", []) for b in row if "data" in b]
    keyboard = (message.reply_markup or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in keyboard for b in row if "callback_data" in b]


# ---- opting in -----------------------------------------------------------------------------------------------------


async def test_buddy_asks_what_helps_and_shows_exactly_what_will_be_shared(core: Conversation, db: Database) -> None:
    """Ayesha types /buddy: three choices; the preview lists her first name, skill and step, offers her city only as a
    choice, never mentions a username; nothing is stored until she says yes."""
    ayesha = person(710_001, "Ayesha Khan")
    await core.command(ayesha, "start")
    user = await stored_user(db, ayesha)
    assert user is not None
    async with db.write() as session:
        await stored_users.set_profile_field(session, user_id=user.id, field="skill", value="Logo design")
        await stored_users.set_profile_field(session, user_id=user.id, field="city", value="Multan")
    asked = await core.command(ayesha, "buddy")
    assert button_data(asked) == [data(buttons.BuddyWant(s)) for s in ("peer", "ahead", "help")]  # type: ignore[arg-type]
    preview = await core.press(ayesha, data(buttons.BuddyWant("ahead")))
    assert "Ayesha" in preview.text and "Khan" not in preview.text and "Logo design" in preview.text
    assert "Multan" in preview.text and "username" in preview.text
    assert button_data(preview) == [
        data(buttons.BuddyJoin("ahead", True)), data(buttons.BuddyJoin("ahead", False)), data(buttons.BuddyStop()),
    ]  # fmt: skip
    async with db.read() as session:
        assert await session.get(PeerSeat, user.id) is None
    joined = await core.press(ayesha, data(buttons.BuddyJoin("ahead", False)))
    assert joined.decision is Decision.BUDDY_OPTED_IN
    again = await core.command(ayesha, "buddy")
    assert again.decision is Decision.BUDDY_STATUS and data(buttons.BuddyStop()) in button_data(again)
    stopped = await core.press(ayesha, data(buttons.BuddyStop()))
    assert stopped.decision is Decision.BUDDY_OPTED_OUT
    assert await journal_kinds(core, db, ayesha) >= {"peer_opted_in", "peer_opted_out"}


async def journal_kinds(core: Conversation, db: Database, who: Person) -> set[str]:
    assert await core.journal.flush()
    user = await stored_user(db, who)
    assert user is not None
    async with db.read() as session:
        return {e.kind for e in await list_events(session, user_id=user.id)}


@pytest.mark.parametrize(
    "words", ["koi aur freelancer jis se baat kar sakun", "I want a study buddy", "کوئی ساتھی فری لانسر"]
)
async def test_asking_for_a_buddy_in_words_leads_to_the_same_flow_as_buddy(core: Conversation, words: str) -> None:
    """Roman Urdu, English or Urdu script: the intent find_peers, routed like /buddy (here through the lexical
    fallback; Rasa is trained on the same examples)."""
    kamran = person(710_002, "Kamran", "ur")
    await core.command(kamran, "start")
    reply = await core.handle_text(kamran, words)
    assert reply.intent == "find_peers"
    assert reply.decision is Decision.BUDDY_ASK


# ---- the whole story through the outbox and a Telegram stand-in ----------------------------------------------------


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotApi]:
    api = FakeBotApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
async def sender(telegram: FakeBotApi) -> AsyncIterator[TelegramSender]:
    bot = ExtBot(TOKEN, base_url=telegram.bot_api_url)
    await bot.initialize()
    yield TelegramSender(bot, Pacer(1000))
    await bot.shutdown()


async def test_two_freelancers_meet_through_a_double_opt_in_and_talk_through_rahnuma(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    """Sana and Bilal opt in; the dispatcher's pass matches them and each gets a card (first name, skill, step, never a
    username); Sana accepts and waits; Bilal accepts and both are introduced. /b goes to Bilal with Reply, Report and
    End; his reply after "Reply" comes back; a photo is kindly refused; Bilal reports and the coordinators' group gets
    it with the last messages; the pair is paused both ways."""
    clock = FrozenClock(MORNING)
    journal = Journal(committed_db)
    coordination = coordination_for(library, committed_db, clock, journal)
    core = build_conversation(library=library, db=committed_db, journal=journal, clock=clock, rasa=None,
                              lexical=lexical, coordination=coordination)  # fmt: skip
    dispatcher = Dispatcher(
        db=committed_db, clock=clock, sender=sender, worker="w1", batch_size=200, planners=coordination.planners()
    )
    sana, bilal = person(720_001, "Sana Malik", username="sana_malik"), person(720_002, "Bilal Ahmed", username="bilal")
    await opt_in(core, committed_db, sana, skill="Graphic design", rungs=2, city="Lahore", share_city=True)
    await opt_in(core, committed_db, bilal, skill="graphic design", rungs=2, city="Lahore", share_city=False)

    await dispatcher.run_once()
    [to_sana] = telegram.delivered_to(720_001)
    [to_bilal] = telegram.delivered_to(720_002)
    assert "Bilal" in to_sana.text and "Ahmed" not in to_sana.text and "graphic design" in to_sana.text
    assert "2 of 10" in to_sana.text and "Lahore" not in to_sana.text  # Bilal did not share his city
    assert "Sana" in to_bilal.text and "Lahore" in to_bilal.text  # Sana did
    assert "@" not in to_sana.text + to_bilal.text
    [pair] = await pairs(committed_db)
    yes, skip = pressable(to_sana)
    assert (yes, skip) == (data(buttons.BuddyPair("yes", pair.id)), data(buttons.BuddyPair("skip", pair.id)))

    waiting = await core.press(sana, yes)
    assert waiting.decision is Decision.BUDDY_ACCEPTED and "Bilal" in waiting.text
    await dispatcher.run_once()
    assert len(telegram.delivered_to(720_002)) == 1  # Bilal learns nothing until he accepts
    introduced = await core.press(bilal, pressable(to_bilal)[0])
    assert introduced.decision is Decision.BUDDY_INTRODUCED and "Sana" in introduced.text
    await dispatcher.run_once()
    intro = telegram.delivered_to(720_001)[-1]
    assert "Bilal" in intro.text and "buddies" in intro.text
    assert all("sana_malik" not in m.text for m in telegram.delivered_to(720_002))  # no username until she says so
    shared = await core.press(sana, data(buttons.BuddyPair("name", pair.id)))
    assert shared.decision is Decision.BUDDY_USERNAME_SHARED and "@sana_malik" in shared.text
    await dispatcher.run_once()
    assert "@sana_malik" in telegram.delivered_to(720_002)[-1].text
    assert all("@bilal" not in m.text for m in telegram.delivered_to(720_001))  # Bilal did not share his

    sent = await core.command(sana, "b", "Assalam o alaikum! <b>Which</b> gig did you make first?")
    assert sent.decision is Decision.BUDDY_RELAYED
    await dispatcher.run_once()
    relayed = telegram.delivered_to(720_002)[-1]
    assert "Sana" in relayed.text and "&lt;b&gt;Which&lt;/b&gt; gig" in relayed.text
    assert pressable(relayed) == [data(buttons.BuddyPair(v, pair.id)) for v in ("msg", "rep", "end")]  # type: ignore[arg-type]

    compose = await core.press(bilal, pressable(relayed)[0])
    assert compose.decision is Decision.BUDDY_COMPOSE
    refused = await core.handle_non_text(bilal, "photo")
    assert refused.decision is Decision.BUDDY_RELAY_REFUSED
    answered = await core.handle_text(bilal, "A logo gig. Send me a message anytime")
    assert answered.decision is Decision.BUDDY_RELAYED
    after = await core.handle_text(bilal, "how do I withdraw from fiverr")
    assert after.decision is not Decision.BUDDY_RELAYED  # one message per press: back to the bot
    await dispatcher.run_once()
    assert "A logo gig" in telegram.delivered_to(720_001)[-1].text

    reported = await core.press(sana, data(buttons.BuddyPair("rep", pair.id)))
    assert reported.decision is Decision.BUDDY_REPORTED
    await dispatcher.run_once()
    [post] = telegram.delivered_to(GROUP)
    stored_sana, stored_bilal = await stored_user(committed_db, sana), await stored_user(committed_db, bilal)
    assert stored_sana is not None and stored_bilal is not None
    assert f"№{stored_sana.id}" in post.text and f"№{stored_bilal.id}" in post.text and "A logo gig" in post.text
    assert "Sana" not in post.text and "Bilal" not in post.text
    assert (await core.command(bilal, "b", "hello?")).decision is Decision.BUDDY_RELAY_REFUSED
    assert (await core.command(sana, "b", "hello?")).decision is Decision.BUDDY_RELAY_REFUSED
    [pair] = await pairs(committed_db)
    assert (pair.status, pair.ended_reason) == ("paused", "report")
    async with committed_db.read() as session:
        seats = {s.user_id for s in await session.scalars(select(PeerSeat))}
    assert seats == {stored_bilal.id}  # the reported side is held; Sana may be matched with someone else
    await journal.flush()
    async with committed_db.read() as session:
        events = await list_events(session, user_id=stored_sana.id)
    kinds = [e.kind for e in events]
    for kind in ("peer_proposed", "peer_accepted", "peer_introduced", "peer_relayed", "peer_reported"):
        assert kind in kinds
    assert all("gig" not in (e.text or "") for e in events)  # relayed words never reach the event log


async def test_two_dispatchers_matching_at_once_never_give_anyone_two_buddies(
    committed_db: Database, library: Library, lexical: LexicalSearch
) -> None:
    """Two planning passes at the same moment (two processes) over twenty waiting people: every one of them sits in
    exactly one pair, and no pair exists twice."""
    clock = FrozenClock(MORNING)
    journal = Journal(committed_db)
    coordination = coordination_for(library, committed_db, clock, journal)
    core = build_conversation(library=library, db=committed_db, journal=journal, clock=clock, rasa=None,
                              lexical=lexical, coordination=coordination)  # fmt: skip
    for i in range(20):
        await opt_in(core, committed_db, person(730_000 + i, f"User{i}"))
    first, second = PeerPlanner(coordination.peers, clock), PeerPlanner(coordination.peers, clock)
    results = await asyncio.gather(first.plan(), second.plan(), return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results), results
    matched = sum(r.matched for r in results if not isinstance(r, BaseException))
    assert matched == 10
    async with committed_db.read() as session:
        seats = list(await session.scalars(select(PeerSeat)))
    assert len(seats) == 20 and len({s.user_id for s in seats}) == 20
    cards = await rows(committed_db, kind="intro")
    assert len(cards) == 20 and len({c.user_id for c in cards}) == 20


# ---- rules over time -----------------------------------------------------------------------------------------------


async def test_the_odd_one_out_is_told_once_and_matched_when_someone_joins(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock
) -> None:
    """Hina is alone at her step: told once that she is first in line (not again on the next pass); when Omar joins
    at her step, both get a card."""
    hina = await opt_in(core, db, person(740_001, "Hina"), rungs=1)
    await opt_in(core, db, person(740_009, "Zeeshan"), rungs=3)  # another step: not a peer for Hina
    assert (await planner.plan()).matched == 0
    clock.advance(hours=1)
    assert (await planner.plan()).waiting_told == 0
    told = [r for r in await rows(db, user_id=hina) if r.campaign == "peer:waiting"]
    assert len(told) == 1 and "first in line" in told[0].payload["text"]
    omar = await opt_in(core, db, person(740_002, "Omar"), rungs=1)
    clock.advance(hours=1)
    assert (await planner.plan()).matched == 1
    [pair] = await pairs(db)
    assert {pair.user_low, pair.user_high} == {hina, omar}


async def test_a_skipped_pair_is_never_proposed_again(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock
) -> None:
    """Rabia skips Danish's card: Danish is told kindly (not who skipped), and no later pass proposes them again."""
    rabia = await opt_in(core, db, person(750_001, "Rabia"))
    danish = await opt_in(core, db, person(750_002, "Danish"))
    await planner.plan()
    [pair] = await pairs(db)
    skipped = await core.press(person(750_001, "Rabia"), data(buttons.BuddyPair("skip", pair.id)))
    assert skipped.decision is Decision.BUDDY_SKIPPED
    told = (await rows(db, user_id=danish))[-1]
    assert "won't go ahead" in told.payload["text"] and "Rabia" not in told.payload["text"]
    for _ in range(3):
        clock.advance(hours=1)
        assert (await planner.plan()).matched == 0
    [pair] = await pairs(db)
    assert pair.status == "declined" and {pair.user_low, pair.user_high} == {rabia, danish}


async def test_relayed_messages_are_rate_limited(core: Conversation, db: Database, planner: PeerPlanner) -> None:
    """Twenty messages an hour reach the buddy; the twenty-first is refused kindly."""
    a, b = person(760_001, "Asad"), person(760_002, "Fatima")
    await opt_in(core, db, a)
    await opt_in(core, db, b)
    await planner.plan()
    [pair] = await pairs(db)
    await core.press(a, data(buttons.BuddyPair("yes", pair.id)))
    await core.press(b, data(buttons.BuddyPair("yes", pair.id)))
    decisions = [(await core.command(a, "b", f"message {i}")).decision for i in range(21)]
    assert decisions[:20] == [Decision.BUDDY_RELAYED] * 20
    assert decisions[20] is Decision.BUDDY_RELAY_REFUSED


async def active_pair(core: Conversation, db: Database, planner: PeerPlanner, a: Person, b: Person) -> PeerPair:
    await opt_in(core, db, a)
    await opt_in(core, db, b)
    await planner.plan()
    [pair] = [p for p in await pairs(db) if p.status == "proposed"]
    await core.press(a, data(buttons.BuddyPair("yes", pair.id)))
    await core.press(b, data(buttons.BuddyPair("yes", pair.id)))
    return pair


async def test_delete_me_ends_the_pair_blanks_relayed_words_and_the_buddy_is_told(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock
) -> None:
    """Nadia writes to Usman, then erases her data: every relayed message of the pair, both ways, is blank; the pair
    has ended; Usman is told on the next pass that his buddy left, and is free for someone new."""
    nadia, usman = person(770_001, "Nadia"), person(770_002, "Usman")
    pair = await active_pair(core, db, planner, nadia, usman)
    await core.command(nadia, "b", "my private number is 0300")
    await core.command(usman, "b", "thanks, mine is 0321")
    await core.press(nadia, "del:yes")
    relays = [r for r in await rows(db, campaign=f"peer:{pair.id}") if r.kind == "relay"]
    assert len(relays) == 2 and all("03" not in str(r.payload) for r in relays)
    assert all(r.status == "cancelled" for r in relays)
    [ended] = await pairs(db)
    assert (ended.status, ended.ended_reason) == ("ended", "deleted")
    clock.advance(minutes=5)
    await planner.plan()
    stored_usman = await stored_user(db, usman)
    assert stored_usman is not None
    notices = [r for r in await rows(db, user_id=stored_usman.id) if r.kind == "system"]
    assert any("left Rahnuma" in r.payload["text"] for r in notices)
    async with db.read() as session:
        assert await session.get(PeerSeat, stored_usman.id) is None


async def test_end_frees_both_and_a_new_buddy_can_come(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock
) -> None:
    """Imran ends the pair with Ali: Ali is told kindly; a third person at their step joins; the next pass pairs
    one of them with her, never Imran with Ali again."""
    imran, ali = person(780_001, "Imran"), person(780_002, "Ali")
    pair = await active_pair(core, db, planner, imran, ali)
    ended = await core.press(imran, data(buttons.BuddyPair("end", pair.id)))
    assert ended.decision is Decision.BUDDY_ENDED
    stored_ali = await stored_user(db, ali)
    assert stored_ali is not None
    assert "ended your conversation" in (await rows(db, user_id=stored_ali.id))[-1].payload["text"]
    await opt_in(core, db, person(780_003, "Maryam"))
    clock.advance(hours=1)
    assert (await planner.plan()).matched == 1
    newest = (await pairs(db))[-1]
    assert newest.id != pair.id and newest.status == "proposed"


async def test_a_weekly_check_in_comes_and_a_silent_pair_ends_gently_after_three_weeks(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock
) -> None:
    """A week after the introduction each buddy gets "Have you and Sana talked this week?" (once, with Yes / Not yet);
    three weeks without a relayed message end the pair kindly, and both may be matched with someone else."""
    sana, tariq = person(790_001, "Sana"), person(790_002, "Tariq")
    pair = await active_pair(core, db, planner, sana, tariq)
    clock.advance(days=7, hours=1)
    assert (await planner.plan()).checkins == 2
    assert (await planner.plan()).checkins == 0  # once a week, not once a pass
    stored_tariq = await stored_user(db, tariq)
    assert stored_tariq is not None
    [checkin] = [r for r in await rows(db, user_id=stored_tariq.id) if r.kind == "nudge"]
    assert "Have you and Sana talked this week?" in checkin.payload["text"]
    answer = await core.press(tariq, pressable(checkin)[1])
    assert answer.decision is Decision.BUDDY_CHECKIN and "/b" in answer.text
    clock.advance(days=14)
    assert (await planner.plan()).ended["silence"] == 1
    [ended] = await pairs(db)
    assert (ended.id, ended.status, ended.ended_reason) == (pair.id, "ended", "silence")
    assert "three weeks" in (await rows(db, user_id=stored_tariq.id))[-1].payload["text"]


# ---- circles -------------------------------------------------------------------------------------------------------


async def test_the_circle_digest_shows_a_cohort_count_of_five_and_hides_four(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock
) -> None:
    """Zara joins the circle. Five people who started the same week as her won a first job this week: Monday's digest
    says so; the four who sent a first proposal are not shown; nobody is named."""
    zara = person(800_001, "Zara")
    await core.command(zara, "start")
    circle = await core.command(zara, "circle")
    assert circle.decision is Decision.CIRCLE
    assert (await core.press(zara, data(buttons.CircleSet(True)))).decision is Decision.CIRCLE_SET
    now = clock.now()
    async with db.write() as session:
        await session.execute(
            insert(User),
            [
                {"channel": "telegram", "external_id": str(801_000 + i), "display_name": f"Peer{i}", "language": "en",
                 "language_chosen": True, "created_at": now, "last_seen_at": now, "nudge_pace": "daily"}
                for i in range(9)
            ],
        )  # fmt: skip
        ids = list(await session.scalars(select(User.id).where(User.display_name.like("Peer%")).order_by(User.id)))
        monday = dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.UTC)
        done = [(i, "first_job_won") for i in ids[:5]] + [(i, "first_proposal_sent") for i in ids[5:9]]
        await session.execute(
            insert(MilestoneDone),
            [{"user_id": u, "milestone": m, "done_at": monday - dt.timedelta(days=1), "source": "t"} for u, m in done],
        )
    await planner.plan()  # the cursor starts here
    clock.set(monday + dt.timedelta(minutes=1))
    assert (await planner.plan()).digests == 1
    stored_zara = await stored_user(db, zara)
    assert stored_zara is not None
    [digest] = await rows(db, user_id=stored_zara.id, kind="digest")
    assert "5 people who started with you won their first job" in digest.payload["text"]
    assert "proposal" not in digest.payload["text"] and "Peer" not in digest.payload["text"]
    assert (await planner.plan()).digests == 0  # once a week


def replies(*found: Reply) -> list[str]:
    return [r.text for r in found]


async def test_a_crowd_is_matched_over_several_short_passes_and_nobody_is_told_to_wait_meanwhile(
    core: Conversation, db: Database, clock: FrozenClock, coordination: Coordination
) -> None:
    """Six people opt in at once and a pass may make only one pair: each pass pairs the longest-waiting first, and
    nobody hears "no buddy fits yet" while partners are still waiting for the next pass."""
    peers = coordination.peers
    peers.settings = dataclasses.replace(peers.settings, max_pairs_per_pass=1)
    planner = PeerPlanner(peers, clock)
    for i in range(6):
        await opt_in(core, db, person(810_000 + i, f"Crowd{i}"))
        clock.advance(seconds=1)
    made = []
    for _ in range(4):
        made.append((await planner.plan()).matched)
        clock.advance(minutes=1)
    assert made == [1, 1, 1, 0]
    assert [r for r in await rows(db, campaign="peer:waiting")] == []
    first = (await pairs(db))[0]
    ids = [u.id for u in [await stored_user(db, person(810_000 + i, "")) for i in range(2)] if u is not None]
    assert {first.user_low, first.user_high} == set(ids)  # the two who waited longest went first


async def test_a_weeks_digests_are_spread_over_passes_and_never_sent_twice(
    core: Conversation, db: Database, clock: FrozenClock, coordination: Coordination
) -> None:
    """With two digests a pass, five circle members get theirs over three passes; later passes add nothing."""
    peers = coordination.peers
    peers.settings = dataclasses.replace(peers.settings, digests_per_pass=2, min_cell=1)
    planner = PeerPlanner(peers, clock)
    members = []
    for i in range(5):
        who = person(820_000 + i, f"Member{i}")
        await core.command(who, "start")
        await core.press(who, data(buttons.CircleSet(True)))
        members.append(await stored_user(db, who))
    async with db.write() as session:
        for user in members[:1]:
            assert user is not None
            session.add(MilestoneDone(user_id=user.id, milestone="first_job_won", done_at=clock.now(), source="t"))
    clock.set(dt.datetime(2026, 11, 30, 5, 1, tzinfo=dt.UTC))
    counts = [(await planner.plan()).digests for _ in range(5)]
    assert counts == [2, 2, 1, 0, 0]
    digests = await rows(db, kind="digest")
    assert len({d.user_id for d in digests}) == 5


@pytest.mark.parametrize("verb", ["free", "ban"])
async def test_a_coordinator_decides_on_a_report_from_the_buttons_under_it(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock, coordination: Coordination, verb: str
) -> None:
    """Under a report, only a coordinator's press counts. "free" ends the pair and lets the reported person be matched
    again (never with the reporter); "ban" also takes them off the buddy list and tells them kindly."""
    reporter, reported = person(830_001, "Hira"), person(830_002, "Kashif")
    pair = await active_pair(core, db, planner, reporter, reported)
    await core.press(reporter, data(buttons.BuddyPair("rep", pair.id)))
    [post] = await rows(db, chat_id=GROUP)
    choices = [data(buttons.PairReview(v, pair.id)) for v in ("free", "ban")]  # type: ignore[arg-type]
    assert pressable(post) == choices
    peers = coordination.peers
    refused = await peers.review_from_group(coordinator=123, pair_id=pair.id, verb=verb)
    assert "coordinators" in refused
    toast = await peers.review_from_group(coordinator=COORDINATOR, pair_id=pair.id, verb=verb)
    assert f"Pair {pair.id} ended" in toast
    again = await peers.review_from_group(coordinator=COORDINATOR, pair_id=pair.id, verb=verb)
    assert "already" in again
    stored_reported = await stored_user(db, reported)
    assert stored_reported is not None
    async with db.read() as session:
        assert list(await session.scalars(select(PeerSeat))) == []
        still_listed = await session.get(PeerOptIn, stored_reported.id) is not None
    assert still_listed is (verb == "free")
    notices = [r.payload["text"] for r in await rows(db, user_id=stored_reported.id) if r.kind == "system"]
    assert any("taken you off the buddy list" in t for t in notices) is (verb == "ban")
    clock.advance(hours=1)
    assert (await planner.plan()).matched == 0  # the reporter and the reported person never meet again


async def test_a_win_story_is_asked_approved_quoted_unnamed_in_a_digest_and_erased_with_its_author(
    core: Conversation, db: Database, planner: PeerPlanner, clock: FrozenClock, coordination: Coordination
) -> None:
    """Naveed wins his first job: the next pass asks (optionally) for one line of advice; he writes it; the group sees
    it with a number; a coordinator approves; Monday's digest for Zara (same start week, five first jobs) quotes it
    without his name. When Naveed erases his data, the story and its group post lose their words."""
    naveed, zara = person(840_001, "Naveed Iqbal"), person(840_002, "Zara")
    await core.command(naveed, "start")
    await core.command(zara, "start")
    await core.press(zara, data(buttons.CircleSet(True)))
    now = clock.now()
    async with db.write() as session:
        await session.execute(
            insert(User),
            [
                {"channel": "telegram", "external_id": str(841_000 + i), "display_name": f"Peer{i}", "language": "en",
                 "language_chosen": True, "created_at": now, "last_seen_at": now, "nudge_pace": "daily"}
                for i in range(4)
            ],
        )  # fmt: skip
        others = list(await session.scalars(select(User.id).where(User.display_name.like("Peer%"))))
        for user_id in others:
            session.add(MilestoneDone(user_id=user_id, milestone="first_job_won", done_at=now, source="t"))
    await core.press(naveed, data(buttons.SetMilestone("first_job_won", True)))
    await planner.plan()
    stored_naveed = await stored_user(db, naveed)
    assert stored_naveed is not None
    [ask] = [r for r in await rows(db, user_id=stored_naveed.id) if r.campaign == "story:ask"]
    assert "one line of advice" in ask.payload["text"] and ask.kind == "nudge"
    assert (await core.press(naveed, pressable(ask)[0])).decision is Decision.WIN_STORY_ASK
    thanks = await core.handle_text(naveed, "Reply to every client within an hour, even to say no")
    assert thanks.decision is Decision.WIN_STORY_THANKS
    [post] = await rows(db, chat_id=GROUP)
    assert f"№{stored_naveed.id}" in post.payload["text"] and "Naveed" not in post.payload["text"]
    story_id = int(pressable(post)[0].rsplit(":", 1)[1])
    peers = coordination.peers
    assert "coordinators" in await peers.review_story(coordinator=123, story_id=story_id, approve=True)
    assert "approved" in await peers.review_story(coordinator=COORDINATOR, story_id=story_id, approve=True)

    clock.set(dt.datetime(2026, 11, 30, 5, 1, tzinfo=dt.UTC))
    await planner.plan()
    stored_zara = await stored_user(db, zara)
    assert stored_zara is not None
    [digest] = await rows(db, user_id=stored_zara.id, kind="digest")
    assert "5 people who started with you won their first job" in digest.payload["text"]
    assert "Reply to every client within an hour" in digest.payload["text"] and "Naveed" not in digest.payload["text"]

    await core.press(naveed, "del:yes")
    [post] = await rows(db, chat_id=GROUP)
    assert post.payload == {}
    async with db.read() as session:
        assert await stored_peers.latest_approved_story(session, since=now - dt.timedelta(days=30)) is None


async def test_a_pass_looks_only_at_the_longest_waiting_and_tells_nobody_to_wait_while_others_were_not_seen(
    core: Conversation, db: Database, clock: FrozenClock, coordination: Coordination
) -> None:
    """With a matching pool of three, the first pass sees the three longest-waiting (one pair, one left over) and
    tells nobody "no buddy fits yet"; the next pass sees the leftover and the fourth, and pairs them."""
    peers = coordination.peers
    peers.settings = dataclasses.replace(peers.settings, max_waiting_per_pass=3)
    planner = PeerPlanner(peers, clock)
    for i in range(4):
        await opt_in(core, db, person(850_000 + i, f"Pool{i}"))
        clock.advance(seconds=1)
    assert (await planner.plan()).matched == 1
    assert await rows(db, campaign="peer:waiting") == []
    clock.advance(minutes=1)
    assert (await planner.plan()).matched == 1
    last = await stored_user(db, person(850_003, ""))
    assert last is not None and last.id in {(await pairs(db))[-1].user_low, (await pairs(db))[-1].user_high}
