"""Migrations run down and up again cleanly, and SQLite files run in WAL mode with a busy timeout."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from storage.db import create_engine
from storage.migrate import downgrade, upgrade


async def test_migrations_go_down_and_up_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'fresh.db'}"
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(downgrade, url, "base")
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    async with engine.connect() as connection:
        tables = {row[0] for row in await connection.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        busy = (await connection.execute(text("PRAGMA busy_timeout"))).scalar()
    await engine.dispose()
    assert {"user", "event", "alembic_version"} <= tables
    assert journal == "wal"
    assert busy == 5000
