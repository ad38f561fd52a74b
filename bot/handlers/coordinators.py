"""Coordinators on Telegram: their commands (registered with a user filter in bot/app.py), the polite refusal for
everyone else, the coordinators' group (replies relayed to users, /canned, the Close button), per-chat command
menus, and keeping the user filters in step with role grants made from the CLI while the bot runs."""

from __future__ import annotations

import logging
from typing import cast

from telegram import BotCommand, BotCommandScopeChat, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, filters

from bot.core import buttons
from bot.core.commands import COMMANDS, Command, user_commands
from bot.core.types import Reply
from bot.handlers.context import RahnumaApplication, RahnumaContext, person_of
from bot.handlers.export import send_export
from bot.handlers.private import command_name, run_command
from bot.handlers.sending import acknowledge, send_reply
from storage.db import StorageError

log = logging.getLogger(__name__)

ROLE_SYNC_SECONDS = 30


def names(*audiences: str) -> list[str]:
    return [command.name for command in COMMANDS if command.audience in audiences and command.name != "canned"]


async def export_for_staff(update: Update, context: RahnumaContext) -> None:
    """/export from a researcher or coordinator: the zip document; nothing else sees the command."""
    await send_export(update, context)
    raise ApplicationHandlerStop


async def run_staff_command(update: Update, context: RahnumaContext) -> None:
    """A coordinator's (or researcher's) command in a private chat: the core runs it; nothing else sees it."""
    await run_command(update, context)
    raise ApplicationHandlerStop


async def refuse(update: Update, context: RahnumaContext) -> None:
    """A coordinator command from someone the filter does not know: a role granted from the CLI a moment ago is
    picked up here (the filter is refreshed), anyone else gets a polite refusal and an `admin_refused` event."""
    message = update.effective_message
    user = update.effective_user
    if message is None or not message.text or user is None:
        raise ApplicationHandlerStop
    name, _ = command_name(message.text)
    roles = context.runtime.coordination.roles
    try:
        if await roles.refresh():
            await sync_role_filters(cast(RahnumaApplication, context.application))
    except StorageError:
        pass  # judged on the roles known already
    allowed = roles.staff if name in names("staff") else roles.coordinators
    private = update.effective_chat is not None and update.effective_chat.type == ChatType.PRIVATE
    if user.id in allowed and private:
        await (send_export(update, context) if name == "export" else run_command(update, context))
    elif user.id in allowed:
        await send_reply(update, context, context.conversation.private_only(person_of(update), name))
    else:
        await send_reply(update, context, await context.runtime.coordination.refuse(person_of(update), name))
    raise ApplicationHandlerStop


async def relay_reply(update: Update, context: RahnumaContext) -> None:
    """A reply in the coordinators' group to one of the bot's hand-off posts: relayed to the user (or a note)."""
    message = update.effective_message
    if message is None or message.reply_to_message is None or update.effective_user is None:
        raise ApplicationHandlerStop
    await context.runtime.coordination.handoff.reply_from_group(
        coordinator=update.effective_user.id,
        message_id=message.message_id,
        replied_to=message.reply_to_message.message_id,
        text=message.text or "",
    )
    raise ApplicationHandlerStop


async def canned(update: Update, context: RahnumaContext) -> None:
    """/canned lists the canned replies; `/canned ID` as a reply to a hand-off post sends one to the user."""
    message = update.effective_message
    if message is None or not message.text or update.effective_user is None:
        raise ApplicationHandlerStop
    handoff = context.runtime.coordination.handoff
    _, argument = command_name(message.text)
    if not context.runtime.coordination.roles.is_coordinator(update.effective_user.id):
        await send_reply(update, context, await context.runtime.coordination.refuse(person_of(update), "canned"))
        raise ApplicationHandlerStop
    if not argument:
        await send_reply(update, context, Reply(text=handoff.canned_list()))
        raise ApplicationHandlerStop
    outcome = "unknown"
    if message.reply_to_message is not None:
        outcome = await handoff.reply_from_group(
            coordinator=update.effective_user.id,
            message_id=message.message_id,
            replied_to=message.reply_to_message.message_id,
            text="",
            canned=argument.split()[0],
        )
    if outcome in ("unknown", "no_such_reply"):
        await send_reply(update, context, Reply(text=context.runtime.library.text("canned_usage", "en")))
    raise ApplicationHandlerStop


async def press_in_group(update: Update, context: RahnumaContext) -> None:
    """The Close button under a hand-off, or a decision under a buddy report, pressed in the coordinators' group."""
    query = update.callback_query
    chat_id = context.runtime.coordination.settings.chat_id
    if query is None or query.message is None or query.message.chat.id != chat_id or update.effective_user is None:
        return  # not ours: the ordinary button handler answers it
    action = buttons.decode(query.data or "")
    if isinstance(action, buttons.PairReview):
        toast = await context.runtime.coordination.peers.review_from_group(
            coordinator=update.effective_user.id, pair_id=action.pair_id, verb=action.verb
        )
        await acknowledge(query, toast)
        raise ApplicationHandlerStop
    if isinstance(action, buttons.WinStoryReview):
        toast = await context.runtime.coordination.peers.review_story(
            coordinator=update.effective_user.id, story_id=action.story_id, approve=action.verb == "ok"
        )
        await acknowledge(query, toast)
        raise ApplicationHandlerStop
    if not isinstance(action, buttons.HandoffAction) or action.verb != "close":
        await acknowledge(query, context.runtime.library.text("button_expired", "en"))
        raise ApplicationHandlerStop
    toast = await context.runtime.coordination.handoff.close_from_group(
        coordinator=update.effective_user.id, ticket_id=action.ticket_id
    )
    await acknowledge(query, toast)
    raise ApplicationHandlerStop


async def stay_quiet(update: Update, context: RahnumaContext) -> None:
    """Anything else in the coordinators' group: the bot does not answer questions there."""
    raise ApplicationHandlerStop


# ---- filters and menus in step with the roles --------------------------------------------------------------


def role_filters() -> tuple[filters.User, filters.User]:
    """(coordinators, staff) user filters, filled from the runtime's roles once it is open."""
    return filters.User(allow_empty=False), filters.User(allow_empty=False)


async def sync_role_filters(application: RahnumaApplication) -> None:
    """Make the registered user filters and the per-chat menus match the roles now."""
    data = application.bot_data
    runtime = data.runtime
    if runtime is None or data.coordinator_filter is None or data.staff_filter is None:
        return
    roles = runtime.coordination.roles
    for user_filter, wanted in ((data.coordinator_filter, roles.coordinators), (data.staff_filter, roles.staff)):
        current = set(user_filter.user_ids)
        if current - wanted:
            user_filter.remove_user_ids(current - wanted)
        if wanted - current:
            user_filter.add_user_ids(wanted - current)
    await set_menus(application)


async def set_menus(application: RahnumaApplication) -> None:
    """Coordinators and researchers see their commands in their own chat's menu (BotCommandScopeChat); nobody
    else does. A chat whose role was removed falls back to the everyone menu."""
    data = application.bot_data
    runtime = data.runtime
    if runtime is None:
        return
    roles = runtime.coordination.roles
    text = runtime.library.text
    everyone = [c for c in user_commands() if c.menu]
    staff_only = [c for c in COMMANDS if c.audience == "staff"]
    coordinator_only = [c for c in COMMANDS if c.audience == "coordinator"]
    wanted: dict[int, list[Command]] = {}
    for user_id in roles.staff:
        wanted[user_id] = everyone + staff_only
    for user_id in roles.coordinators:
        wanted[user_id] = everyone + coordinator_only + staff_only
    chat_id = runtime.coordination.settings.chat_id
    if chat_id is not None:
        wanted[chat_id] = [c for c in COMMANDS if c.name == "canned"] + [c for c in everyone if c.name == "help"]
    menus = {chat: [c.name for c in commands] for chat, commands in wanted.items()}
    if menus == data.menus_set:
        return
    for chat, commands in wanted.items():
        if data.menus_set.get(chat) == menus[chat]:
            continue
        for language in ("en", "ur"):
            entries = [BotCommand(c.name, text(f"command_{c.name}", language)) for c in commands]
            try:
                await application.bot.set_my_commands(
                    entries, scope=BotCommandScopeChat(chat), language_code=None if language == "en" else language
                )
            except TelegramError as exc:  # e.g. a coordinator who never opened a chat with the bot
                log.info("Could not set the command menu of chat %s: %s", chat, exc)
    for chat in set(data.menus_set) - set(wanted):
        for code in (None, "ur"):
            try:
                await application.bot.delete_my_commands(scope=BotCommandScopeChat(chat), language_code=code)
            except TelegramError as exc:
                log.info("Could not reset the command menu of chat %s: %s", chat, exc)
    data.menus_set = menus


async def sync_roles_job(context: RahnumaContext) -> None:
    """Every ROLE_SYNC_SECONDS: grants made with `rahnuma admin` reach the running bot's filters and menus."""
    try:
        changed = await context.runtime.coordination.roles.refresh()
    except StorageError as exc:  # the next run retries; roles from settings keep working meanwhile
        log.warning("Could not reload role grants: %s", exc)
        return
    if changed:
        await sync_role_filters(cast(RahnumaApplication, context.application))
