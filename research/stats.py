"""The few statistics the report needs, in plain Python: Wilson intervals for a share, Newcombe's interval for a
difference of two shares, and small-cell suppression."""

from __future__ import annotations

import math

Z95 = 1.959963984540054
SMALL_CELL = 5


def cell(count: int) -> str:
    """A count as the report shows it: under 5 (but not 0) is "<5", so nobody is singled out."""
    return "<5" if 0 < count < SMALL_CELL else f"{count:,}"


def small(count: int) -> bool:
    return 0 < count < SMALL_CELL


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float, float]:
    """(share, low, high): the Wilson score interval, sensible for small samples and shares near 0 or 1."""
    if trials <= 0:
        return 0.0, 0.0, 1.0
    share = successes / trials
    denominator = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / denominator
    return share, max(0.0, centre - half), min(1.0, centre + half)


def newcombe(a: tuple[int, int], b: tuple[int, int], z: float = Z95) -> tuple[float, float, float]:
    """(difference, low, high) for share(a) − share(b), each given as (successes, trials): Newcombe's hybrid score
    interval (method 10), built from the two Wilson intervals."""
    p1, l1, u1 = wilson(*a, z=z)
    p2, l2, u2 = wilson(*b, z=z)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return difference, low, high


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
