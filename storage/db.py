"""Engine, sessions and units of work: SQLite in WAL mode with a busy timeout, or PostgreSQL through asyncpg.

`Database.read()` and `Database.write()` are the only ways the rest of Rahnuma touches the database. A database
problem of any kind leaves them as `StorageError`, so callers handle one exception and never see SQLAlchemy's.
"""

from __future__ import annotations

import asyncio
import json
import weakref
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
BUSY_TIMEOUT_MS = "rahnuma_busy_timeout_ms"  # execution option: this transaction's SQLite busy timeout
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
    options = connection.get_execution_options()
    read_only = options.get(READ_ONLY, False)
    busy_ms = options.get(BUSY_TIMEOUT_MS)
    if busy_ms is not None:
        info = connection.connection.info  # lives as long as the driver's connection
        if info.get(BUSY_TIMEOUT_MS) != busy_ms:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_ms)}")
            info[BUSY_TIMEOUT_MS] = busy_ms
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
        busy_timeout: float = SQLITE_BUSY_TIMEOUT_MS / 1000,
    ) -> None:
        self._write = write_sessions
        self.busy_timeout = busy_timeout
        self._writer_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._read = read_sessions or write_sessions
        self.engine = engine

    @classmethod
    def connect(cls, database_url: str, **engine_options: Any) -> Database:
        busy_timeout = int(engine_options.get("busy_timeout_ms", SQLITE_BUSY_TIMEOUT_MS)) / 1000
        engine = create_engine(database_url, **engine_options)
        read_engine = engine.execution_options(**{READ_ONLY: True})
        return cls(
            create_session_factory(engine),
            async_sessionmaker(read_engine, expire_on_commit=False),
            engine=engine,
            busy_timeout=busy_timeout,
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
        async with self._sqlite_writer_turn() as busy_ms_left:
            try:
                async with self._write() as session, session.begin():
                    if busy_ms_left is not None:  # what is left of the busy timeout after waiting for our turn
                        await session.connection(execution_options={BUSY_TIMEOUT_MS: busy_ms_left})
                    yield session
            except (SQLAlchemyError, OSError) as exc:
                raise StorageError(_describe(exc)) from exc

    @asynccontextmanager
    async def _sqlite_writer_turn(self) -> AsyncIterator[float | None]:
        """On SQLite, this process's writers queue here, first come first served, instead of in SQLite's busy
        handler, which polls with sleeps of up to 100 ms: under many small writes (the dispatcher at 200 messages
        a second) those sleeps, not the writes, took most of the time. Other processes still meet busy_timeout;
        the time spent queueing here counts against it, so no writer waits longer than the busy timeout in all."""
        if self.dialect != "sqlite":
            yield None
            return
        loop = asyncio.get_running_loop()
        lock = self._writer_locks.get(loop)
        if lock is None:
            lock = self._writer_locks[loop] = asyncio.Lock()
        started = loop.time()
        try:
            await asyncio.wait_for(lock.acquire(), self.busy_timeout)
        except TimeoutError:
            raise StorageError("OperationalError: database is locked (waited for this process's writers)") from None
        try:
            waited = loop.time() - started
            # The usual short wait keeps the connection's timeout (no PRAGMA); a long one leaves what remains,
            # rounded to 100 ms so that consecutive waits rarely differ.
            left = self.busy_timeout if waited <= 0.25 else max(0.1, self.busy_timeout - waited)
            yield round(left, 1) * 1000
        finally:
            lock.release()

    async def dispose(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


def _describe(exc: BaseException) -> str:
    """A one-line cause without statement parameters (they may hold users' words)."""
    original = getattr(exc, "orig", None)
    return f"{type(exc).__name__}: {original or exc}".splitlines()[0][:300]
