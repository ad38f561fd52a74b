"""bench/held_out.py keeps parses so two models can be compared message by message without Rasa running."""

from __future__ import annotations

from typing import Any

import pytest

from bench.held_out import _as_json, _understanding, compare, misses, outcomes
from bot.core.answers import Answers
from content.library import Library
from nlu.understanding import ArticleCandidate, Understanding


def parsed(intent: str, confidence: float) -> dict[str, Any]:
    understanding = Understanding(intent=intent, confidence=confidence, source="rasa")
    return {
        "mine.yml": [
            {"text": "koi gym partner chahiye", "label": "out_of_scope", "understanding": _as_json(understanding)}
        ]
    }


def test_a_stored_parse_reads_back_as_the_same_understanding() -> None:
    understanding = Understanding(
        intent="faq", confidence=0.99, source="rasa", entities={"platform": ["fiverr"]},
        articles=(ArticleCandidate("fiverr_fees", 0.8), ArticleCandidate("fiverr_withdrawal", 0.1)),
    )  # fmt: skip
    assert _understanding(_as_json(understanding)) == understanding


def test_compare_names_the_message_a_retraining_won(library: Library, capsys: pytest.CaptureFixture[str]) -> None:
    """The old model took a gym partner request for a buddy request; the new one refuses it."""
    answers = Answers(library)
    compare(outcomes(parsed("find_peers", 0.99), answers), outcomes(parsed("out_of_scope", 0.99), answers), library)
    printed = capsys.readouterr().out
    assert printed.startswith(
        "+ mine.yml: 'koi gym partner chahiye' [out_of_scope] find_peers/None -> out_of_scope/None"
    )


def test_misses_lists_only_the_wrong_outcomes(library: Library, capsys: pytest.CaptureFixture[str]) -> None:
    answers = Answers(library)
    misses(outcomes(parsed("out_of_scope", 0.99), answers), library)
    assert capsys.readouterr().out == ""
    misses(outcomes(parsed("find_peers", 0.99), answers), library)
    assert capsys.readouterr().out.startswith("x mine.yml: 'koi gym partner chahiye' [out_of_scope] find_peers/None")
