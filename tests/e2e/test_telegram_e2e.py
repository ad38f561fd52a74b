"""A freelancer's first minutes with Rahnuma, through a Telegram Bot API emulator and the real `rahnuma run`.

Every test uses its own user (its own private chat) and ends by checking the bot is still healthy: alive, no
ERROR in its log, and no Bot API call that the real Telegram would have refused (the emulator rejects invalid
HTML, over-long texts, stale callback queries, "message is not modified" edits, ...).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import TEST_RASA_TOKEN
from tests.e2e.conftest import BOT_TOKEN
from tests.e2e.harness import BotUnderTest
from tests.e2e.simulated_user import BotApiLog, BotMessage, TelegramUser

pytestmark = pytest.mark.e2e

FIVERR_QUESTION = "how do I withdraw my money from fiverr"


def _has_language_buttons(message: BotMessage) -> bool:
    return {"lang:en", "lang:ur"} <= set(message.callback_data)


async def _onboard_in_english(user: TelegramUser) -> None:
    """/start, then the English button: what every new user does first."""
    await user.send_text("/start")
    welcome = await user.wait_for(_has_language_buttons, what="the welcome with language buttons")
    await user.press("lang:en", welcome)
    await user.next_changes(1)


async def test_a_new_user_sends_start_and_is_welcomed_with_a_language_choice(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """/start brings a welcome that offers English and اردو as buttons."""
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Ayesha")

    await user.send_text("/start")
    welcome = await user.wait_for(_has_language_buttons, what="the welcome with language buttons")

    assert "Rahnuma" in welcome.plain_text
    assert "Ayesha" in welcome.plain_text
    labels = {button.callback_data: button.text for button in welcome.all_buttons}
    assert "English" in labels["lang:en"]
    assert "اردو" in labels["lang:ur"]
    await bot.assert_healthy_since(checkpoint)


async def test_choosing_english_is_confirmed_and_the_button_press_is_acknowledged(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest, api_log: BotApiLog
) -> None:
    """Pressing English stops the button's spinner (answerCallbackQuery) and the bot confirms in English."""
    checkpoint = await bot.checkpoint()
    user = make_user()
    await user.send_text("/start")
    welcome = await user.wait_for(_has_language_buttons, what="the welcome with language buttons")

    await user.press("lang:en", welcome)

    confirmation = (await user.next_changes(1))[-1]
    assert "English" in confirmation.plain_text
    await api_log.wait_for_call(
        "answerCallbackQuery", lambda call: call["status"] == 200 and call["callback_user_id"] == user.user_id
    )
    await bot.assert_healthy_since(checkpoint)


async def test_an_urdu_speaker_picks_urdu_and_is_answered_in_urdu_script(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """Pressing اردو gets a confirmation written in Urdu script."""
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Usman", language_code="ur")
    await user.send_text("/start")
    welcome = await user.wait_for(_has_language_buttons, what="the welcome with language buttons")

    await user.press("lang:ur", welcome)

    confirmation = (await user.next_changes(1))[-1]
    assert any("\u0600" <= ch <= "\u06ff" for ch in confirmation.plain_text), confirmation.plain_text
    await bot.assert_healthy_since(checkpoint)


async def test_a_user_whose_name_looks_like_html_is_still_welcomed(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """A Telegram name such as "<Ali & Sons>" is shown as written, not parsed as markup."""
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="<Ali & Sons>")

    await user.send_text("/start")
    welcome = await user.wait_for(_has_language_buttons, what="the welcome with language buttons")

    assert "<Ali & Sons>" in welcome.plain_text
    await bot.assert_healthy_since(checkpoint)


async def test_asking_how_to_withdraw_from_fiverr_brings_the_fiverr_withdrawal_article(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """After choosing English, the Fiverr withdrawal question gets that article with 👍/👎 buttons."""
    checkpoint = await bot.checkpoint()
    user = make_user()
    await _onboard_in_english(user)

    await user.send_text(FIVERR_QUESTION)
    answer = await user.wait_for(
        lambda m: any(data.startswith("fb:") for data in m.callback_data),
        what="an answer with feedback buttons",
    )

    assert answer.parse_mode == "HTML"
    assert "fiverr" in answer.plain_text.lower()
    assert "fb:up:fiverr_withdrawal" in answer.callback_data
    assert "fb:down:fiverr_withdrawal" in answer.callback_data
    await bot.assert_healthy_since(checkpoint)


async def test_a_user_who_finds_the_answer_helpful_is_thanked_and_the_feedback_buttons_go_away(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest, api_log: BotApiLog
) -> None:
    """👍 on an answer is acknowledged with a short notice and the rating buttons leave the answer."""
    checkpoint = await bot.checkpoint()
    user = make_user()
    await _onboard_in_english(user)
    await user.send_text(FIVERR_QUESTION)
    answer = await user.wait_for(lambda m: "fb:up:fiverr_withdrawal" in m.callback_data, what="the Fiverr answer")

    await user.press("fb:up:fiverr_withdrawal", answer)

    ack = await api_log.wait_for_call(
        "answerCallbackQuery",
        lambda call: call["callback_user_id"] == user.user_id and "text" in (call["params"] or {}),
    )
    assert ack["status"] == 200
    assert ack["params"]["text"]
    edited = await user.wait_for(lambda m: m.message_id == answer.message_id, what="the answer without buttons")
    assert not edited.callback_data
    await bot.assert_healthy_since(checkpoint)


async def test_a_4000_character_message_still_gets_a_reply(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """A user pasting a very long message (4,000 characters, under Telegram's 4,096 limit) gets an answer."""
    checkpoint = await bot.checkpoint()
    user = make_user()
    await _onboard_in_english(user)
    sentence = "My Fiverr payment is pending and I need to withdraw it to my bank in Lahore. "
    long_text = (sentence * (4000 // len(sentence) + 1))[:4000]
    assert len(long_text) == 4000

    await user.send_text(long_text)
    reply = await user.next_reply(within=30)

    assert reply.plain_text.strip()
    await bot.assert_healthy_since(checkpoint)


async def test_a_message_with_html_markup_is_answered_without_breaking_the_reply(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """A question containing <b>hi</b> is just text: the bot replies in HTML that Telegram accepts."""
    checkpoint = await bot.checkpoint()
    user = make_user()
    await _onboard_in_english(user)

    await user.send_text("<b>hi</b> & <script>alert(1)</script> how do I get paid from fiverr?")
    reply = await user.next_reply()

    assert reply.plain_text.strip()
    assert "<script>" not in reply.text  # echoed user input must be escaped
    await bot.assert_healthy_since(checkpoint)


async def test_the_bot_is_still_running_and_answering_after_all_these_conversations(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest, api_log: BotApiLog
) -> None:
    """After every story above, the bot process is alive, published its command menu, and still answers."""
    bot.assert_alive()
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Bilal")

    await user.send_text("/help")
    reply = await user.next_reply()

    assert reply.plain_text.strip()
    published = [call for call in await api_log.calls("setMyCommands") if call["status"] == 200]
    assert published, "the bot should publish its command menu at start (and Telegram should accept it)"
    await bot.assert_healthy_since(checkpoint)


async def test_a_milestone_told_in_roman_urdu_is_confirmed_and_shows_on_the_checklist(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """ "pehla order mil gaya" → a confirm button → pressing it → /progress shows the rung ticked."""
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Zainab")
    await _onboard_in_english(user)

    await user.send_text("pehla order mil gaya!!")
    confirm = await user.wait_for(
        lambda m: "ms:yes:first_job_won" in m.callback_data, what="the confirm button for first_job_won"
    )
    await user.press("ms:yes:first_job_won", confirm)
    celebration = await user.wait_for(lambda m: "🎉" in m.plain_text, what="the celebration")
    assert "Next step" in celebration.plain_text

    await user.send_text("/progress")
    checklist = await user.wait_for(lambda m: "ms:set:first_job_won:0" in m.callback_data, what="the checklist")
    assert "1/" in checklist.plain_text
    assert checklist.button("ms:set:first_job_won:0").text.startswith("✅")  # pressing it would untick
    await bot.assert_healthy_since(checkpoint)


async def test_a_forged_button_changes_nothing_and_its_spinner_stops(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest, api_log: BotApiLog
) -> None:
    """A modified client sends `pf:set:timezone:Mars/Olympus` on a real message: refused, answered, nothing stored."""
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Mallory")
    await _onboard_in_english(user)
    await user.send_text("/privacy")
    report = await user.wait_for(lambda m: "del:ask" in m.callback_data, what="the privacy report")

    for forged in ("pf:set:timezone:Mars/Olympus", "pf:set:language:xx"):
        await user.press_forged(forged, report)
        await api_log.wait_for_call(
            "answerCallbackQuery",
            lambda call, forged=forged: (
                call["callback_user_id"] == user.user_id
                and call["status"] == 200
                and "no longer active" in str((call["params"] or {}).get("text"))
            ),
        )
    await user.send_text("/privacy")
    again = await user.wait_for(
        lambda m: "del:ask" in m.callback_data and m.message_id != report.message_id, what="a second privacy report"
    )
    assert "Mars" not in again.plain_text and "xx" not in again.plain_text
    await user.send_text(FIVERR_QUESTION)  # and the user is not broken: answers still come in English
    answer = await user.wait_for(lambda m: "fb:up:fiverr_withdrawal" in m.callback_data, what="the Fiverr answer")
    assert "Fiverr" in answer.plain_text
    await bot.assert_healthy_since(checkpoint)


async def test_a_button_from_a_removed_feature_is_answered_not_left_spinning(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest, api_log: BotApiLog
) -> None:
    """An old button whose prefix the bot no longer knows gets an answerCallbackQuery with a kind notice."""
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Omar")
    await _onboard_in_english(user)
    await user.send_text("/help")
    help_message = await user.next_reply()

    await user.press_forged("quiz:answer:3", help_message)

    ack = await api_log.wait_for_call(
        "answerCallbackQuery",
        lambda call: call["callback_user_id"] == user.user_id and "text" in (call["params"] or {}),
    )
    assert ack["status"] == 200 and "/help" in ack["params"]["text"]
    await bot.assert_healthy_since(checkpoint)


async def test_privacy_in_a_group_shows_nothing_personal_and_points_to_a_private_chat(
    make_user: Callable[..., TelegramUser], bot: BotUnderTest
) -> None:
    """/privacy sent in a group: no name, no profile in the group, only a button that opens a private chat."""
    checkpoint = await bot.checkpoint()
    private = make_user(first_name="Saima")
    await _onboard_in_english(private)
    await private.send_text("/profile")
    await private.next_changes(1)
    await private.send_text("Bridal mehndi design")  # something personal that must never show in the group
    await private.next_changes(1)
    group = {"id": -1009876543210, "type": "supergroup", "title": "DigiSkills cohort 7"}
    in_group = make_user(first_name="Saima", user_id=private.user_id, group=group)

    await in_group.send_text("/privacy@RahnumaE2EBot")
    reply = await in_group.next_reply()

    assert "Saima" not in reply.plain_text and "mehndi" not in reply.plain_text.lower()
    links = [button.url for button in reply.all_buttons if button.url]
    assert links and links[0].startswith("https://t.me/RahnumaE2EBot?start=")
    await in_group.send_text("/progress")
    progress = await in_group.next_reply()
    assert "✅" not in progress.plain_text and "⬜" not in progress.plain_text
    await in_group.send_text("how do I withdraw my money from fiverr")  # not addressed: the bot stays quiet
    await in_group.send_text("@RahnumaE2EBot how do I withdraw my money from fiverr")
    answer = await in_group.next_reply()
    assert "Fiverr" in answer.plain_text and "Saima" not in answer.plain_text
    assert not answer.callback_data, "no personal buttons in a group"
    await bot.assert_healthy_since(checkpoint)


async def test_no_secret_appears_in_any_line_the_bot_logged(bot: BotUnderTest) -> None:
    """Issue 7, defect 7: after every story above (Rasa errors, refused calls, shutdowns of handlers), the bot's
    log holds neither the bot token nor the Rasa token, in any form a URL would carry them."""
    log = bot.log_text()
    assert log.strip(), "the bot logged nothing: the check would prove nothing"
    for secret in (BOT_TOKEN, TEST_RASA_TOKEN, BOT_TOKEN.split(":", 1)[1]):
        assert secret not in log, f"a secret is in the bot's log ({len(log)} characters)"
