"""Nudges are planned from the rules, once per occurrence, within the caps and the person's pace; /stop, /resume
and /nudges change what is planned; experiments assign stable arms."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.nudges import NudgePlanner, arm_for, earliest_allowed
from bot.core.types import Person
from content.library import Library
from storage import users as stored_users
from storage.codebook import Decision
from storage.db import Database
from storage.models import OutboxMessage
from tests.helpers import button_data, events_of, stored_user

NOW = dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.UTC)  # 09:00 in Karachi
NADIA = Person(channel="telegram", external_id="6006", display_name="Nadia Iqbal", language_hint="en")


async def outbox_rows(db: Database) -> list[OutboxMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def joined(conversation: Conversation, clock: FrozenClock, person: Person = NADIA) -> None:
    """The person sends /start now; the clock then moves to the day after."""
    await conversation.command(person, "start")
    assert await conversation.journal.flush()


def test_caps_allow_one_nudge_a_day_and_three_a_week() -> None:
    day = dt.timedelta(days=1)
    assert earliest_allowed(NOW, [], daily=1, weekly=3) == NOW
    assert earliest_allowed(NOW, [NOW - dt.timedelta(hours=2)], daily=1, weekly=3) == NOW + dt.timedelta(hours=22)
    three_this_week = [NOW - 6 * day, NOW - 4 * day, NOW - 2 * day]
    assert earliest_allowed(NOW, three_this_week, daily=1, weekly=3) == NOW + day  # the oldest leaves the window
    assert earliest_allowed(NOW, [NOW - 3 * day], daily=1, weekly=1) == NOW + 4 * day  # weekly pace
    pending_tomorrow = [NOW + dt.timedelta(hours=12)]
    assert earliest_allowed(NOW, pending_tomorrow, daily=1, weekly=3) == NOW + dt.timedelta(hours=36)


async def test_the_welcome_nudge_is_planned_once_however_often_planning_runs(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    planner = NudgePlanner(library, db, clock)
    clock.advance(days=1, minutes=5)
    first = await planner.plan()
    again = await planner.plan()
    without_cursor = await planner.plan(use_cursor=False)  # e.g. `dispatch --once --at` overlapping the window
    assert [n.rule for n in first.planned] == ["welcome_d1"] and first.enqueued == 1
    assert again.enqueued == 0 and without_cursor.enqueued == 0
    [row] = await outbox_rows(db)
    assert (row.kind, row.status, row.campaign) == ("nudge", "pending", "nudge:welcome_d1")
    assert "Nadia" in row.payload["text"] and "Iqbal" not in row.payload["text"]  # first name only
    labels = [b["label"] for r in row.payload["buttons"] for b in r]
    assert "Why am I getting this?" in labels
    [planned] = await events_of(conversation, db, NADIA, kind="nudge_planned")
    assert planned.data is not None and planned.data["rule"] == "welcome_d1"


async def test_a_nudge_in_urdu_for_someone_who_chose_urdu(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    await conversation.press(NADIA, "lang:ur")
    clock.advance(days=1, minutes=5)
    await NudgePlanner(library, db, clock).plan()
    [row] = await outbox_rows(db)
    assert any("\u0600" <= ch <= "\u06ff" for ch in row.payload["text"])


async def test_someone_who_ticked_a_rung_gets_no_welcome_series(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    await conversation.press(NADIA, "ms:set:chose_skill:1")
    clock.advance(days=1, minutes=5)
    report = await NudgePlanner(library, db, clock).plan()
    assert report.planned == []


async def test_two_rules_due_the_same_day_are_spread_by_the_daily_cap(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    """Silent for 10 days and stuck for 10 days: one nudge now, the other a day later, never two in a day."""
    await joined(conversation, clock)
    await conversation.press(NADIA, "ms:set:chose_skill:1")
    assert await conversation.journal.flush()
    clock.advance(days=10, minutes=5)
    report = await NudgePlanner(library, db, clock).plan()
    times = sorted(n.not_before for n in report.planned)
    assert {n.rule for n in report.planned} == {"stuck_rung", "inactive_10"}
    assert times[1] - times[0] >= dt.timedelta(days=1)


async def test_the_stuck_nudge_offers_the_article_for_the_next_rung(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    await conversation.press(NADIA, "ms:set:chose_skill:1")
    clock.advance(days=10, minutes=5)
    await NudgePlanner(library, db, clock).plan()
    stuck = next(row for row in await outbox_rows(db) if row.campaign == "nudge:stuck_rung")
    next_rung = library.milestones[1]
    assert next_rung.title["en"] in stuck.payload["text"]
    assert any(b.get("data") == f"nd:stuck_rung:art:{next_rung.article}" for r in stuck.payload["buttons"] for b in r)


async def test_stop_cancels_what_is_waiting_and_plans_nothing_until_resume(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    planner = NudgePlanner(library, db, clock)
    clock.advance(days=1, minutes=5)
    await planner.plan()
    stopped = await conversation.command(NADIA, "stop")
    assert stopped.decision is Decision.PROACTIVE_STOPPED and "/resume" in stopped.text
    [row] = await outbox_rows(db)
    assert row.status == "cancelled"
    clock.advance(days=2)
    assert (await planner.plan()).planned == []
    resumed = await conversation.command(NADIA, "resume")
    assert resumed.decision is Decision.PROACTIVE_RESUMED
    clock.advance(days=4)
    assert [n.rule for n in (await planner.plan()).planned] == ["welcome_d7"]
    kinds = [e.kind for e in await events_of(conversation, db, NADIA) if e.kind.startswith("proactive")]
    assert kinds == ["proactive_stopped", "proactive_resumed"]


async def test_asking_in_roman_urdu_to_stop_messages_stops_them(
    conversation: Conversation, db: Database, clock: FrozenClock
) -> None:
    """The stop_nudges intent works like /stop (here through the lexical search, as when Rasa is down)."""
    await joined(conversation, clock)
    reply = await conversation.handle_text(NADIA, "please stop messaging me every day")
    assert reply.decision is Decision.PROACTIVE_STOPPED
    user = await stored_user(db, NADIA)
    assert user is not None and user.proactive_stopped_at is not None


async def test_nudges_settings_show_the_pace_and_weekly_pace_spaces_nudges_a_week_apart(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    settings = await conversation.command(NADIA, "nudges")
    assert settings.decision is Decision.NUDGE_SETTINGS
    assert {"np:daily", "np:weekly", "np:off", "px:stop"} <= set(button_data(settings))
    assert (await conversation.press(NADIA, "np:weekly")).decision is Decision.NUDGE_PACE_SET
    await conversation.press(NADIA, "ms:set:chose_skill:1")
    assert await conversation.journal.flush()
    clock.advance(days=10, minutes=5)
    report = await NudgePlanner(library, db, clock).plan()
    assert len(report.planned) == 1 and report.skipped["caps"] == 1  # the second would be more than 1 a week


async def test_pace_off_plans_no_nudges(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    await conversation.press(NADIA, "np:off")
    clock.advance(days=1, minutes=5)
    assert (await NudgePlanner(library, db, clock).plan()).planned == []


async def test_experiment_arms_are_stable_balanced_and_recorded(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    experiment = library.nudges.experiments[0]
    arms = [arm_for(experiment, user_id).name for user_id in range(3000)]
    counts = {name: arms.count(name) for name in {arm.name for arm in experiment.arms}}
    assert all(900 <= count <= 1100 for count in counts.values()), counts
    assert [arm_for(experiment, 42).name for _ in range(3)] == [arm_for(experiment, 42).name] * 3
    await joined(conversation, clock)
    clock.advance(days=3, minutes=5)
    await NudgePlanner(library, db, clock).plan()
    row = next(r for r in await outbox_rows(db) if r.campaign == "nudge:welcome_d3")
    user = await stored_user(db, NADIA)
    assert user is not None and row.meta is not None
    assert row.meta["arm"] == arm_for(experiment, user.id).name
    assert row.meta.get("withhold", False) == (row.meta["arm"] == "control")
    [assigned] = await events_of(conversation, db, NADIA, kind="experiment_assigned")
    assert assigned.data == {"experiment": experiment.id, "arm": row.meta["arm"]}


async def test_blocked_users_are_not_planned(
    conversation: Conversation, db: Database, clock: FrozenClock, library: Library
) -> None:
    await joined(conversation, clock)
    await conversation.blocked_changed(NADIA, blocked=True)
    clock.advance(days=1, minutes=5)
    assert (await NudgePlanner(library, db, clock).plan()).planned == []
    user = await stored_user(db, NADIA)
    assert user is not None and user.blocked_at is not None
    async with db.write() as session:
        assert not await stored_users.set_blocked(session, user_id=user.id, blocked_at=clock.now())  # already
