"""What every benchmark shares: percentiles, a fresh database to measure on, and a time-ordered copy of one."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import create_engine


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..1); NaN for no samples, so an empty run never reads as 0 ms."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


async def fresh_database(url: str | None, tag: str) -> str:
    """A new SQLite file when `url` is None; else the PostgreSQL database at `url` with its public schema dropped."""
    if url is None:
        return f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / f'{tag}.db'}"
    engine = create_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()
    return url


def time_ordered_copy(url: str) -> str:
    """A copy of the SQLite database at `url` with the event table rewritten in time order (new ids in the order of
    `at`), made once next to it as `<name>-ordered.db`: demo data writes people in batches, the bot appends events
    as they happen, and the export and report scan by time, so this is the layout they meet in production."""
    source = Path(make_url(url).database or "")
    target = source.with_name(f"{source.stem}-ordered{source.suffix}")
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        with sqlite3.connect(source) as connection:
            connection.execute("VACUUM INTO ?", (str(partial),))
        connection = sqlite3.connect(partial, isolation_level=None)
        try:
            columns = ", ".join(
                name for _, name, *_ in connection.execute("PRAGMA table_info(event)").fetchall() if name != "id"
            )
            connection.execute("BEGIN")
            connection.execute(f"CREATE TEMP TABLE event_by_time AS SELECT {columns} FROM event ORDER BY at, id")
            connection.execute("DELETE FROM event")
            connection.execute(f"INSERT INTO event ({columns}) SELECT {columns} FROM event_by_time ORDER BY rowid")
            connection.execute("DROP TABLE event_by_time")
            connection.execute("COMMIT")
            connection.execute("VACUUM")
        finally:
            connection.close()
        partial.rename(target)
    return str(make_url(url).set(database=str(target)))
