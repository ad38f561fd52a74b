"""The schema keeps the buddy rules even against a buggy or concurrent caller: the same two people are proposed at
most once, ever, and nobody sits in two open pairs; erasing one side keeps the other's history of who they met."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import insert, select

from storage import peers
from storage import users as stored_users
from storage.db import Database, StorageError
from storage.models import PeerPair, PeerSeat, User
from tests.conftest import TEST_NOW


async def three_users(db: Database) -> list[int]:
    async with db.write() as session:
        await session.execute(
            insert(User),
            [
                {"channel": "telegram", "external_id": str(900_000 + i), "display_name": f"U{i}", "language": "en",
                 "language_chosen": True, "created_at": TEST_NOW, "last_seen_at": TEST_NOW, "nudge_pace": "daily"}
                for i in range(3)
            ],
        )  # fmt: skip
        return list(await session.scalars(select(User.id).where(User.external_id.like("9000%")).order_by(User.id)))


async def test_the_same_two_people_are_never_proposed_twice(db: Database) -> None:
    """A pair proposed, then declined, is skipped by a later insert (in either order of the two ids)."""
    a, b, _ = await three_users(db)
    async with db.write() as session:
        [(pair_id, low, high)] = await peers.propose(session, pairs=[(b, a)], now=TEST_NOW)
        assert (low, high) == (min(a, b), max(a, b))
        assert await peers.close_pair(session, pair_id=pair_id, status="declined", reason="skip", now=TEST_NOW)
        assert await peers.propose(session, pairs=[(a, b)], now=TEST_NOW + dt.timedelta(days=1)) == []
        assert await peers.known_pairs(session) == {(min(a, b), max(a, b))}


async def test_a_second_open_pair_for_the_same_person_fails_as_a_whole(db: Database) -> None:
    """Two matching passes that both give user A a buddy: the second transaction fails and changes nothing."""
    a, b, c = await three_users(db)
    async with db.write() as session:
        await peers.propose(session, pairs=[(a, b)], now=TEST_NOW)
    with pytest.raises(StorageError):
        async with db.write() as session:
            await peers.propose(session, pairs=[(a, c)], now=TEST_NOW)
    async with db.read() as session:
        assert len(list(await session.scalars(select(PeerPair)))) == 1
        assert {s.user_id for s in await session.scalars(select(PeerSeat))} == {a, b}


async def test_erasing_one_side_ends_the_pair_and_keeps_the_other_sides_history(db: Database) -> None:
    """Erasure sets the erased side to NULL, frees the other's seat and marks the pair ended by deletion."""
    a, b, _ = await three_users(db)
    async with db.write() as session:
        [(pair_id, _, _)] = await peers.propose(session, pairs=[(a, b)], now=TEST_NOW)
        await peers.activate(session, pair_id=pair_id, now=TEST_NOW)
    async with db.write() as session:
        await stored_users.delete_user_data(session, user_id=a, now=TEST_NOW)
    async with db.read() as session:
        pair = await peers.get_pair(session, pair_id=pair_id)
        assert pair is not None and (pair.status, pair.ended_reason) == ("ended", "deleted")
        assert a not in (pair.user_low, pair.user_high) and b in (pair.user_low, pair.user_high)
        assert list(await session.scalars(select(PeerSeat))) == []
        assert [p.id for p in await peers.left_unnoticed(session)] == [pair_id]
