"""The read side for researchers: streamed rows for exports and grouped counts for the report (research/).

Every function here reads; none writes (demo data has its own module, storage/demo.py). Exports stream with
`yield_per`, so memory stays flat however long the event log is: on PostgreSQL asyncpg reads through a server-side
cursor, on SQLite rows are stepped in batches. Times leave the database already cut to the minute
(`minute_iso`), so no finer timestamp can reach an export by mistake.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import Subquery
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from storage.codebook import INBOUND_KINDS, EventKind
from storage.models import Event, ExperimentAssignment, MilestoneDone, OutboxMessage, User
from storage.types import UtcDateTime

BATCH = 10_000
EventKey = tuple[dt.datetime, int]  # (at, id): a place in the event log's order
Query = Select[*tuple[Any, ...]]  # a select of any columns
RESPONSE_WINDOW_HOURS = 48
EPOCH_MONDAY = dt.date(1969, 12, 29)  # week_index 0 starts here (1970-01-01 was a Thursday)
# The events whose words an export may carry, for users who consent (docs/RESEARCH.md). Replies are left out: they
# can greet the user by name, and `article_id` + `decision` say what was answered.
TEXT_KINDS = (
    EventKind.MESSAGE, EventKind.COMMAND, EventKind.PROFILE_ANSWER, EventKind.UNANSWERED, EventKind.BUTTON,
)  # fmt: skip


# ---- dialect helpers -----------------------------------------------------------------------------------------------


def _percents(compiler: SQLCompiler, pattern: str) -> str:
    """A quoted strftime pattern; `%` doubled only for drivers whose paramstyle needs it."""
    return "'" + str(compiler.post_process_text(pattern)) + "'"  # type: ignore[no-untyped-call]


class minute_iso(FunctionElement[str]):  # noqa: N801 - a SQL function, named like one
    """`2026-11-27T04:05:00Z`: a UTC time cut to the minute, as text, computed by the database."""

    type = String()
    inherit_cache = True


@compiles(minute_iso, "sqlite")
def _minute_iso_sqlite(element: minute_iso, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite holds UtcDateTime as naive UTC text, `2026-11-27 04:05:09.123456` (storage/types.py), so the minute is
    cut out of the text: the same result as strftime() at a quarter of its cost over a million events."""
    column = compiler.process(element.clauses, **kw)
    return f"(substr({column}, 1, 10) || 'T' || substr({column}, 12, 5) || ':00Z')"


@compiles(minute_iso, "postgresql")
def _minute_iso_postgresql(element: minute_iso, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:00"Z"')"""


class week_index(FunctionElement[int]):  # noqa: N801
    """Whole weeks (Monday to Sunday, UTC) since the Monday before 1970-01-01; `monday_of` turns it back."""

    type = Integer()
    inherit_cache = True


@compiles(week_index, "sqlite")
def _week_index_sqlite(element: week_index, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5 + 3) / 7 AS INTEGER)"


@compiles(week_index, "postgresql")
def _week_index_postgresql(element: week_index, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(floor((extract(epoch FROM {column}) / 86400 + 3) / 7) AS INTEGER)"


class plus_hours(FunctionElement[dt.datetime]):  # noqa: N801
    """A timestamp column moved forward by a whole number of hours (the second argument, a literal)."""

    type = UtcDateTime()
    inherit_cache = True


@compiles(plus_hours, "sqlite")
def _plus_hours_sqlite(element: plus_hours, compiler: SQLCompiler, **kw: Any) -> str:
    column, hours = list(element.clauses)
    hours_value = int(hours.value)
    pattern = _percents(compiler, "%Y-%m-%d %H:%M:%f")
    return f"strftime({pattern}, {compiler.process(column, **kw)}, '+{hours_value} hours')"


@compiles(plus_hours, "postgresql")
def _plus_hours_postgresql(element: plus_hours, compiler: SQLCompiler, **kw: Any) -> str:
    column, hours = list(element.clauses)
    hours_value = int(hours.value)
    return f"({compiler.process(column, **kw)} + interval '{hours_value} hours')"


def json_objects(values: Sequence[Any]) -> list[dict[str, Any] | None]:
    """`data` of a batch from `events_query`: JSON text (SQLite), or already decoded by the driver; anything but an
    object is None. Texts are decoded in one `json.loads` of the whole batch as a JSON array: per-call overhead, not
    parsing, was most of the cost of a value at a time."""
    decoded: list[Any] = []
    try:  # `events_query` sends `null` for no data: then every value is text, joined without a look at each
        joined = ",".join(values)
    except TypeError:  # a None, or values the driver decoded
        if all(value is None or type(value) is str for value in values):
            decoded = json.loads("[" + ",".join("null" if v is None else v for v in values) + "]")
    else:
        decoded = json.loads("[" + joined + "]")
    if len(decoded) != len(values):  # not all text, or texts that were not one JSON value each
        decoded = [json.loads(v) if isinstance(v, str) else v for v in values]
    return [value if isinstance(value, dict) else None for value in decoded]


def monday_of(week: int) -> dt.date:
    return EPOCH_MONDAY + dt.timedelta(weeks=int(week))


@dataclass(frozen=True)
class Period:
    """[since, until): either end may be open."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def of(self, column: Any) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.since is not None:
            conditions.append(column >= self.since)
        if self.until is not None:
            conditions.append(column < self.until)
        return conditions


async def _stream(session: AsyncSession, query: Query, batch: int = BATCH) -> AsyncIterator[Sequence[Any]]:
    """Core rows (not ORM) through the session's connection, in batches; the next batch is fetched while the caller
    works on this one (on SQLite the driver steps in its own thread, on PostgreSQL the cursor reads ahead)."""
    connection = await session.connection()
    result = await connection.stream(query.execution_options(yield_per=batch))
    partitions = result.partitions(batch).__aiter__()
    pending: asyncio.Future[Sequence[Any]] = asyncio.ensure_future(partitions.__anext__())
    try:
        while True:
            try:
                rows = await pending
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(partitions.__anext__())
            yield rows
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await pending
        await result.close()


SCAN_MMAP_BYTES = 1 << 34  # SQLite maps at most the file; 16 GiB is "the whole file" for any Rahnuma database


async def prepare_for_scans(session: AsyncSession, *, cache_mib: int = 64, map_file: bool = False) -> None:
    """For exports and reports, which read millions of rows out of time order: on SQLite, a bigger page cache for
    this connection (default 2 MB), and with `map_file` the database memory-mapped (the report: a third less CPU
    than read() calls; mapped pages count in the process's RSS, so the export, whose point is flat memory, does not
    map). Nothing to do on PostgreSQL."""
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        if map_file:
            await connection.exec_driver_sql(f"PRAGMA mmap_size={SCAN_MMAP_BYTES}")
        await connection.exec_driver_sql(f"PRAGMA cache_size=-{cache_mib * 1024}")


async def count(session: AsyncSession, query: Query) -> int:
    """How many rows a query returns (for progress bars): pass a light query (one table, the period's filter), not
    the export query itself, whose expressions would be computed once more for every row."""
    return int(await session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def rows_in_period(model: Any, column: Any, period: Period, *conditions: ColumnElement[bool]) -> Query:
    """`SELECT id FROM table WHERE <period>`: what the progress bar counts."""
    return select(literal(1)).select_from(model).where(*period.of(column), *conditions)


# ---- export: one query per table, streamed --------------------------------------------------------------------------


def users_query(period: Period) -> Query:
    """Users who had started by the end of the period (profile and consent state as they are now); the start and
    last-seen weeks come as week numbers (`monday_of`), computed by the database. JSON columns are cast to text in
    SQL, so both backends hand over the same text (asyncpg decoded them, and a list broke the cached decoding)."""
    query = select(
        User.id, week_index(User.created_at), User.channel, User.language, User.skill,
        cast(User.platforms, Text), User.city, User.research_consent, User.consent_version, User.nudge_pace,
        User.blocked_at.is_not(None), User.proactive_stopped_at.is_not(None), week_index(User.last_seen_at),
    ).order_by(User.id)  # fmt: skip
    if period.until is not None:
        query = query.where(User.created_at < period.until)
    return query


def events_query(period: Period, *, start: EventKey | None = None, stop: EventKey | None = None) -> Query:
    """Events in time order; `text` only for kinds that may carry words; whose words may leave is the caller's to
    decide with `consenting_names` (a join with the users per event cost a sixth of the scan). `data` comes as JSON
    text (see `json_objects`): decoding it in one call per batch is cheaper at a million rows. `start` and `stop`
    cut the log at places in its order (`event_key_at`), so two processes can each write a part."""
    return (
        select(
            Event.user_id,
            minute_iso(Event.at),
            Event.kind,
            Event.intent,
            Event.confidence,
            Event.article_id,
            Event.nlu_source,
            Event.latency_ms,
            func.coalesce(cast(Event.data, Text), literal("null")),
            case((Event.kind.in_(TEXT_KINDS), Event.text)),
        )  # fmt: skip
        .where(*period.of(Event.at), *_from_key(start), *_before_key(stop))
        .order_by(Event.at, Event.id)
    )


def _from_key(key: EventKey | None) -> list[ColumnElement[bool]]:
    return [] if key is None else [or_(Event.at > key[0], and_(Event.at == key[0], Event.id >= key[1]))]


def _before_key(key: EventKey | None) -> list[ColumnElement[bool]]:
    return [] if key is None else [or_(Event.at < key[0], and_(Event.at == key[0], Event.id < key[1]))]


async def event_key_at(session: AsyncSession, period: Period, offset: int) -> EventKey | None:
    """The place of the event `offset` rows into the period's log (in export order); None past its end."""
    row = (
        await session.execute(
            select(Event.at, Event.id).where(*period.of(Event.at)).order_by(Event.at, Event.id).offset(offset).limit(1)
        )
    ).first()
    return None if row is None else (row[0], int(row[1]))


async def consenting_names(session: AsyncSession) -> dict[int, str | None]:
    """User id → display name (to scrub from their own words) for everyone who consents now: the only people whose
    words an export may carry. One entry per consenting person, like the pseudonym cache."""
    rows = await session.execute(select(User.id, User.display_name).where(User.research_consent.is_(True)))
    return {int(user_id): name for user_id, name in rows}


def milestones_query(period: Period) -> Query:
    return (
        select(
            MilestoneDone.user_id,
            MilestoneDone.milestone,
            minute_iso(MilestoneDone.done_at),
            MilestoneDone.done_at,
            MilestoneDone.source,
            User.created_at,
        )  # fmt: skip
        .join(User, User.id == MilestoneDone.user_id)
        .where(*period.of(MilestoneDone.done_at))
        .order_by(MilestoneDone.done_at, MilestoneDone.user_id, MilestoneDone.milestone)
    )


def _nudge_reference() -> ColumnElement[Any]:
    """When a nudge reached its recipient, or would have (control arm): the start of its response window."""
    return case(
        (OutboxMessage.status == "sent", OutboxMessage.sent_at),
        (OutboxMessage.status == "withheld", OutboxMessage.not_before),
    )


def _first_response() -> ColumnElement[Any]:
    """The recipient's first inbound event within 48 h after the reference time; the same rule for every arm, so
    a control arm (nothing sent) is compared like with like."""
    reference = _nudge_reference()
    return (
        select(func.min(Event.at))
        .where(
            Event.user_id == OutboxMessage.user_id,
            Event.kind.in_(INBOUND_KINDS),
            Event.at > reference,
            Event.at <= plus_hours(reference, literal(RESPONSE_WINDOW_HOURS)),
        )
        .scalar_subquery()
    )


def _openings() -> Subquery:
    """(user, outbox id, buttons pressed) from every `nudge_opened` event, grouped once: a look-up per nudge went
    through all of its recipient's events and took most of the nudges table's time."""
    outbox_id = Event.data["outbox_id"].as_integer()
    return (
        select(Event.user_id.label("user_id"), outbox_id.label("outbox_id"), func.count().label("opened"))
        .where(Event.kind == EventKind.NUDGE_OPENED)
        .group_by(Event.user_id, outbox_id)
        .subquery()
    )


def nudges_query(period: Period) -> Query:
    """Outbox rows of kind nudge planned in the period, with when they went (or would have) and what followed."""
    openings = _openings()
    return (
        select(
            OutboxMessage.id,
            OutboxMessage.user_id,
            OutboxMessage.campaign,
            OutboxMessage.meta,
            OutboxMessage.status,
            minute_iso(OutboxMessage.created_at),
            minute_iso(_nudge_reference()),
            _nudge_reference(),
            _first_response(),
            func.coalesce(openings.c.opened, 0),
        )  # fmt: skip
        .outerjoin(
            openings, and_(openings.c.outbox_id == OutboxMessage.id, openings.c.user_id == OutboxMessage.user_id)
        )
        .where(OutboxMessage.kind == "nudge", *period.of(OutboxMessage.created_at))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )


def deliveries_query(period: Period) -> Query:
    """Every other outbox row (broadcasts, relays, introductions, digests, system notices)."""
    return (
        select(
            OutboxMessage.id,
            OutboxMessage.user_id,
            OutboxMessage.kind,
            OutboxMessage.campaign,
            OutboxMessage.status,
            minute_iso(OutboxMessage.created_at),
            minute_iso(OutboxMessage.sent_at),
            OutboxMessage.attempts,
            OutboxMessage.chat_id < 0,
        )  # fmt: skip
        .where(OutboxMessage.kind != "nudge", *period.of(OutboxMessage.created_at))
        .order_by(OutboxMessage.created_at, OutboxMessage.id)
    )


def broadcasts_query(period: Period) -> Query:
    """One row per broadcast campaign: its messages by outcome."""
    status = OutboxMessage.status
    counted = [func.sum(case((status == name, 1), else_=0)) for name in BROADCAST_OUTCOMES]
    return (
        select(
            OutboxMessage.campaign,
            minute_iso(func.min(OutboxMessage.created_at)),
            minute_iso(func.max(OutboxMessage.sent_at)),
            func.count(),
            *counted,
        )  # fmt: skip
        .where(OutboxMessage.kind == "broadcast", *period.of(OutboxMessage.created_at))
        .group_by(OutboxMessage.campaign)
        .order_by(func.min(OutboxMessage.created_at), OutboxMessage.campaign)
    )


BROADCAST_OUTCOMES = ("sent", "blocked", "failed", "expired", "cancelled", "uncertain", "pending", "claimed")


def feedback_query(period: Period) -> Query:
    return (
        select(Event.user_id, minute_iso(Event.at), Event.article_id, Event.data["helpful"].as_boolean())
        .where(Event.kind == EventKind.FEEDBACK, *period.of(Event.at))
        .order_by(Event.at, Event.id)
    )


async def stream(session: AsyncSession, query: Query, batch: int = BATCH) -> AsyncIterator[Sequence[Any]]:
    """Rows of an export query in batches."""
    async for rows in _stream(session, query, batch):
        yield rows


async def consent_snapshot(session: AsyncSession) -> dict[str, int]:
    """How many users consent now, withdrew (and have not consented again), or never consented."""
    withdrew = select(Event.user_id).where(Event.kind == EventKind.CONSENT_WITHDRAWN, Event.user_id.is_not(None))
    consenting = int(await session.scalar(select(func.count()).where(User.research_consent.is_(True))) or 0)
    withdrawn = int(
        await session.scalar(
            select(func.count()).where(User.research_consent.is_(False), User.id.in_(withdrew.distinct()))
        )
        or 0
    )
    total = int(await session.scalar(select(func.count()).select_from(User)) or 0)
    return {"consenting": consenting, "withdrawn": withdrawn, "never_consented": total - consenting - withdrawn}


# ---- report: grouped counts -----------------------------------------------------------------------------------------


async def ladder_rows(session: AsyncSession, period: Period) -> AsyncIterator[Sequence[Any]]:
    """(user, started, milestone or None, done_at or None) for users who started in the period."""
    query = (
        select(User.id, User.created_at, MilestoneDone.milestone, MilestoneDone.done_at)
        .outerjoin(MilestoneDone, MilestoneDone.user_id == User.id)
        .where(*period.of(User.created_at))
        .order_by(User.id)
    )
    async for rows in _stream(session, query, 50_000):
        yield rows


async def active_weeks(session: AsyncSession, period: Period) -> AsyncIterator[Sequence[Any]]:
    """(user, week they started, week they were active) once per active week: one pass over the inbound events
    gives weekly active users, retention by start cohort and the number of active people. The distinct pairs come
    from the events alone and only then meet their user: a join per event cost more than the rest of the pass."""
    pairs = (
        select(Event.user_id.label("user_id"), week_index(Event.at).label("week"))
        .distinct()
        .where(Event.kind.in_(INBOUND_KINDS), Event.user_id.is_not(None), *period.of(Event.at))
        .subquery()
    )
    query = select(pairs.c.user_id, week_index(User.created_at), pairs.c.week).join(User, User.id == pairs.c.user_id)
    async for rows in _stream(session, query, 50_000):
        yield rows


async def cohort_sizes(session: AsyncSession, period: Period) -> dict[int, int]:
    """Start week → users who started then."""
    start = week_index(User.created_at)
    rows = await session.execute(select(start, func.count()).where(*period.of(User.created_at)).group_by(start))
    return {int(w): int(n) for w, n in rows}


async def questions(session: AsyncSession, period: Period) -> list[tuple[int, str, str | None, str | None, int]]:
    """(week, kind, intent, user language, count) for text messages and unanswered questions. A message's intent
    is its article's topic intent when it was answered, else the NLU's intent; `unanswered` is the dont_know."""
    week = week_index(Event.at)
    rows = await session.execute(
        select(week, Event.kind, Event.intent, User.language, func.count())
        .outerjoin(User, User.id == Event.user_id)
        .where(Event.kind.in_((EventKind.MESSAGE, EventKind.UNANSWERED)), *period.of(Event.at))
        .group_by(week, Event.kind, Event.intent, User.language)
    )
    return [(int(w), str(k), i, lang, int(n)) for w, k, i, lang, n in rows]


async def feedback_by_article(session: AsyncSession, period: Period) -> dict[str, tuple[int, int]]:
    """Article → (👍, 👎)."""
    helpful = Event.data["helpful"].as_boolean()
    rows = await session.execute(
        select(Event.article_id, helpful, func.count())
        .where(Event.kind == EventKind.FEEDBACK, Event.article_id.is_not(None), *period.of(Event.at))
        .group_by(Event.article_id, helpful)
    )
    found: dict[str, list[int]] = {}
    for article, up, n in rows:
        found.setdefault(str(article), [0, 0])[0 if up else 1] += int(n)
    return {article: (up, down) for article, (up, down) in found.items()}


async def nudge_outcomes(
    session: AsyncSession, period: Period
) -> list[tuple[str | None, str | None, str | None, str, bool, int]]:
    """(campaign, experiment, arm, status, responded within 48 h, count) for nudges planned in the period."""
    experiment = OutboxMessage.meta["experiment"].as_string()
    arm = OutboxMessage.meta["arm"].as_string()
    responded = case((_first_response().is_not(None), 1), else_=0)
    inner = (
        select(
            OutboxMessage.campaign.label("campaign"),
            experiment.label("experiment"),
            arm.label("arm"),
            OutboxMessage.status.label("status"),
            responded.label("responded"),
        )  # fmt: skip
        .where(OutboxMessage.kind == "nudge", *period.of(OutboxMessage.created_at))
        .subquery()
    )
    rows = await session.execute(
        select(
            inner.c.campaign, inner.c.experiment, inner.c.arm, inner.c.status, inner.c.responded, func.count()
        ).group_by(inner.c.campaign, inner.c.experiment, inner.c.arm, inner.c.status, inner.c.responded)
    )
    return [(c, e, a, str(s), bool(r), int(n)) for c, e, a, s, r, n in rows]


async def broadcast_outcomes(session: AsyncSession, period: Period) -> dict[str, dict[str, int]]:
    """Campaign → status → messages, for broadcasts planned in the period."""
    rows = await session.execute(
        select(OutboxMessage.campaign, OutboxMessage.status, func.count())
        .where(OutboxMessage.kind == "broadcast", *period.of(OutboxMessage.created_at))
        .group_by(OutboxMessage.campaign, OutboxMessage.status)
    )
    found: dict[str, dict[str, int]] = {}
    for campaign, status, n in rows:
        found.setdefault(str(campaign or "broadcast"), {})[str(status)] = int(n)
    return found


async def experiment_sizes(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(experiment, arm) → users assigned."""
    rows = await session.execute(
        select(ExperimentAssignment.experiment, ExperimentAssignment.arm, func.count()).group_by(
            ExperimentAssignment.experiment, ExperimentAssignment.arm
        )
    )
    return {(str(e), str(a)): int(n) for e, a, n in rows}


async def totals(session: AsyncSession, period: Period) -> dict[str, int]:
    """Headline counts for the report."""
    users = int(await session.scalar(select(func.count()).select_from(User).where(*period.of(User.created_at))) or 0)
    events = int(await session.scalar(select(func.count()).select_from(Event).where(*period.of(Event.at))) or 0)
    return {"users": users, "events": events}


async def time_span(session: AsyncSession) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first and last event's time (two queries: SQLite answers a lone min() or max() from the index at once)."""
    first = await session.scalar(select(func.min(Event.at)))
    last = await session.scalar(select(func.max(Event.at)))
    return _aware(first), _aware(last)


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
