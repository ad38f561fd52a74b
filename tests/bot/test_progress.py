"""The onboarding ladder: progress told in words is confirmed before it is recorded; ticks are idempotent."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.conversation import Conversation
from bot.core.progress import guess_milestone, proposals_count
from bot.core.types import Person
from content.library import Library
from storage import repository

SANA = Person(channel="telegram", external_id="3003", display_name="Sana")


async def kinds(sessions: async_sessionmaker[AsyncSession], kind: str) -> list:  # type: ignore[type-arg]
    async with sessions() as session:
        user = await repository.get_user(session, channel="telegram", external_id="3003")
        assert user is not None
        return list(await repository.list_events(session, user_id=user.id, kind=kind))


def test_reports_in_three_languages_map_to_rungs(library: Library) -> None:
    cases = {
        "I got my first order on Fiverr!!": "first_job_won",
        "pehla order mil gaya": "first_job_won",
        "finally my profile got approved": "profile_approved",
        "پہلی پیمنٹ آ گئی": "first_payment_received",
        "payoneer account ban gaya": "payment_method_ready",
    }
    for text, expected in cases.items():
        milestone = guess_milestone(text, library.milestones)
        assert milestone is not None and milestone.id == expected, text


def test_proposal_counts_are_read_from_words_and_urdu_digits() -> None:
    assert proposals_count("sent 5 proposals today") == 5
    assert proposals_count("aaj 12 proposal bheje") == 12
    assert proposals_count("۳ پروپوزل بھیجے") == 3
    assert proposals_count("I sent proposals") is None


async def test_report_asks_to_confirm_then_celebrates_and_shows_next_step(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession], library: Library
) -> None:
    report = await conversation.progress.report(await conversation.turns.load_user(SANA), "pehla order mil gaya")
    assert [b.data for b in report.buttons[0]] == ["ms:yes:first_job_won", "ms:no:first_job_won"]
    assert await kinds(sessions, "milestone_done") == []
    done = await conversation.press(SANA, "ms:yes:first_job_won")
    assert done.decision == "milestone_done"
    assert "🎉" in done.text and "Next step" in done.text
    assert library.milestones[7].id == "first_payment_received"
    assert library.milestones[7].title["en"] in done.text  # the rung above, not sign-up tips
    again = await conversation.press(SANA, "ms:yes:first_job_won")  # an old button pressed twice
    assert again.decision == "milestone_already"
    assert len(await kinds(sessions, "milestone_done")) == 1


async def test_effort_is_recorded_with_its_count(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    user = await conversation.turns.load_user(SANA)
    reply = await conversation.progress.report(user, "sent 5 proposals today")
    assert "5" in reply.text
    [effort] = await kinds(sessions, "effort_reported")
    assert effort.data == {"metric": "proposals_sent", "count": 5}


async def test_checklist_ticks_and_unticks(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    checklist = await conversation.command(SANA, "progress")
    assert "0/10" in checklist.text
    ticked = await conversation.press(SANA, "ms:tog:chose_skill")
    assert "1/10" in ticked.text and ticked.replace
    unticked = await conversation.press(SANA, "ms:tog:chose_skill")
    assert "0/10" in unticked.text
    assert [e.kind for e in await kinds(sessions, "milestone_undone")] == ["milestone_undone"]


async def test_what_next_points_to_the_article_for_the_next_rung(conversation: Conversation) -> None:
    await conversation.press(SANA, "ms:tog:chose_skill")
    reply = await conversation.progress.what_next(await conversation.turns.load_user(SANA))
    assert any(b.data == "art:freelancing_first_steps" for row in reply.buttons for b in row)
    assert "1 of 10" in reply.text
