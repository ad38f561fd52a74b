"""Storage on every backend: users are unique per channel, events are appended with their NLU metadata."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from storage import repository


async def test_first_contact_creates_user_once(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Writing twice from the same Telegram id is one user, and a new display name is remembered."""
    async with sessions.begin() as session:
        first, created = await repository.get_or_create_user(
            session, channel="telegram", external_id="42", display_name="Ali"
        )
        assert created
    async with sessions.begin() as session:
        again, created_again = await repository.get_or_create_user(
            session, channel="telegram", external_id="42", display_name="Ali Raza"
        )
        assert not created_again
        assert again.id == first.id
    async with sessions() as session:
        stored = await repository.get_user(session, channel="telegram", external_id="42")
        assert stored is not None and stored.display_name == "Ali Raza"


async def test_same_id_on_two_channels_is_two_users(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        telegram, _ = await repository.get_or_create_user(session, channel="telegram", external_id="7")
        terminal, _ = await repository.get_or_create_user(session, channel="cli", external_id="7")
        assert telegram.id != terminal.id


async def test_events_keep_nlu_metadata_urdu_and_html(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The event log stores Urdu script and raw HTML unchanged, with intent, confidence, source and latency."""
    async with sessions.begin() as session:
        user, _ = await repository.get_or_create_user(
            session, channel="telegram", external_id="99", display_name="<b>x</b>"
        )
        await repository.record_event(
            session, user_id=user.id, kind="message", text="پیسے کیسے نکالیں <script>", intent="ask_payments",
            confidence=0.91, article_id="fiverr_withdrawal", nlu_source="rasa",
            data={"entities": {"platform": ["fiverr"]}},
        )  # fmt: skip
        await repository.record_event(session, user_id=user.id, kind="reply", text="ok", latency_ms=12.5)
    async with sessions() as session:
        events = await repository.list_events(session, user_id=user.id)
    assert [e.kind for e in events] == ["message", "reply"]
    assert events[0].text == "پیسے کیسے نکالیں <script>"
    assert events[0].confidence == 0.91 and events[0].nlu_source == "rasa"
    assert events[0].data == {"entities": {"platform": ["fiverr"]}}
    assert events[1].latency_ms == 12.5
    assert events[0].at.tzinfo is not None or events[0].at <= dt.datetime.now()


async def test_language_choice_is_stored(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        user, _ = await repository.get_or_create_user(session, channel="telegram", external_id="5")
        await repository.set_profile_field(session, user_id=user.id, field="language", value="ur")
    async with sessions() as session:
        stored = await repository.get_user(session, channel="telegram", external_id="5")
        assert stored is not None and stored.language == "ur" and stored.language_chosen


async def test_event_table_is_indexed_for_user_and_time(migrated_engine: AsyncEngine) -> None:
    """Researchers' queries by user and by time stay fast at millions of rows."""

    def index_columns(connection):  # type: ignore[no-untyped-def]
        return [tuple(ix["column_names"]) for ix in inspect(connection).get_indexes("event")]

    async with migrated_engine.connect() as connection:
        indexed = await connection.run_sync(index_columns)
    assert ("user_id", "at") in indexed
    assert ("at",) in indexed
