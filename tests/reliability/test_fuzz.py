"""Fuzzing the core with hypothesis: whatever people type, press or answer, the turn does not fail, every reply is
Telegram HTML that Telegram accepts, no user text is echoed unescaped, and nothing is stored about someone without
research consent beyond the allowed fields.

The run is derandomized (the same examples in every CI run; see conftest.py for RAHNUMA_FUZZ_SCALE and
RAHNUMA_FUZZ_RANDOM with --hypothesis-seed); each test counts its examples and the figures are printed at the end.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.core import buttons
from bot.core.clock import FrozenClock
from bot.core.conversation import Conversation
from bot.core.profile import MAX_FIELD_CHARS, STEPS
from bot.core.text import clean_name, clean_text, split_html
from bot.core.types import Person, Reply
from content.library import Library
from nlu.entities import load_surface_forms
from nlu.pipeline import KNOWN_INTENTS
from storage.codebook import Decision
from storage.db import Database
from storage.models import Event, User
from tests.conftest import BACKENDS
from tests.helpers import stored_user
from tests.reliability import figures, telegram_html
from tests.reliability.conftest import FUZZ_SCALE

# 2,000 examples per run, shared by the backends under test (each backend gets the same first examples).
PER_BACKEND = FUZZ_SCALE / len(BACKENDS)
# A failing example may be a 10,000-character text: let hypothesis print it rather than warn about its size.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

TEXT_EXAMPLES = max(1, int(1450 * PER_BACKEND))
BUTTON_EXAMPLES = max(1, int(350 * PER_BACKEND))
PROFILE_EXAMPLES = max(1, int(200 * PER_BACKEND))

_people = itertools.count(1)

# ---- what people send -----------------------------------------------------------------------------------------

URDU = st.characters(min_codepoint=0x0600, max_codepoint=0x06FF)
INVISIBLE = st.sampled_from(
    ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067"]
    + ["\u2069", "\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad"]
)
CONTROL = st.sampled_from(["\x00", "\x07", "\x1b", "\x7f", "\x85", "\r", "\t", "\ud800", "\udfff"])
HTML = st.sampled_from(
    [
        "<",
        ">",
        "&",
        '"',
        "'",
        "<b>",
        "</b>",
        "<i>",
        "<script>",
        "</a>",
        '<a href="javascript:1">',
        "&amp;",
        "&lt;",
        "&#0;",
        "&#xD800;",
        "&nbsp;",
        "<br>",
        "<tg-spoiler>",
        "<!--",
        "]]>",
    ]
)
WORDS = st.sampled_from(
    [
        "fiverr",
        "upwork",
        "payoneer",
        "withdraw",
        "paise",
        "kaise",
        "پیسے",
        "نکالیں",
        "/start",
        "/privacy",
        "/withdraw",
        "@RahnumaTestBot",
        "proposal",
        "order",
        "hi",
        "thanks",
        "💸",
        "🇵🇰",
    ]
)
PIECE = st.one_of(URDU, INVISIBLE, CONTROL, HTML, WORDS, st.characters(), st.sampled_from([" ", "\n", "\n\n"]))
TEXT = st.one_of(
    st.lists(PIECE, max_size=60).map("".join),
    st.text(max_size=200),
    st.builds(lambda piece, n: piece * n, PIECE, st.integers(1, 5000)),  # 5,000 of one thing
    st.just("\n" * 10_000),
    st.builds(lambda head, body: head + body, st.sampled_from(["/", "//", " /", "/start "]), st.text(max_size=120)),
)


def with_marker(text: str, position: int, marker: str) -> str:
    """The text with a tag-shaped marker inside: if it ever reaches a reply unescaped, the marker shows raw."""
    cut = position % (len(text) + 1)
    return text[:cut] + marker + text[cut:]


def marker_of(n: int) -> str:
    return f"<b>zq{n}x</b>"


# ---- what must hold for every reply -----------------------------------------------------------------------------

ENTITY_VALUES = {form.value for form in load_surface_forms()}
DATA_KEYS = {
    "entities",
    "parse_ms",
    "candidates",
    "nlu_intent",
    "fallback_reason",
    "chars",
    "decision",
    "field",
    "version",
    "helpful",
    "milestone",
    "source",
    "metric",
    "count",
    "reason",
}
REPLY_INTENTS = {"start", "help", "language", "ask_progress"}


def check_reply(reply: Reply, *markers: str) -> None:
    """Telegram would take every part, and no marker from the user's input is in it raw."""
    for part in split_html(reply.text):
        plain = telegram_html.check_message(part)
        assert telegram_html.utf16_length(plain) <= telegram_html.MAX_MESSAGE_LENGTH
    for marker in markers:
        assert marker not in reply.text, f"user input echoed unescaped: {marker!r}"
    for row in reply.buttons:
        for button in row:
            assert button.url or (button.data and buttons.decode(button.data) is not None), button
            assert 0 < len(button.label) <= 60


class StoredCheck:
    """Who took part in the examples, with the markers hidden in their input; what they left in the database is
    checked after the last example, in two queries (a flush and reads per example would triple the run time)."""

    def __init__(self, conversation: Conversation, db: Database, library: Library) -> None:
        self.conversation, self.db, self.library = conversation, db, library
        self.people: dict[str, tuple[str, ...]] = {}

    def add(self, person: Person, *markers: str) -> None:
        self.people[person.external_id] = (*self.people.get(person.external_id, ()), *markers)

    async def verify(self) -> None:
        assert await self.conversation.journal.flush()
        async with self.db.read() as session:
            users = {
                user.id: user
                for user in await session.scalars(
                    select(User).where(User.channel == "telegram", User.external_id.in_(self.people))
                )
            }
            events = (await session.scalars(select(Event).where(Event.user_id.in_(users)))).all()
        for user in users.values():
            check_user(user)
        allowed_intents = intents_of(self.library)
        for event in events:
            user = users[event.user_id]  # type: ignore[index]
            markers = self.people[user.external_id]
            check_event(
                event, self.library, consented=user.research_consent, markers=markers, allowed_intents=allowed_intents
            )
        figures.count("rows checked after fuzzing: users", len(users))
        figures.count("rows checked after fuzzing: events", len(events))


@pytest.fixture
async def stored_check(conversation: Conversation, db: Database, library: Library) -> AsyncIterator[StoredCheck]:
    """Checks what the test's examples stored, after the last one (a failure shows as an error at teardown)."""
    check = StoredCheck(conversation, db, library)
    yield check
    await check.verify()


def check_user(user: User) -> None:
    """Only valid values in the user row, whatever was typed or pressed."""
    assert user.language in ("en", "ur") and (user.timezone is None or user.timezone in buttons.known_timezones())
    assert user.profile_step is None or user.profile_step in STEPS
    for field in ("skill", "city"):
        value = getattr(user, field)
        assert value is None or (
            0 < len(value) <= MAX_FIELD_CHARS[field] and value == " ".join(clean_text(value).split())
        )
    assert all(0 < len(p) <= MAX_FIELD_CHARS["platform"] for p in user.platforms or [])
    assert user.display_name is None or user.display_name == clean_name(user.display_name)


def intents_of(library: Library) -> frozenset[str]:
    """Every intent name a stored event may carry: the NLU's known intents, the articles' topics, the commands'."""
    return frozenset(KNOWN_INTENTS | REPLY_INTENTS | {a.intent for a in library.articles.values()})


def check_event(
    event: Event, library: Library, *, consented: bool, markers: tuple[str, ...], allowed_intents: frozenset[str]
) -> None:
    """Without consent no words (no text, no marker anywhere); only known intents, entity values, article ids and
    data keys; with consent the words are stored cleaned."""
    row = json.dumps([event.text, event.intent, event.article_id, event.data], ensure_ascii=False)
    if consented:
        assert event.text is None or event.text == clean_text(event.text)
    else:
        assert event.text is None, (event.kind, event.text)
        assert not any(marker.strip("<>/b") in row for marker in markers), row
    assert "\x00" not in row and "\\u0000" not in row
    assert event.intent is None or event.intent in allowed_intents, event.intent
    assert event.article_id is None or event.article_id in library.articles
    data: dict[str, Any] = event.data or {}
    assert set(data) <= DATA_KEYS, set(data) - DATA_KEYS
    for values in (data.get("entities") or {}).values():
        assert set(values) <= ENTITY_VALUES, values
    assert data.get("nlu_intent") in allowed_intents | {None}
    assert all(candidate[0] in library.articles for candidate in data.get("candidates") or [])
    assert data.get("fallback_reason") in (None, "rasa not configured")
    if "decision" in data:
        Decision(data["decision"])


# ---- the fuzz tests ---------------------------------------------------------------------------------------------


@settings(max_examples=TEXT_EXAMPLES)
@given(
    text=TEXT,
    name=TEXT,
    position=st.integers(0, 10_000),
    where=st.sampled_from(["private", "consented", "group"]),
    who=st.integers(0, 15),
)
async def test_any_message_gets_a_valid_reply_and_stores_no_words_without_consent(
    conversation: Conversation, stored_check: StoredCheck, text: str, name: str, position: int, where: str, who: int
) -> None:
    """Random text (Urdu, RTL and zero-width marks, HTML, NUL and control bytes, 10,000 newlines, 5,000 characters,
    slash commands) from people with random names: in a private chat (with or without research consent; a newcomer
    or one of a few regulars whose name keeps changing), or addressed to the bot in a group."""
    figures.count("fuzz examples run: text")
    n = next(_people)
    marker, name_marker = marker_of(n), marker_of(-n)
    raw_name = with_marker(name[:80], position, name_marker)
    newcomer = who < 4
    external_id = f"fz{n}" if newcomer else f"fz-{where}-{who}"
    person = Person("telegram", external_id, clean_name(raw_name), "ur" if n % 3 else "en")  # as person_of() cleans it
    message = with_marker(text, position, marker)
    if where == "group":
        check_reply(await conversation.group_question(person, message), marker, name_marker)
        return
    stored_check.add(person, marker, name_marker)
    if where == "consented":
        await conversation.press(person, "consent:yes")
    markers = stored_check.people[person.external_id]
    check_reply(await conversation.handle_text(person, message), *markers)
    if newcomer:
        check_reply(await conversation.command(person, "start"), *markers)


def real_button_data(library: Library) -> list[str]:
    actions: list[buttons.ButtonAction] = [buttons.ChooseLanguage("ur"), buttons.Consent("yes"), buttons.Erase("ask")]
    actions += [buttons.Erase("yes"), buttons.EditProfile(), buttons.ShowProgress(), buttons.SkipProfileStep()]
    actions += [buttons.SetProfileValue("timezone", "Asia/Karachi"), buttons.SetProfileValue("language", "ur")]
    actions += [buttons.Feedback("up", a) for a in list(library.articles)[:3]]
    actions += [buttons.SetMilestone(m.id, True) for m in library.milestones[:3]]
    actions += [buttons.ConfirmMilestone(library.milestones[0].id), buttons.LegacyToggle(library.milestones[0].id)]
    return [buttons.encode(action) for action in actions]


def button_data(library: Library) -> st.SearchStrategy[str]:
    real = st.sampled_from(real_button_data(library))
    mutated = st.builds(
        lambda data, cut, tail: data[:cut] + tail, real, st.integers(0, 40), st.text(max_size=30) | WORDS
    )
    shaped = st.from_regex(r"[a-z]{1,7}(:[A-Za-z0-9_./+\-]{0,50}){0,4}", fullmatch=True)
    return st.one_of(real, mutated, shaped, st.text(max_size=80), st.just(""), st.just("x" * 65))


@settings(max_examples=BUTTON_EXAMPLES)
@given(data=st.data())
async def test_any_button_data_is_answered_and_forged_data_changes_nothing(
    conversation: Conversation,
    db: Database,
    library: Library,
    clock: FrozenClock,
    stored_check: StoredCheck,
    data: st.DataObject,
) -> None:
    """Random callback data: real, mutated, shaped like ours, or garbage, pressed in sequences (some while a
    profile question is open). Every press is answered; forged data is refused, and someone who pressed only
    forged data is stored exactly as a newcomer is."""
    figures.count("fuzz examples run: buttons")
    person = Person("telegram", f"fz{next(_people)}", "Fuzz")
    profile_open = data.draw(st.booleans())
    if profile_open:
        await conversation.command(person, "profile")
    presses = data.draw(st.lists(button_data(library), min_size=1, max_size=3))
    for press in presses:
        clock.advance(seconds=1)
        reply = await conversation.press(person, press)
        check_reply(reply)
        if buttons.decode(press) is None:
            assert reply.decision is Decision.BUTTON_UNKNOWN and reply.toast_only, press
    if all(buttons.decode(press) is None for press in presses):
        user = await stored_user(db, person)
        if user is not None:
            assert (user.language, user.language_chosen, user.timezone, user.research_consent, user.skill) == (
                "en",
                False,
                None,
                False,
                None,
            ), presses
            assert user.profile_step == ("skill" if profile_open else None)
    stored_check.add(person)


@settings(max_examples=PROFILE_EXAMPLES)
@given(data=st.data())
async def test_any_profile_answers_store_only_valid_values(
    conversation: Conversation, clock: FrozenClock, stored_check: StoredCheck, data: st.DataObject
) -> None:
    """/profile answered with random text and random profile buttons: every stored value is valid (a language the
    bot speaks, a real time zone, cleaned text within its length; checked after the last example), and /privacy
    shows it escaped."""
    figures.count("fuzz examples run: profile")
    n = next(_people)
    marker = marker_of(n)
    person = Person("telegram", f"fz{n}", "Fuzz")
    check_reply(await conversation.command(person, "profile"))
    profile_buttons = st.one_of(
        st.builds(lambda step: f"pf:skip:{step}", st.sampled_from(STEPS)),
        st.builds(lambda value: f"pf:set:timezone:{value}", st.sampled_from(["Asia/Karachi", "Mars/Olympus", "UTC"])),
        st.builds(lambda value: f"pf:set:language:{value}", st.sampled_from(["en", "ur", "xx", "EN"])),
    )
    answers = st.one_of(
        st.builds(lambda text, p: with_marker(text, p, marker), TEXT, st.integers(0, 300)),
        profile_buttons,
        st.sampled_from(["Dubai", "lahore", "Asia/Karachi", "urdu", "fiverr, upwork"]),
    )
    for answer in data.draw(st.lists(answers, min_size=1, max_size=5)):
        clock.advance(seconds=1)
        is_button = answer.startswith("pf:")
        reply = await (conversation.press(person, answer) if is_button else conversation.handle_text(person, answer))
        check_reply(reply, marker)
    check_reply(await conversation.command(person, "privacy"), marker)
    stored_check.add(person, marker)
