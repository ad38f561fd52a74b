"""`rahnuma export`: pseudonymised tables, a Frictionless datapackage.json and a manifest, streamed to a folder.

Each table is read in batches and written as it comes (CSV rows, or Parquet row groups through one ParquetWriter),
so memory stays flat however long the event log is; only the pseudonym cache, the k-anonymity counts and the names of
the people who consent (to scrub from their own words) grow, with the number of people.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import csv
import datetime as dt
import gc
import hashlib
import json
import multiprocessing
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from content.library import Library
from research.kanon import Generalisation, K
from research.pseudonyms import Pseudonyms
from research.schema import Batch, Columns, Field, Row, Table, datapackage
from research.tables import TABLES
from storage import research as stored
from storage.db import Database, Session
from storage.research import Period

Format = Literal["csv", "parquet"]
FORMATS: tuple[Format, ...] = ("csv", "parquet")
EXPORT_VERSION = 1


class ExportError(RuntimeError):
    """The export cannot be made (a missing dependency, an unusable folder); the message says what to do."""


@dataclass
class ExportContext:
    """What a table's row source needs: the open read session, the period, the pseudonyms and the content."""

    session: Session
    period: Period
    pseudonyms: Pseudonyms
    library: Library
    k: int = K
    kanon: Generalisation | None = None


# ---- progress --------------------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (redrawn at most 10 times a second); one summary line when not a TTY."""

    def __init__(self, label: str, total: int | None, stream: IO[str] | None) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.done = 0
        self.started = time.monotonic()
        self._drawn = 0.0
        self._tty = bool(stream is not None and stream.isatty())

    def advance(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if self._tty and now - self._drawn > 0.1:
            self._drawn = now
            self._draw(end="\r")

    def finish(self) -> None:
        if self.stream is not None:
            self._draw(end="\n")

    def _draw(self, end: str) -> None:
        assert self.stream is not None
        elapsed = time.monotonic() - self.started
        if self.total:
            share = min(1.0, self.done / self.total)
            bar = "█" * int(share * 24) + "·" * (24 - int(share * 24))
            figures = f"{bar} {self.done:>11,}/{self.total:,} rows"
        else:
            figures = f"{self.done:>11,} rows"
        self.stream.write(f"{self.label:<11} {figures} {elapsed:6.1f} s{end}")
        self.stream.flush()


# ---- writers ---------------------------------------------------------------------------------------------------------


class Writer(Protocol):
    def write(self, rows: Batch) -> None: ...
    def close(self) -> None: ...


class CsvWriter:
    def __init__(self, path: Path, fields: Sequence[Field]) -> None:
        self._file = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        self._csv.writerow([f.name for f in fields])
        self._bools = [i for i, f in enumerate(fields) if f.type == "boolean"]

    def write(self, rows: Batch) -> None:
        if isinstance(rows, Columns):
            rows = rows.rows()
        if self._bools:
            rows = [_csv_booleans(row, self._bools) for row in rows]
        self._csv.writerows(rows)

    def close(self) -> None:
        self._file.close()


def _csv_booleans(row: Row, positions: list[int]) -> Row:
    values = list(row)
    for i in positions:
        if values[i] is not None:
            values[i] = "true" if values[i] else "false"
    return tuple(values)


class ParquetWriter:
    """Row groups written as they come through one pyarrow ParquetWriter; times as timestamp[ms, UTC] (Parquet has no
    seconds unit), always on a whole minute."""

    def __init__(self, path: Path, fields: Sequence[Field]) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:  # pragma: no cover - make install installs it
            raise ExportError(
                "Parquet needs pyarrow: `pip install -e '.[research]'` (make install does), or use --format csv"
            ) from None
        self._pa = pa
        types = {
            "string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_(),
            "datetime": pa.timestamp("ms", tz="UTC"), "date": pa.date32(),
        }  # fmt: skip
        self._fields = list(fields)
        self._schema = pa.schema(
            [pa.field(f.name, types[f.type], metadata={"description": f.description}) for f in fields]
        )
        self._seconds = pa.timestamp("s", tz="UTC")
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")

    def write(self, rows: Batch) -> None:
        if not rows:
            return
        pa = self._pa
        columns = rows.values if isinstance(rows, Columns) else list(zip(*rows, strict=True))
        arrays = []
        for f, values, target in zip(self._fields, columns, self._schema.types, strict=True):
            if f.type == "datetime":  # ISO 8601 text with Z: a cast parses it, four times faster than strptime
                arrays.append(pa.array(values, pa.string()).cast(self._seconds).cast(target))
            else:
                arrays.append(pa.array(values, target))
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


def writer_for(fmt: Format, path: Path, fields: Sequence[Field]) -> Writer:
    return CsvWriter(path, fields) if fmt == "csv" else ParquetWriter(path, fields)


# ---- the export ------------------------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    out: Path
    manifest: dict[str, Any]
    files: list[Path] = field(default_factory=list)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a table streams: a batch allocates tens of thousands of short-lived
    tuples and dicts (freed by reference counting, none in a cycle), and the collections they triggered walked every
    live object again and again: a third of the event log's time. On again afterwards (also inside the bot)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:00Z")


# Tables written by a second process when the export runs in parallel: the event log takes about as long as every
# other table together, so one process writes it while this one writes the rest (2 cores: about half the wall time).
SEPARATE = frozenset({"events"})


async def _write_table(
    ctx: ExportContext, table: Table, out: Path, fmt: Format, progress: IO[str] | None
) -> dict[str, Any]:
    """Stream one table into its file; its entry in the manifest (path, rows, bytes, sha256)."""
    path = out / table.path(fmt)
    # The total only feeds a bar drawn on a terminal: counting is another pass over the period (the events' kinds,
    # the outbox), wasted when stderr is a log.
    drawn = progress is not None and progress.isatty()
    total = await stored.count(ctx.session, table.count(ctx)) if table.count and drawn else None
    bar = Progress(table.name, total, progress)
    writer = writer_for(fmt, path, table.fields)
    rows_written = 0
    try:
        if table.rows is not None:
            with collector_paused():
                async for rows in table.rows(ctx):
                    writer.write(rows)
                    rows_written += len(rows)
                    bar.advance(len(rows))
    finally:
        writer.close()
    bar.finish()
    return {"path": path.name, "rows": rows_written, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def _separate_url(db: Database) -> str | None:
    """The URL a second process can open the same database with: None for an in-memory SQLite database."""
    if db.engine is None:
        return None
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _write_separately(
    url: str, names: Sequence[str], *, out: Path, salt: str | None, period: Period, fmt: Format, k: int
) -> dict[str, dict[str, Any]]:
    """In the second process: open the database, write the named tables (the same code as in the first) and return
    their manifest entries."""
    from content.library import load_library

    async def go() -> dict[str, dict[str, Any]]:
        db = Database.connect(url)
        try:
            async with db.read() as session:
                await stored.prepare_for_scans(session)
                ctx = ExportContext(
                    session=session, period=period, pseudonyms=Pseudonyms(salt), library=load_library(), k=k
                )
                by_name = {t.name: t for t in TABLES}
                return {name: await _write_table(ctx, by_name[name], out, fmt, None) for name in names}
        finally:
            await db.dispose()

    return asyncio.run(go())


async def export(
    db: Database,
    *,
    out: Path,
    salt: str | None,
    library: Library,
    period: Period | None = None,
    fmt: Format = "csv",
    progress: IO[str] | None = sys.stderr,
    now: dt.datetime | None = None,
    tables: Sequence[Table] = TABLES,
    k: int = K,
    parallel: bool = False,
) -> ExportResult:
    """Write every table, then datapackage.json and manifest.json, into `out` (created if missing).

    With `parallel` (the CLI, on a machine with more than one core), the event log is written by a second process
    with its own connection while this one writes the other tables; each process streams, so memory stays bounded
    per process. Each reads in its own transaction, both opened at the start."""
    pseudonyms = Pseudonyms(salt)  # checks the salt before anything is read
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use csv or parquet")
    period = period or Period()
    if parallel and period.until is None:
        # Both processes read up to the same moment, so a row written meanwhile is in neither, never in only one.
        period = Period(period.since, now or dt.datetime.now(dt.UTC))
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a script's own folder; the files are written synchronously too
    files: dict[str, dict[str, Any]] = {}
    url = _separate_url(db) if parallel else None
    separate = [t.name for t in tables if t.name in SEPARATE and t in TABLES] if url is not None else []
    with contextlib.ExitStack() as stack:
        pending: asyncio.Future[dict[str, dict[str, Any]]] | None = None
        if separate:
            assert url is not None
            pool = stack.enter_context(
                concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
            )
            work = partial(_write_separately, url, separate, out=out, salt=salt, period=period, fmt=fmt, k=k)
            pending = asyncio.get_running_loop().run_in_executor(pool, work)
        try:
            async with db.read() as session:
                await stored.prepare_for_scans(session)
                ctx = ExportContext(session=session, period=period, pseudonyms=pseudonyms, library=library, k=k)
                for table in tables:
                    if table.name not in separate:
                        files[table.name] = await _write_table(ctx, table, out, fmt, progress)
                consent = await stored.consent_snapshot(session)
            if pending is not None:
                files.update(await pending)
                pending = None
                for name in separate:
                    if progress is not None:
                        print(f"{name:<11} {files[name]['rows']:>11,} rows (a second process)", file=progress)
        finally:
            if pending is not None:
                pending.cancel()
    files = {t.name: files[t.name] for t in tables}
    written = [out / entry["path"] for entry in files.values()]
    created = now or dt.datetime.now(dt.UTC)
    manifest: dict[str, Any] = {
        "export_version": EXPORT_VERSION,
        "created_at": _iso(created),
        "period": {"since": _iso(period.since), "until": _iso(period.until)},
        "format": fmt,
        "pseudonym_key_id": pseudonyms.key_id,
        "pseudonyms": "HMAC-SHA256 of the internal id under RAHNUMA_RESEARCH_SALT, first 16 hex digits; the same "
        "key id means the same pseudonyms",
        "tables": files,
        "consent": {
            **consent,
            "policy": "message text only from users who consent at the time of this export; users who withdrew "
            "are excluded from text in this and every later export",
        },
        "k_anonymity": ctx.kanon.summary() if ctx.kanon is not None else None,
        "small_cells": "the report shows counts under 5 as <5; the tables hold raw rows",
    }
    package = datapackage(tables, fmt=fmt, files=files, extra={"created": _iso(created)})
    (out / "datapackage.json").write_text(json.dumps(package, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written += [out / "datapackage.json", out / "manifest.json"]
    return ExportResult(out=out, manifest=manifest, files=written)
