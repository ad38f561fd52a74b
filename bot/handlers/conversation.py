"""Thin Telegram callbacks over the core conversation: translate the update, call the core, send the reply."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.core.conversation import COMMANDS
from bot.core.types import InboundKind
from bot.handlers.context import RahnumaContext, person_of
from bot.handlers.sending import edit_reply, send_reply

log = logging.getLogger(__name__)

__all__ = ["COMMANDS", "answer_non_text", "answer_text", "press_button", "run_command"]

NON_TEXT_KINDS: tuple[InboundKind, ...] = ("sticker", "voice", "photo", "video", "document", "location")


async def run_command(update: Update, context: RahnumaContext) -> None:
    """/start, /help, /language, /progress, /profile, /cancel, /privacy, /delete_me: the core does the rest."""
    message = update.effective_message
    if message is None or not message.text:
        return
    name = message.text.split(maxsplit=1)[0].lstrip("/").split("@", 1)[0].lower()
    await send_reply(update, await context.conversation.command(person_of(update), name))


async def answer_text(update: Update, context: RahnumaContext) -> None:
    """Free text: understand it and answer from the content."""
    message = update.effective_message
    if message is None:
        return
    await send_reply(update, await context.conversation.handle_text(person_of(update), message.text or ""))


async def answer_non_text(update: Update, context: RahnumaContext) -> None:
    """Stickers, voice notes, photos and the like: a kind text reply."""
    message = update.effective_message
    kind: InboundKind = "other"
    if message is not None:
        kind = next((k for k in NON_TEXT_KINDS if getattr(message, k, None)), "other")
    await send_reply(update, await context.conversation.handle_non_text(person_of(update), kind))


async def press_button(update: Update, context: RahnumaContext) -> None:
    """Any inline button (`lang:`, `fb:`, `art:`, `ms:`, `pf:`, `consent:`, `del:`)."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    reply = await context.conversation.press(person_of(update), query.data)
    if reply.decision == "feedback":
        await _acknowledge(update, reply.text)
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError as exc:  # an old or already-edited message: the feedback is stored anyway
            log.info("Could not remove feedback buttons: %s", exc)
        return
    await _acknowledge(update)
    if reply.replace and await edit_reply(update, reply):
        return
    await send_reply(update, reply)


async def _acknowledge(update: Update, text: str | None = None) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text)
    except TelegramError as exc:  # a query older than Telegram keeps them; the action still happens
        log.info("Could not answer callback query: %s", exc)
