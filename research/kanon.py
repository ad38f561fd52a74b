"""k-anonymity on the users table's quasi-identifiers (city × skill × platforms × cohort).

A combination shared by fewer than k users is generalised before anything is written: first its city becomes
"other", then, if still rarer than k, its skill, then its platforms. Cities and skills are free text in the profile,
so they are normalised first (case, spacing, common spellings), which also merges "Lahore", "lahore " and "لاہور".
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from research.scrub import scrub

K = 5
OTHER = "other"
QI_NAMES = ("city", "skill", "platforms", "cohort")
QI = tuple[str, str, str, str]

_CITY_ALIASES = {
    "lhr": "lahore", "لاہور": "lahore", "khi": "karachi", "کراچی": "karachi", "isb": "islamabad",
    "isl": "islamabad", "اسلام آباد": "islamabad", "اسلام اباد": "islamabad", "rwp": "rawalpindi",
    "pindi": "rawalpindi", "راولپنڈی": "rawalpindi", "پشاور": "peshawar", "ملتان": "multan",
    "فیصل آباد": "faisalabad", "faisal abad": "faisalabad", "fsd": "faisalabad", "lyallpur": "faisalabad",
    "کوئٹہ": "quetta", "حیدرآباد": "hyderabad", "حیدر آباد": "hyderabad", "سیالکوٹ": "sialkot",
    "گوجرانوالہ": "gujranwala",
}  # fmt: skip
_SPACES = re.compile(r"\s+")


def _clean(value: str | None) -> str:
    if not value:
        return ""
    return _SPACES.sub(" ", value.strip().casefold()).strip(" .,;:!?")


@lru_cache(maxsize=65536)
def normalise_city(value: str | None) -> str:
    city = _clean(value).removesuffix(" city").removesuffix(", pakistan").removesuffix(" pakistan").strip()
    return _CITY_ALIASES.get(city, city)


@lru_cache(maxsize=65536)
def normalise_skill(value: str | None) -> str:
    return _clean(scrub(value)) if value else ""


def platform_key(platforms: Iterable[str] | None) -> str:
    """`["Upwork", "fiverr"]` → `"fiverr+upwork"`."""
    if not platforms:
        return ""
    return "+".join(sorted({_clean(str(p)) for p in platforms if str(p).strip()}))


@lru_cache(maxsize=4096)
def platform_key_of_json(stored: str | None) -> str:
    """The same from the column's JSON text (a handful of distinct values: decoded once each)."""
    if not stored or stored == "null":
        return ""
    value = json.loads(stored)
    return platform_key(value if isinstance(value, list) else [str(value)])


def cohort_of(started: dt.datetime) -> tuple[str, dt.date]:
    """The ISO week a user started in: (`2026-W48`, its Monday)."""
    day = started.astimezone(dt.UTC).date()
    year, week, weekday = day.isocalendar()
    return f"{year}-W{week:02d}", day - dt.timedelta(days=weekday - 1)


@lru_cache(maxsize=4096)
def cohort_of_week(monday: dt.date) -> str:
    """`2026-W48` for the week starting on that Monday."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Generalisation:
    k: int = K
    users: int = 0
    generalised: Counter[str] = field(default_factory=Counter)  # users whose city/skill/platforms became "other"
    users_generalised: int = 0  # users with at least one of them generalised
    still_below_k: int = 0  # users whose combination stays rarer than k with all three generalised (only the week)
    mapping: dict[QI, QI] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {
            "k": self.k,
            "quasi_identifiers": list(QI_NAMES),
            "users": self.users,
            "generalised": {name: self.generalised.get(name, 0) for name in QI_NAMES[:3]},
            "users_generalised": self.users_generalised,
            "still_below_k": self.still_below_k,
            "rule": f"combinations shared by fewer than {self.k} users: city -> other, then skill, then platforms",
        }


def generalise(counts: Counter[QI], k: int = K) -> Generalisation:
    """Decide, from the combination counts alone, what each combination becomes."""
    result = Generalisation(k=k, users=sum(counts.values()))
    current: dict[QI, QI] = {qi: qi for qi in counts}
    for position, name in enumerate(QI_NAMES[:3]):
        groups: Counter[QI] = Counter()
        for original, now in current.items():
            groups[now] += counts[original]
        for original, now in current.items():
            if groups[now] < k and now[position] != OTHER:
                current[original] = (*now[:position], OTHER, *now[position + 1 :])  # type: ignore[assignment]
                result.generalised[name] += counts[original]
    final: Counter[QI] = Counter()
    for original, now in current.items():
        final[now] += counts[original]
    result.still_below_k = sum(n for qi, n in final.items() if n < k)
    result.users_generalised = sum(counts[o] for o, now in current.items() if now != o)
    result.mapping = current
    return result
