"""Engine, sessions and units of work: SQLite in WAL mode with a busy timeout, or PostgreSQL through asyncpg.

`Database.read()` and `Database.write()` are the only ways the rest of Rahnuma touches the database. A database
problem of any kind leaves them as `StorageError`, so callers handle one exception and never see SQLAlchemy's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

Session = AsyncSession  # what units of work hand out; callers outside storage/ type with this name

SQLITE_BUSY_TIMEOUT_MS = 5000
READ_ONLY = "rahnuma_read_only"  # execution option: a transaction that never writes (no SQLite write lock)


class StorageError(RuntimeError):
    """The database could not do what was asked (unreachable, locked, a constraint...); nothing was committed."""


def create_engine(database_url: str, **engine_options: Any) -> AsyncEngine:
    """An async engine; for SQLite the file's folder is created and every connection gets WAL + busy timeout.

    Statement parameters are hidden from error messages: they carry users' words, which must never reach a log.
    """
    url = make_url(database_url)
    engine_options.setdefault("hide_parameters", True)
    # Compact JSON with Urdu kept as is: half the bytes of the default escaped form, and faster to write.
    engine_options.setdefault("json_serializer", _compact_json)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        busy_ms = int(engine_options.pop("busy_timeout_ms", SQLITE_BUSY_TIMEOUT_MS))
        engine = create_async_engine(url, connect_args={"timeout": busy_ms / 1000}, **engine_options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas(busy_ms))
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    engine_options.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **engine_options)


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _sqlite_pragmas(busy_ms: int) -> Any:
    def set_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # The driver's implicit BEGIN breaks SAVEPOINTs, so SQLAlchemy emits it (its documented recipe).
        dbapi_connection.isolation_level = None

    return set_pragmas


def _sqlite_begin(connection: Any) -> None:
    """Writers take the lock up front (BEGIN IMMEDIATE), so concurrent writers wait in busy_timeout instead of
    failing with "database is locked" when a deferred transaction tries to upgrade; readers never take it."""
    read_only = connection.get_execution_options().get(READ_ONLY, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class Database:
    """Units of work over one engine: `read()` for queries, `write()` for one committed transaction."""

    def __init__(
        self,
        write_sessions: async_sessionmaker[AsyncSession],
        read_sessions: async_sessionmaker[AsyncSession] | None = None,
        *,
        engine: AsyncEngine | None = None,
    ) -> None:
        self._write = write_sessions
        self._read = read_sessions or write_sessions
        self.engine = engine

    @classmethod
    def connect(cls, database_url: str, **engine_options: Any) -> Database:
        engine = create_engine(database_url, **engine_options)
        read_engine = engine.execution_options(**{READ_ONLY: True})
        return cls(
            create_session_factory(engine),
            async_sessionmaker(read_engine, expire_on_commit=False),
            engine=engine,
        )

    @property
    def dialect(self) -> str:
        bind = self._write.kw.get("bind")
        return str(bind.dialect.name) if bind is not None else "unknown"

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; on SQLite it takes no write lock, so reads never wait behind writers."""
        try:
            async with self._read() as session, session.begin():
                yield session
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(_describe(exc)) from exc

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: everything inside commits together at the end, or nothing does (StorageError)."""
        try:
            async with self._write() as session, session.begin():
                yield session
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(_describe(exc)) from exc

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def _describe(exc: BaseException) -> str:
    """A one-line cause without statement parameters (they may hold users' words)."""
    original = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {original or exc}".splitlines()[0][:300]
