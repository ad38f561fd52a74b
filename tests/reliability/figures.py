"""Figures the reliability tests measure (latencies, counts), printed at the end of the run for docs/RELIABILITY.md."""

from __future__ import annotations

from collections import Counter

FIGURES: dict[str, str] = {}
COUNTS: Counter[str] = Counter()


def record(name: str, value: object) -> None:
    FIGURES[name] = str(value)


def count(name: str, n: int = 1) -> None:
    COUNTS[name] += n
