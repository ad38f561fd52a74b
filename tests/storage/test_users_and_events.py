"""Storage on every backend: users are unique per channel, events keep their metadata and aware UTC times."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from storage import events, users
from storage.db import Database
from storage.events import NewEvent

NOW = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.UTC)


async def test_first_contact_creates_user_once(db: Database) -> None:
    """Writing twice from the same Telegram id is one user."""
    async with db.write() as session:
        first, created = await users.create_user(session, channel="telegram", external_id="42", now=NOW)
        assert created
    async with db.write() as session:
        again, created_again = await users.create_user(session, channel="telegram", external_id="42", now=NOW)
        assert not created_again and again.id == first.id


async def test_same_id_on_two_channels_is_two_users(db: Database) -> None:
    async with db.write() as session:
        telegram, _ = await users.create_user(session, channel="telegram", external_id="7", now=NOW)
        terminal, _ = await users.create_user(session, channel="cli", external_id="7", now=NOW)
        assert telegram.id != terminal.id


async def test_events_keep_nlu_metadata_urdu_html_and_aware_utc_times(db: Database) -> None:
    """The event log stores Urdu script and raw HTML unchanged, and every time comes back aware, in UTC."""
    karachi = dt.timezone(dt.timedelta(hours=5))
    async with db.write() as session:
        user, _ = await users.create_user(
            session, channel="telegram", external_id="99", display_name="<b>x</b>", now=NOW
        )
        await events.add_events(
            session,
            events=[
                NewEvent(
                    kind="message", at=NOW.astimezone(karachi), user_id=user.id, text="پیسے کیسے نکالیں <script>",
                    intent="ask_payments", confidence=0.91, article_id="fiverr_withdrawal", nlu_source="rasa",
                    data={"entities": {"platform": ["fiverr"]}},
                ),
                NewEvent(kind="reply", at=NOW, user_id=user.id, text="ok", latency_ms=12.5),
            ],
        )  # fmt: skip
    async with db.read() as session:
        stored = await events.list_events(session, user_id=user.id)
        created = (await users.get_user_by_id(session, user_id=user.id)).created_at  # type: ignore[union-attr]
    assert [e.kind for e in stored] == ["message", "reply"]
    assert stored[0].text == "پیسے کیسے نکالیں <script>"
    assert stored[0].confidence == 0.91 and stored[0].nlu_source == "rasa"
    assert stored[0].data == {"entities": {"platform": ["fiverr"]}}
    assert stored[1].latency_ms == 12.5
    for moment in (stored[0].at, stored[1].at, created):
        assert moment.tzinfo is not None and moment.utcoffset() == dt.timedelta(0)
        assert moment == NOW  # the same instant whatever zone it was written in, and whatever TZ this runs under


async def test_a_naive_time_is_refused(db: Database) -> None:
    """Naive datetimes are bugs (whose local time?): storage refuses them instead of guessing."""
    import pytest

    from storage.db import StorageError

    with pytest.raises((StorageError, ValueError)):
        async with db.write() as session:
            await users.create_user(session, channel="telegram", external_id="1", now=dt.datetime(2026, 1, 1))


async def test_events_of_an_erased_user_stay_anonymous(db: Database) -> None:
    """An event written after its user was erased (a turn still in flight) keeps neither the user nor the words."""
    async with db.write() as session:
        user, _ = await users.create_user(session, channel="telegram", external_id="77", now=NOW)
    async with db.write() as session:
        await users.delete_user_data(session, user_id=user.id)
    async with db.write() as session:
        await events.add_events(session, events=[NewEvent(kind="message", at=NOW, user_id=user.id, text="my words")])
    async with db.read() as session:
        [event] = await events.list_events(session, kind="message")
    assert (event.user_id, event.text) == (None, None)


async def test_language_choice_is_stored(db: Database) -> None:
    async with db.write() as session:
        user, _ = await users.create_user(session, channel="telegram", external_id="5", now=NOW)
        await users.set_profile_field(session, user_id=user.id, field="language", value="ur")
    async with db.read() as session:
        stored = await users.get_user(session, channel="telegram", external_id="5")
        assert stored is not None and stored.language == "ur" and stored.language_chosen


async def test_tables_are_indexed_for_research_queries_and_nudge_sweeps(migrated_engine: AsyncEngine) -> None:
    """Queries by user and time, and sweeps over last-seen and join dates, stay fast at millions of rows."""

    def index_columns(connection, table):  # type: ignore[no-untyped-def]
        return [tuple(ix["column_names"]) for ix in inspect(connection).get_indexes(table)]

    async with migrated_engine.connect() as connection:
        event_indexes = await connection.run_sync(index_columns, "event")
        user_indexes = await connection.run_sync(index_columns, "user")
        milestone_indexes = await connection.run_sync(index_columns, "milestone_done")
    assert ("user_id", "at") in event_indexes and ("at",) in event_indexes
    assert ("last_seen_at",) in user_indexes and ("created_at",) in user_indexes
    assert ("milestone", "done_at") in milestone_indexes
