"""What every benchmark shares: percentiles, and a fresh database to measure on."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import text

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
