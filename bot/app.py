"""The one wiring module: builds the PTB Application, registers every handler with its filters, runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    JobQueue,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.request import HTTPXRequest

from bot.core.commands import COMMANDS, user_commands
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.pacing import Pacer
from bot.delivery.sender import BULK_CONNECTIONS, TelegramSender
from bot.handlers import coordinators, groups, membership, private, webhook
from bot.handlers.context import BotData, RahnumaApplication, RahnumaContext
from bot.handlers.errors import on_error
from bot.runtime import open_runtime
from bot.settings import Settings
from storage.db import StorageError

log = logging.getLogger(__name__)

RECENT_UPDATES = 10_000  # update ids remembered to drop a replayed update


def file_url_for(api_url: str) -> str:
    """Telegram serves files under /file/bot<token>; an emulator mirrors that next to its /bot path."""
    base = api_url.rstrip("/")
    return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base + "/file/bot"


def build_application(
    settings: Settings, *, webhook_mode: bool = False, with_dispatcher: bool = True
) -> RahnumaApplication:
    if settings.telegram_bot_token is None:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    api_url = str(settings.telegram_api_url).rstrip("/")
    builder = (
        Application.builder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(api_url)
        .base_file_url(file_url_for(api_url))
        .defaults(Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .context_types(ContextTypes(context=RahnumaContext, bot_data=BotData))
        # No retries in the limiter: its retry sleeps retry_after (an hour, for a long flood wait) while holding back
        # every request of the process. bot/handlers/sending.py decides per reply: wait out a short one, record a
        # long one as send_failed.
        .rate_limiter(AIORateLimiter(max_retries=0))
        .concurrent_updates(True)
        .post_init(_open_runtime_factory(settings, with_dispatcher=with_dispatcher))
        .post_stop(_release_claims)
        .post_shutdown(_close_runtime)
    )
    if webhook_mode:
        builder = builder.updater(None)
    application: RahnumaApplication = builder.build()
    register_handlers(application, coordinator_chat_id=settings.coordinator_chat_id)
    return application


def register_handlers(application: RahnumaApplication, *, coordinator_chat_id: int | None = None) -> None:
    """Handlers by audience, each with its filters. Order matters inside a group: the first match wins."""
    private_chat = filters.ChatType.PRIVATE
    group_chat = filters.ChatType.GROUPS
    fresh = ~filters.UpdateType.EDITED
    # the coordinators' group is handled in group -1 only; the ordinary group handlers never answer there
    ordinary_group = group_chat & ~filters.Chat(chat_id=coordinator_chat_id) if coordinator_chat_id else group_chat

    # group -10: drop an update seen already (a replayed webhook delivery must not untick a milestone)
    application.add_handler(TypeHandler(Update, _drop_replayed_update_factory()), group=-10)

    # group -1: coordinators (issue 10). Every callback here ends the update (ApplicationHandlerStop), so group 0
    # never sees a coordinator command or anything said in the coordinators' group.
    register_coordinator_handlers(application, coordinator_chat_id=coordinator_chat_id)

    # group 0: private chats
    personal = [command.name for command in COMMANDS if command.audience == "everyone"]
    application.add_handler(CommandHandler(personal, private.run_command, filters=private_chat & fresh))
    application.add_handler(MessageHandler(filters.TEXT & private_chat & fresh, private.answer_text))
    application.add_handler(
        MessageHandler(~filters.TEXT & ~filters.StatusUpdate.ALL & private_chat & fresh, private.answer_non_text)
    )
    # every button, known or not, so no press is left unanswered
    application.add_handler(CallbackQueryHandler(private.press_button))

    # groups: nothing personal
    application.add_handler(CommandHandler("help", groups.group_help, filters=ordinary_group & fresh))
    personal_in_groups = [name for name in personal if name != "help"]
    application.add_handler(CommandHandler(personal_in_groups, groups.personal_command, filters=ordinary_group & fresh))
    application.add_handler(
        MessageHandler(filters.TEXT & ~filters.COMMAND & ordinary_group & fresh, groups.addressed_question)
    )

    # who blocked the bot
    application.add_handler(ChatMemberHandler(membership.track_private_chat, ChatMemberHandler.MY_CHAT_MEMBER))
    application.add_error_handler(on_error)


def register_coordinator_handlers(application: RahnumaApplication, *, coordinator_chat_id: int | None) -> None:
    """Coordinator commands behind user filters (kept in step with role grants), the polite refusal for everyone
    else, and the coordinators' group: replies relayed to users, /canned, the Close button. Group -1."""
    fresh = ~filters.UpdateType.EDITED
    private_chat = filters.ChatType.PRIVATE
    coordinator_filter, staff_filter = coordinators.role_filters()
    application.bot_data.coordinator_filter = coordinator_filter
    application.bot_data.staff_filter = staff_filter
    staff_names = [name for name in coordinators.names("staff") if name != "export"]
    coordinator_names = coordinators.names("coordinator")
    # researchers and coordinators: /export sends a zip document (the research package), not a core reply
    application.add_handler(
        CommandHandler("export", coordinators.export_for_staff, filters=private_chat & fresh & staff_filter), group=-1
    )
    application.add_handler(
        CommandHandler(
            coordinator_names, coordinators.run_staff_command, filters=private_chat & fresh & coordinator_filter
        ),
        group=-1,
    )
    application.add_handler(
        CommandHandler(staff_names, coordinators.run_staff_command, filters=private_chat & fresh & staff_filter),
        group=-1,
    )
    if coordinator_chat_id is not None:
        coordinators_group = filters.Chat(chat_id=coordinator_chat_id)
        application.add_handler(
            CommandHandler("canned", coordinators.canned, filters=coordinators_group & fresh), group=-1
        )
        application.add_handler(
            MessageHandler(
                coordinators_group & filters.REPLY & filters.TEXT & ~filters.COMMAND & fresh, coordinators.relay_reply
            ),
            group=-1,
        )
        # the Close button under a hand-off; the decisions under a buddy report (pr) and a win story (wa)
        group_buttons = CallbackQueryHandler(coordinators.press_in_group, pattern=r"^(ho:close|pr|wa):")
        application.add_handler(group_buttons, group=-1)
        application.add_handler(MessageHandler(coordinators_group, coordinators.stay_quiet), group=-1)
    # anyone else who types a coordinator command (last: the filtered handlers above match first)
    application.add_handler(
        CommandHandler([*coordinator_names, *staff_names, "export", "canned"], coordinators.refuse, filters=fresh),
        group=-1,
    )


def _drop_replayed_update_factory() -> Callable[[Update, RahnumaContext], Coroutine[Any, Any, None]]:
    seen: OrderedDict[int, None] = OrderedDict()

    async def drop_replayed_update(update: Update, context: RahnumaContext) -> None:
        if update.update_id in seen:
            log.info("Dropping update %s: already handled", update.update_id)
            raise ApplicationHandlerStop
        seen[update.update_id] = None
        if len(seen) > RECENT_UPDATES:
            seen.popitem(last=False)

    return drop_replayed_update


def command_menus(library_text) -> list[tuple[list[BotCommand], object, str | None]]:  # type: ignore[no-untyped-def]
    """(commands, scope, language) for setMyCommands: private chats in English and Urdu, groups only /help."""
    menus: list[tuple[list[BotCommand], object, str | None]] = []
    for language in ("en", "ur"):
        commands = [
            BotCommand(command.name, library_text(f"command_{command.name}", language))
            for command in user_commands()
            if command.menu
        ]
        menus.append((commands, BotCommandScopeAllPrivateChats(), None if language == "en" else language))
        menus.append(
            (
                [BotCommand("help", library_text("command_help", language))],
                BotCommandScopeAllGroupChats(),
                None if language == "en" else language,
            )
        )
    return menus


def bulk_bot(settings: Settings) -> ExtBot[None]:
    """A second bot object for the outbox: its own connection pool and no AIORateLimiter, so a flood limit hit by a
    broadcast (RetryAfter) pauses only bulk sending, never the live replies of the application's bot."""
    assert settings.telegram_bot_token is not None
    api_url = str(settings.telegram_api_url).rstrip("/")
    return ExtBot(
        settings.telegram_bot_token.get_secret_value(),
        base_url=api_url,
        base_file_url=file_url_for(api_url),
        defaults=Defaults(parse_mode=ParseMode.HTML, link_preview_options=LinkPreviewOptions(is_disabled=True)),
        request=HTTPXRequest(connection_pool_size=BULK_CONNECTIONS, read_timeout=15, write_timeout=15),
    )


def _open_runtime_factory(settings: Settings, *, with_dispatcher: bool):  # type: ignore[no-untyped-def]
    async def open_runtime_for(application: RahnumaApplication) -> None:
        runtime = await open_runtime(settings)
        application.bot_data.runtime = runtime
        # the lexical index is built on first use; build it now, so the first user does not wait for it
        await asyncio.to_thread(runtime.conversation.understander.lexical.warm)
        runtime.conversation.bot_username = application.bot.username
        if with_dispatcher:
            await _start_dispatcher(application, settings)
        problem = await runtime.rasa_status()
        if problem:
            log.warning(problem)
        for commands, scope, language in command_menus(runtime.library.text):
            try:
                await application.bot.set_my_commands(commands, scope=scope, language_code=language)  # type: ignore[arg-type]
            except TelegramError as exc:  # not essential: the bot works without a command menu
                log.warning("setMyCommands failed, continuing without that menu: %s", exc)
        await _start_coordination(application)
        log.info("Rahnuma is running as @%s", application.bot.username)

    return open_runtime_for


async def _start_dispatcher(application: RahnumaApplication, settings: Settings) -> None:
    """The outbox dispatcher as ONE repeating job; the due times live in SQL, not in the job queue."""
    runtime = application.bot_data.runtime
    assert runtime is not None and application.job_queue is not None
    bot = bulk_bot(settings)
    await bot.initialize()
    pacer = Pacer(settings.send_rate)
    dispatcher = runtime.dispatcher(TelegramSender(bot, pacer))
    application.bot_data.pacer = pacer
    application.bot_data.dispatcher = dispatcher
    application.bot_data.bulk_bot = bot

    schedule_dispatcher(application.job_queue, dispatcher, interval=settings.dispatch_interval)
    log.info("Outbox dispatcher %s: %.0f messages/s at most", dispatcher.worker, settings.send_rate)


def schedule_dispatcher(job_queue: JobQueue[Any], dispatcher: Dispatcher, *, interval: float) -> None:
    """The dispatcher's repeating job (bench/broadcast.py schedules it the same way, to measure what runs)."""

    async def dispatch(context: Any) -> None:
        await dispatcher.tick(budget=interval)

    job_queue.run_repeating(
        dispatch,
        interval=interval,
        first=interval,
        name="outbox-dispatcher",
        # A late tick runs once (coalesced), however late. A tick returns at its deadline without waiting for its
        # last batches (the next tick claims beside them); two may still overlap when a claim runs past the second,
        # so APScheduler never skips one and leaves the sender idle. Overlapping ticks share one Pacer (the rate
        # stays the rate) and claims are leases (no row is sent twice).
        job_kwargs={"misfire_grace_time": None, "coalesce": True, "max_instances": 2},
    )


async def _start_coordination(application: RahnumaApplication) -> None:
    """Coordinators (issue 10): load role grants into the handlers' user filters, set their menus, and keep both
    in step with `rahnuma admin` changes while the bot runs."""
    runtime = application.bot_data.runtime
    assert runtime is not None
    runtime.coordination.cohorts.bot_username = application.bot.username
    try:
        await runtime.coordination.roles.refresh()
    except StorageError as exc:
        log.warning("Could not load role grants (%s); coordinators from RAHNUMA_COORDINATORS only for now", exc)
    await coordinators.sync_role_filters(application)
    if application.job_queue is not None:
        application.job_queue.run_repeating(
            coordinators.sync_roles_job,
            interval=coordinators.ROLE_SYNC_SECONDS,
            first=coordinators.ROLE_SYNC_SECONDS,
            name="role-sync",
            job_kwargs={"coalesce": True, "max_instances": 1},
        )


async def _release_claims(application: RahnumaApplication) -> None:
    """Stopping: rows this process claimed but had not started sending go back to the queue at once."""
    if application.bot_data.dispatcher is not None:
        released = await application.bot_data.dispatcher.release()
        if released:
            log.info("Released %d claimed outbox rows", released)


async def _close_runtime(application: RahnumaApplication) -> None:
    if application.bot_data.bulk_bot is not None:
        await application.bot_data.bulk_bot.shutdown()
        application.bot_data.bulk_bot = None
    runtime = application.bot_data.runtime
    if runtime is not None:
        await runtime.aclose()
        application.bot_data.runtime = None


def run_telegram(settings: Settings, *, set_webhook: bool = True, with_dispatcher: bool = True) -> None:
    """Polling by default; our own webhook server when RAHNUMA_WEBHOOK_URL is set."""
    if settings.webhook_url is None:
        application = build_application(settings, with_dispatcher=with_dispatcher)
        application.run_polling(allowed_updates=Update.ALL_TYPES)
        return
    asyncio.run(_run_webhook(settings, set_webhook=set_webhook, with_dispatcher=with_dispatcher))


async def _run_webhook(settings: Settings, *, set_webhook: bool, with_dispatcher: bool) -> None:
    assert settings.webhook_url is not None and settings.webhook_secret is not None
    application = build_application(settings, webhook_mode=True, with_dispatcher=with_dispatcher)
    secret = settings.webhook_secret.get_secret_value()
    url = str(settings.webhook_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await application.initialize()
    if application.post_init:
        await application.post_init(application)
    try:
        await application.start()
        if set_webhook:
            await application.bot.set_webhook(url, secret_token=secret, allowed_updates=Update.ALL_TYPES)
        await webhook.serve(
            application,
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            path=urlsplit(url).path,
            secret=secret,
            stop=stop,
        )
    finally:
        with contextlib.suppress(RuntimeError):
            await application.stop()
        await _release_claims(application)
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)
