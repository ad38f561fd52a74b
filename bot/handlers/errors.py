"""The last line: log the exception and tell the user kindly, in private chats only, in their language."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot.handlers.context import RahnumaContext, person_of

log = logging.getLogger(__name__)


async def on_error(update: object, context: RahnumaContext) -> None:
    """Log every unhandled error; answer the user so they are never left without a reply (never in groups)."""
    log.error("Unhandled error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None or update.effective_user is None:
        return
    if update.effective_chat.type != ChatType.PRIVATE:
        return
    try:
        language = person_of(update).hinted_language
        await update.effective_chat.send_message(context.runtime.library.text("error", language))
    except (TelegramError, RuntimeError):
        log.warning("Could not send the error message either")
