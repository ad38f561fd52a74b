"""The one wiring module: builds the PTB Application, registers every handler, opens and closes the runtime."""

from __future__ import annotations

import logging
import secrets
from urllib.parse import urlsplit

from telegram import BotCommand, Update
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.handlers import conversation
from bot.handlers.context import BotData, RahnumaApplication, RahnumaContext
from bot.handlers.errors import on_error
from bot.runtime import open_runtime
from bot.settings import Settings

log = logging.getLogger(__name__)

USER_COMMANDS = [
    BotCommand("start", "Welcome and language / خوش آمدید"),
    BotCommand("help", "What I can do / مدد"),
    BotCommand("language", "English / اردو"),
    BotCommand("progress", "My checklist / میری پیش رفت"),
    BotCommand("profile", "My profile / پروفائل"),
    BotCommand("privacy", "What is stored / رازداری"),
    BotCommand("delete_me", "Erase my data / میرا ڈیٹا مٹائیں"),
]


def file_url_for(api_url: str) -> str:
    """Telegram serves files under /file/bot<token>; an emulator mirrors that next to its /bot path."""
    base = api_url.rstrip("/")
    return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"


def build_application(settings: Settings) -> RahnumaApplication:
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    api_url = str(settings.telegram_api_url).rstrip("/")
    application: RahnumaApplication = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(api_url)
        .base_file_url(file_url_for(api_url))
        .context_types(ContextTypes(context=RahnumaContext, bot_data=BotData))
        .rate_limiter(AIORateLimiter(max_retries=2))
        .concurrent_updates(True)
        .post_init(_open_runtime_factory(settings))
        .post_shutdown(_close_runtime)
        .build()
    )
    register_handlers(application)
    return application


def register_handlers(application: RahnumaApplication) -> None:
    """Group 0 only: the first matching handler wins, so commands and buttons come before free text."""
    application.add_handler(CommandHandler(list(conversation.COMMANDS), conversation.run_command))
    for prefix in ("lang", "fb", "art", "ms", "pf", "consent", "del"):
        application.add_handler(CallbackQueryHandler(conversation.press_button, pattern=rf"^{prefix}:"))
    # Unknown commands are read as text: "/withdraw fiverr" still deserves an answer.
    application.add_handler(MessageHandler(filters.TEXT & ~filters.UpdateType.EDITED, conversation.answer_text))
    application.add_handler(
        MessageHandler(
            ~filters.TEXT & ~filters.StatusUpdate.ALL & filters.ChatType.PRIVATE, conversation.answer_non_text
        )
    )
    application.add_error_handler(on_error)


def _open_runtime_factory(settings: Settings):  # type: ignore[no-untyped-def]
    async def open_runtime_for(application: RahnumaApplication) -> None:
        runtime = await open_runtime(settings)
        application.bot_data.runtime = runtime
        problem = await runtime.rasa_status()
        if problem:
            log.warning(problem)
        try:
            await application.bot.set_my_commands(USER_COMMANDS)
        except TelegramError as exc:  # not essential: the bot works without a command menu
            log.warning("setMyCommands failed, continuing without a command menu: %s", exc)
        log.info("Rahnuma is running as @%s", application.bot.username)

    return open_runtime_for


async def _close_runtime(application: RahnumaApplication) -> None:
    runtime = application.bot_data.runtime
    if runtime is not None:
        await runtime.aclose()
        application.bot_data.runtime = None


def run_telegram(settings: Settings) -> None:
    """Polling by default; a webhook with a secret token when RAHNUMA_WEBHOOK_URL is set."""
    application = build_application(settings)
    if settings.webhook_url is None:
        application.run_polling(allowed_updates=Update.ALL_TYPES)
        return
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else secrets.token_urlsafe(32)
    url = str(settings.webhook_url)
    application.run_webhook(
        listen=settings.webhook_listen,
        port=settings.webhook_port,
        url_path=urlsplit(url).path.lstrip("/"),
        webhook_url=url,
        secret_token=secret,
        allowed_updates=Update.ALL_TYPES,
    )
