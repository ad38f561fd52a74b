"""Coordinators through the core: roles and refusals, the /broadcast wizard, segments, cohorts, /stats,
/unanswered, the hand-off relay and risk triage. Telegram's side of delivery is the local stand-in for the Bot API
(tests/fake_bot_api.py); the database is real (SQLite, and PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import insert, select
from telegram.ext import ExtBot

from bot.core.broadcasts import BroadcastPlanner, Draft, SegmentError, parse_local_time, parse_segment
from bot.core.clock import FrozenClock
from bot.core.commands import coordinator_commands
from bot.core.conversation import Conversation
from bot.core.coordination import Coordination, CoordinationSettings
from bot.core.handoff import HandoffPlanner
from bot.core.journal import Journal
from bot.core.types import Person, Reply
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.sender import TelegramSender
from bot.runtime import build_conversation
from content.coordinators import check_coordinator_content, load_coordinator_content
from content.library import Library
from nlu.lexical import LexicalSearch
from storage import outbox as stored_outbox
from storage import roles as stored_roles
from storage.broadcasts import Segment
from storage.codebook import Decision
from storage.db import Database
from storage.events import list_events
from storage.models import Broadcast, HandoffTicket, OutboxMessage, User
from tests.conftest import TEST_NOW
from tests.fake_bot_api import FakeBotApi
from tests.helpers import button_data, events_of, stored_user

COORDINATOR = 500_001
RESEARCHER = 500_002
GROUP = -100_555_000
MORNING = dt.datetime(2026, 11, 27, 5, 0, tzinfo=dt.UTC)  # 10:00 in Karachi, Friday
TOKEN = "123456:FAKE-token-for-coordinator-tests"


def coordination_for(library: Library, db: Database, clock: FrozenClock, journal: Journal) -> Coordination:
    settings = CoordinationSettings(coordinators=frozenset({COORDINATOR}), chat_id=GROUP)
    return Coordination(library=library, db=db, clock=clock, journal=journal, settings=settings)


@pytest.fixture
def coordination(library: Library, db: Database, clock: FrozenClock, journal: Journal) -> Coordination:
    return coordination_for(library, db, clock, journal)


@pytest.fixture
def core(
    library: Library,
    db: Database,
    journal: Journal,
    clock: FrozenClock,
    lexical: LexicalSearch,
    coordination: Coordination,
) -> Conversation:
    return build_conversation(
        library=library, db=db, journal=journal, clock=clock, rasa=None, lexical=lexical, coordination=coordination
    )


def person(telegram_id: int, name: str = "Sana", language: str = "en") -> Person:
    return Person(channel="telegram", external_id=str(telegram_id), display_name=name, language_hint=language)


async def outbox_rows(db: Database, **where: Any) -> list[OutboxMessage]:
    async with db.read() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for column, value in where.items():
            query = query.where(getattr(OutboxMessage, column) == value)
        return list(await session.scalars(query))


async def add_users(db: Database, now: dt.datetime, count: int, *, first: int = 800_000, **fields: Any) -> list[int]:
    """Many Telegram users at once (a bulk insert, as a big deployment would have them)."""
    rows = [
        {
            "channel": "telegram", "external_id": str(first + i), "display_name": f"User {i}", "language": "en",
            "language_chosen": True, "research_consent": False, "created_at": now, "last_seen_at": now,
            "nudge_pace": "daily", **fields,
        }
        for i in range(count)
    ]  # fmt: skip
    async with db.write() as session:
        await session.execute(insert(User), rows)
        found = await session.scalars(select(User.id).where(User.external_id.in_([r["external_id"] for r in rows])))
        return sorted(found)


# ---- roles -----------------------------------------------------------------------------------------------------

CORE_COMMANDS = [c.name for c in coordinator_commands() if c.name != "canned"]  # /canned lives in the group


@pytest.mark.parametrize("command", CORE_COMMANDS)
async def test_a_trainee_who_types_a_coordinator_command_is_politely_refused(
    core: Conversation, db: Database, command: str
) -> None:
    """A freelancer who tries /broadcast, /stats... gets a polite no, and the attempt is recorded."""
    trainee = person(700_001)
    await core.command(trainee, "start")
    reply = await core.command(trainee, command)
    assert reply.decision is Decision.ADMIN_REFUSED
    assert "coordinators" in reply.text
    refused = await events_of(core, db, trainee, kind="admin_refused")
    assert [e.data for e in refused] == [{"command": command}]
    async with db.read() as session:
        assert (await session.scalars(select(Broadcast))).all() == []


async def test_a_researcher_reads_stats_but_may_not_broadcast(
    core: Conversation, db: Database, coordination: Coordination, clock: FrozenClock
) -> None:
    async with db.write() as session:
        await stored_roles.grant(session, telegram_user_id=RESEARCHER, role="researcher", now=clock.now())
    assert await coordination.roles.refresh()
    researcher = person(RESEARCHER)
    assert (await core.command(researcher, "stats")).decision is Decision.STATS
    assert (await core.command(researcher, "unanswered")).decision is Decision.UNANSWERED_LIST
    assert (await core.command(researcher, "broadcast")).decision is Decision.ADMIN_REFUSED
    assert coordination.roles.may_read_stats(RESEARCHER) and not coordination.roles.may_broadcast(RESEARCHER)


# ---- segments ----------------------------------------------------------------------------------------------------


def test_a_typed_segment_is_read_clause_by_clause(library: Library) -> None:
    milestones = {m.id for m in library.milestones}
    segment = parse_segment(
        "language ur; platform Fiverr\nnot reached first_job_won; inactive 14; city Lahore; "
        "joined 2026-11-01 2026-11-20; cohort DGS7",
        milestones=milestones,
    )
    assert segment == Segment(
        language="ur", platform="fiverr", not_reached="first_job_won", inactive_days=14, city="Lahore",
        joined_from="2026-11-01", joined_to="2026-11-20", cohort="dgs7",
    )  # fmt: skip
    assert parse_segment("everyone", milestones=milestones) == Segment()
    for bad in ("reached the_moon", "inactive forever", "joined yesterday", "shoe size 9"):
        with pytest.raises(SegmentError):
            parse_segment(bad, milestones=milestones)


def test_a_time_is_read_in_the_coordinators_time_zone() -> None:
    from zoneinfo import ZoneInfo

    karachi = ZoneInfo("Asia/Karachi")
    assert parse_local_time("2026-12-01 10:00", now=TEST_NOW, zone=karachi) == dt.datetime(
        2026, 12, 1, 5, 0, tzinfo=dt.UTC
    )
    assert parse_local_time("tomorrow 10:00", now=TEST_NOW, zone=karachi) == dt.datetime(
        2026, 11, 28, 5, 0, tzinfo=dt.UTC
    )
    assert parse_local_time("next week", now=TEST_NOW, zone=karachi) is None


async def test_each_segment_condition_picks_exactly_its_users(
    core: Conversation, db: Database, coordination: Coordination, clock: FrozenClock
) -> None:
    now = clock.now()
    old = now - dt.timedelta(days=20)
    [urdu] = await add_users(db, now, 1, first=810_000, language="ur", city="Lahore")
    [fiverr] = await add_users(db, now, 1, first=810_100, platforms=["fiverr", "upwork"])
    [quiet] = await add_users(db, old, 1, first=810_200)
    [stopped] = await add_users(db, now, 1, first=810_300, proactive_stopped_at=now)
    [blocked] = await add_users(db, now, 1, first=810_400, blocked_at=now)
    async with db.write() as session:
        from storage.milestones import mark

        await mark(session, user_id=fiverr, milestone="first_proposal_sent", now=now, source="button")
    service = coordination.broadcasts

    async def who(segment: Segment) -> set[int]:
        from storage.broadcasts import recipients_after

        async with db.read() as session:
            found = await recipients_after(session, segment=segment, now=now, after_user_id=0, limit=100)
        return {r.user_id for r in found}

    assert await who(Segment()) == {urdu, fiverr, quiet}  # never the stopped or the blocked one
    assert stopped not in await who(Segment()) and blocked not in await who(Segment())
    assert await who(Segment(language="ur")) == {urdu}
    assert await who(Segment(city="lahore")) == {urdu}
    assert await who(Segment(platform="Fiverr")) == {fiverr}
    assert await who(Segment(reached="first_proposal_sent")) == {fiverr}
    assert await who(Segment(not_reached="first_proposal_sent")) == {urdu, quiet}
    assert await who(Segment(inactive_days=14)) == {quiet}
    day = now.date().isoformat()
    assert await who(Segment(joined_from=day, joined_to=day)) == {urdu, fiverr}
    assert (await service.count(Segment(language="ur"))) == {"en": 0, "ur": 1}


# ---- the wizard --------------------------------------------------------------------------------------------------


async def test_a_coordinator_broadcasts_an_urdu_tip_to_urdu_speakers_step_by_step(
    core: Conversation, db: Database, clock: FrozenClock
) -> None:
    """/broadcast → text → Urdu text → segment → preview and count → now → confirm: one outbox row per recipient,
    each in their language; a second /broadcast of the same thing the same day asks again."""
    coordinator = person(COORDINATOR, "Coordinator Asma")
    await core.command(coordinator, "start")
    urdu_users = await add_users(db, clock.now(), 3, first=820_000, language="ur")
    english_users = await add_users(db, clock.now(), 2, first=820_100)

    first = await core.command(coordinator, "broadcast")
    assert first.decision is Decision.BROADCAST_STEP and any(d.startswith("bc:tip:") for d in button_data(first))
    asked_urdu = await core.handle_text(coordinator, "Join the free Upwork webinar <Saturday> at 5 pm!")
    assert "Urdu" in asked_urdu.text
    asked_segment = await core.handle_text(coordinator, "ہفتے کو شام پانچ بجے مفت ویبینار میں شامل ہوں!")
    assert asked_segment.decision is Decision.BROADCAST_STEP
    counted = await core.handle_text(coordinator, "everyone")
    assert "<b>6</b> recipients" in counted.text  # 3 + 2 + the coordinator, who is a user too
    previews = await outbox_rows(db, campaign=f"preview:{counted_id(counted)}")
    assert [p.chat_id for p in previews] == [COORDINATOR, COORDINATOR]
    assert "&lt;Saturday&gt;" in previews[0].payload["text"] and "/stop" in previews[0].payload["text"]
    assert "ویبینار" in previews[1].payload["text"]

    broadcast_id = counted_id(counted)
    when = await core.press(coordinator, f"bc:now:{broadcast_id}")
    assert f"bc:go:{broadcast_id}" in button_data(when)
    done = await core.press(coordinator, f"bc:go:{broadcast_id}")
    assert done.decision is Decision.BROADCAST_CONFIRMED
    rows = await outbox_rows(db, campaign=f"broadcast:{broadcast_id}")
    assert sorted(r.user_id for r in rows if r.user_id in urdu_users + english_users) == sorted(
        urdu_users + english_users
    )
    assert len(rows) == 6 and {r.kind for r in rows} == {"broadcast"}
    by_user = {r.user_id: r.payload["text"] for r in rows}
    assert all("ویبینار" in by_user[u] for u in urdu_users)
    assert all("webinar" in by_user[u] for u in english_users)
    assert {r.payload["text"] for r in rows} == {p.payload["text"] for p in previews}  # exactly the preview
    assert (await core.press(coordinator, f"bc:go:{broadcast_id}")).decision is not Decision.BROADCAST_CONFIRMED

    await core.command(coordinator, "broadcast")
    await core.handle_text(coordinator, "Join the free Upwork webinar <Saturday> at 5 pm!")
    await core.handle_text(coordinator, "ہفتے کو شام پانچ بجے مفت ویبینار میں شامل ہوں!")
    again = await core.handle_text(coordinator, "everyone")
    second = counted_id(again)
    await core.press(coordinator, f"bc:now:{second}")
    warned = await core.press(coordinator, f"bc:go:{second}")
    assert warned.decision is Decision.BROADCAST_TWICE
    assert await outbox_rows(db, campaign=f"broadcast:{second}") == []
    assert (await core.press(coordinator, f"bc:again:{second}")).decision is Decision.BROADCAST_CONFIRMED
    assert len(await outbox_rows(db, campaign=f"broadcast:{second}")) == 6


def counted_id(reply: Reply) -> int:
    data = next(d for d in button_data(reply) if d.startswith("bc:now:"))
    return int(data.split(":")[2])


async def test_a_scheduled_broadcast_waits_for_its_time_and_a_cancel_stops_it(
    core: Conversation, db: Database, clock: FrozenClock, coordination: Coordination
) -> None:
    coordinator = person(COORDINATOR)
    await core.command(coordinator, "start")
    await add_users(db, clock.now(), 4, first=830_000)
    await core.command(coordinator, "broadcast")
    await core.handle_text(coordinator, "Office hours tomorrow")
    segment_step = await core.press(coordinator, f"bc:skip:{(await latest_broadcast(db)).id}")
    assert segment_step.decision is Decision.BROADCAST_STEP
    counted = await core.press(coordinator, f"bc:seg:{(await latest_broadcast(db)).id}:all")
    broadcast_id = counted_id(counted)
    await core.press(coordinator, f"bc:at:{broadcast_id}")
    bad = await core.handle_text(coordinator, "yesterday-ish")
    assert "could not read" in bad.text
    confirm = await core.handle_text(coordinator, "2026-11-28 10:00")
    assert "2026-11-28 10:00" in confirm.text
    await core.press(coordinator, f"bc:go:{broadcast_id}")
    planner = BroadcastPlanner(coordination.broadcasts, clock)
    assert (await planner.plan()).enqueued == 0  # not due yet
    clock.set(dt.datetime(2026, 11, 28, 5, 0, tzinfo=dt.UTC))
    assert (await planner.plan()).enqueued == 5
    rows = await outbox_rows(db, campaign=f"broadcast:{broadcast_id}")
    assert {r.not_before for r in rows} == {clock.now()}
    cancelled = await core.press(coordinator, f"bc:x:{broadcast_id}")
    assert "5 messages" in cancelled.text
    assert {r.status for r in await outbox_rows(db, campaign=f"broadcast:{broadcast_id}")} == {"cancelled"}


async def latest_broadcast(db: Database) -> Broadcast:
    async with db.read() as session:
        found = await session.scalar(select(Broadcast).order_by(Broadcast.id.desc()).limit(1))
    assert found is not None
    return found


async def test_an_expansion_cut_short_by_a_crash_resumes_without_losing_or_repeating_anyone(
    db: Database, clock: FrozenClock, coordination: Coordination, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,200 recipients in batches of 500: the process dies after the first batch committed; the planner's next
    pass finishes the expansion, and every recipient has exactly one row."""
    users = await add_users(db, clock.now(), 1200, first=840_000)
    service = coordination.broadcasts
    broadcast_id = await service.create(Draft(text_en="Reminder: class at 6"))
    calls = 0
    real_enqueue = stored_outbox.enqueue

    async def dying_enqueue(session: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the process was killed")
        return await real_enqueue(session, **kwargs)

    monkeypatch.setattr(stored_outbox, "enqueue", dying_enqueue)
    with pytest.raises(RuntimeError):
        await service.confirm(broadcast_id, twice=False, source="cli")
    assert len(await outbox_rows(db, campaign=f"broadcast:{broadcast_id}")) == 500
    monkeypatch.setattr(stored_outbox, "enqueue", real_enqueue)
    await BroadcastPlanner(service, clock).plan()
    rows = await outbox_rows(db, campaign=f"broadcast:{broadcast_id}")
    assert sorted(r.user_id for r in rows) == users
    report = await service.report(broadcast_id)
    assert report is not None and report.broadcast.status == "sending" and report.broadcast.enqueued == 1200


# ---- cohorts -----------------------------------------------------------------------------------------------------


async def test_a_coordinator_makes_a_cohort_link_and_a_trainee_joins_through_it(
    core: Conversation, db: Database, coordination: Coordination
) -> None:
    coordinator = person(COORDINATOR)
    created = await core.command(coordinator, "cohort", "new dgs7_lahore")
    assert "?start=c-dgs7_lahore" in created.text
    trainee = person(700_100, "Bilal")
    welcome = await core.command(trainee, "start", "c-dgs7_lahore")
    assert "dgs7_lahore" in welcome.text and welcome.decision is Decision.WELCOME
    assert await coordination.broadcasts.count(Segment(cohort="dgs7_lahore")) == {"en": 1, "ur": 0}
    stranger = await core.command(person(700_101), "start", "c-nosuchcohort")
    assert "nosuchcohort" not in stranger.text
    listed = await core.command(coordinator, "cohort")
    assert "dgs7_lahore</b> (1)" in listed.text


# ---- stats -------------------------------------------------------------------------------------------------------


async def test_stats_show_the_funnel_medians_answers_and_feedback(
    core: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    trainee = person(700_200, "Hina")
    await core.command(trainee, "start")
    await core.press(trainee, "consent:yes")
    answer = await core.handle_text(trainee, "how do I withdraw my money from fiverr")
    await core.press(trainee, f"fb:down:{answer.article_id}")
    # keyboard mash: nothing in the training data shares a trigram with it, so "I don't know" (not out of scope)
    await core.handle_text(trainee, "zqxj vwkb")
    await core.handle_text(trainee, "vwkb zqxj")
    clock.advance(days=3)
    await core.press(trainee, "ms:set:first_proposal_sent:1")
    await core.journal.flush()
    stats = await core.command(person(COORDINATOR), "stats")
    assert "Users: <b>" in stats.text
    assert "Median days from /start to “" in stats.text and ": 3" in stats.text
    assert "👎 1" in stats.text
    unanswered = await core.command(person(COORDINATOR), "unanswered")
    assert "(2×)" in unanswered.text and "zqxj" in unanswered.text  # the two mashes are one group
    assert "👎 1" in unanswered.text
    [added] = [d for d in button_data(unanswered) if d.startswith("un:")]
    assert (await core.press(person(COORDINATOR), added)).toast_only
    await core.journal.flush()
    after = await core.command(person(COORDINATOR), "unanswered")
    assert "zqxj" not in after.text


async def test_unanswered_questions_of_users_who_did_not_consent_are_counted_never_shown(
    core: Conversation, db: Database
) -> None:
    trainee = person(700_300)
    await core.command(trainee, "start")
    await core.handle_text(trainee, "zqxj vwkb")
    await core.journal.flush()
    listed = await core.command(person(COORDINATOR), "unanswered")
    assert "zqxj" not in listed.text and "+ 1 from users who did not share" in listed.text


# ---- hand-off ----------------------------------------------------------------------------------------------------


@pytest.fixture
async def sender(telegram: FakeBotApi) -> AsyncIterator[TelegramSender]:
    bot = ExtBot(TOKEN, base_url=telegram.bot_api_url)
    await bot.initialize()
    yield TelegramSender(bot, Pacer(1000))
    await bot.shutdown()


def dispatcher_for(db: Database, clock: FrozenClock, sender: TelegramSender, worker: str = "w1") -> Dispatcher:
    return Dispatcher(db=db, clock=clock, sender=sender, worker=worker, batch_size=200)


async def test_a_roman_urdu_request_reaches_a_coordinator_and_the_reply_comes_back_from_the_bot(
    committed_db: Database, telegram: FakeBotApi, sender: TelegramSender, library: Library, lexical: LexicalSearch
) -> None:
    """ "kisi insaan se baat karni hai" → a ticket and a post in the coordinators' group (a number, no name) → a
    coordinator replies to that post → the user gets it from the bot; a "!" note stays in the group; the user's
    next words go to the group, not to the NLU; Close tells the user."""
    clock = FrozenClock(MORNING)
    journal = Journal(committed_db)
    coordination = coordination_for(library, committed_db, clock, journal)
    core = build_conversation(library=library, db=committed_db, journal=journal, clock=clock, rasa=None,
                              lexical=lexical, coordination=coordination)  # fmt: skip
    dispatcher = dispatcher_for(committed_db, clock, sender)
    user = person(700_400, "Zainab Bibi", "ur")
    await core.command(user, "start")
    await core.press(user, "lang:ur")
    await core.handle_text(user, "fiverr se paise kaise nikalte hain")
    await journal.flush()

    opened = await core.handle_text(user, "kisi insaan se baat karni hai")
    assert opened.decision is Decision.HANDOFF_OPENED
    assert "کوآرڈینیٹر" in opened.text and "09:00" in opened.text
    await dispatcher.run_once()
    [post] = telegram.delivered_to(GROUP)
    stored = await stored_user(committed_db, user)
    assert stored is not None
    assert f"№{stored.id}" in post.text and "Zainab" not in post.text
    assert "fiverr" in post.text.casefold() and "kisi insaan" in post.text  # context: the topic, the request

    outcome = await coordination.handoff.reply_from_group(
        coordinator=COORDINATOR,
        message_id=9001,
        replied_to=post.message_id,
        text="Salam! Payoneer ke liye CNIC chahiye.",
    )
    note = await coordination.handoff.reply_from_group(
        coordinator=COORDINATOR, message_id=9002, replied_to=post.message_id, text="! she asked last week too"
    )
    stranger = await coordination.handoff.reply_from_group(
        coordinator=123, message_id=9003, replied_to=post.message_id, text="I am not a coordinator"
    )
    assert (outcome, note, stranger) == ("relayed", "note", "refused")
    await dispatcher.run_once()
    [relayed] = telegram.delivered_to(700_400)
    assert "Payoneer ke liye CNIC chahiye" in relayed.text and "she asked" not in relayed.text
    assert all("I am not a coordinator" not in m.text for m in telegram.sent)

    forwarded = await core.handle_text(user, "shukriya, aur bank account?")
    assert forwarded.decision is Decision.HANDOFF_FORWARDED
    await dispatcher.run_once()
    assert "aur bank account?" in telegram.delivered_to(GROUP)[-1].text
    followup = telegram.delivered_to(GROUP)[-1]
    assert await coordination.handoff.reply_from_group(
        coordinator=COORDINATOR, message_id=9004, replied_to=followup.message_id, text="", canned="closing"
    ) == "relayed"  # fmt: skip
    toast = await coordination.handoff.close_from_group(
        coordinator=COORDINATOR, ticket_id=(await ticket_of(committed_db)).id
    )
    assert "closed" in toast
    await dispatcher.run_once()
    texts = [m.text for m in telegram.delivered_to(700_400)]
    assert any("/human" in t and "بند" in t for t in texts)
    after = await core.handle_text(user, "payoneer account kaise banaen")
    assert after.decision is not Decision.HANDOFF_FORWARDED  # back to the bot
    await journal.flush()
    async with committed_db.read() as session:
        kinds = [e.kind for e in await list_events(session, user_id=stored.id)]
    for kind in ("handoff_requested", "handoff_message", "handoff_replied", "handoff_closed"):
        assert kind in kinds
    async with committed_db.read() as session:
        notes = [e.kind for e in await list_events(session, kind="handoff_note")]
    assert notes == ["handoff_note"]


async def ticket_of(db: Database) -> HandoffTicket:
    async with db.read() as session:
        ticket = await session.scalar(select(HandoffTicket).order_by(HandoffTicket.id.desc()).limit(1))
    assert ticket is not None
    return ticket


async def test_an_unanswered_hand_off_is_posted_again_and_a_silent_one_closes_after_two_days(
    db: Database, clock: FrozenClock, core: Conversation, coordination: Coordination
) -> None:
    user = person(700_500)
    await core.command(user, "start")
    await core.command(user, "human", "my payment is stuck")
    planner = HandoffPlanner(coordination.handoff, clock)
    assert (await planner.plan()).reposted == 0
    clock.advance(hours=2, minutes=1)
    assert (await planner.plan()).reposted == 1
    group_posts = await outbox_rows(db, chat_id=GROUP)
    assert len(group_posts) == 2 and "Still waiting" in group_posts[1].payload["text"]
    assert (await core.command(user, "human")).decision is Decision.HANDOFF_ALREADY_OPEN
    clock.advance(hours=48)
    assert (await planner.plan()).closed == 1
    async with db.read() as session:
        ticket = await session.scalar(select(HandoffTicket))
    assert ticket is not None and (ticket.status, ticket.closed_reason) == ("closed", "silence")
    told = await outbox_rows(db, chat_id=700_500)
    assert "two quiet days" in told[-1].payload["text"]


async def test_erasing_a_user_blanks_what_they_sent_to_the_coordinators(db: Database, core: Conversation) -> None:
    user = person(700_600)
    await core.command(user, "start")
    await core.command(user, "human", "my very private problem")
    await core.press(user, "del:yes")
    posts = await outbox_rows(db, chat_id=GROUP)
    assert posts and all("private problem" not in str(p.payload) for p in posts)


async def test_without_a_coordinators_group_a_request_for_a_human_is_answered_honestly(
    library: Library, db: Database, journal: Journal, clock: FrozenClock, lexical: LexicalSearch
) -> None:
    coordination = Coordination(library=library, db=db, clock=clock, journal=journal)
    core = build_conversation(library=library, db=db, journal=journal, clock=clock, rasa=None, lexical=lexical,
                              coordination=coordination)  # fmt: skip
    reply = await core.command(person(700_700), "human")
    assert reply.decision is Decision.HANDOFF_UNAVAILABLE


# ---- risk triage -------------------------------------------------------------------------------------------------


async def test_a_pay_a_fee_first_message_gets_the_scam_warning_first_and_one_alert(
    core: Conversation, db: Database, clock: FrozenClock
) -> None:
    user = person(700_800, "Kamran")
    await core.command(user, "start")
    reply = await core.handle_text(user, "company keh rahi hai pehle 3000 paise jama karwao, how do I make a gig?")
    assert reply.decision is Decision.RISK_WARNING and reply.article_id == "scams_pay_to_get_work"
    assert reply.text.index("scam") < reply.text.index("/human")
    again = await core.handle_text(user, "they say pay a fee first to get the job")
    assert again.decision is Decision.RISK_WARNING
    alerts = await outbox_rows(db, campaign="risk")
    assert len(alerts) == 1 and alerts[0].chat_id == GROUP  # rate-limited: one per person and rule
    assert "Kamran" not in alerts[0].payload["text"] and "3000" not in alerts[0].payload["text"]  # no consent
    for text, article in (
        ("client is asking me to send your CNIC picture", "account_safety"),
        ("client keh raha hai whatsapp pe aa jao", "off_platform_requests"),
        ("verified fiverr account khareedna hai", "account_safety"),
    ):
        assert (await core.handle_text(user, text)).article_id == article
    assert len(await outbox_rows(db, campaign="risk")) == 4
    flagged = await events_of(core, db, user, kind="risk_flagged")
    assert [e.data["rule"] for e in flagged if e.data][:1] == ["fee_first"]


async def test_an_ordinary_question_is_not_mistaken_for_a_scam(core: Conversation) -> None:
    user = person(700_900)
    await core.command(user, "start")
    for text in ("how much fee does fiverr take", "how do I create a fiverr account", "I forgot my fiverr password"):
        assert (await core.handle_text(user, text)).decision is not Decision.RISK_WARNING


def test_the_risk_rules_and_canned_replies_pass_content_check(library: Library) -> None:
    assert check_coordinator_content(load_coordinator_content(), articles=set(library.articles)) == []


async def test_a_role_granted_from_the_cli_is_seen_after_a_refresh(
    db: Database, coordination: Coordination, clock: FrozenClock
) -> None:
    roles = coordination.roles
    assert not roles.is_coordinator(600_001)
    async with db.write() as session:
        assert await stored_roles.grant(session, telegram_user_id=600_001, role="coordinator", now=clock.now())
        assert not await stored_roles.grant(session, telegram_user_id=600_001, role="coordinator", now=clock.now())
    assert await roles.refresh() and roles.is_coordinator(600_001)
    async with db.write() as session:
        assert await stored_roles.revoke(session, telegram_user_id=600_001, role="coordinator")
    assert await roles.refresh() and not roles.is_coordinator(600_001)
    assert roles.is_coordinator(COORDINATOR)  # from settings: always
