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
import shutil
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from content.library import Library
from research.kanon import Generalisation, K
from research.pseudonyms import Pseudonyms
from research.schema import Batch, Columns, Field, Row, Table, datapackage
from research.tables import EVENTS, TABLES, USERS
from storage import research as stored
from storage.db import Database, Session
from storage.research import EventKey, Period

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
    batch: int = stored.BATCH
    events_from: EventKey | None = None  # the part of the event log this process writes (two processes)
    events_before: EventKey | None = None


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
    def append_part(self, path: Path) -> None: ...
    def close(self) -> None: ...


class CsvWriter:
    def __init__(self, path: Path, fields: Sequence[Field], *, header: bool = True) -> None:
        self._file = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file, lineterminator="\n")
        if header:
            self._csv.writerow([f.name for f in fields])
        self._bools = [i for i, f in enumerate(fields) if f.type == "boolean"]

    def write(self, rows: Batch) -> None:
        if isinstance(rows, Columns):
            rows = rows.rows()
        if self._bools:
            rows = [_csv_booleans(row, self._bools) for row in rows]
        self._csv.writerows(rows)

    def append_part(self, path: Path) -> None:
        """The rows another process wrote without a header (`part_writer_for`), as they are."""
        self._file.flush()
        with path.open("rb") as part:
            shutil.copyfileobj(part, self._file.buffer, 1 << 20)

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
            import pyarrow.parquet  # noqa: F401 - checked here, used in _open
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
        self._writer: Any = self._open(path)

    def _open(self, path: Path) -> Any:
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(path), self._schema, compression="zstd")

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

    def append_part(self, path: Path) -> None:
        """The record batches another process wrote (`ArrowPartWriter`), each as the row group it would have been."""
        pa = self._pa
        with pa.OSFile(str(path)) as source:  # read, not mapped: mapped pages would count as this process's memory
            reader = pa.ipc.open_file(source)
            for index in range(reader.num_record_batches):
                self._writer.write_table(pa.Table.from_batches([reader.get_batch(index)], schema=self._schema))

    def close(self) -> None:
        self._writer.close()


class ArrowPartWriter(ParquetWriter):
    """A part of a Parquet table written by a second process: the same typed columns as Arrow IPC, uncompressed,
    one record batch per write, for the first process to append (compressing them there) as the same row groups."""

    def _open(self, path: Path) -> Any:
        return self._pa.ipc.new_file(str(path), self._schema)


def writer_for(fmt: Format, path: Path, fields: Sequence[Field]) -> Writer:
    return CsvWriter(path, fields) if fmt == "csv" else ParquetWriter(path, fields)


def part_writer_for(fmt: Format, path: Path, fields: Sequence[Field]) -> Writer:
    return CsvWriter(path, fields, header=False) if fmt == "csv" else ArrowPartWriter(path, fields)


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


# Tables written by a second process when the export runs in parallel: the event log takes longer than every other
# table together, so the second process writes the log from a place in it on, while the first writes the other
# tables and then the log up to that place (2 cores: about half the wall time).
SEPARATE = frozenset({"events"})
# What the other tables cost the first process, in events' worth per person, to decide where the second process
# starts on the log: about 4 by their time alone (3.6 s for 100,000 people against 8.4 s for 1,000,000 events), 3
# once the first process's appending of the second's part is counted (runs of 1.0-4.3 on 1M events, BENCHMARKS).
OTHER_TABLES_PER_PERSON = 3.0
PART = ".events.part"  # the second process's part of the event log, appended by the first and then deleted


async def _write_rows(ctx: ExportContext, table: Table, writer: Writer, bar: Progress) -> int:
    rows_written = 0
    if table.rows is not None:
        with collector_paused():
            async for rows in table.rows(ctx):
                writer.write(rows)
                rows_written += len(rows)
                bar.advance(len(rows))
    return rows_written


async def _write_table(
    ctx: ExportContext,
    table: Table,
    out: Path,
    fmt: Format,
    progress: IO[str] | None,
    part: Callable[[], Awaitable[Path]] | None = None,
) -> dict[str, Any]:
    """Stream one table into its file (with `part`, then wait for the second process's part and append it); its
    entry in the manifest (path, rows of this process, bytes, sha256)."""
    path = out / table.path(fmt)
    # The total only feeds a bar drawn on a terminal: counting is another pass over the period (the events' kinds,
    # the outbox), wasted when stderr is a log.
    drawn = progress is not None and progress.isatty()
    total = await stored.count(ctx.session, table.count(ctx)) if table.count and drawn else None
    bar = Progress(table.name, total, progress)
    writer = writer_for(fmt, path, table.fields)
    try:
        rows_written = await _write_rows(ctx, table, writer, bar)
        if part is not None:
            writer.append_part(await part())
    finally:
        writer.close()
    bar.finish()
    return {"path": path.name, "rows": rows_written, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


async def _write_part(ctx: ExportContext, table: Table, path: Path, fmt: Format) -> int:
    writer = part_writer_for(fmt, path, table.fields)
    try:
        return await _write_rows(ctx, table, writer, Progress(table.name, None, None))
    finally:
        writer.close()


async def _events_split(ctx: ExportContext, *, first_events: int | None = None) -> EventKey | None:
    """Where the second process starts on the event log, so that both finish together: the first writes the other
    tables, then the log up to here. At a whole batch, so the row groups are those of one process. None: the
    second writes the whole log (a short period, where the other tables take longer)."""
    if first_events is None:  # with the queries the progress bars count
        assert EVENTS.count is not None and USERS.count is not None
        events = await stored.count(ctx.session, EVENTS.count(ctx))
        people = await stored.count(ctx.session, USERS.count(ctx))
        first_events = int(events - OTHER_TABLES_PER_PERSON * people) // 2
    first_events = first_events // ctx.batch * ctx.batch
    return await stored.event_key_at(ctx.session, ctx.period, first_events) if first_events > 0 else None


def _separate_url(db: Database) -> str | None:
    """The URL a second process can open the same database with: None for an in-memory SQLite database."""
    if db.engine is None:
        return None
    url = db.engine.url
    if url.get_backend_name() == "sqlite" and (not url.database or url.database == ":memory:"):
        return None
    return url.render_as_string(hide_password=False)


def _start_up() -> None:
    """Runs first in the second process, while the first finds where to split: the imports take about a second."""
    import content.library  # noqa: F401
    import research.tables  # noqa: F401


def _write_separately(
    url: str,
    names: Sequence[str],
    *,
    out: Path,
    salt: str | None,
    period: Period,
    fmt: Format,
    k: int,
    batch: int,
    events_from: EventKey | None,
) -> dict[str, dict[str, Any]]:
    """In the second process: open the database, write the named tables (the same code as in the first) and return
    their manifest entries; with `events_from`, the event log from there on goes to a part file for the first
    process to append (its entry: the part's rows)."""
    from content.library import load_library

    async def go() -> dict[str, dict[str, Any]]:
        db = Database.connect(url)
        try:
            async with db.read() as session:
                await stored.prepare_for_scans(session)
                ctx = ExportContext(
                    session=session, period=period, pseudonyms=Pseudonyms(salt), library=load_library(), k=k,
                    batch=batch, events_from=events_from,
                )  # fmt: skip
                by_name = {t.name: t for t in TABLES}
                written = {}
                for name in names:
                    if name == "events" and events_from is not None:
                        written[name] = {"rows": await _write_part(ctx, by_name[name], out / PART, fmt)}
                    else:
                        written[name] = await _write_table(ctx, by_name[name], out, fmt, None)
                return written
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
    batch: int = stored.BATCH,
    first_events: int | None = None,
) -> ExportResult:
    """Write every table, then datapackage.json and manifest.json, into `out` (created if missing).

    With `parallel` (the CLI, on a machine with more than one core), a second process with its own connection
    writes the later part of the event log (all of it for a short period) while this one writes the other tables,
    then the log's earlier part, then appends the second's part; each process streams, so memory stays bounded per
    process. Each reads in its own transaction, both opened at the start. `first_events` sets how many events this
    process writes itself (tests); `batch` the rows per read and per Parquet row group."""
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
    loop = asyncio.get_running_loop()
    with contextlib.ExitStack() as stack:
        pending: asyncio.Future[dict[str, dict[str, Any]]] | None = None
        try:
            async with db.read() as session:
                await stored.prepare_for_scans(session)
                ctx = ExportContext(
                    session=session, period=period, pseudonyms=pseudonyms, library=library, k=k, batch=batch
                )
                split: EventKey | None = None
                if separate:
                    assert url is not None
                    pool = stack.enter_context(
                        concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
                    )
                    started = loop.run_in_executor(pool, _start_up)
                    split = await _events_split(ctx, first_events=first_events) if "events" in separate else None
                    work = partial(
                        _write_separately, url, separate, out=out, salt=salt, period=period, fmt=fmt, k=k,
                        batch=batch, events_from=split,
                    )  # fmt: skip
                    pending = loop.run_in_executor(pool, work)
                    await started
                for table in tables:
                    if table.name not in separate:
                        files[table.name] = await _write_table(ctx, table, out, fmt, progress)
                if split is not None and pending is not None:  # the log's first part here, then the second's
                    waiting = pending
                    separately: dict[str, dict[str, Any]] = {}

                    async def second_part() -> Path:
                        separately.update(await waiting)
                        return out / PART

                    ctx.events_before = split
                    events_table = next(t for t in tables if t.name == "events")
                    entry = await _write_table(ctx, events_table, out, fmt, progress, part=second_part)
                    entry["rows"] += separately.pop("events")["rows"]
                    files.update(events=entry, **separately)
                    pending = None
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
            (out / PART).unlink(missing_ok=True)
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
