"""Groups: never anything personal. Personal commands point to a private chat; questions are answered only when
the bot is addressed (mentioned, or replied to), and only with an article."""

from __future__ import annotations

import re

from telegram import MessageEntity, Update

from bot.handlers.context import RahnumaContext, person_of
from bot.handlers.private import command_name
from bot.handlers.sending import send_reply


async def personal_command(update: Update, context: RahnumaContext) -> None:
    """/privacy, /progress, /profile... in a group: "let's talk in private", with a link that opens the chat."""
    message = update.effective_message
    if message is None or not message.text or update.effective_user is None:
        return
    name, _ = command_name(message.text)
    await send_reply(update, context, context.conversation.private_only(person_of(update), name))


async def group_help(update: Update, context: RahnumaContext) -> None:
    if update.effective_user is None:
        return
    await send_reply(update, context, context.conversation.group_help(person_of(update)))


async def addressed_question(update: Update, context: RahnumaContext) -> None:
    """Text in a group: answered only when it mentions the bot or replies to one of its messages."""
    message = update.effective_message
    if message is None or not message.text or update.effective_user is None:
        return
    username = (context.bot.username or "").lower()
    mentioned = any(
        text.lstrip("@").lower() == username for text in message.parse_entities([MessageEntity.MENTION]).values()
    )
    replied = message.reply_to_message is not None and (
        message.reply_to_message.from_user is not None and message.reply_to_message.from_user.id == context.bot.id
    )
    if not (mentioned or replied):
        return
    text = re.sub(rf"@{re.escape(username)}\b", " ", message.text, flags=re.IGNORECASE) if username else message.text
    await send_reply(update, context, await context.conversation.group_question(person_of(update), text))
