"""Sending a reply to the update it answers: cut to Telegram's limits, retried once, failures recorded not raised.

Replies are at-least-once: a timeout may hide a delivered message, and a duplicate answer is better than none.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import CallbackQuery, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from bot.core.types import Reply
from bot.delivery.render import keyboard_of, message_parts
from bot.handlers.context import RahnumaContext, person_of

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 30.0  # a live reply waits out a short flood limit; longer than this, the user has moved on
ATTEMPTS = 2


async def send_reply(update: Update, context: RahnumaContext, reply: Reply) -> bool:
    """Send the reply to the update's chat; False (recorded, never raised) when Telegram did not take it."""
    chat = update.effective_chat
    if chat is None:
        return False
    for text, keyboard in message_parts(reply):
        if await _send(update, context, chat.id, text, keyboard) is None:
            return False
    return True


async def _send(
    update: Update, context: RahnumaContext, chat_id: int, text: str, keyboard: InlineKeyboardMarkup | None
) -> Message | None:
    for attempt in range(1, ATTEMPTS + 1):
        if context.bot_data.pacer is not None:
            context.bot_data.pacer.note_live()  # live replies go first: bulk sends wait one slot
        try:
            return await context.bot.send_message(chat_id, text, reply_markup=keyboard)
        except Forbidden as exc:
            log.info("Chat %s blocked the bot; marking the user blocked", chat_id)
            if update.effective_user is not None and update.effective_chat and update.effective_chat.type == "private":
                await context.conversation.blocked_changed(person_of(update), blocked=True)
            await _failed(update, context, f"Forbidden: {exc.message}")
            return None
        except RetryAfter as exc:
            wait = exc.retry_after if isinstance(exc.retry_after, int | float) else exc.retry_after.total_seconds()
            if attempt == ATTEMPTS or wait > MAX_RETRY_AFTER:
                await _failed(update, context, f"RetryAfter {wait:.0f}s")
                return None
            await asyncio.sleep(wait)
        except BadRequest as exc:
            log.warning("Telegram refused a reply to chat %s: %s", chat_id, exc.message)
            await _failed(update, context, f"BadRequest: {exc.message}")
            return None
        except NetworkError as exc:  # includes TimedOut and 5xx answers
            if attempt == ATTEMPTS:
                log.warning("Could not deliver a reply to chat %s: %s", chat_id, exc)
                await _failed(update, context, f"{type(exc).__name__}: {exc}")
                return None
            await asyncio.sleep(0.5 * attempt)
        except TelegramError as exc:
            log.warning("Telegram error for chat %s: %s", chat_id, exc)
            await _failed(update, context, f"{type(exc).__name__}: {exc}")
            return None
    return None


async def _failed(update: Update, context: RahnumaContext, reason: str) -> None:
    if update.effective_user is not None and update.effective_chat and update.effective_chat.type == "private":
        await context.conversation.delivery_failed(person_of(update), reason)


async def edit_reply(query: CallbackQuery, reply: Reply) -> bool:
    """Replace the message whose button was pressed (e.g. a ticked checklist); False when it cannot be edited."""
    parts = message_parts(reply)
    if len(parts) != 1:
        return False
    try:
        await query.edit_message_text(parts[0][0], reply_markup=keyboard_of(reply.buttons))
    except BadRequest as exc:
        if "not modified" in exc.message.lower():  # the same state pressed twice: nothing to change
            return True
        log.info("Could not edit the pressed message: %s", exc.message)
        return False
    except TelegramError as exc:
        log.info("Could not edit the pressed message: %s", exc)
        return False
    return True


async def acknowledge(query: CallbackQuery, text: str | None = None) -> None:
    """Answer a button press (stops the client's spinner); an expired query is not an error."""
    try:
        await query.answer(text[:200] if text else None)
    except TelegramError as exc:
        log.info("Could not answer callback query: %s", exc)
