"""Typed PTB context: handlers reach the conversation through `context.conversation`, not bot_data lookups."""

from __future__ import annotations

from typing import Any

from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot, JobQueue, filters

from bot.core.conversation import Conversation
from bot.core.text import clean_name
from bot.core.types import Person
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.runtime import Runtime


class BotData:
    """Application-wide state: the runtime and the outbox dispatcher, set in post_init and closed at shutdown."""

    runtime: Runtime | None = None
    dispatcher: Dispatcher | None = None
    pacer: Pacer | None = None
    bulk_bot: ExtBot[None] | None = None
    # coordinators (issue 10): the user filters of their handlers, kept in step with role grants, and the
    # per-chat command menus set so far (chat id -> command names)
    coordinator_filter: filters.User | None = None
    staff_filter: filters.User | None = None
    menus_set: dict[int, list[str]]

    def __init__(self) -> None:
        self.menus_set = {}


class RahnumaContext(CallbackContext[ExtBot[int], dict[Any, Any], dict[Any, Any], BotData]):
    @property
    def runtime(self) -> Runtime:
        runtime = self.bot_data.runtime
        if runtime is None:
            raise RuntimeError("the runtime is opened in post_init; no update is handled before it")
        return runtime

    @property
    def conversation(self) -> Conversation:
        return self.runtime.conversation


# ExtBot[int]: AIORateLimiter's per-call argument (max_retries) is an int.
RahnumaApplication = Application[ExtBot[int], RahnumaContext, dict[Any, Any], dict[Any, Any], BotData, JobQueue[Any]]


def person_of(update: Update) -> Person:
    """The core's view of the sender; the name is cleaned here and escaped where it is shown."""
    user = update.effective_user
    if user is None:
        raise ValueError("update without a sender")
    return Person(
        channel="telegram",
        external_id=str(user.id),
        display_name=clean_name(user.full_name),
        language_hint=user.language_code,
        username=user.username,
    )
