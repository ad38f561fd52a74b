"""The Telegram edge: real PTB updates through bot/app.py's handlers, against a scripted Telegram server.

Defects 4, 5, 6, 14 (names), 16 (replays, channel posts) and the reply path's faults (429, 403, 400, 502, a
timeout): the user gets a reply or an honest "try again", the log never claims a reply that did not go, and the
application keeps handling the next update.
"""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.core.conversation import Conversation
from bot.core.types import Person, Reply
from bot.handlers.context import RahnumaApplication
from bot.handlers.sending import send_reply
from storage.db import Database
from storage.models import Event, MilestoneDone, User
from tests.helpers import events_of, stored_user
from tests.reliability import telegram_html
from tests.reliability.doubles import (
    BOT_USERNAME,
    ScriptedTelegram,
    button_update,
    channel_post_update,
    refused,
    text_update,
    timed_out,
)

GROUP = {"id": -1009876543210, "type": "supergroup", "title": "DigiSkills cohort 7"}
SAIMA = 610_000_001
SAIMA_PERSON = Person(channel="telegram", external_id=str(SAIMA))


async def count_rows(db: Database, model: type) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def assert_no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


# ---- 4. unknown buttons are never answered ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ("quiz:answer:3", "private"),
        ("pf:set:timezone:Mars/Olympus", "private"),
        ("ms:tog", "private"),
        ("x" * 64, "private"),
        ("", "private"),
        ("lang:en", "group"),
        ("quiz:answer:3", "inline"),
        ("del:yes", "group"),
    ],
)
async def test_every_button_press_is_answered_so_the_spinner_stops(
    application: RahnumaApplication,
    telegram: ScriptedTelegram,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    data: str,
    where: str,
) -> None:
    """Defect 4: a press with an unknown prefix got no answerCallbackQuery and the client's spinner hung. Every
    press (unknown, forged, empty, from a group message or an inline message) is answered exactly once, and
    nothing but the known presses in private chats changes anything."""
    update = button_update(application, SAIMA, data, chat=GROUP if where == "group" else None, inline=where == "inline")

    await application.process_update(update)

    answers = telegram.sent("answerCallbackQuery")
    assert len(answers) == 1 and answers[0]["callback_query_id"] == update.callback_query.id  # type: ignore[union-attr]
    if data != "lang:en" or where != "private":
        assert "no longer active" in str(answers[0].get("text"))
    assert await count_rows(db, User) == 0, "a refused press must not create anyone"
    assert_no_errors_logged(caplog)


# ---- 5. groups leak private data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", ["/privacy", "/progress", "/profile", "/delete_me", "/start", "/language", "/buddy", "/circle"]
)
async def test_a_personal_command_in_a_group_points_to_a_private_chat_and_shows_nothing(
    application: RahnumaApplication,
    telegram: ScriptedTelegram,
    conversation: Conversation,
    db: Database,
    command: str,
) -> None:
    """Defect 5: /privacy in a group showed the sender's name and profile to everyone, /progress their ladder.
    In a group a personal command only says "let's talk in private", with a t.me deep link; nothing is read."""
    await application.process_update(text_update(application, SAIMA, "/profile", first_name="Saima"))
    await application.process_update(text_update(application, SAIMA, "Bridal mehndi design", first_name="Saima"))
    telegram.calls.clear()

    await application.process_update(
        text_update(application, SAIMA, f"{command}@{BOT_USERNAME}", chat=GROUP, first_name="Saima")
    )

    [sent] = telegram.sent()
    assert int(sent["chat_id"]) == GROUP["id"]
    assert "Saima" not in sent["text"] and "mehndi" not in sent["text"].lower() and "✅" not in sent["text"]
    markup = sent["reply_markup"]
    urls = [b.get("url") for row in markup["inline_keyboard"] for b in row]
    assert urls == [f"https://t.me/{BOT_USERNAME}?start={command[1:]}"]
    assert not [b for row in markup["inline_keyboard"] for b in row if "callback_data" in b]


async def test_a_group_question_is_answered_only_when_addressed_and_never_stores_the_sender(
    application: RahnumaApplication, telegram: ScriptedTelegram, db: Database
) -> None:
    """Defect 5: questions in groups are answered only when the bot is mentioned or replied to, with an article
    and no personal data; the sender is never stored."""
    await application.process_update(
        text_update(application, SAIMA, "how do I withdraw my money from fiverr", chat=GROUP)
    )
    assert telegram.sent() == [], "not addressed: the bot stays quiet"

    await application.process_update(
        text_update(application, SAIMA, f"@{BOT_USERNAME} how do I withdraw my money from fiverr", chat=GROUP)
    )

    [answer] = telegram.sent()
    assert "Fiverr" in answer["text"] and "Ayesha" not in answer["text"]
    buttons = [b for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert all("url" in b for b in buttons), "no personal buttons (feedback, milestones) in a group"
    assert await count_rows(db, User) == 0


# ---- 6. /privacy creates a user --------------------------------------------------------------------------------


async def test_a_strangers_privacy_and_delete_me_in_a_private_chat_store_nothing(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation, db: Database
) -> None:
    """Defect 6: docs/PRIVACY.md says /privacy never creates a user; it did. Through Telegram: /privacy,
    /delete_me and its confirm button from a stranger are answered and store nobody, not even an event."""
    for update in (
        text_update(application, SAIMA, "/privacy"),
        text_update(application, SAIMA, "/delete_me"),
        button_update(application, SAIMA, "del:yes"),
    ):
        await application.process_update(update)

    assert len(telegram.sent()) == 3 and len(telegram.sent("answerCallbackQuery")) == 1
    assert await conversation.journal.flush()
    assert await count_rows(db, User) == 0
    async with db.read() as session:
        kinds = set((await session.scalars(select(Event.kind))).all())
    assert kinds == set(), kinds


# ---- 14. a name with a NUL byte never created the user ---------------------------------------------------------


async def test_a_name_with_nul_bytes_and_control_characters_is_stored_cleaned(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation, db: Database
) -> None:
    """Defect 14: on PostgreSQL a Telegram name containing NUL never created the user (every turn failed). The
    adapter cleans names: the user is created, welcomed by name, and the name is stored without the NUL."""
    await application.process_update(text_update(application, SAIMA, "/start", first_name="Sa\x00ima\u202e\x07"))

    [welcome] = telegram.sent()
    assert "Saima" in telegram_html.check_message(welcome["text"])
    user = await stored_user(db, SAIMA_PERSON)
    assert user is not None and user.display_name == "Saima\u202e"
    assert [e.kind for e in await events_of(conversation, db, SAIMA_PERSON)] == ["command", "reply"]


# ---- 16. replayed updates, channel posts ------------------------------------------------------------------------


async def test_a_replayed_update_is_handled_once(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation, db: Database
) -> None:
    """Defect 16: the same update_id delivered twice (a webhook retry) was processed twice and unticked a
    milestone. The second delivery is dropped: one reply, one state change, one set of events."""
    await application.process_update(text_update(application, SAIMA, "/start"))
    tick = button_update(application, SAIMA, "ms:set:chose_skill:1")
    message = text_update(application, SAIMA, "how do I withdraw my money from fiverr")
    telegram.calls.clear()

    for update in (tick, message, tick, message):
        await application.process_update(update)

    assert len(telegram.sent("answerCallbackQuery")) == 1
    assert len(telegram.sent("editMessageText")) + len(telegram.sent()) == 2
    assert await count_rows(db, MilestoneDone) == 1
    kinds = [e.kind for e in await events_of(conversation, db, SAIMA_PERSON)]
    assert kinds.count("message") == 1 and kinds.count("milestone_done") == 1 and kinds.count("button") == 1


@pytest.mark.parametrize("edited", [False, True])
async def test_a_channel_post_gets_no_reply_and_no_error(
    application: RahnumaApplication,
    telegram: ScriptedTelegram,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    edited: bool,
) -> None:
    """Defect 16: a channel post made the bot post an error message into the channel. Channels are ignored: no
    call to Telegram, nothing logged as an error, nothing stored."""
    await application.process_update(channel_post_update(application, "/privacy how do I withdraw?", edited=edited))

    assert telegram.calls == []
    assert_no_errors_logged(caplog)
    assert await count_rows(db, User) == 0 and await count_rows(db, Event) == 0


# ---- the reply path's faults (bot/handlers/sending.py) ----------------------------------------------------------

FIVERR = "how do I withdraw my money from fiverr"


@pytest.mark.parametrize(
    ("fault", "delivered"),
    [
        pytest.param([refused(429, "Too Many Requests: retry after 1", retry_after=1)], True, id="429-short"),
        pytest.param([refused(502, "Bad Gateway")], True, id="502-once"),
        pytest.param([timed_out()], True, id="timeout-once"),
        pytest.param([refused(502, "Bad Gateway")] * 2, False, id="502-twice"),
        pytest.param([timed_out()] * 2, False, id="timeout-twice"),
        pytest.param([refused(400, "Bad Request: chat not found")], False, id="400"),
        pytest.param([refused(403, "Forbidden: bot was blocked by the user")], False, id="403"),
    ],
)
async def test_a_reply_telegram_does_not_take_is_retried_or_recorded_never_claimed(
    application: RahnumaApplication,
    telegram: ScriptedTelegram,
    conversation: Conversation,
    db: Database,
    fault: list[object],
    delivered: bool,
) -> None:
    """Telegram answers the reply with 429, 502, 400, 403 or times out. Short, passing faults are retried and the
    user gets the answer; otherwise a `send_failed` event says the reply did not go (a 403 also marks the user
    blocked), the reply event stays, and the next update is handled normally."""
    await application.process_update(text_update(application, SAIMA, "/start"))
    telegram.calls.clear()
    telegram.script("sendMessage", *fault)  # type: ignore[arg-type]

    await application.process_update(text_update(application, SAIMA, FIVERR))

    attempts = [c for c in telegram.calls if c.method == "sendMessage"]
    assert (attempts[-1].status == 200) is delivered
    assert len(attempts) == len(fault) + (1 if delivered else 0)
    kinds = [e.kind for e in await events_of(conversation, db, SAIMA_PERSON)]
    assert kinds.count("send_failed") == (0 if delivered else 1)
    user = await stored_user(db, SAIMA_PERSON)
    assert user is not None
    blocked = "403" in str(fault[0])
    assert (user.blocked_at is not None) is blocked
    assert ("bot_blocked" in kinds) is blocked

    telegram.calls.clear()
    await application.process_update(text_update(application, SAIMA, FIVERR))
    assert len(telegram.sent()) == 1, "the next update is handled as usual"


async def test_a_long_flood_wait_is_recorded_not_waited_out(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation, db: Database
) -> None:
    """429 with retry_after beyond what a live reply can wait: recorded as send_failed at once, not slept on."""
    telegram.script("sendMessage", refused(429, "Too Many Requests: retry after 3600", retry_after=3600))

    await application.process_update(text_update(application, SAIMA, FIVERR))

    [failed] = await events_of(conversation, db, SAIMA_PERSON, kind="send_failed")
    assert failed.data == {"reason": "RetryAfter 3600s"}


async def test_a_checklist_tick_pressed_twice_is_not_an_error(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation, db: Database
) -> None:
    """400 "message is not modified" on editing the checklist (the same state pressed twice) is success: no
    duplicate checklist is sent, no send_failed, one milestone."""
    await application.process_update(text_update(application, SAIMA, "/progress"))
    telegram.calls.clear()
    telegram.script(
        "editMessageText",
        refused(400, "Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message"),
    )  # fmt: skip

    await application.process_update(button_update(application, SAIMA, "ms:set:chose_skill:1"))

    assert [c.method for c in telegram.calls] == ["answerCallbackQuery", "editMessageText"]
    assert await events_of(conversation, db, SAIMA_PERSON, kind="send_failed") == []
    assert await count_rows(db, MilestoneDone) == 1


async def test_a_milestone_whose_reply_did_not_go_is_stored_with_send_failed(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation, db: Database
) -> None:
    """The state change committed, the celebration could not be delivered: the milestone row and its event are
    there (it happened), and send_failed says the user did not see the reply."""
    await application.process_update(text_update(application, SAIMA, "/start"))
    telegram.script("sendMessage", refused(502, "Bad Gateway"), refused(502, "Bad Gateway"))

    await application.process_update(button_update(application, SAIMA, "ms:yes:first_job_won"))

    kinds = [e.kind for e in await events_of(conversation, db, SAIMA_PERSON)]
    assert await count_rows(db, MilestoneDone) == 1 and kinds.count("milestone_done") == 1
    assert kinds.count("send_failed") == 1


async def test_a_6000_character_reply_goes_out_as_parts_telegram_accepts(
    application: RahnumaApplication, telegram: ScriptedTelegram, conversation: Conversation
) -> None:
    """Defect 10 through the handler: a reply longer than one message is sent as several messages, each accepted
    by (the scripted) Telegram, which refuses invalid HTML and texts over 4,096 characters."""
    update = text_update(application, SAIMA, FIVERR)
    text = "\n\n".join(f"<b>Step {n}</b> <i>{'withdraw ' * 40}</i> &amp; <a href=\"https://x.example\">link</a>"
                       for n in range(1, 20))  # fmt: skip
    context = application.context_types.context.from_update(update, application)

    assert await send_reply(update, context, Reply(text=text))

    parts = telegram.sent()
    assert len(parts) >= 2 and not telegram.sent(ok=False)
