"""A nudge through the whole chain: a user chats with the running bot; `rahnuma dispatch --once --at` a week later
delivers the welcome nudge at 11:00 in Karachi, and nothing at 03:00 (quiet hours hold it)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.harness import BotUnderTest
from tests.e2e.simulated_user import NoReplyError, TelegramUser

pytestmark = pytest.mark.e2e

KARACHI = ZoneInfo("Asia/Karachi")


async def dispatch_at(rahnuma: str, env: dict[str, str], at: dt.datetime, cwd: str) -> str:
    process = await asyncio.create_subprocess_exec(
        rahnuma, "dispatch", "--once", "--at", at.isoformat(), env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode()
    return output.decode()


def a_week_later_at(joined: dt.datetime, hour: int) -> dt.datetime:
    """That hour in Karachi on the first day, seven or more days after joining, when the 7-day nudge is due by
    03:00 (so the 03:00 pass finds it due and must hold it)."""
    local = joined.astimezone(KARACHI)
    day = local.date() + dt.timedelta(days=7 if local.time() <= dt.time(3, 0) else 8)
    return dt.datetime.combine(day, dt.time(hour), tzinfo=KARACHI)


async def test_a_week_later_the_welcome_nudge_comes_at_eleven_not_at_three_in_the_morning(
    make_user: Callable[..., TelegramUser],
    bot: BotUnderTest,
    rahnuma_executable: str,
    bot_env: dict[str, str],
    e2e_dir: object,
) -> None:
    checkpoint = await bot.checkpoint()
    user = make_user(first_name="Farah")
    joined = dt.datetime.now(dt.UTC)
    await user.send_text("/start")
    welcome = await user.wait_for(lambda m: "lang:en" in m.callback_data, what="the welcome")
    await user.press("lang:en", welcome)
    await user.next_changes(1)

    night = await dispatch_at(rahnuma_executable, bot_env, a_week_later_at(joined, 3), str(e2e_dir))
    assert "held" in night, night
    with pytest.raises(NoReplyError):
        await user.next_reply(within=1.5)

    morning = await dispatch_at(rahnuma_executable, bot_env, a_week_later_at(joined, 11), str(e2e_dir))
    assert "sent" in morning, morning
    nudge = await user.next_reply()
    assert "Farah" in nudge.plain_text
    why = next(data for data in nudge.callback_data if data.endswith(":why"))
    assert why.startswith("nd:welcome_d7")

    await user.press(why, nudge)
    explanation = await user.next_reply()
    assert "7 day" in explanation.plain_text and "np:show" in explanation.callback_data
    await bot.assert_healthy_since(checkpoint)
