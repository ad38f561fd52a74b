"""An export as one zip, for /export in Telegram: CSV tables, datapackage.json and manifest.json, under Telegram's
50 MB limit for files a bot sends (else the caller says to use `rahnuma export` on the server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import zipfile
from dataclasses import dataclass
from pathlib import Path

from content.library import Library, load_library
from research.export import export
from storage.db import Database
from storage.research import Period

TELEGRAM_FILE_LIMIT = 50 * 1024 * 1024


@dataclass(frozen=True)
class SharedExport:
    path: Path  # the zip (left in `folder` for the caller to send, then delete the folder)
    bytes: int
    rows: int
    key_id: str

    def fits(self, limit: int = TELEGRAM_FILE_LIMIT) -> bool:
        return self.bytes <= limit


def make_zip(
    database_url: str,
    *,
    salt: str | None,
    folder: Path,
    period: Period | None = None,
    library: Library | None = None,
    now: dt.datetime | None = None,
) -> SharedExport:
    """Export into `folder` and zip it there. Blocking, with its own event loop and connection: the bot calls it in
    a thread (`asyncio.to_thread`) so the export never stalls the conversation."""
    now = now or dt.datetime.now(dt.UTC)

    async def go() -> tuple[int, str]:
        db = Database.connect(database_url)
        try:
            result = await export(
                db, out=folder / "export", salt=salt, library=library or load_library(), period=period, fmt="csv",
                progress=None, now=now,
            )  # fmt: skip
        finally:
            await db.dispose()
        return sum(int(t["rows"]) for t in result.manifest["tables"].values()), str(result.manifest["pseudonym_key_id"])

    rows, key_id = asyncio.run(go())
    path = folder / f"rahnuma-export-{now:%Y%m%d-%H%M}-{key_id}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for file in sorted((folder / "export").iterdir()):
            archive.write(file, arcname=f"rahnuma-export/{file.name}")
    return SharedExport(path=path, bytes=path.stat().st_size, rows=rows, key_id=key_id)
