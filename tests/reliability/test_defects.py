"""Issue 7's defects, one regression test each (numbers as in the issue), through the core and the real database.

Each test reproduces what a user or an attacker did on commit d2bd972 and checks what they see and what is stored.
Defects that need Telegram's side, a subprocess or a second process are in the neighbouring files; the map is in
docs/RELIABILITY.md.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from sqlalchemy import select, update

from bot.core import buttons
from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.journal import Journal
from bot.core.profile import InvalidAnswer
from bot.core.text import split_html
from bot.core.types import Button, Person, Reply
from bot.delivery.render import message_parts
from bot.runtime import build_conversation
from content.library import Library
from nlu.client import RasaClient
from nlu.lexical import LexicalSearch
from nlu.pipeline import KNOWN_INTENTS
from storage import users as stored_users
from storage.codebook import Decision
from storage.db import Database
from storage.events import NewEvent, add_events
from storage.models import Event, MilestoneDone, User
from tests.helpers import button_data, events_of, stored_user
from tests.reliability import telegram_html
from tests.reliability.doubles import FlakyDatabase, RasaDouble, like_rasa

HAMZA = Person(channel="telegram", external_id="4004", display_name="Hamza", language_hint="en")
SAVE_FAILED_WORDS = "couldn't save"


async def all_events(db: Database) -> list[Event]:
    async with db.read() as session:
        return list((await session.scalars(select(Event).order_by(Event.id))).all())


# ---- 1. a failed write is reported as success -----------------------------------------------------------------


async def test_withdrawing_consent_while_the_database_fails_says_so_and_keeps_consent_as_it_was(
    flaky: Conversation, flaky_db: FlakyDatabase, db: Database
) -> None:
    """Defect 1: "declined" was said while consent stayed on. Now the user hears it did not save, and what is
    stored matches what they were told: consent still on, no consent_withdrawn event; pressing again works."""
    await flaky.press(HAMZA, "consent:yes")
    flaky_db.fail_commits = True

    reply = await flaky.press(HAMZA, "consent:no")

    assert reply.decision is Decision.SAVE_FAILED and SAVE_FAILED_WORDS in reply.text
    flaky_db.fail_commits = False
    user = await stored_user(db, HAMZA)
    assert user is not None and user.research_consent, "consent changed although the user was told it did not"
    kinds = [e.kind for e in await events_of(flaky, db, HAMZA)]
    assert "consent_withdrawn" not in kinds
    again = await flaky.press(HAMZA, "consent:no")
    assert again.decision is Decision.CONSENT_DECLINED
    user = await stored_user(db, HAMZA)
    assert user is not None and not user.research_consent
    await flaky.handle_text(HAMZA, "my private words about fiverr")
    [message] = await events_of(flaky, db, HAMZA, kind="message")
    assert message.text is None, "words stored after consent was withdrawn"


async def test_confirming_a_milestone_while_the_database_fails_is_not_called_already_marked(
    flaky: Conversation, flaky_db: FlakyDatabase, db: Database
) -> None:
    """Defect 1: a failed confirm said "already marked". Now: save_failed, no row, no milestone_done event."""
    await flaky.command(HAMZA, "start")
    flaky_db.fail_commits = True

    reply = await flaky.press(HAMZA, "ms:yes:first_job_won")

    assert reply.decision is Decision.SAVE_FAILED and "🎉" not in reply.text
    flaky_db.fail_commits = False
    async with db.read() as session:
        assert (await session.scalars(select(MilestoneDone))).all() == []
    assert await events_of(flaky, db, HAMZA, kind="milestone_done") == []


async def test_profile_during_a_read_outage_does_not_restart_the_questions(
    flaky: Conversation, flaky_db: FlakyDatabase, db: Database, clock: FrozenClock
) -> None:
    """Defect 1: an outage looked like an empty profile, so /profile started over. Now it says it cannot read, and
    nothing is written."""
    await flaky.command(HAMZA, "profile")
    clock.advance(seconds=5)
    await flaky.handle_text(HAMZA, "Logo design")
    await flaky.command(HAMZA, "cancel")
    writes_before = flaky_db.writes
    flaky_db.fail_reads = True

    reply = await flaky.command(HAMZA, "profile")

    assert reply.decision is Decision.STORAGE_UNAVAILABLE
    assert flaky_db.writes == writes_before
    flaky_db.fail_reads = False
    user = await stored_user(db, HAMZA)
    assert user is not None and user.skill == "Logo design" and user.profile_step is None


# ---- 2. one unit of work per turn -----------------------------------------------------------------------------


async def test_a_profile_answer_is_one_transaction_and_a_failed_one_changes_nothing(
    flaky: Conversation, flaky_db: FlakyDatabase, db: Database, clock: FrozenClock
) -> None:
    """Defect 2: the field and the step were saved in two transactions. Now the answer, the next step and the
    profile_set event commit together (one write), or none of them does."""
    await flaky.command(HAMZA, "profile")
    clock.advance(seconds=5)
    flaky_db.fail_commits = True
    failed = await flaky.handle_text(HAMZA, "Logo design")
    flaky_db.fail_commits = False
    assert failed.decision is Decision.SAVE_FAILED
    user = await stored_user(db, HAMZA)
    assert user is not None and (user.skill, user.profile_step) == (None, "skill")
    assert await events_of(flaky, db, HAMZA, kind="profile_set") == []

    writes_before = flaky_db.writes
    clock.advance(seconds=5)
    saved = await flaky.handle_text(HAMZA, "Logo design")

    assert saved.decision is Decision.PROFILE_ASK
    assert flaky_db.writes - writes_before == 1, "a profile answer must be one transaction"
    user = await stored_user(db, HAMZA)
    assert user is not None and (user.skill, user.profile_step) == ("Logo design", "platforms")
    assert len(await events_of(flaky, db, HAMZA, kind="profile_set")) == 1


async def test_privacy_reads_without_writing(flaky: Conversation, flaky_db: FlakyDatabase) -> None:
    """Defect 2: /privacy read the same user row three times (and created the user). Now: the person is looked up
    once and the report is one read; nothing is written."""
    await flaky.command(HAMZA, "start")
    writes, reads = flaky_db.writes, flaky_db.reads

    report = await flaky.command(HAMZA, "privacy")

    assert report.decision is Decision.PRIVACY_REPORT
    assert (flaky_db.writes - writes, flaky_db.reads - reads) == (0, 2)


# ---- 3. forged button data is stored ---------------------------------------------------------------------------

FORGED = [
    "pf:set:timezone:Mars/Olympus",
    "pf:set:language:xx",
    "pf:set:skill:hacker",
    "pf:set:timezone:../../etc/passwd",
    "pf:set:timezone:" + "A" * 48,
    "lang:xx",
    "lang:en:extra",
    "ms:set:chose_skill:2",
    "consent:maybe",
    "del:now",
]


@pytest.mark.parametrize("open_question", [None, "timezone", "language"])
async def test_forged_profile_buttons_are_refused_and_store_nothing(
    conversation: Conversation, db: Database, clock: FrozenClock, open_question: str | None
) -> None:
    """Defect 3: `pf:set:timezone:Mars/Olympus` was stored and shown by /privacy. Forged data is refused (the
    spinner gets "no longer active"), whatever question is open, and nothing about the user changes."""
    await conversation.command(HAMZA, "start")
    if open_question:
        await conversation.command(HAMZA, "profile")
        async with db.write() as session:
            user = await stored_users.get_user(session, channel="telegram", external_id="4004")
            assert user is not None
            await stored_users.set_profile_step(session, user_id=user.id, step=open_question, now=clock.now())
    clock.advance(seconds=5)
    before = await stored_user(db, HAMZA)
    assert before is not None
    snapshot = {c.key: getattr(before, c.key) for c in User.__table__.columns}

    for data in FORGED:
        reply = await conversation.press(HAMZA, data)
        assert reply.decision is Decision.BUTTON_UNKNOWN and reply.toast_only, data

    after = await stored_user(db, HAMZA)
    assert after is not None
    assert {c.key: getattr(after, c.key) for c in User.__table__.columns} == snapshot
    report = await conversation.command(HAMZA, "privacy")
    assert "Mars" not in report.text and "xx" not in report.text and "passwd" not in report.text
    refused = await events_of(conversation, db, HAMZA, kind="button_refused")
    assert len(refused) == len(FORGED) and all(e.text is None for e in refused)


def test_every_button_the_bot_can_send_fits_telegrams_64_bytes(library: Library) -> None:
    """Defect 3: one codec for every button; the longest data any feature builds is within 64 bytes, and the codec
    refuses to build anything longer (Telegram would reject the whole message)."""
    actions: list[buttons.ButtonAction] = [buttons.ChooseLanguage("en"), buttons.ChooseLanguage("ur")]
    for article_id in library.articles:
        actions += [buttons.Feedback("up", article_id), buttons.Feedback("down", article_id)]
        actions.append(buttons.OpenArticle(article_id))
    for milestone in library.milestones:
        actions += [buttons.ConfirmMilestone(milestone.id), buttons.DeclineMilestone(milestone.id)]
        actions += [buttons.SetMilestone(milestone.id, True), buttons.SetMilestone(milestone.id, False)]
        actions.append(buttons.LegacyToggle(milestone.id))
    actions += [buttons.SetProfileValue("timezone", zone) for zone in buttons.known_timezones() if len(zone) <= 48]
    actions += [buttons.SkipProfileStep(step) for step in ("skill", "platforms", "city", "language", "timezone")]
    actions += [buttons.Consent("yes"), buttons.Erase("yes"), buttons.EditProfile(), buttons.ShowProgress()]
    for action in actions:
        data = buttons.encode(action)
        assert len(data.encode()) <= buttons.MAX_BYTES, data
        assert buttons.decode(data) == action
    with pytest.raises(ValueError, match="64"):
        buttons.encode(buttons.Feedback("down", "a" * 60))  # 68 bytes: refused when built, not by Telegram


# ---- 8. a malformed Rasa answer crashes the turn ---------------------------------------------------------------

MALFORMED = [
    [],
    None,
    {"intent": {"name": "faq", "confidence": None}, "response_selector": None},
    {"intent": {"name": "faq", "confidence": 0.9}, "response_selector": {"faq": {"ranking": [{"confidence": None}]}}},
    {"intent": "faq"},
    {"intent": {"name": ["faq"], "confidence": 0.9}},
    {"intent": {"name": "faq", "confidence": 7}},
]


@pytest.mark.parametrize("payload", MALFORMED, ids=lambda p: json.dumps(p)[:40])
async def test_a_malformed_rasa_answer_is_answered_from_the_lexical_search_with_the_reason(
    library: Library, db: Database, clock: FrozenClock, lexical: LexicalSearch, payload: object
) -> None:
    """Defect 8: a JSON list, null confidences or a missing response_selector crashed the turn. Now the question is
    answered and the event says why Rasa was not used (or, for a shape that is merely odd, that Rasa answered)."""
    rasa = RasaDouble(lambda _text: payload)
    await rasa.start()
    client = RasaClient(rasa.url, timeout_seconds=2)
    conversation = build_conversation(
        library=library, db=db, journal=Journal(db), clock=clock, rasa=client, lexical=lexical
    )
    try:
        reply = await conversation.handle_text(HAMZA, "how do I withdraw my money from fiverr")
    finally:
        await client.aclose()
        await rasa.die()
    assert reply.decision in (Decision.ANSWER, Decision.ANSWER_WITH_ALTERNATIVES, Decision.DID_YOU_MEAN), reply.decision
    [message] = await events_of(conversation, db, HAMZA, kind="message")
    assert message.data is not None
    assert message.nlu_source == "rasa" or message.data.get("fallback_reason"), message.data


# ---- 10. replies cut mid-HTML ----------------------------------------------------------------------------------


def _long_article_html() -> str:
    """About 6,000 characters of what the bot sends: bold titles, links, italics, entities, Urdu, emoji."""
    paragraph = (
        '<b>Step {n}: withdraw to Payoneer</b>\nOpen <a href="https://www.fiverr.com/earnings?x=1&amp;y=2">Earnings'
        "</a> &amp; press <i>Withdraw</i> &lt;= 5 times a day. پیسے نکالنے کا طریقہ 💸 "
        "<code>payoneer &gt; bank</code> then wait 2-3 days."
    )
    return "\n\n".join(paragraph.format(n=n) for n in range(1, 34))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_long_article_html(), id="paragraphs"),
        pytest.param("<b>" + "word " * 1200 + "</b>", id="one-bold-paragraph"),
        pytest.param("<i>" + "ب" * 6000 + "</i>", id="one-urdu-word"),
        pytest.param("💸" * 3000, id="astral-emoji"),
        pytest.param("\n".join(["&lt;tag&gt; &amp; &quot;"] * 600), id="entities"),
        pytest.param("\n".join(["&lt;tag&gt; &amp; &quot;"] * 400), id="entities-short-when-rendered"),
    ],
)
def test_a_6000_character_reply_is_split_into_parts_telegram_accepts(text: str) -> None:
    """Defect 10: long replies were cut at 4,096 raw characters, splitting tags and entities; Telegram refused them.
    Every part now parses under Telegram's HTML rules and fits 4,096 rendered characters (a text that renders
    shorter is sent whole), no text is lost, and only the last part carries the buttons."""
    assert telegram_html.utf16_length(text) >= 6000
    rendered = telegram_html.utf16_length(telegram_html.parse(text))
    reply = Reply(text=text, buttons=[[Button.of("👍", buttons.Feedback("up", "payoneer_setup"))]])

    parts = message_parts(reply)

    assert len(parts) >= 2 if rendered > 4096 else len(parts) == 1
    plain = [telegram_html.check_message(part) for part, _ in parts]
    assert all(telegram_html.utf16_length(p) <= 4096 for p in plain)
    assert "".join("".join(plain).split()) == "".join(telegram_html.parse(text).split()), "text was lost"
    assert [keyboard is not None for _, keyboard in parts] == [False] * (len(parts) - 1) + [True]
    assert split_html(text) == [part for part, _ in parts]


def test_splitting_a_long_reply_takes_linear_time() -> None:
    """Defect 10's splitter must not stall the event loop (every user waits while it runs): 30,000 characters in
    one bold paragraph took about 7 s when each word recounted the whole chunk; now well under a second."""
    text = "<b>" + "word " * 6000 + "</b>"
    started = time.perf_counter()
    parts = split_html(text)
    elapsed = time.perf_counter() - started
    assert len(parts) == 8 and all(telegram_html.check_message(part) for part in parts)
    assert elapsed < 2.0, f"split_html took {elapsed:.2f} s for 30,000 characters"


# ---- 11. words stored without consent through a leading "/" ---------------------------------------------------


@pytest.mark.parametrize(
    "text", ["/withdraw fiverr", "/withdraw my fiverr money to my meezan bank account ending 4471 " + "x" * 40]
)
async def test_a_slash_message_stores_no_words_and_no_invented_intent(
    library: Library, db: Database, clock: FrozenClock, lexical: LexicalSearch, text: str
) -> None:
    """Defect 11: Rasa read "/withdraw fiverr" as an intent named after the user's words (confidence 1.0), which
    landed in event.intent for a user who never consented, and over 64 characters lost both events on PostgreSQL.
    Now the words never reach Rasa as a trigger, stored intents come from the known list, both events are kept."""
    rasa = RasaDouble(like_rasa)
    await rasa.start()
    client = RasaClient(rasa.url, timeout_seconds=2)
    conversation = build_conversation(
        library=library, db=db, journal=Journal(db), clock=clock, rasa=client, lexical=lexical
    )
    try:
        reply = await conversation.handle_text(HAMZA, text)
    finally:
        await client.aclose()
        await rasa.die()
    assert reply.nlu_source == "rasa"
    events = await events_of(conversation, db, HAMZA)
    assert [e.kind for e in events] == ["message", "reply"], "both events must be stored"
    allowed_intents = KNOWN_INTENTS | {a.intent for a in library.articles.values()}
    for event in events:
        assert event.text is None
        assert event.intent is None or event.intent in allowed_intents, event.intent
        stored = json.dumps([event.intent, event.data, event.article_id])
        assert "withdraw fiverr" not in stored and "meezan" not in stored and "withdraw my" not in stored


# ---- 12. a deleted user's id is given to the next newcomer ----------------------------------------------------


async def test_a_deleted_users_id_is_never_given_to_the_next_newcomer(conversation: Conversation, db: Database) -> None:
    """Defect 12: on SQLite the next newcomer got the erased user's id (and any of their events still in flight).
    Ids only grow; an event written afterwards for the erased id is stored anonymous, never on the newcomer."""
    await conversation.press(HAMZA, "consent:yes")
    gone = await stored_user(db, HAMZA)
    assert gone is not None
    assert await conversation.journal.flush()
    assert (await conversation.press(HAMZA, "del:yes")).decision is Decision.DELETE_DONE
    newcomer = Person(channel="telegram", external_id="4005", display_name="Nadia")

    await conversation.command(newcomer, "start")

    created = await stored_user(db, newcomer)
    assert created is not None and created.id > gone.id
    async with db.write() as session:  # a turn of the erased user that was still in flight
        await add_events(
            session, events=[NewEvent(kind="message", at=created.created_at, user_id=gone.id, text="my words")]
        )
    in_flight = [e for e in await all_events(db) if e.kind == "message"]
    assert [(e.user_id, e.text) for e in in_flight] == [(None, None)]
    assert all(e.user_id in (None, created.id) for e in await all_events(db))


# ---- 14. PostgreSQL drops anything containing a NUL byte -------------------------------------------------------


async def test_nul_bytes_in_a_message_and_a_profile_answer_are_cleaned_not_lost(
    conversation: Conversation, db: Database, clock: FrozenClock
) -> None:
    """Defect 14: on PostgreSQL a NUL byte lost the events, and a profile answer said "Saved." but was not. The
    text is cleaned at the edge: stored without the NUL, the events are all there, "Saved" is true."""
    await conversation.press(HAMZA, "consent:yes")
    await conversation.handle_text(HAMZA, "how do I with\x00draw from fiverr\x00")
    await conversation.command(HAMZA, "profile")
    clock.advance(seconds=5)

    saved = await conversation.handle_text(HAMZA, "Logo\x00 design")

    assert saved.decision is Decision.PROFILE_ASK
    user = await stored_user(db, HAMZA)
    assert user is not None and user.skill == "Logo design"
    kinds = [e.kind for e in await events_of(conversation, db, HAMZA)]
    assert [kinds.count(k) for k in ("message", "profile_answer", "profile_set", "reply")] == [1, 1, 1, 4]
    [message] = await events_of(conversation, db, HAMZA, kind="message")
    assert message.text == "how do I withdraw from fiverr"


# ---- 15. a forged language breaks the user ---------------------------------------------------------------------


async def test_a_forged_or_legacy_language_never_breaks_the_user(conversation: Conversation, db: Database) -> None:
    """Defect 15: after `pf:set:language:xx` every answer failed with KeyError 'xx'. The forged button is refused,
    the setter validates too, and a user row that already holds an unknown language (written by the old code) is
    answered in English."""
    assert (await conversation.press(HAMZA, "pf:set:language:xx")).decision is Decision.BUTTON_UNKNOWN
    user = await conversation.users.load(HAMZA)
    with pytest.raises(InvalidAnswer):
        await conversation.profile.set_language(user, "xx")
    async with db.write() as session:
        await session.execute(update(User).where(User.id == user.id).values(language="xx"))

    reply = await conversation.handle_text(HAMZA, "how do I withdraw my money from fiverr")
    progress = await conversation.command(HAMZA, "progress")
    privacy = await conversation.command(HAMZA, "privacy")

    assert reply.article_id == "fiverr_withdrawal" and "Fiverr" in reply.text
    assert progress.decision is Decision.PROGRESS and privacy.decision is Decision.PRIVACY_REPORT
    assert "lang:en" in button_data(await conversation.command(HAMZA, "language"))


async def test_concurrent_forged_presses_leave_a_valid_language(conversation: Conversation, db: Database) -> None:
    """Defect 15, raced: forged and genuine language presses at once end with a language the bot speaks."""
    presses = ["pf:set:language:xx", "lang:ur", "pf:set:language:zz", "lang:en", "lang:de"] * 4
    await asyncio.gather(*(conversation.press(HAMZA, data) for data in presses))
    user = await stored_user(db, HAMZA)
    assert user is not None and user.language in ("en", "ur")
