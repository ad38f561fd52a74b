"""The matching rules as properties (hypothesis): whatever the crowd, nobody is paired with themselves, a pair proposed
before never comes back, buddies always share a language, nobody gets two buddies, the rung rule holds, and nobody is
left waiting while a compatible partner waits too. Plus the preferences, and the circle digest's minimum cell."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.peers import (
    PeerSettings,
    Seeker,
    affinity,
    compatible,
    digest_slot,
    match,
    plan_digests,
    start_cohort,
    visible_cells,
)
from content.library import Library
from storage.peers import CircleRecipient

seekers = st.lists(
    st.builds(
        Seeker,
        user_id=st.integers(1, 60),
        language=st.sampled_from(["en", "ur"]),
        rung=st.integers(0, 4),
        seeking=st.sampled_from(["peer", "ahead", "help"]),
        skill=st.sampled_from([None, "design", "writing"]),
        platforms=st.frozensets(st.sampled_from(["fiverr", "upwork"]), max_size=2),
        city=st.sampled_from([None, "lahore", "karachi"]),
    ),
    max_size=40,
    unique_by=lambda s: s.user_id,
)
pairs_before = st.sets(st.tuples(st.integers(1, 60), st.integers(1, 60)).map(lambda p: (min(p), max(p))), max_size=80)


@settings(max_examples=300, deadline=None)
@given(crowd=seekers, excluded=pairs_before)
def test_matching_never_breaks_a_rule(crowd: list[Seeker], excluded: set[tuple[int, int]]) -> None:
    """Never self, never a pair seen before, language always equal, at most one buddy each, the rung rule holds."""
    by_id = {s.user_id: s for s in crowd}
    pairs = match(crowd, excluded=excluded)
    matched = [user for pair in pairs for user in pair]
    assert len(matched) == len(set(matched))  # at most one buddy each
    for a, b in pairs:
        assert a != b
        assert (min(a, b), max(a, b)) not in excluded
        one, two = by_id[a], by_id[b]
        assert one.language == two.language
        if one.seeking == "peer" or two.seeking == "peer":
            assert one.seeking == two.seeking == "peer" and one.rung == two.rung
        else:
            seeker, helper = (one, two) if one.seeking == "ahead" else (two, one)
            assert (seeker.seeking, helper.seeking) == ("ahead", "help") and helper.rung >= seeker.rung + 1


@settings(max_examples=200, deadline=None)
@given(crowd=seekers, excluded=pairs_before)
def test_nobody_waits_while_a_compatible_partner_waits_too(crowd: list[Seeker], excluded: set[tuple[int, int]]) -> None:
    """With a window wide enough to see everyone, the odd ones out have nobody left they could be paired with."""
    pairs = match(crowd, excluded=excluded, window=len(crowd) + 1)
    matched = {user for pair in pairs for user in pair}
    left = [s for s in crowd if s.user_id not in matched]
    for i, a in enumerate(left):
        for b in left[i + 1 :]:
            assert not compatible(a, b) or (min(a.user_id, b.user_id), max(a.user_id, b.user_id)) in excluded


def test_the_same_skill_is_preferred_then_a_platform_then_the_city() -> None:
    """Sana (design, Lahore, shared) waits longest; of three designers at her step she gets the one who also sells on
    Fiverr and shared Lahore, not the first in line."""
    sana = Seeker(1, "ur", 2, "peer", skill="design", platforms=frozenset({"fiverr"}), city="lahore")
    writer = Seeker(2, "ur", 2, "peer", skill="writing", platforms=frozenset({"fiverr"}), city="lahore")
    designer = Seeker(3, "ur", 2, "peer", skill="design")
    best = Seeker(4, "ur", 2, "peer", skill="design", platforms=frozenset({"fiverr"}), city="lahore")
    assert match([sana, writer, designer, best]) == [(1, 4), (2, 3)]
    assert affinity(sana, best) > affinity(sana, designer) > affinity(sana, writer)


def test_a_city_counts_only_when_both_shared_it() -> None:
    """A city not shared is not known to matching (None), so it never makes a preference."""
    shared = Seeker(1, "en", 0, "peer", city="quetta")
    unshared = Seeker(2, "en", 0, "peer", city=None)
    assert affinity(shared, unshared) == 0


def test_a_seeker_gets_the_nearest_helper_ahead_and_never_one_behind() -> None:
    """Bilal (rung 1) wants someone ahead: the helper on rung 2 beats the one on rung 5; a helper on his own rung
    or behind never fits; languages never mix."""
    bilal = Seeker(10, "en", 1, "ahead")
    behind = Seeker(11, "en", 1, "help")
    far = Seeker(12, "en", 5, "help")
    near = Seeker(13, "en", 2, "help")
    urdu = Seeker(14, "ur", 3, "help")
    assert match([bilal, behind, far, near, urdu]) == [(10, 13)]


def test_digest_cells_under_five_are_never_shown(library: Library) -> None:
    """Four people of a start week won a first job: not shown; five did: shown, and nothing names them."""
    assert visible_cells({"first_job_won": 4, "first_proposal_sent": 5}, min_cell=5) == {"first_proposal_sent": 5}
    monday = digest_slot(dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC), PeerSettings())
    assert monday == dt.datetime(2026, 11, 30, 5, 0, tzinfo=dt.UTC)
    started = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
    other_week = dt.datetime(2026, 10, 12, 8, 0, tzinfo=dt.UTC)
    me = CircleRecipient(1, "111", "en", started + dt.timedelta(days=1))
    four = [("first_job_won", started)] * 4 + [("first_job_won", other_week)] * 9
    assert plan_digests(library, [me], four, slot=monday, settings=PeerSettings()) == []
    five = [("first_job_won", started)] * 5 + [("first_proposal_sent", started)] * 3
    [digest] = plan_digests(library, [me], five, slot=monday, settings=PeerSettings())
    assert "5 people who started with you won their first job" in digest.payload["text"]
    assert "proposal" not in digest.payload["text"]  # 3 < 5: that cell stays hidden
    assert start_cohort(started) == start_cohort(me.started_at)
