"""Column types shared by every table."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend.

    SQLite has no time zones, so SQLAlchemy hands back naive values there; this type stores UTC and always returns
    an aware UTC datetime, so quiet hours and "inactive for N days" compare the same way on SQLite and PostgreSQL.
    A naive value is refused on the way in: it is a bug (whose local time would it be?).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass an aware UTC time (Clock.now())")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        moment: dt.datetime = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:  # SQLite: stored as naive UTC
            return moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC)
