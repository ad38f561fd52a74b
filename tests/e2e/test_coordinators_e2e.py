"""Coordinators end to end: a second `rahnuma run` with RAHNUMA_COORDINATORS and RAHNUMA_COORDINATOR_CHAT_ID set,
through the Telegram emulator. A coordinator makes a cohort link, a trainee joins through it, the coordinator
broadcasts to the cohort with the /broadcast wizard (preview, count, confirm) and the trainee receives it; a
trainee asks for a human in Roman Urdu, the question appears in the coordinators' group, a coordinator replies to
it there, and the reply reaches the trainee from the bot.

This bot has its own token, SQLite database and scratch folder; quiet hours are off (the test may run at night in
Karachi). It answers through the same Rasa as the polling tests (or its lexical fallback with
RAHNUMA_E2E_WITHOUT_RASA=1). The tests share one process (module scope) and run in file order.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_RASA_TOKEN
from tests.e2e.harness import BotUnderTest, Emulator, migrate_and_start_bot, stop_process, tail
from tests.e2e.simulated_user import BotApiLog, BotMessage, TelegramUser

pytestmark = pytest.mark.e2e

COORDINATOR_BOT_TOKEN = "7000000003:AAE2E_rahnuma_coordinators_not_a_real_token"
COORDINATOR_ID = 730_000_001
OTHER_COORDINATOR_ID = 730_000_002
TRAINEE_ID = 730_000_010
ASKER_ID = 730_000_011
STRANGER_ID = 730_000_012
GROUP = {"id": -1001730000000, "type": "supergroup", "title": "DigiSkills coordinators"}
STARTUP_TIMEOUT = float(os.environ.get("RAHNUMA_E2E_STARTUP_TIMEOUT", "90"))
WITHIN = 30.0  # the outbox dispatcher runs every second; replies through it take a moment longer than live ones


@pytest.fixture(scope="module")
def coordinator_bot(
    tmp_path_factory: pytest.TempPathFactory,
    emulator: Emulator,
    e2e_rasa_url: str,
    api_log: BotApiLog,
    rahnuma_executable: str,
    scrubbed_env: dict[str, str],
    e2e_session_logs: dict[str, Path],
) -> Iterator[BotUnderTest]:
    workdir = tmp_path_factory.mktemp("e2e-coordinators")
    log_path = workdir / "coordinator-bot.log"
    env = copy.copy(scrubbed_env)
    env.update(
        TELEGRAM_BOT_TOKEN=COORDINATOR_BOT_TOKEN,
        TELEGRAM_API_URL=emulator.bot_api_url,
        DATABASE_URL=f"sqlite+aiosqlite:///{workdir / 'coordinators.db'}",
        RASA_URL=e2e_rasa_url,
        RASA_TOKEN=TEST_RASA_TOKEN,
        RAHNUMA_WEBHOOK_URL="",
        RAHNUMA_COORDINATORS=f"{COORDINATOR_ID},{OTHER_COORDINATOR_ID}",
        RAHNUMA_COORDINATOR_CHAT_ID=str(GROUP["id"]),
        RAHNUMA_QUIET_HOURS="00:00-00:00",
        RAHNUMA_FRIDAY_QUIET_HOURS="",
        RAHNUMA_LOG_LEVEL=os.environ.get("RAHNUMA_E2E_LOG_LEVEL", "INFO"),
        PYTHONUNBUFFERED="1",
    )
    e2e_session_logs["coordinator bot log"] = log_path
    process = migrate_and_start_bot(rahnuma_executable, cwd=workdir, env=env, log_path=log_path)
    try:
        _wait_until_polling(process, emulator, log_path)
        yield BotUnderTest(process, log_path, api_log)
    finally:
        stop_process(process, signal.SIGINT, grace=20)
        e2e_session_logs.pop("coordinator bot log", None)


def _wait_until_polling(process: subprocess.Popen[bytes], emulator: Emulator, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    with httpx.Client(timeout=5) as http:
        while True:
            if process.poll() is not None:
                pytest.fail(f"the coordinator bot exited with {process.returncode}:\n{tail(log_path)}", pytrace=False)
            calls = http.get(f"{emulator.control_url}/_e2e/calls", params={"method": "getUpdates"}).json()["result"]
            if any(call["token"] == COORDINATOR_BOT_TOKEN for call in calls):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"the coordinator bot did not poll in time:\n{tail(log_path)}", pytrace=False)
            time.sleep(0.1)


def _user(
    e2e_http: httpx.AsyncClient,
    emulator: Emulator,
    user_id: int,
    name: str,
    *,
    language: str = "en",
    group: bool = False,
) -> TelegramUser:
    return TelegramUser(
        e2e_http,
        client_url=emulator.client_url,
        bot_token=COORDINATOR_BOT_TOKEN,
        user_id=user_id,
        first_name=name,
        language_code=language,
        group=GROUP if group else None,
    )


def _with(*needles: str):  # type: ignore[no-untyped-def]
    return lambda message: all(needle in message.plain_text for needle in needles)


def _button(message: BotMessage, prefix: str) -> str:
    return next(data for data in message.callback_data if data.startswith(prefix))


async def test_a_coordinator_broadcasts_to_a_cohort_with_the_wizard_and_the_trainee_receives_it(
    coordinator_bot: BotUnderTest, e2e_http: httpx.AsyncClient, emulator: Emulator, api_log: BotApiLog
) -> None:
    checkpoint = await coordinator_bot.checkpoint()
    coordinator = _user(e2e_http, emulator, COORDINATOR_ID, "Asma")
    trainee = _user(e2e_http, emulator, TRAINEE_ID, "Bilal")
    stranger = _user(e2e_http, emulator, STRANGER_ID, "Sneaky")

    await stranger.send_text("/broadcast")
    refused = await stranger.wait_for(_with("only for programme coordinators"), within=WITHIN, what="a refusal")
    assert not refused.callback_data

    await coordinator.send_text("/cohort new e2e7")
    link = await coordinator.wait_for(_with("start=c-e2e7"), within=WITHIN, what="the cohort link")
    assert "e2e7" in link.plain_text
    await trainee.send_text("/start c-e2e7")
    await trainee.wait_for(_with("e2e7", "Rahnuma"), within=WITHIN, what="the welcome into the cohort")

    await coordinator.send_text("/broadcast")
    first = await coordinator.wait_for(lambda m: any(d.startswith("bc:tip:") for d in m.callback_data), within=WITHIN)
    broadcast_id = int(_button(first, "bc:x:").split(":")[2])
    await coordinator.send_text("Webinar tonight at 8: proposals that get replies")
    asked_urdu = await coordinator.wait_for(lambda m: f"bc:skip:{broadcast_id}" in m.callback_data, within=WITHIN)
    await coordinator.press(f"bc:skip:{broadcast_id}", asked_urdu)
    segments = await coordinator.wait_for(
        lambda m: f"bc:seg:{broadcast_id}:c.e2e7" in m.callback_data, within=WITHIN, what="the segment choice"
    )
    await coordinator.press(f"bc:seg:{broadcast_id}:c.e2e7", segments)
    counted = await coordinator.wait_for(_with("1 recipients"), within=WITHIN, what="the recipient count")
    preview = await coordinator.wait_for(
        _with("Webinar tonight at 8", "/stop"), within=WITHIN, what="the preview, as recipients see it"
    )
    await coordinator.press(f"bc:now:{broadcast_id}", counted)
    confirm = await coordinator.wait_for(lambda m: f"bc:go:{broadcast_id}" in m.callback_data, within=WITHIN)
    await coordinator.press(f"bc:go:{broadcast_id}", confirm)
    await coordinator.wait_for(_with(f"#{broadcast_id} is queued for 1"), within=WITHIN, what="the confirmation")

    received = await trainee.wait_for(_with("Webinar tonight at 8"), within=WITHIN, what="the broadcast")
    assert received.text == preview.text  # exactly the preview
    await coordinator.send_text("/broadcasts")
    await coordinator.wait_for(_with(f"#{broadcast_id}", "sent 1"), within=WITHIN, what="the live counts")
    assert not [m for m in await stranger.chat_history() if "Webinar" in m.plain_text]
    await coordinator_bot.assert_healthy_since(checkpoint)


async def test_a_trainee_asks_for_a_human_in_roman_urdu_and_a_coordinators_reply_reaches_them(
    coordinator_bot: BotUnderTest, e2e_http: httpx.AsyncClient, emulator: Emulator
) -> None:
    checkpoint = await coordinator_bot.checkpoint()
    asker = _user(e2e_http, emulator, ASKER_ID, "Zainab", language="ur")
    in_group = _user(e2e_http, emulator, OTHER_COORDINATOR_ID, "Coordinator Omar", group=True)

    await asker.send_text("/start")
    welcome = await asker.wait_for(lambda m: "lang:ur" in m.callback_data, within=WITHIN)
    await asker.press("lang:ur", welcome)
    await asker.next_changes(1, within=WITHIN)
    await asker.send_text("kisi insaan se baat karni hai")
    opened = await asker.wait_for(_with("کوآرڈینیٹر"), within=WITHIN, what="the hand-off confirmation")
    assert any(d.startswith("ho:end:") for d in opened.callback_data)

    post = await in_group.wait_for(_with("Hand-off #"), within=WITHIN, what="the hand-off in the group")
    assert "Zainab" not in post.plain_text and "kisi insaan se baat karni hai" in post.plain_text
    await in_group.send_text("! internal: check her Payoneer case", reply_to=post)
    await in_group.send_text("Wa alaikum salam! Bataiye, kya masla hai?", reply_to=post)
    relayed = await asker.wait_for(_with("Bataiye, kya masla hai?"), within=WITHIN, what="the coordinator's reply")
    assert "Omar" not in relayed.plain_text
    assert not [m for m in await asker.chat_history() if "internal" in m.plain_text]

    await asker.send_text("Payoneer account approve nahi ho raha")
    await asker.wait_for(_with("📨"), within=WITHIN, what="the forwarded notice")
    forwarded = await in_group.wait_for(_with("approve nahi ho raha"), within=WITHIN, what="the follow-up")
    ticket = forwarded.plain_text.split("#", 1)[1].split(" ", 1)[0]
    await in_group.press(f"ho:close:{ticket}", post)
    await asker.wait_for(_with("/human"), within=WITHIN, what="the closing notice")
    await coordinator_bot.assert_healthy_since(checkpoint)


SANA_ID = 730_000_020
BILAL_ID = 730_000_021
MATCH_WITHIN = 150.0  # the dispatcher plans, and so matches, once a minute


def _offers(prefix: str):  # type: ignore[no-untyped-def]
    return lambda message: any(data.startswith(prefix) for data in message.callback_data)


async def test_two_trainees_become_buddies_with_a_double_opt_in_and_talk_only_through_the_bot(
    coordinator_bot: BotUnderTest, e2e_http: httpx.AsyncClient, emulator: Emulator
) -> None:
    """Issue 12 through Telegram: two trainees ask for a buddy at their step; the dispatcher's pass matches them and
    each gets a card without a username; nothing is introduced until both accept; /b reaches the buddy with Report
    under it; a report reaches the coordinators' group with numbers, not names. Neither ever sees the other's
    Telegram username."""
    checkpoint = await coordinator_bot.checkpoint()
    sana = _user(e2e_http, emulator, SANA_ID, "Sana")
    bilal = _user(e2e_http, emulator, BILAL_ID, "Bilal")
    in_group = _user(e2e_http, emulator, OTHER_COORDINATOR_ID, "Coordinator Omar", group=True)

    for trainee in (sana, bilal):
        await trainee.send_text("/buddy")
        asked = await trainee.wait_for(_offers("bw:peer"), within=WITHIN, what="who would help most")
        await trainee.press("bw:peer", asked)
        shown = await trainee.wait_for(_offers("bj:peer"), within=WITHIN, what="what a buddy will see")
        assert trainee.first_name in shown.plain_text and trainee.username not in shown.plain_text
        await trainee.press(_button(shown, "bj:peer"), shown)
        await trainee.wait_for(_with("on the list"), within=WITHIN, what="the opt-in confirmation")

    card_for_sana = await sana.wait_for(_offers("bp:yes:"), within=MATCH_WITHIN, what="a card about Bilal")
    card_for_bilal = await bilal.wait_for(_offers("bp:yes:"), within=WITHIN, what="a card about Sana")
    assert "Bilal" in card_for_sana.plain_text and "Sana" in card_for_bilal.plain_text
    assert "@" not in card_for_sana.plain_text + card_for_bilal.plain_text

    await sana.press(_button(card_for_sana, "bp:yes:"), card_for_sana)
    await sana.wait_for(_with("as soon as Bilal accepts"), within=WITHIN, what="waiting for Bilal")
    await bilal.press(_button(card_for_bilal, "bp:yes:"), card_for_bilal)
    await bilal.wait_for(_with("Sana", "buddies now"), within=WITHIN, what="the introduction")
    await sana.wait_for(_with("Bilal", "buddies now"), within=WITHIN, what="the introduction")

    await sana.send_text("/b Assalam o alaikum! Which gig did you make first?")
    relayed = await bilal.wait_for(_with("Which gig did you make first?"), within=WITHIN, what="Sana's message")
    assert "Sana" in relayed.plain_text and _offers("bp:rep:")(relayed)
    await bilal.press(_button(relayed, "bp:rep:"), relayed)
    await bilal.wait_for(_with("paused"), within=WITHIN, what="the thanks for the report")
    report = await in_group.wait_for(_with("Buddy report"), within=WITHIN, what="the report in the group")
    assert "Which gig" in report.plain_text
    assert "Sana" not in report.plain_text and "Bilal" not in report.plain_text

    for trainee, other in ((sana, bilal), (bilal, sana)):
        seen = " ".join(m.plain_text for m in await trainee.chat_history())
        assert other.username not in seen
    await coordinator_bot.assert_healthy_since(checkpoint)
