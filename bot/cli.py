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
        "demo-data": _demo_data, "codebook": _codebook,
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
