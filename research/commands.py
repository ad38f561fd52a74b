"""The research commands behind `rahnuma export | report | demo-data | codebook`: each opens its own database
connection (scripts get their own session), does one thing, and returns an exit code."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import time
from pathlib import Path

from content.library import load_library
from research.export import ExportError, Format, export
from research.pseudonyms import SaltError, check_salt
from research.schema import codebook_markdown
from research.tables import TABLES
from storage.db import Database, StorageError
from storage.research import Period


def export_command(
    database_url: str,
    *,
    salt: str | None,
    out: Path,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    fmt: Format = "csv",
) -> int:
    try:
        check_salt(salt)
    except SaltError as exc:
        print(exc, file=sys.stderr)
        return 2
    started = time.monotonic()

    async def go() -> int:
        db = Database.connect(database_url)
        try:
            result = await export(
                db,
                out=out,
                salt=salt,
                library=load_library(),
                period=Period(since, until),
                fmt=fmt,
                parallel=(os.cpu_count() or 1) > 1,
            )
        finally:
            await db.dispose()
        tables = result.manifest["tables"]
        rows = sum(int(t["rows"]) for t in tables.values())
        kanon = result.manifest["k_anonymity"] or {}
        print(
            f"Exported {rows:,} rows in {len(tables)} tables to {out} in {time.monotonic() - started:.1f} s "
            f"(key {result.manifest['pseudonym_key_id']}; k-anonymity: {kanon.get('users_generalised', 0)} of "
            f"{kanon.get('users', 0)} users generalised). See manifest.json and datapackage.json.",
            file=sys.stderr,
        )
        return 0

    try:
        return asyncio.run(go())
    except (ExportError, StorageError, OSError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1


def report_command(
    database_url: str, *, out: Path, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> int:
    from research.report import build_report

    started = time.monotonic()

    async def go() -> str:
        db = Database.connect(database_url)
        try:
            return await build_report(db, library=load_library(), period=Period(since, until))
        finally:
            await db.dispose()

    try:
        html = asyncio.run(go())
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except (StorageError, OSError) as exc:
        print(f"report failed: {exc}", file=sys.stderr)
        return 1
    print(f"Wrote {out} ({len(html.encode()) / 1024:.0f} KiB) in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def demo_command(
    database_url: str, *, users: int, seed: int, until: dt.datetime | None, weeks: int, force: bool
) -> int:
    from research.demo import DemoRefused, fill

    started = time.monotonic()

    async def go() -> int:
        db = Database.connect(database_url)
        try:
            summary = await fill(
                db, library=load_library(), users=users, seed=seed, until=until, weeks=weeks, force=force,
                progress=sys.stderr,
            )  # fmt: skip
        finally:
            await db.dispose()
        print(
            f"Added {summary.users:,} demo users, {summary.events:,} events, {summary.outbox:,} outbox rows in "
            f"{time.monotonic() - started:.1f} s",
            file=sys.stderr,
        )
        return 0

    try:
        return asyncio.run(go())
    except DemoRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    except (StorageError, OSError) as exc:
        print(f"demo-data failed: {exc}", file=sys.stderr)
        return 1


def codebook_command(path: Path, *, check: bool = False) -> int:
    text = codebook_markdown(TABLES)
    if check:
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            print(f"{path} is out of date: run `rahnuma codebook`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"Wrote {path}", file=sys.stderr)
    return 0
