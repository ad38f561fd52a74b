"""The onboarding ladder: progress told in words is confirmed before it is recorded; ticks say their state."""

from __future__ import annotations

from bot.core.conversation import Conversation
from bot.core.progress import guess_milestone, proposals_count, rescued_as_report
from bot.core.types import Person
from content.library import Library
from storage.codebook import Decision
from storage.db import Database
from tests.helpers import button_data, events_of

SANA = Person(channel="telegram", external_id="3003", display_name="Sana")


def test_reports_in_three_languages_map_to_rungs(library: Library) -> None:
    cases = {
        "I got my first order on Fiverr!!": "first_job_won",
        "pehla order mil gaya": "first_job_won",
        "finally my profile got approved": "profile_approved",
        "پہلی پیمنٹ آ گئی": "first_payment_received",
        "payoneer account ban gaya": "payment_method_ready",
        # a keyword's words with up to two others between them
        "alhamdulillah mera pehla fiverr order complete ho gaya": "first_job_won",
        "fiverr se paise bank mein aa gaye": "first_payment_received",
        "finally published my first gig today": "profile_approved",
    }
    for text, expected in cases.items():
        milestone = guess_milestone(text, library.milestones)
        assert milestone is not None and milestone.id == expected, text


def test_an_unanswered_message_is_taken_as_a_report_only_when_it_names_a_rung_and_asks_nothing(
    library: Library,
) -> None:
    """The policy had nothing for it; a report that Rasa read as a question is confirmed, a question is not."""
    assert rescued_as_report("بہت خوش ہوں، آج ایک کلائنٹ نے مجھے ہائر کر لیا!", library)
    assert rescued_as_report("freelancer pe aaj zindagi ki pehli bid laga di", library)
    assert rescued_as_report("آج پہلا آرڈر ڈیلیور کیا", library)  # a final کیا is "did", not "what"
    assert not rescued_as_report("pehli kamai ka kya karun bachat karun ya kharch", library)
    assert not rescued_as_report("freelancing mein first client kaise dhundhen", library)
    assert not rescued_as_report("upwork cut some money from my first payment why", library)
    assert not rescued_as_report("کیا پہلی کمائی پر ٹیکس لگتا ہے", library)
    assert not rescued_as_report("aaj mausam acha hai", library)


def test_a_rung_is_named_in_any_spelling_the_nlu_reads(library: Library) -> None:
    """Payoneer has no settled Urdu spelling and Arabic keyboards send their own letters; the keywords are read the
    way the NLU reads the message (nlu/script.py), so one keyword serves them all, and a question stays a question."""
    for text in ("میرا پے اونیر اکاؤنٹ ویریفائی ہو گیا ہے", "میرا پیونیر اکاؤنٹ ویریفائی ہو گیا ہے"):
        assert rescued_as_report(text, library), text
    assert not rescued_as_report("پیونیر اکاؤنٹ ویریفائی کیسے کریں", library)
    assert not rescued_as_report("كيا پہلا آرڈر مل گیا", library)  # Arabic-keyboard "کیا": still a question


def test_a_rung_is_named_with_words_in_between_and_not_when_it_has_not_happened(library: Library) -> None:
    """Keywords match with a couple of words between their own ("pehla fiverr order", "paise bank mein aa gaye");
    a "not", an "or", a request or a problem word means it is no report to confirm."""
    for text in (
        "alhamdulillah mera pehla fiverr order complete ho gaya",
        "fiverr se paise bank mein aa gaye",
        "finally published my first gig today",
    ):
        assert rescued_as_report(text, library), text
    for text in (
        "payoneer account ban gaya lekin approve nahi hua",
        "پیونیر اکاؤنٹ بن گیا مگر منظوری نہیں ملی",
        "fiverr account banane ka tarika",
        "my first withdrawal on freelancer is still processing",
        "first gig bana raha hoon, gallery mein images kaisi dalun",
        "مجھے برا ریویو ملا ہے",
    ):
        assert not rescued_as_report(text, library), text


def test_proposal_counts_are_read_from_words_and_urdu_digits() -> None:
    assert proposals_count("sent 5 proposals today") == 5
    assert proposals_count("aaj 12 proposal bheje") == 12
    assert proposals_count("۳ پروپوزل بھیجے") == 3
    assert proposals_count("I sent proposals") is None


async def test_report_asks_to_confirm_then_celebrates_and_shows_next_step(
    conversation: Conversation, db: Database, library: Library
) -> None:
    user = await conversation.users.load(SANA)
    report = await conversation.progress.report(user, "pehla order mil gaya")
    assert button_data(report) == ["ms:yes:first_job_won", "ms:no:first_job_won"]
    assert list(await events_of(conversation, db, SANA, kind="milestone_done")) == []
    done = await conversation.press(SANA, "ms:yes:first_job_won")
    assert done.decision is Decision.MILESTONE_DONE
    assert "🎉" in done.text and "Next step" in done.text
    above = library.milestones[[m.id for m in library.milestones].index("first_job_won") + 1]
    assert above.title["en"] in done.text  # the rung above, not sign-up tips
    again = await conversation.press(SANA, "ms:yes:first_job_won")  # an old button pressed twice
    assert again.decision is Decision.MILESTONE_ALREADY
    assert len(await events_of(conversation, db, SANA, kind="milestone_done")) == 1


async def test_effort_is_recorded_with_its_count(conversation: Conversation, db: Database) -> None:
    user = await conversation.users.load(SANA)
    reply = await conversation.progress.report(user, "sent 5 proposals today")
    assert "5" in reply.text
    [effort] = await events_of(conversation, db, SANA, kind="effort_reported")
    assert effort.data == {"metric": "proposals_sent", "count": 5}


async def test_checklist_buttons_set_a_state_so_a_replayed_press_changes_nothing(
    conversation: Conversation, db: Database, library: Library
) -> None:
    total = len(library.milestones)
    checklist = await conversation.command(SANA, "progress")
    assert f"0/{total}" in checklist.text
    assert "ms:set:chose_skill:1" in button_data(checklist)
    ticked = await conversation.press(SANA, "ms:set:chose_skill:1")
    assert f"1/{total}" in ticked.text and ticked.replace
    assert "ms:set:chose_skill:0" in button_data(ticked)
    replayed = await conversation.press(SANA, "ms:set:chose_skill:1")  # the same update delivered twice
    assert f"1/{total}" in replayed.text
    unticked = await conversation.press(SANA, "ms:set:chose_skill:0")
    assert f"0/{total}" in unticked.text
    assert len(await events_of(conversation, db, SANA, kind="milestone_done")) == 1
    assert len(await events_of(conversation, db, SANA, kind="milestone_undone")) == 1


async def test_an_old_toggle_button_shows_the_checklist_instead_of_guessing(conversation: Conversation) -> None:
    reply = await conversation.press(SANA, "ms:tog:chose_skill")
    assert reply.decision is Decision.PROGRESS and reply.replace


async def test_what_next_points_to_the_article_for_the_next_rung(conversation: Conversation, library: Library) -> None:
    await conversation.press(SANA, "ms:set:chose_skill:1")
    reply = await conversation.progress.what_next(await conversation.users.load(SANA))
    assert "art:freelancing_first_steps" in button_data(reply)
    assert f"1 of {len(library.milestones)}" in reply.text


def test_a_hire_told_in_roman_urdu_is_a_first_job(library: Library) -> None:
    """A user trial's "client ne hire kar liya" named no rung the keywords knew, and got "I don't know"."""
    milestone = guess_milestone("alhamdulillah aaj client ne hire kar liya, logo ka kaam hai", library.milestones)
    assert milestone is not None and milestone.id == "first_job_won"


async def test_an_article_answered_to_words_that_tell_of_a_rung_offers_to_mark_it(
    conversation: Conversation, db: Database
) -> None:
    """ "I made my Upwork account today" read as a question gets the sign-up article and a first button that marks
    the rung; a question about the same thing gets the article alone."""
    told = await conversation.handle_text(SANA, "آج میں نے اپ ورک پر اکاؤنٹ بنا لیا ہے")
    assert told.decision in (Decision.ANSWER, Decision.ANSWER_WITH_ALTERNATIVES)
    assert told.article_id == "upwork_account_create"
    assert button_data(told)[0] == "ms:yes:account_created"
    assert told.buttons[0][0].label == "✅ Mark done: Created a freelancing account"  # Sana has not chosen Urdu yet
    asked = await conversation.handle_text(SANA, "اپ ورک پر اکاؤنٹ کیسے بناؤں")
    assert asked.article_id == "upwork_account_create"
    assert not any(data.startswith("ms:") for data in button_data(asked))
    marked = await conversation.press(SANA, "ms:yes:account_created")
    assert marked.decision is Decision.MILESTONE_DONE
    assert len(await events_of(conversation, db, SANA, kind="milestone_done")) == 1
