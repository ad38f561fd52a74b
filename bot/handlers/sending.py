"""Turning a core Reply into a Telegram message."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, Message, Update
from telegram.constants import MessageLimit, ParseMode
from telegram.error import TelegramError

from bot.core.types import Reply


def keyboard_of(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button.label, callback_data=button.data) for button in row] for row in reply.buttons]
    )


async def send_reply(update: Update, reply: Reply) -> Message | None:
    """Send as HTML with its buttons, to the chat the update came from."""
    chat = update.effective_chat
    if chat is None:
        return None
    return await chat.send_message(
        reply.text[: MessageLimit.MAX_TEXT_LENGTH],
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard_of(reply),
        link_preview_options=LinkPreviewOptions(is_disabled=True),
    )


async def edit_reply(update: Update, reply: Reply) -> bool:
    """Replace the message whose button was pressed (e.g. a ticked checklist); False when Telegram refuses."""
    query = update.callback_query
    if query is None:
        return False
    try:
        await query.edit_message_text(
            reply.text[: MessageLimit.MAX_TEXT_LENGTH],
            parse_mode=ParseMode.HTML,
            reply_markup=keyboard_of(reply),
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    except TelegramError:
        return False
    return True
