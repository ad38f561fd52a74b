"""Figures the reliability tests measure (latencies, counts), printed at the end of the run for docs/RELIABILITY.md."""

from __future__ import annotations

FIGURES: dict[str, str] = {}


def record(name: str, value: object) -> None:
    FIGURES[name] = str(value)
