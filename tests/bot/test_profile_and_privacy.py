"""/profile asks step by step (state in SQL); /privacy shows what is stored; /delete_me erases it, twice safely."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.conversation import Conversation
from bot.core.types import Person
from content.library import Library
from storage import repository
from storage.models import Event

HAMZA = Person(channel="telegram", external_id="4004", display_name="Hamza <i>")


async def test_profile_is_asked_step_by_step_and_survives_a_restart(
    conversation: Conversation, library: Library, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await conversation.command(HAMZA, "profile")
    assert first.decision == "profile_ask_skill"
    await conversation.handle_text(HAMZA, "Logo design")
    # A restart: a brand-new core over the same database continues where the user was.
    restarted = Conversation(library=library, sessions=sessions, rasa=None)
    platforms = await restarted.handle_text(HAMZA, "fivver and upwork")
    assert platforms.decision == "profile_ask_city"
    skipped = await restarted.press(HAMZA, "pf:skip")
    assert skipped.decision == "profile_ask_language"
    await restarted.press(HAMZA, "pf:set:language:en")
    bad = await restarted.handle_text(HAMZA, "Mars/Olympus")
    assert bad.decision == "profile_ask_timezone"
    done = await restarted.handle_text(HAMZA, "Asia/Dubai")
    assert done.decision == "profile_done"
    assert "Logo design" in done.text and "fiverr, upwork" in done.text and "Asia/Dubai" in done.text
    async with sessions() as session:
        user = await repository.get_user(session, channel="telegram", external_id="4004")
        assert user is not None
        assert (user.skill, user.platforms, user.city, user.timezone) == (
            "Logo design",
            ["fiverr", "upwork"],
            None,
            "Asia/Dubai",
        )
        assert user.profile_step is None


async def test_privacy_shows_what_is_stored_escaped(conversation: Conversation) -> None:
    await conversation.command(HAMZA, "start")
    report = await conversation.command(HAMZA, "privacy")
    assert "Hamza &lt;i&gt;" in report.text
    assert any(b.data == "del:ask" for row in report.buttons for b in row)


async def test_privacy_for_a_stranger_stores_nobody(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    stranger = Person(channel="telegram", external_id="5005")
    reply = await conversation.press(stranger, "del:yes")
    assert reply.decision == "delete_nothing"
    async with sessions() as session:
        assert await repository.get_user(session, channel="telegram", external_id="5005") is None


async def test_delete_me_erases_words_and_profile_but_keeps_anonymous_counts(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await conversation.press(HAMZA, "consent:yes")
    await conversation.handle_text(HAMZA, "how do I withdraw money from fiverr")
    await conversation.press(HAMZA, "ms:tog:chose_skill")
    confirm = await conversation.command(HAMZA, "delete_me")
    assert [b.data for b in confirm.buttons[0]] == ["del:yes", "del:no"]
    done = await conversation.press(HAMZA, "del:yes")
    assert done.decision == "delete_done"
    twice = await conversation.press(HAMZA, "del:yes")  # the same button again, e.g. after a restart
    assert twice.decision == "delete_nothing"
    async with sessions() as session:
        assert await repository.get_user(session, channel="telegram", external_id="4004") is None
        texts = (await session.scalars(select(Event.text).where(Event.kind == "message"))).all()
        kinds = set((await session.scalars(select(Event.kind))).all())
    assert texts and all(text is None for text in texts)
    assert {"message", "consent_given", "milestone_done", "data_deleted"} <= kinds


async def test_consent_can_be_given_and_withdrawn(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await conversation.press(HAMZA, "consent:yes")
    await conversation.press(HAMZA, "consent:no")
    async with sessions() as session:
        user = await repository.get_user(session, channel="telegram", external_id="4004")
        assert user is not None and not user.research_consent and user.consent_version == 1
        consent = [
            e.kind for e in await repository.list_events(session, user_id=user.id) if e.kind.startswith("consent")
        ]
    assert consent == ["consent_given", "consent_withdrawn"]
