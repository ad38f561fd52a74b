"""Thin Telegram callbacks over the core conversation: translate the update, call the core, send the reply."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.core.types import InboundKind
from bot.handlers.context import RahnumaContext, person_of
from bot.handlers.sending import send_reply

log = logging.getLogger(__name__)


async def start(update: Update, context: RahnumaContext) -> None:
    """/start: welcome, privacy notice, language buttons."""
    await send_reply(update, await context.conversation.start(person_of(update)))


async def show_help(update: Update, context: RahnumaContext) -> None:
    """/help: what the bot can do."""
    await send_reply(update, await context.conversation.help(person_of(update)))


async def choose_language(update: Update, context: RahnumaContext) -> None:
    """/language: offer English or Urdu."""
    await send_reply(update, await context.conversation.ask_language(person_of(update)))


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
        for candidate in ("sticker", "voice", "photo", "video", "document", "location"):
            if getattr(message, candidate, None):
                kind = candidate
                break
    await send_reply(update, await context.conversation.handle_non_text(person_of(update), kind))


async def pick_language(update: Update, context: RahnumaContext) -> None:
    """Button `lang:en` / `lang:ur`."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    await _acknowledge(update)
    await send_reply(update, await context.conversation.set_language(person_of(update), query.data.split(":", 1)[1]))


async def record_feedback(update: Update, context: RahnumaContext) -> None:
    """Button `fb:up:<article>` / `fb:down:<article>`: store it, thank the user, remove the buttons."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    _, verdict, article_id = query.data.split(":", 2)
    reply = await context.conversation.feedback(person_of(update), article_id, helpful=verdict == "up")
    await _acknowledge(update, reply.text)
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except TelegramError as exc:  # an old or already-edited message: the feedback is stored anyway
        log.info("Could not remove feedback buttons: %s", exc)


async def open_article(update: Update, context: RahnumaContext) -> None:
    """Button `art:<article>` from "did you mean": show that article."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    await _acknowledge(update)
    await send_reply(update, await context.conversation.show_article(person_of(update), query.data.split(":", 1)[1]))


async def _acknowledge(update: Update, text: str | None = None) -> None:
    query = update.callback_query
    if query is None:
        return
    try:
        await query.answer(text)
    except TelegramError as exc:  # a query older than Telegram keeps them; the action still happens
        log.info("Could not answer callback query: %s", exc)
