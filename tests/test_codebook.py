"""docs/EVENTS.md, the researchers' codebook, lists exactly the event kinds and decisions the code writes."""

from __future__ import annotations

import re

from bot.settings import PROJECT_ROOT
from storage.codebook import Decision, EventKind

CODEBOOK = PROJECT_ROOT / "docs" / "EVENTS.md"


def documented(section: str) -> set[str]:
    """The first-column `names` of the table under the heading that starts with `section`."""
    text = CODEBOOK.read_text(encoding="utf-8")
    body = text.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE))


def test_every_event_kind_is_in_the_codebook_and_nothing_else() -> None:
    assert documented("Kinds") == {kind.value for kind in EventKind}


def test_every_reply_decision_is_in_the_codebook_and_nothing_else() -> None:
    assert documented("Decisions") == {decision.value for decision in Decision}


def test_every_kind_and_decision_says_what_it_means() -> None:
    assert all(member.description for member in (*EventKind, *Decision))
