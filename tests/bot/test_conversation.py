"""The core conversation, end to end through the real database, with the lexical fallback as its NLU."""

from __future__ import annotations

from pathlib import Path

from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.journal import Journal
from bot.core.types import Person
from bot.runtime import build_conversation
from content.library import Library
from nlu.lexical import LexicalSearch
from storage.codebook import Decision
from storage.db import Database
from tests.helpers import button_data, events_of

AYESHA = Person(channel="telegram", external_id="1001", display_name="Ayesha <b>Khan</b>", language_hint="en")


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
    conversation: Conversation, db: Database, library: Library
) -> None:
    """A payment question is answered from content with its review date and source, and both turns are logged."""
    await conversation.press(AYESHA, "consent:yes")
    reply = await conversation.handle_text(AYESHA, "fivver se paise kaise nikalte hain")
    article = library.articles["fiverr_withdrawal"]
    assert reply.article_id == article.id
    assert reply.intent == "ask_payments"
    assert article.sources[0].url in reply.text and article.reviewed.isoformat() in reply.text
    assert [b.data for b in reply.buttons[0]] == ["fb:up:fiverr_withdrawal", "fb:down:fiverr_withdrawal"]
    *_, message, answer = await events_of(conversation, db, AYESHA)
    assert (message.kind, message.text, message.nlu_source) == (
        "message",
        "fivver se paise kaise nikalte hain",
        "fallback",
    )
    assert message.data is not None and message.data["fallback_reason"] == "rasa not configured"
    assert answer.kind == "reply" and answer.article_id == "fiverr_withdrawal" and answer.latency_ms is not None


async def test_without_research_consent_message_words_are_not_kept(conversation: Conversation, db: Database) -> None:
    """The bot works without consent; the log keeps intent, article and length, never the words."""
    reply = await conversation.handle_text(AYESHA, "fivver se paise kaise nikalte hain")
    assert reply.article_id == "fiverr_withdrawal"
    message, answer = await events_of(conversation, db, AYESHA)
    assert message.text is None and answer.text is None
    assert message.article_id == "fiverr_withdrawal"
    assert message.data is not None and message.data["chars"] == len("fivver se paise kaise nikalte hain")


async def test_feedback_buttons_are_stored(conversation: Conversation, db: Database) -> None:
    reply = await conversation.press(AYESHA, "fb:down:fiverr_withdrawal")
    assert reply.decision is Decision.FEEDBACK and reply.toast_only
    [feedback] = await events_of(conversation, db, AYESHA, kind="feedback")
    assert feedback.article_id == "fiverr_withdrawal"
    assert feedback.data == {"helpful": False}


async def test_empty_and_huge_messages_get_kind_answers(conversation: Conversation) -> None:
    """Whitespace gets a hint; a 4,000-character message is read (its start) without an error."""
    empty = await conversation.handle_text(AYESHA, "   ")
    assert empty.decision is Decision.EMPTY and "empty" in empty.text
    huge = await conversation.handle_text(AYESHA, "how do I create a fiverr gig " + "please " * 570)
    assert "long message" in huge.text


async def test_urdu_script_from_english_user_is_offered_a_switch(conversation: Conversation) -> None:
    reply = await conversation.handle_text(AYESHA, "فائیور سے پیسے کیسے نکالیں")
    assert "lang:ur" in button_data(reply)


async def test_nonsense_is_honest_and_recorded_for_coordinators(conversation: Conversation, db: Database) -> None:
    await conversation.press(AYESHA, "consent:yes")
    reply = await conversation.handle_text(AYESHA, "zqxj vwkb")
    assert reply.decision is Decision.DONT_KNOW
    [unanswered] = await events_of(conversation, db, AYESHA, kind="unanswered")
    assert unanswered.text == "zqxj vwkb"


async def test_stickers_and_voice_notes_get_a_text_reply(conversation: Conversation, db: Database) -> None:
    reply = await conversation.handle_non_text(AYESHA, "voice")
    assert reply.decision is Decision.NON_TEXT
    kinds = [e.kind for e in await events_of(conversation, db, AYESHA)]
    assert kinds == ["message_voice", "reply"]


async def test_picking_a_suggested_article_shows_it(conversation: Conversation) -> None:
    reply = await conversation.press(AYESHA, "art:payoneer_setup")
    assert reply.article_id == "payoneer_setup" and reply.decision is Decision.PICKED
    unknown = await conversation.press(AYESHA, "art:no_such_article")
    assert unknown.decision is Decision.BUTTON_UNKNOWN and unknown.toast_only


async def test_answers_still_come_when_the_database_is_unreachable(
    library: Library, tmp_path: Path, clock: FrozenClock, lexical: LexicalSearch
) -> None:
    """A broken database never leaves the user without an answer to a question."""
    broken_db = Database.connect(f"sqlite+aiosqlite:///{tmp_path}")  # a folder, not a database file
    broken = build_conversation(
        library=library, db=broken_db, journal=Journal(broken_db), clock=clock, rasa=None, lexical=lexical
    )
    reply = await broken.handle_text(AYESHA, "how do I withdraw money from fiverr")
    assert reply.article_id == "fiverr_withdrawal"
    progress = await broken.command(AYESHA, "progress")
    assert progress.decision is Decision.STORAGE_UNAVAILABLE, "an outage must not look like an empty checklist"
    await broken_db.dispose()


async def test_a_question_in_a_group_gets_the_article_without_personal_buttons(conversation: Conversation) -> None:
    """In a group the best article is answered (plausible answers too), but no callback button is attached."""
    reply = await conversation.group_question(AYESHA, "how do I withdraw my money from fiverr")
    assert reply.article_id == "fiverr_withdrawal"
    assert all(button.data is None for row in reply.buttons for button in row)
