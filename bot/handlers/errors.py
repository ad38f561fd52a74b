"""The last line: log the exception and tell the user kindly, in their language if we know it."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.error import TelegramError

from bot.handlers.context import RahnumaContext

log = logging.getLogger(__name__)


async def on_error(update: object, context: RahnumaContext) -> None:
    """Log every unhandled error; answer the user so they are never left without a reply."""
    log.error("Unhandled error while handling an update", exc_info=context.error)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    language = "ur" if update.effective_user and (update.effective_user.language_code or "").startswith("ur") else "en"
    try:
        await update.effective_chat.send_message(context.runtime.library.text("error", language))
    except (TelegramError, RuntimeError):
        log.exception("Could not send the error message either")
