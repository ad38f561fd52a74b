"""When Rahnuma may speak first: never at night in the recipient's own time zone, never in Friday prayer time.

Held messages wait for the window to open; they are never dropped for quiet hours alone (only their expiry does).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
FRIDAY = 4


@dataclass(frozen=True)
class Span:
    """A daily span of local time; it may cross midnight (22:00-09:00)."""

    start: dt.time
    end: dt.time

    @classmethod
    def parse(cls, text: str) -> Span:
        match = _SPAN.match(text.strip())
        if not match:
            raise ValueError(f"expected HH:MM-HH:MM, got {text!r}")
        h1, m1, h2, m2 = (int(part) for part in match.groups())
        return cls(dt.time(h1, m1), dt.time(h2, m2))

    def contains(self, moment: dt.time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class QuietHours:
    night: Span = Span(dt.time(22, 0), dt.time(9, 0))
    friday_prayer: Span | None = Span(dt.time(12, 30), dt.time(14, 30))

    def is_quiet(self, local: dt.datetime) -> bool:
        moment = local.time()
        if self.night.contains(moment):
            return True
        return self.friday_prayer is not None and local.weekday() == FRIDAY and self.friday_prayer.contains(moment)

    def next_open(self, now: dt.datetime, timezone: str) -> dt.datetime:
        """`now` if a message may go now, else the first minute (UTC) the recipient's quiet hours end."""
        zone = ZoneInfo(timezone)
        local = now.astimezone(zone)
        for _ in range(4):  # a night end can fall inside Friday prayer time; each step moves past one span
            if not self.is_quiet(local):
                return local.astimezone(dt.UTC) if local != now.astimezone(zone) else now
            ends = [self._next(local, self.night.end, zone)]
            if self.friday_prayer is not None:
                ends.append(self._next(local, self.friday_prayer.end, zone))
            local = min(end for end in ends if end > local)
        raise ValueError(f"quiet hours {self.night} leave no time to speak")

    @staticmethod
    def _next(local: dt.datetime, at: dt.time, zone: ZoneInfo) -> dt.datetime:
        """The next moment after `local` when the local clock shows `at`."""
        today = dt.datetime.combine(local.date(), at, tzinfo=zone)
        return today if today > local else dt.datetime.combine(local.date() + dt.timedelta(days=1), at, tzinfo=zone)
