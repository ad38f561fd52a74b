"""`rahnuma`: one command for running, chatting, asking, migrating, training the NLU and checking content."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bot.logs import configure_logging
from bot.settings import PROJECT_ROOT, Settings, SettingsError, load_settings

NO_TOKEN_NOTICE = (
    "TELEGRAM_BOT_TOKEN is not set, so Rahnuma runs as a chat in this terminal (set it in .env for Telegram)."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rahnuma", description="Rahnuma, a Telegram mentor for online freelancers.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run", help="run the Telegram bot (polling, or a webhook when RAHNUMA_WEBHOOK_URL is set)"
    )
    run.add_argument(
        "--no-dispatcher",
        action="store_true",
        help="do not run the outbox dispatcher in this process (extra webhook workers)",
    )
    run.add_argument(
        "--no-set-webhook",
        action="store_true",
        help="do not call setWebhook at start (extra webhook workers; one worker or a deploy step sets it)",
    )
    chat = commands.add_parser("chat", help="talk to Rahnuma in this terminal")
    chat.add_argument("--user", help="a stable user id, so the conversation is remembered")
    ask = commands.add_parser("ask", help="send one message and print the reply")
    ask.add_argument("--json", action="store_true", help="print one JSON object (intent, confidence, article, reply)")
    ask.add_argument("--user", help="a persistent user id (otherwise a new throwaway user)")
    ask.add_argument("--language", choices=["en", "ur"], help="reply language for this user")
    ask.add_argument("text", nargs="+", help="the message")
    start = commands.add_parser("start", help="what `make run` does: serve Rasa, wait for it, then run or chat")
    start.add_argument("--chat", action="store_true", help="chat in the terminal even when a token is set")

    dispatch = commands.add_parser("dispatch", help="the outbox: plan what is due and send it")
    dispatch.add_argument("--once", action="store_true", required=True, help="one planning + sending pass, then exit")
    dispatch.add_argument("--at", type=_aware_time, help="decide as if it were this time (ISO-8601); sends now")
    nudges = commands.add_parser("nudges", help="nudge planning").add_subparsers(dest="nudges_command", required=True)
    preview = nudges.add_parser("preview", help="what would be enqueued at a time and why; sends nothing")
    preview.add_argument("--at", type=_aware_time, help="the time (ISO-8601; default now)")
    preview.add_argument("--user", help="only this Telegram user id")
    outbox = commands.add_parser("outbox", help="the outbox").add_subparsers(dest="outbox_command", required=True)
    outbox.add_parser("stats", help="counts by kind and status, oldest pending, send rate")

    db = commands.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True)
    upgrade = db.add_parser("upgrade", help="apply migrations (alembic upgrade)")
    upgrade.add_argument("revision", nargs="?", default="head")

    nlu = commands.add_parser("nlu", help="the Rasa NLU model").add_subparsers(dest="nlu_command", required=True)
    nlu.add_parser("build", help="generate nlu/data/faq.generated.yml and nlu/domain.yml from content/")
    train = nlu.add_parser("train", help="build, then train unless config and data are unchanged")
    train.add_argument("--force", action="store_true", help="train even when the model is current")
    nlu.add_parser("serve", help="run the Rasa server in the foreground at RASA_URL")
    evaluate = nlu.add_parser("eval", help="accuracy on the held-out nlu/tests/test_nlu.yml")
    evaluate.add_argument("--cross-validation", action="store_true", help="also run Rasa's 5-fold cross-validation")
    evaluate.add_argument("--json", action="store_true", help="print the figures as JSON")

    # ---- coordinators (issue 10) ----
    admin = commands.add_parser("admin", help="coordinator and researcher roles (Telegram user ids)")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    for verb, what in (("add", "give a role"), ("remove", "take a role away")):
        change = admin_commands.add_parser(verb, help=what)
        change.add_argument("--role", choices=["coordinator", "researcher"], required=True)
        change.add_argument("user_id", type=int, help="the person's Telegram user id")
    listing = admin_commands.add_parser("list", help="who has which role")
    listing.add_argument("--role", choices=["coordinator", "researcher"])
    broadcast = commands.add_parser("broadcast", help="broadcasts to trainees (only enqueues; the bot delivers)")
    broadcast_commands = broadcast.add_subparsers(dest="broadcast_command", required=True)
    create = broadcast_commands.add_parser("create", help="count the segment, confirm, enqueue")
    create.add_argument("--text", help="the message (plain text, English or for everyone)")
    create.add_argument("--text-ur", help="the Urdu version, for users who chose Urdu")
    create.add_argument("--tip", help="a tip id from content/tips.yml (its English and Urdu texts)")
    create.add_argument("--language", choices=["en", "ur"], help="only users with this language")
    create.add_argument("--platform", help="only users with this platform in their profile")
    create.add_argument("--reached", help="only users who reached this milestone")
    create.add_argument("--not-reached", help="only users who have not reached this milestone")
    create.add_argument("--inactive-days", type=int, help="only users silent for at least N days")
    create.add_argument("--city", help="only users in this city")
    create.add_argument("--joined-from", type=dt.date.fromisoformat, help="only users who joined on or after")
    create.add_argument("--joined-to", type=dt.date.fromisoformat, help="only users who joined on or before")
    create.add_argument("--cohort", help="only members of this cohort")
    create.add_argument("--at", help="when (ISO-8601; without an offset in RAHNUMA_TIMEZONE); default now")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    broadcast_commands.add_parser("list", help="recent broadcasts with delivery counts")
    show = broadcast_commands.add_parser("show", help="the delivery report of one broadcast")
    show.add_argument("id", type=int)
    show.add_argument("--wait", action="store_true", help="show a progress bar until delivery ends")
    cancel = broadcast_commands.add_parser("cancel", help="stop what has not gone yet")
    cancel.add_argument("id", type=int)

    content = commands.add_parser("content", help="curated content").add_subparsers(
        dest="content_command", required=True
    )
    content.add_parser("check", help="validate every article, milestone and UI text")

    export = commands.add_parser("export", help="pseudonymised research export with a datapackage.json and manifest")
    _period_arguments(export)
    export.add_argument("--format", choices=["csv", "parquet"], default="csv", help="file format (default csv)")
    export.add_argument("--out", type=Path, required=True, help="the folder to write into (created if missing)")
    report = commands.add_parser("report", help="one self-contained HTML report with plots, for researchers")
    _period_arguments(report)
    report.add_argument("--out", type=Path, required=True, help="the HTML file to write, e.g. report.html")
    demo = commands.add_parser(
        "demo-data", help="fill the database with synthetic users and events (never in production)"
    )
    demo.add_argument("--users", type=int, required=True, help="how many synthetic people")
    demo.add_argument("--seed", type=int, default=11, help="random seed (the same seed gives the same data)")
    demo.add_argument("--until", type=_aware_time, help="the end of the simulated period (default now)")
    demo.add_argument("--weeks", type=int, default=16, help="how many weeks people keep joining (default 16)")
    demo.add_argument("--force", action="store_true", help="add demo data even though real users exist")
    codebook = commands.add_parser("codebook", help="write docs/CODEBOOK.md from the export schema")
    codebook.add_argument("--check", action="store_true", help="only check that docs/CODEBOOK.md is current")
    return parser


def _period_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=_period_start, help="from this date or time (UTC unless an offset is given)")
    parser.add_argument(
        "--until", type=_period_end, help="up to this date (inclusive: the whole day) or time (exclusive)"
    )


def _period_start(text: str) -> dt.datetime:
    return _aware_time(text)


def _period_end(text: str) -> dt.datetime:
    """A bare date means the end of that day; a time is used as given."""
    moment = _aware_time(text)
    return moment + dt.timedelta(days=1) if len(text.strip()) == 10 else moment


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.secrets())
    handler = {
        "run": _run, "chat": _chat, "ask": _ask, "start": _start, "db": _db, "nlu": _nlu, "content": _content,
        "dispatch": _dispatch, "nudges": _nudges, "outbox": _outbox, "export": _export, "report": _report,
        "demo-data": _demo_data, "codebook": _codebook, "admin": _admin, "broadcast": _broadcast,
    }[args.command]  # fmt: skip
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except DatabaseUnavailable as exc:
        print(f"DATABASE_URL: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if settings.telegram_bot_token is None:
        print(
            "TELEGRAM_BOT_TOKEN is not set: the Telegram bot needs it. Use `rahnuma chat` to talk in the terminal.",
            file=sys.stderr,
        )
        return 2
    from bot.app import run_telegram

    _migrate_quietly(settings)
    run_telegram(
        settings,
        set_webhook=not getattr(args, "no_set_webhook", False),
        with_dispatcher=not getattr(args, "no_dispatcher", False),
    )
    return 0


def _aware_time(text: str) -> dt.datetime:
    """An ISO-8601 time; without an offset it is read as UTC."""
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r} (e.g. 2026-12-04T11:00+05:00)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.clock import FrozenClock, SystemClock
    from bot.delivery.operations import dispatch_once

    if settings.telegram_bot_token is None:
        print("TELEGRAM_BOT_TOKEN is not set: dispatching sends through Telegram and needs it.", file=sys.stderr)
        return 2
    clock = FrozenClock(args.at) if args.at else SystemClock()
    return _with_runtime(
        settings, lambda runtime: dispatch_once(runtime, clock=clock, pinned=args.at is not None), clock=clock
    )


def _nudges(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.clock import SystemClock
    from bot.delivery.operations import preview_nudges

    at = args.at or SystemClock().now()
    return _with_runtime(settings, lambda runtime: preview_nudges(runtime, at=at, telegram_id=args.user))


def _outbox(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.clock import SystemClock
    from bot.delivery.operations import outbox_stats

    return _with_runtime(settings, lambda runtime: outbox_stats(runtime, now=SystemClock().now()))


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from bot.admin import admin

    user_id = getattr(args, "user_id", None)
    return _with_runtime(
        settings,
        lambda runtime: admin(runtime, action=args.admin_command, role=args.role, user_id=user_id, out=sys.stdout),
    )


def _broadcast(args: argparse.Namespace, settings: Settings) -> int:
    from bot import admin

    if args.broadcast_command == "list":
        return _with_runtime(settings, lambda runtime: admin.list_broadcasts(runtime, out=sys.stdout))
    if args.broadcast_command == "show":
        return _with_runtime(
            settings,
            lambda runtime: admin.show_broadcast(runtime, broadcast_id=args.id, wait=args.wait, out=sys.stdout),
        )
    if args.broadcast_command == "cancel":
        return _with_runtime(
            settings, lambda runtime: admin.cancel_broadcast(runtime, broadcast_id=args.id, out=sys.stdout)
        )
    from bot.core.broadcasts import Draft
    from storage.broadcasts import Segment

    if not (args.text or args.text_ur or args.tip):
        print("rahnuma broadcast create needs --text, --text-ur or --tip", file=sys.stderr)
        return 2
    try:
        send_at = admin.parse_when(args.at, settings.timezone) if args.at else None
    except ValueError:
        print(f"--at: not an ISO-8601 time: {args.at!r} (e.g. 2026-12-01T10:00)", file=sys.stderr)
        return 2
    segment = Segment(
        language=args.language,
        platform=args.platform,
        reached=args.reached,
        not_reached=args.not_reached,
        inactive_days=args.inactive_days,
        city=args.city,
        joined_from=args.joined_from.isoformat() if args.joined_from else None,
        joined_to=args.joined_to.isoformat() if args.joined_to else None,
        cohort=args.cohort,
    )
    draft = Draft(text_en=args.text, text_ur=args.text_ur, tip_id=args.tip, segment=segment, send_at=send_at)
    return _with_runtime(
        settings, lambda runtime: admin.create_broadcast(runtime, draft=draft, yes=args.yes, out=sys.stdout)
    )


class DatabaseUnavailable(RuntimeError):
    """The database at DATABASE_URL cannot be reached or migrated; the message says what failed, in one line."""


def _migrate_quietly(settings: Settings) -> None:
    """Bring the database to the latest schema (idempotent), so `ask`, `chat` and `run` work on a fresh clone."""
    from sqlalchemy.exc import SQLAlchemyError

    from storage.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable(
            f"cannot reach or migrate {_redacted(settings.database_url)}: {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    return f"{type(original).__name__}: {original}".splitlines()[0][:200]


def _with_runtime(settings: Settings, body: Callable[[Any], Coroutine[Any, Any, int]], *, clock: Any = None) -> int:
    from bot.runtime import open_runtime

    _migrate_quietly(settings)

    async def go() -> int:
        runtime = await open_runtime(settings, clock=clock)
        try:
            return await body(runtime)
        finally:
            await runtime.aclose()

    return asyncio.run(go())


def _chat(args: argparse.Namespace, settings: Settings, notice: str | None = None) -> int:
    from bot.terminal import chat

    async def body(runtime: Any) -> int:
        await chat(runtime, user=getattr(args, "user", None), notice=notice)
        return 0

    return _with_runtime(settings, body)


def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from bot.terminal import ask

    logging.getLogger("bot").setLevel(logging.ERROR)
    logging.getLogger("nlu").setLevel(logging.ERROR)
    text = " ".join(args.text)
    return _with_runtime(
        settings,
        lambda runtime: ask(runtime, text, user=args.user, as_json=args.json, language=args.language),
    )


def _start(args: argparse.Namespace, settings: Settings) -> int:
    """Serve Rasa in the background (unless one already answers), wait until healthy, run the bot, stop Rasa.

    If Rasa cannot start, say why and run anyway: answers then come from the lexical fallback.
    """
    from nlu import rasa_process

    url = str(settings.rasa_url)
    token = _rasa_token(settings)
    process = None
    try:
        if rasa_process.is_healthy(url, token=token):
            print(f"Using the Rasa server already running at {url}", file=sys.stderr)
        else:
            log_file = PROJECT_ROOT / "data" / "rasa.log"
            print(f"Starting Rasa at {url} (log: {log_file}); this takes about 20 seconds...", file=sys.stderr)
            process = rasa_process.start_background(settings.rasa_executable, url, token=token, log_file=log_file)
            rasa_process.wait_until_healthy(url, token=token, process=process)
            print("Rasa is ready.", file=sys.stderr)
    except rasa_process.RasaSetupError as exc:
        print(f"Rasa could not start: {exc}. Answering through the lexical fallback.", file=sys.stderr)
    try:
        if settings.telegram_bot_token is None or args.chat:
            return _chat(args, settings, notice=None if args.chat else NO_TOKEN_NOTICE)
        return _run(args, settings)
    finally:
        if process is not None:
            rasa_process.stop(process)


def _db(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from storage.migrate import upgrade

    try:
        upgrade(settings.database_url, args.revision)
    except (SQLAlchemyError, OSError) as exc:
        raise DatabaseUnavailable(f"cannot migrate {_redacted(settings.database_url)}: {_one_line(exc)}") from None
    print(f"Database is at revision {args.revision}: {_redacted(settings.database_url)}", file=sys.stderr)
    return 0


def _rasa_token(settings: Settings) -> str | None:
    return settings.rasa_token.get_secret_value() if settings.rasa_token else None


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _nlu(args: argparse.Namespace, settings: Settings) -> int:
    from content.library import load_library
    from nlu import rasa_process
    from nlu.build import build

    if args.nlu_command in ("build", "train"):
        changed = build(load_library())
        for path in changed:
            print(f"Generated {path.relative_to(PROJECT_ROOT)}", file=sys.stderr)
        if args.nlu_command == "build":
            return 0
        try:
            trained = rasa_process.train(settings.rasa_executable, force=args.force)
        except rasa_process.RasaSetupError as exc:
            print(exc, file=sys.stderr)
            return 1
        if not trained:
            print(
                "The NLU model is up to date (config and training data unchanged); not retraining.",
                file=sys.stderr,
            )
        return 0
    if args.nlu_command == "serve":
        import os

        command = rasa_process.serve_command(settings.rasa_executable, str(settings.rasa_url))
        if not Path(command[0]).exists():
            print(f"Rasa is not installed at {command[0]}; run `make install`.", file=sys.stderr)
            return 1
        os.execve(command[0], command, rasa_process.serve_env(_rasa_token(settings)))
    from bot.evaluation import run_evaluation

    return run_evaluation(settings, cross_validation=args.cross_validation, as_json=args.json)


def _content(args: argparse.Namespace, settings: Settings) -> int:
    from content.library import ContentError, check_library, load_library

    try:
        library = load_library()
    except ContentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = check_library(library)
    from content.coordinators import check_coordinator_content, load_coordinator_content

    report.errors.extend(check_coordinator_content(load_coordinator_content(), articles=set(library.articles)))
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    print(
        f"{len(library.articles)} articles, {len(library.milestones)} milestones, {len(library.tips)} tips, "
        f"{len(library.nudges.rules)} nudge rules: "
        f"{len(report.errors)} errors, {len(report.warnings)} warnings"
    )
    return 0 if report.ok else 1


def _salt(settings: Settings) -> str | None:
    return settings.research_salt.get_secret_value() if settings.research_salt else None


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from research import commands as research
    from research.pseudonyms import SaltError, check_salt

    try:
        check_salt(_salt(settings))  # before touching the database
    except SaltError as exc:
        print(exc, file=sys.stderr)
        return 2
    _migrate_quietly(settings)
    return research.export_command(
        settings.database_url, salt=_salt(settings), out=args.out, since=args.since, until=args.until, fmt=args.format
    )


def _report(args: argparse.Namespace, settings: Settings) -> int:
    from research import commands as research

    _migrate_quietly(settings)
    return research.report_command(settings.database_url, out=args.out, since=args.since, until=args.until)


def _demo_data(args: argparse.Namespace, settings: Settings) -> int:
    from research import commands as research

    _migrate_quietly(settings)
    return research.demo_command(
        settings.database_url, users=args.users, seed=args.seed, until=args.until, weeks=args.weeks, force=args.force
    )


def _codebook(args: argparse.Namespace, settings: Settings) -> int:
    from research import commands as research

    return research.codebook_command(PROJECT_ROOT / "docs" / "CODEBOOK.md", check=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
