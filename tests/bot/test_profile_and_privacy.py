"""/profile asks step by step (state in SQL); /privacy shows what is stored; /delete_me erases it, twice safely."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.journal import Journal
from bot.core.types import Person
from bot.runtime import build_conversation
from content.library import Library
from nlu.lexical import LexicalSearch
from storage.codebook import Decision
from storage.db import Database
from storage.models import Event
from tests.helpers import button_data, events_of, stored_user

HAMZA = Person(channel="telegram", external_id="4004", display_name="Hamza <i>")


async def test_profile_is_asked_step_by_step_and_survives_a_restart(
    conversation: Conversation, library: Library, db: Database, clock: FrozenClock, lexical: LexicalSearch
) -> None:
    first = await conversation.command(HAMZA, "profile")
    assert first.decision is Decision.PROFILE_ASK and "1/5" in first.text
    clock.advance(seconds=5)
    await conversation.handle_text(HAMZA, "Logo design")
    # A restart: a brand-new core over the same database continues where the user was.
    restarted = build_conversation(library=library, db=db, journal=Journal(db), clock=clock, rasa=None, lexical=lexical)
    clock.advance(seconds=5)
    platforms = await restarted.handle_text(HAMZA, "fivver and upwork")
    assert platforms.decision is Decision.PROFILE_ASK and "3/5" in platforms.text
    clock.advance(seconds=5)
    skipped = await restarted.press(HAMZA, "pf:skip:city")
    assert "4/5" in skipped.text
    clock.advance(seconds=5)
    timezone_question = await restarted.press(HAMZA, "pf:set:language:en")
    assert "5/5" in timezone_question.text
    assert "pf:set:timezone:Asia/Karachi" in button_data(timezone_question)
    clock.advance(seconds=5)
    bad = await restarted.handle_text(HAMZA, "Mars/Olympus")
    assert bad.decision is Decision.PROFILE_INVALID and "5/5" in bad.text
    clock.advance(seconds=5)
    done = await restarted.handle_text(HAMZA, "Dubai")
    assert done.decision is Decision.PROFILE_DONE
    assert "Logo design" in done.text and "fiverr, upwork" in done.text and "Asia/Dubai" in done.text
    user = await stored_user(db, HAMZA)
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
    assert "del:ask" in button_data(report)


async def test_privacy_and_delete_for_a_stranger_store_nobody(conversation: Conversation, db: Database) -> None:
    """docs/PRIVACY.md: /privacy and /delete_me never create a user."""
    stranger = Person(channel="telegram", external_id="5005")
    assert (await conversation.command(stranger, "privacy")).decision is Decision.PRIVACY_NOTHING
    assert (await conversation.command(stranger, "delete_me")).decision is Decision.DELETE_CONFIRM
    assert (await conversation.press(stranger, "del:yes")).decision is Decision.DELETE_NOTHING
    assert await conversation.journal.flush()
    assert await stored_user(db, stranger) is None


async def test_delete_me_erases_words_and_profile_but_keeps_anonymous_counts(
    conversation: Conversation, db: Database
) -> None:
    await conversation.press(HAMZA, "consent:yes")
    await conversation.handle_text(HAMZA, "how do I withdraw money from fiverr")
    await conversation.press(HAMZA, "ms:set:chose_skill:1")
    confirm = await conversation.command(HAMZA, "delete_me")
    assert [b.data for b in confirm.buttons[0]] == ["del:yes", "del:no"]
    assert await conversation.journal.flush()
    done = await conversation.press(HAMZA, "del:yes")
    assert done.decision is Decision.DELETE_DONE
    twice = await conversation.press(HAMZA, "del:yes")  # the same button again, e.g. after a restart
    assert twice.decision is Decision.DELETE_NOTHING
    assert await conversation.journal.flush()
    assert await stored_user(db, HAMZA) is None
    async with db.read() as session:
        texts = (await session.scalars(select(Event.text).where(Event.kind == "message"))).all()
        kinds = set((await session.scalars(select(Event.kind))).all())
        owners = set((await session.scalars(select(Event.user_id))).all())
    assert texts and all(text is None for text in texts)
    assert {"message", "consent_given", "milestone_done", "data_deleted"} <= kinds
    assert owners == {None}


async def test_consent_can_be_given_and_withdrawn(conversation: Conversation, db: Database) -> None:
    await conversation.press(HAMZA, "consent:yes")
    await conversation.press(HAMZA, "consent:no")
    user = await stored_user(db, HAMZA)
    assert user is not None and not user.research_consent and user.consent_version == 1
    consent = [e.kind for e in await events_of(conversation, db, HAMZA) if e.kind.startswith("consent")]
    assert consent == ["consent_given", "consent_withdrawn"]
