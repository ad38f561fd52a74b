"""The core conversation, end to end through the real database, with the lexical fallback as its NLU."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.core.conversation import Conversation
from bot.core.types import Person
from content.library import Library
from storage import repository
from storage.db import create_engine, create_session_factory

AYESHA = Person(channel="telegram", external_id="1001", display_name="Ayesha <b>Khan</b>", language_hint="en")


async def events_of(sessions: async_sessionmaker[AsyncSession], person: Person, kind: str | None = None) -> list:  # type: ignore[type-arg]
    async with sessions() as session:
        user = await repository.get_user(session, channel=person.channel, external_id=person.external_id)
        assert user is not None
        return list(await repository.list_events(session, user_id=user.id, kind=kind))


async def test_start_welcomes_with_language_choice_and_escapes_the_name(conversation: Conversation) -> None:
    """/start greets the user by name (HTML-safe), explains privacy and offers English or Urdu."""
    reply = await conversation.command(AYESHA, "start")
    assert "Ayesha &lt;b&gt;Khan&lt;/b&gt;" in reply.text
    assert "<b>Khan</b>" not in reply.text
    assert "/privacy" in reply.text
    assert [b.data for b in reply.buttons[0]] == ["lang:en", "lang:ur"]


async def test_choosing_urdu_makes_answers_urdu(conversation: Conversation, library: Library) -> None:
    await conversation.press(AYESHA, "lang:ur")
    reply = await conversation.handle_text(AYESHA, "how do I withdraw my money from fiverr")
    assert reply.article_id == "fiverr_withdrawal"
    assert library.articles["fiverr_withdrawal"].title["ur"] in reply.text
    assert "جائزہ" in reply.text


async def test_fiverr_withdrawal_question_gets_sourced_answer_and_is_logged(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession], library: Library
) -> None:
    """A payment question is answered from content with its review date and source, and both turns are logged."""
    await conversation.press(AYESHA, "consent:yes")
    reply = await conversation.handle_text(AYESHA, "fivver se paise kaise nikalte hain")
    article = library.articles["fiverr_withdrawal"]
    assert reply.article_id == article.id
    assert reply.intent == "ask_payments"
    assert article.sources[0].url in reply.text and article.reviewed.isoformat() in reply.text
    assert [b.data for b in reply.buttons[0]] == ["fb:up:fiverr_withdrawal", "fb:down:fiverr_withdrawal"]
    *_, message, answer = await events_of(sessions, AYESHA)
    assert (message.kind, message.text, message.nlu_source) == (
        "message",
        "fivver se paise kaise nikalte hain",
        "fallback",
    )
    assert message.data["fallback_reason"] == "rasa not configured"
    assert answer.kind == "reply" and answer.article_id == "fiverr_withdrawal" and answer.latency_ms >= 0


async def test_without_research_consent_message_words_are_not_kept(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The bot works without consent; the log keeps intent, article and length, never the words."""
    reply = await conversation.handle_text(AYESHA, "fivver se paise kaise nikalte hain")
    assert reply.article_id == "fiverr_withdrawal"
    message, answer = await events_of(sessions, AYESHA)
    assert message.text is None and answer.text is None
    assert message.article_id == "fiverr_withdrawal"
    assert message.data["chars"] == len("fivver se paise kaise nikalte hain")


async def test_feedback_buttons_are_stored(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await conversation.press(AYESHA, "fb:down:fiverr_withdrawal")
    [feedback] = await events_of(sessions, AYESHA, kind="feedback")
    assert feedback.article_id == "fiverr_withdrawal"
    assert feedback.data == {"helpful": False}


async def test_empty_and_huge_messages_get_kind_answers(conversation: Conversation) -> None:
    """Whitespace gets a hint; a 4,000-character message is read (its start) without an error."""
    empty = await conversation.handle_text(AYESHA, "   ")
    assert "empty" in empty.text
    huge = await conversation.handle_text(AYESHA, "how do I create a fiverr gig " + "please " * 570)
    assert "long message" in huge.text
    assert huge.text


async def test_urdu_script_from_english_user_is_offered_a_switch(conversation: Conversation) -> None:
    reply = await conversation.handle_text(AYESHA, "فائیور سے پیسے کیسے نکالیں")
    assert any(b.data == "lang:ur" for row in reply.buttons for b in row)


async def test_nonsense_is_honest_and_recorded_for_coordinators(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await conversation.press(AYESHA, "consent:yes")
    reply = await conversation.handle_text(AYESHA, "quantum entanglement")
    assert reply.decision == "dont_know"
    [unanswered] = await events_of(sessions, AYESHA, kind="unanswered")
    assert unanswered.text == "quantum entanglement"


async def test_stickers_and_voice_notes_get_a_text_reply(
    conversation: Conversation, sessions: async_sessionmaker[AsyncSession]
) -> None:
    reply = await conversation.handle_non_text(AYESHA, "voice")
    assert "text" in reply.text
    kinds = [e.kind for e in await events_of(sessions, AYESHA)]
    assert kinds == ["message_voice", "reply"]


async def test_picking_a_suggested_article_shows_it(conversation: Conversation) -> None:
    reply = await conversation.press(AYESHA, "art:payoneer_setup")
    assert reply.article_id == "payoneer_setup"
    unknown = await conversation.press(AYESHA, "art:no_such_article")
    assert unknown.decision == "dont_know"


async def test_answers_still_come_when_the_database_is_unreachable(library: Library, tmp_path: Path) -> None:
    """A broken database never leaves the user without an answer."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}")  # a folder, not a database file
    broken = Conversation(library=library, sessions=create_session_factory(engine), rasa=None)
    reply = await broken.handle_text(AYESHA, "how do I withdraw money from fiverr")
    assert reply.article_id == "fiverr_withdrawal"
    await engine.dispose()
