"""The calibration's decision rules, on made-up figures (the records themselves take 25 minutes to collect)."""

from __future__ import annotations

from typing import Any

from bench.calibrate import frontier, keeping_floor, report_bar, trust_bar


def records(out_of_scope: int, talk: int) -> list[dict[str, Any]]:
    return [{"label": "out_of_scope"}] * out_of_scope + [{"label": "greet"}] * talk + [{"label": "faq/x"}] * 10


def figures(caught: int, lost: int, first_reply: float = 0.9) -> dict[str, float]:
    """Rates for 100 out-of-scope and 100 conversational messages, 80 and 95 right when all small talk is trusted."""
    return {
        "out_of_scope_recall": (80 + caught) / 100,
        "conversational_kept": (95 - lost) / 100,
        "first_reply_right": first_reply,
    }


def test_the_small_talk_bar_is_the_one_that_wins_the_most_messages() -> None:
    """Round 12's trade: 0.5 caught 2 for 1 lost, 0.6 5 for 2, 0.7 6 for 5: 0.6 nets the most."""
    by_bar = {0.0: figures(0, 0), 0.5: figures(2, 1), 0.6: figures(5, 2), 0.7: figures(6, 5)}
    assert trust_bar(records(100, 100), by_bar) == 0.6


def test_a_bar_that_costs_first_replies_or_nets_nothing_is_not_chosen() -> None:
    by_bar = {0.0: figures(0, 0), 0.5: figures(1, 1), 0.6: figures(9, 0, first_reply=0.89)}
    assert trust_bar(records(100, 100), by_bar) == 0.0


def test_the_report_bar_trusts_rasa_only_when_that_keeps_more_than_it_loses() -> None:
    """From 1.01 (a report must name a milestone): 0.9 keeps 6 reports for 2 out-of-scope messages lost, 0.5 keeps
    8 for 9 lost; 0.9 nets the most. A bar that nets the same as 1.01 is not taken."""
    by_bar = {1.01: figures(0, 0), 0.9: figures(-2, -6), 0.5: figures(-9, -8)}
    assert report_bar(records(100, 100), by_bar) == 0.9
    assert report_bar(records(100, 100), {1.01: figures(0, 0), 0.9: figures(-3, -3)}) == 1.01


def test_the_personal_bar_is_priced_like_the_small_talk_bar() -> None:
    """From 0 (every stop, peers or human request acted on): 0.9 refuses 4 out-of-scope messages for 1 request lost."""
    by_bar = {0.0: figures(0, 0), 0.9: figures(4, 1), 0.99: figures(5, 6)}
    assert trust_bar(records(100, 100), by_bar) == 0.9


def test_the_frontier_keeps_only_settings_nothing_beats_on_both_counts() -> None:
    """A setting with less recall and no more right first replies than another is dominated and not shown."""

    def row(name: str, first_reply: float, recall: float) -> tuple[Any, ...]:
        return (name, {"first_reply_right": first_reply, "out_of_scope_recall": recall})

    rows = [row("strict", 0.63, 0.88), row("dominated", 0.62, 0.87), row("loose", 0.69, 0.87), row("far", 0.8, 0.5)]
    assert [r[0] for r in frontier(rows, 0.85, 0.9)] == ["loose", "strict"]


def test_a_bar_priced_after_the_grid_does_not_undo_the_floor_the_grid_chose_for() -> None:
    """The grid reached the floor (0.82) with small-talk bar 0.5; trusting all small talk again (0) nets more messages
    (0.5 catches 2 for 3 lost) but falls under the floor, so 0.5 stays."""
    by_bar = {0.0: figures(0, 0), 0.5: figures(2, 3), 0.6: figures(3, 6)}
    assert trust_bar(records(100, 100), by_bar) == 0.0
    allowed = keeping_floor(by_bar, floor=0.82, own=0.5)
    assert allowed == {0.5, 0.6}
    assert trust_bar(records(100, 100), by_bar, allowed) == 0.5
