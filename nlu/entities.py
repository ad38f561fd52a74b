"""Entity surface forms from nlu/entities.yml, for the lexical fallback and for annotating generated examples."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

ENTITIES_FILE = Path(__file__).resolve().parent / "entities.yml"


@dataclass(frozen=True)
class SurfaceForm:
    entity: str
    value: str
    text: str
    pattern: re.Pattern[str]


@cache
def load_surface_forms(path: Path = ENTITIES_FILE) -> tuple[SurfaceForm, ...]:
    """Every (entity, canonical value, listed spelling), longest first so "up work" wins over "up"."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    forms = []
    for entity, values in (raw or {}).items():
        for value, spellings in (values or {}).items():
            # Only the listed spellings: a canonical value such as "freelancer" is also an ordinary word.
            for spelling in {str(spelling) for spelling in spellings or []}:
                text = spelling.strip().lower()
                if text:
                    pattern = re.compile(rf"(?<!\w){re.escape(text)}(?!\w)", re.IGNORECASE)
                    forms.append(SurfaceForm(str(entity), str(value), text, pattern))
    return tuple(sorted(forms, key=lambda form: -len(form.text)))


def find_entities(text: str) -> list[tuple[int, int, SurfaceForm]]:
    """Non-overlapping matches as (start, end, form), in text order."""
    taken: list[tuple[int, int, SurfaceForm]] = []
    for form in load_surface_forms():
        for match in form.pattern.finditer(text):
            start, end = match.span()
            if all(end <= s or start >= e for s, e, _ in taken):
                taken.append((start, end, form))
    return sorted(taken, key=lambda item: item[0])


def extract_entities(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for _, _, form in find_entities(text):
        values = found.setdefault(form.entity, [])
        if form.value not in values:
            values.append(form.value)
    return found
