"""Inline-button data: one typed codec for every feature (build, parse, validate).

Telegram lets a client send any callback data, not only what the bot put on a button, so nothing here trusts a
string. `encode()` turns an action into `prefix:field:field` (at most 64 bytes, Telegram's limit, checked every
time) and `decode()` turns data back into a validated action, or None for anything the bot would never have sent.
Every action a button can carry is declared below: this file is the whole protocol.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin
from zoneinfo import available_timezones

MAX_BYTES = 64
_TEXT = re.compile(r"[A-Za-z0-9_.+/-]{1,48}")
_INT = re.compile(r"-?\d{1,12}")


class ButtonAction:
    """Base of every button action: a frozen dataclass with a `prefix` (one or two `:`-separated words)."""

    prefix: ClassVar[str]


_REGISTRY: dict[str, type[ButtonAction]] = {}
A = TypeVar("A", bound=type[ButtonAction])


def button(prefix: str) -> typing.Callable[[A], A]:
    """Register an action class under its prefix, e.g. `@button("ms:yes")`."""

    def register(cls: A) -> A:
        if prefix in _REGISTRY:
            raise ValueError(f"button prefix {prefix!r} is registered twice")
        cls.prefix = prefix
        _REGISTRY[prefix] = cls
        return cls

    return register


def registered() -> dict[str, type[ButtonAction]]:
    return dict(_REGISTRY)


@cache
def encode(action: ButtonAction) -> str:
    """The callback data for an action; raises ValueError if it would not be accepted back or exceeds 64 bytes.
    (Cached: actions are frozen, and the round-trip check is the expensive part.)"""
    parts = [action.prefix]
    for spec in dataclasses.fields(action):  # type: ignore[arg-type]
        value = getattr(action, spec.name)
        if value is None:
            continue
        parts.append(("1" if value else "0") if isinstance(value, bool) else str(value))
    data = ":".join(parts)
    if len(data.encode()) > MAX_BYTES:
        raise ValueError(f"button data {data!r} is {len(data.encode())} bytes; Telegram allows {MAX_BYTES}")
    if decode(data) != action:
        raise ValueError(f"button data {data!r} would not decode to {action!r}")
    return data


def decode(data: str) -> ButtonAction | None:
    """The validated action behind callback data, or None when the bot never sends such data."""
    if not data or len(data.encode()) > MAX_BYTES:
        return None
    parts = data.split(":")
    for width in (2, 1):
        cls = _REGISTRY.get(":".join(parts[:width]))
        if cls is not None:
            return _build(cls, parts[width:])
    return None


def _build(cls: type[ButtonAction], values: list[str]) -> ButtonAction | None:
    specs = _field_specs(cls)
    required = sum(1 for _, _, optional in specs if not optional)
    if not required <= len(values) <= len(specs):
        return None
    kwargs: dict[str, Any] = {}
    for (name, kind, _), raw in zip(specs, values, strict=False):
        parsed = _parse(kind, raw)
        if parsed is _INVALID:
            return None
        kwargs[name] = parsed
    try:
        return cls(**kwargs)
    except (TypeError, ValueError):
        return None


_INVALID = object()


def _parse(kind: Any, raw: str) -> Any:
    if get_origin(kind) is Literal:
        return raw if raw in get_args(kind) else _INVALID
    if kind is bool:
        return {"1": True, "0": False}.get(raw, _INVALID)
    if kind is int:
        return int(raw) if _INT.fullmatch(raw) else _INVALID
    return raw if _TEXT.fullmatch(raw) else _INVALID


_SPECS: dict[type[ButtonAction], tuple[tuple[str, Any, bool], ...]] = {}


def _field_specs(cls: type[ButtonAction]) -> tuple[tuple[str, Any, bool], ...]:
    """(name, type, optional) of each field, in order; read once per class."""
    if cls in _SPECS:
        return _SPECS[cls]
    hints = typing.get_type_hints(cls)
    specs = []
    for spec in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = hints[spec.name]
        optional = False
        if get_origin(kind) in (Union, types.UnionType) and type(None) in get_args(kind):
            kind = next(arg for arg in get_args(kind) if arg is not type(None))
            optional = True
        specs.append((spec.name, kind, optional))
    _SPECS[cls] = tuple(specs)
    return _SPECS[cls]


@cache
def known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


# ---- the actions ---------------------------------------------------------------------------------------------

Language = Literal["en", "ur"]


@button("lang")
@dataclass(frozen=True)
class ChooseLanguage(ButtonAction):
    language: Language


@button("fb")
@dataclass(frozen=True)
class Feedback(ButtonAction):
    verdict: Literal["up", "down"]
    article_id: str


@button("art")
@dataclass(frozen=True)
class OpenArticle(ButtonAction):
    article_id: str


@button("ms:yes")
@dataclass(frozen=True)
class ConfirmMilestone(ButtonAction):
    milestone_id: str


@button("ms:no")
@dataclass(frozen=True)
class DeclineMilestone(ButtonAction):
    milestone_id: str


@button("ms:set")
@dataclass(frozen=True)
class SetMilestone(ButtonAction):
    """A checklist tick that says which state it sets, so a replayed press changes nothing."""

    milestone_id: str
    done: bool


@button("ms:show")
@dataclass(frozen=True)
class ShowProgress(ButtonAction):
    pass


@button("ms:tog")
@dataclass(frozen=True)
class LegacyToggle(ButtonAction):
    """A checklist button from before ticks said their state: shows the checklist again instead of guessing."""

    milestone_id: str


@button("pf:edit")
@dataclass(frozen=True)
class EditProfile(ButtonAction):
    pass


@button("pf:skip")
@dataclass(frozen=True)
class SkipProfileStep(ButtonAction):
    """Skip the question `step` (older buttons carry no step and skip the open question)."""

    step: Literal["skill", "platforms", "city", "language", "timezone"] | None = None


@button("pf:set")
@dataclass(frozen=True)
class SetProfileValue(ButtonAction):
    """A choice on a profile question: only languages the bot speaks and real IANA time zones."""

    field: Literal["language", "timezone"]
    value: str

    def __post_init__(self) -> None:
        if self.field == "language" and self.value not in ("en", "ur"):
            raise ValueError(f"unknown language {self.value!r}")
        if self.field == "timezone" and self.value not in known_timezones():
            raise ValueError(f"unknown time zone {self.value!r}")


@button("consent")
@dataclass(frozen=True)
class Consent(ButtonAction):
    answer: Literal["yes", "no"]


@button("del")
@dataclass(frozen=True)
class Erase(ButtonAction):
    step: Literal["ask", "yes", "no"]


@button("nd")
@dataclass(frozen=True)
class NudgeTap(ButtonAction):
    """A button on a nudge: why it came, an article it offers, or an effort count. Records that it was opened."""

    rule: str
    verb: Literal["why", "art", "eff"]
    arg: str | None = None


@button("np")
@dataclass(frozen=True)
class NudgePace(ButtonAction):
    """/nudges: how often nudges may come ("show" opens the settings)."""

    pace: Literal["daily", "weekly", "off", "show"]


@button("px")
@dataclass(frozen=True)
class Proactive(ButtonAction):
    """/stop and /resume as buttons: every proactive message, not only nudges."""

    action: Literal["stop", "resume"]


# ---- coordinators (issue 10) ---------------------------------------------------------------------------------


@button("bc")
@dataclass(frozen=True)
class BroadcastStep(ButtonAction):
    """A step of the /broadcast wizard on broadcast `broadcast_id`: pick a tip, skip the Urdu text, pick a segment,
    send now or at a time, confirm (again, after the same-day warning) or cancel."""

    verb: Literal["tip", "skip", "seg", "now", "at", "go", "again", "x"]
    broadcast_id: int
    arg: str | None = None


@button("ho")
@dataclass(frozen=True)
class HandoffAction(ButtonAction):
    """A hand-off ticket: closed by a coordinator (in the group), ended by the user, or the user shows their name."""

    verb: Literal["close", "end", "name"]
    ticket_id: int


@button("un")
@dataclass(frozen=True)
class UnansweredAdded(ButtonAction):
    """/unanswered: a coordinator marks a group of questions as added to content."""

    group: str


# ---- peer support (issue 12) -----------------------------------------------------------------------------------

Seeking = Literal["peer", "ahead", "help"]


@button("bw")
@dataclass(frozen=True)
class BuddyWant(ButtonAction):
    """/buddy: what kind of buddy (someone at my step, a step ahead, or I help someone behind): shows what is shared."""

    seeking: Seeking


@button("bj")
@dataclass(frozen=True)
class BuddyJoin(ButtonAction):
    """The opt-in itself, after seeing what a buddy would see; `city` says whether the city is shown."""

    seeking: Seeking
    city: bool


@button("bx")
@dataclass(frozen=True)
class BuddyStop(ButtonAction):
    """Stop looking for a buddy (or cancel the opt-in before it is made)."""


@button("bp")
@dataclass(frozen=True)
class BuddyPair(ButtonAction):
    """A pair's buttons: accept or skip the card; write, report, end or share my @username; the weekly check-in."""

    verb: Literal["yes", "skip", "msg", "rep", "end", "name", "met", "nomet"]
    pair_id: int


@button("pr")
@dataclass(frozen=True)
class PairReview(ButtonAction):
    """Under a buddy report in the coordinators' group: end the pair and let the reported person be matched again
    ("free"), or end it and take them off the buddy list ("ban")."""

    verb: Literal["free", "ban"]
    pair_id: int


@button("ws")
@dataclass(frozen=True)
class WinStoryAnswer(ButtonAction):
    """After a first job won: write one line of advice for people one step behind, or no thanks."""

    verb: Literal["write", "no"]


@button("wa")
@dataclass(frozen=True)
class WinStoryReview(ButtonAction):
    """Under a win story in the coordinators' group: approve it for the digests, or not."""

    verb: Literal["ok", "no"]
    story_id: int


@button("cr")
@dataclass(frozen=True)
class CircleSet(ButtonAction):
    """/circle: join or leave the weekly circle digest."""

    on: bool
