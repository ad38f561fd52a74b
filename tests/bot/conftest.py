"""Fixtures of the bot's tests that talk to Telegram: the fake Bot API (Telegram's side of the wire only)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fake_bot_api import FakeBotApi


@pytest.fixture
async def telegram() -> AsyncIterator[FakeBotApi]:
    """A local Bot API server recording what the bot sent; tests may override it with a stricter one."""
    api = FakeBotApi()
    await api.start()
    yield api
    await api.stop()
