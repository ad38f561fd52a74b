"""Time is an input: every part of Rahnuma asks a Clock, so tests and `--at` runs decide what "now" is."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring durations (latency); only differences mean anything."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def monotonic(self) -> float:
        return time.perf_counter()


class FrozenClock:
    """A clock that stands still until moved: `rahnuma dispatch --at`, and every test that needs time."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware time")
        self._now = at.astimezone(dt.UTC)
        self._monotonic = 0.0

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, **delta: float) -> dt.datetime:
        step = dt.timedelta(**delta)
        self._now += step
        self._monotonic += step.total_seconds()
        return self._now

    def set(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FrozenClock needs an aware time")
        self._monotonic += (at - self._now).total_seconds()
        self._now = at.astimezone(dt.UTC)
