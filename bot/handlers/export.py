"""/export in a private chat: a researcher or coordinator gets the pseudonymised export as a zip document.

Who may export (researchers and coordinators: the staff filter of bot/handlers/coordinators.py) is decided where
the handler is registered in bot/app.py, not in the callback. Sending the file is the answer to the sender's own
command, so it goes through the reply path like any answer, not the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from telegram import Update
from telegram.error import TelegramError

from bot.handlers.context import RahnumaContext
from research.pseudonyms import SaltError
from research.share import TELEGRAM_FILE_LIMIT, make_zip
from storage.db import StorageError
from storage.research import Period

log = logging.getLogger(__name__)


async def send_export(update: Update, context: RahnumaContext) -> None:
    """/export: build the export in a thread, then send it as a zip (or say to use the CLI when it is too big)."""
    message = update.effective_message
    chat = update.effective_chat
    if message is None or chat is None:
        return
    settings = context.runtime.settings
    salt = settings.research_salt.get_secret_value() if settings.research_salt else None
    await message.reply_text("Preparing the pseudonymised export; this can take a minute…")
    with tempfile.TemporaryDirectory(prefix="rahnuma-export-") as folder:
        try:
            shared = await asyncio.to_thread(
                make_zip, settings.database_url, salt=salt, folder=Path(folder), period=Period(),
                library=context.runtime.library,
            )  # fmt: skip
        except SaltError as exc:
            await message.reply_text(f"Exports are not set up on the server: {exc}")
            return
        except (StorageError, OSError) as exc:
            log.warning("Export for chat %s failed: %s", chat.id, exc)
            await message.reply_text("The export failed (the database could not be read). Please try again later.")
            return
        if not shared.fits(TELEGRAM_FILE_LIMIT):
            await message.reply_text(
                f"The export is {shared.bytes / 1024 / 1024:.0f} MB, over Telegram's 50 MB limit for bots. Run "
                "<code>rahnuma export --format parquet --out DIR</code> on the server instead."
            )
            return
        caption = (
            f"Pseudonymised export: {shared.rows:,} rows, key {shared.key_id}. Read manifest.json and "
            "datapackage.json first (docs/CODEBOOK.md explains every column). Do not forward it."
        )
        try:
            with shared.path.open("rb") as document:
                await context.bot.send_document(chat.id, document, filename=shared.path.name, caption=caption)
        except TelegramError as exc:
            log.warning("Could not send the export to chat %s: %s", chat.id, exc)
            await message.reply_text("Telegram did not accept the file; use `rahnuma export` on the server.")
            return
    log.info("Export (%d rows, %d bytes, key %s) sent to chat %s", shared.rows, shared.bytes, shared.key_id, chat.id)
