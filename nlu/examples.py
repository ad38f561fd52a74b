"""Reading Rasa NLU YAML files (training data and the held-out test file) as plain (text, label) pairs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

NLU_DIR = Path(__file__).resolve().parent
CONVERSATION_DATA = NLU_DIR / "data" / "conversation.yml"
TEST_FILE = NLU_DIR / "tests" / "test_nlu.yml"
_ANNOTATION = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")


@dataclass(frozen=True)
class Example:
    text: str
    label: str  # an intent name, or faq/<article-id>


def read_examples(path: Path) -> list[Example]:
    """Every example of every intent block, entity marks removed (`[fiverr](platform)` → `fiverr`)."""
    if not path.exists():
        return []
    examples = []
    for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu", []):
        if "intent" not in block:
            continue
        for line in str(block.get("examples", "")).splitlines():
            text = line.strip()
            if text.startswith("- "):
                examples.append(Example(_ANNOTATION.sub(r"\1", text[2:].strip()), str(block["intent"])))
    return examples


def intent_examples(path: Path = CONVERSATION_DATA) -> dict[str, list[str]]:
    """The examples of each intent, e.g. the hand-written conversational ones (greet, report_progress...)."""
    grouped: dict[str, list[str]] = {}
    for example in read_examples(path):
        grouped.setdefault(example.label, []).append(example.text)
    return grouped
