"""Scrub personal details out of free text before it leaves in an export.

Replaced, in this order: URLs with a path (the domain stays: `fiverr.com/[path]`), e-mail addresses (also
`name [at] gmail [dot] com`), IBANs (`PK36 SCBL 0000 0011 2345 6702`), CNIC numbers (`35202-1234567-1`), phone
numbers (`+92 300 1234567`, `0300-1234567`, `(042) 3576 1234`, `0092...`, any `+` international number), Telegram
@usernames, the writer's own name, and finally any run of 9 or more digits (account and card numbers, ids). Digits
are matched in every script people type in Pakistan: `۰۳۰۰۱۲۳۴۵۶۷` is a phone number too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache

# Urdu (Extended Arabic-Indic), Arabic-Indic and full-width digits → ASCII, one character for one, so a match in
# the normalised copy has the same span in the original.
_DIGITS = {
    **{0x06F0 + i: ord("0") + i for i in range(10)},
    **{0x0660 + i: ord("0") + i for i in range(10)},
    **{0xFF10 + i: ord("0") + i for i in range(10)},
}
_TLD = r"(?:com|net|org|pk|io|me|co|info|biz|ly|gg|app|dev|link|page|site|xyz|edu|gov|us|uk|ae|in)"
_URL = re.compile(
    r"(?:\bhttps?://|\bwww\.)[^\s<>\"'()]+"  # with a scheme or www.
    rf"|\b(?:[a-z0-9-]+\.)+{_TLD}(?::\d+)?/[^\s<>\"'()]*",  # a bare domain with a path: fiverr.com/ayesha, wa.me/92...
    re.IGNORECASE,
)
_URL_PARTS = re.compile(r"^(?P<scheme>https?://)?(?P<host>[^/?#]+)(?P<rest>.*)$", re.IGNORECASE)
_EMAIL = re.compile(
    r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}"
    r"|[a-z0-9._%+-]+\s*(?:\[at\]|\(at\)|\{at\})\s*[a-z0-9-]+\s*(?:\[dot\]|\(dot\)|\{dot\}|\.)\s*[a-z]{2,}"
    r"|[a-z0-9._%+-]+\s+at\s+(?:gmail|yahoo|hotmail|outlook|live|icloud|proton(?:mail)?)\s*(?:dot|\.)\s*com\b",
    re.IGNORECASE,
)
_IBAN = re.compile(r"\b[a-z]{2}\d{2}(?:[ -]?[a-z0-9]){11,30}\b", re.IGNORECASE)
_CNIC = re.compile(r"(?<!\d)\d{5}[ -]?\d{7}[ -]?\d(?!\d)")
_PHONE = re.compile(
    r"(?:\+|\b00)\s*\d{1,3}[\s.-]*(?:\(?\d{1,5}\)?[\s.-]*){1,5}\d{2,}"  # +92 300 1234567, 0092-300-1234567, +44...
    r"|(?<!\d)\(?0?3\d{2}\)?[\s.-]*\d{3}[\s.-]*\d{4}(?!\d)"  # 0300-1234567, 0300 123 4567, (0300) 1234567
    r"|(?<!\d)\(?0\d{2,4}\)?[\s.-]*\d{3,4}[\s.-]*\d{3,4}(?!\d)"  # landlines: 042-35761234, (051) 234 5678
)
_USERNAME = re.compile(r"(?<![\w.])@[a-z][a-z0-9_]{4,31}\b", re.IGNORECASE)
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[ -]?\d){8,}(?!\d)")


def _iban(match: re.Match[str]) -> str | None:
    digits = sum(ch.isdigit() for ch in match.group())
    return "[iban]" if digits >= 8 else None


def _phone(match: re.Match[str]) -> str | None:
    digits = sum(ch.isdigit() for ch in match.group())
    return "[phone]" if digits >= 9 else None


def _url(match: re.Match[str]) -> str | None:
    text = match.group().rstrip(".,;:!?")
    parts = _URL_PARTS.match(text)
    if parts is None:
        return "[url]"
    rest = parts.group("rest")
    if rest in ("", "/"):
        return None  # a bare site name (fiverr.com) says nothing about a person
    trailing = match.group()[len(text) :]
    return f"{parts.group('host')}/[path]{trailing}"


Replacer = Callable[[re.Match[str]], str | None]
_STEPS: tuple[tuple[re.Pattern[str], Replacer], ...] = (
    (_URL, _url),
    (_EMAIL, lambda _: "[email]"),
    (_IBAN, _iban),
    (_CNIC, lambda _: "[cnic]"),
    (_PHONE, _phone),
    (_USERNAME, lambda _: "[username]"),
)


def _apply(original: str, normalised: str, pattern: re.Pattern[str], replace: Replacer) -> tuple[str, str]:
    pieces_original: list[str] = []
    pieces_normalised: list[str] = []
    last = 0
    for match in pattern.finditer(normalised):
        replacement = replace(match)
        if replacement is None:
            continue
        start, end = match.span()
        pieces_original += [original[last:start], replacement]
        pieces_normalised += [normalised[last:start], replacement]
        last = end
    if last == 0:
        return original, normalised
    pieces_original.append(original[last:])
    pieces_normalised.append(normalised[last:])
    return "".join(pieces_original), "".join(pieces_normalised)


def name_pattern(names: Iterable[str | None]) -> re.Pattern[str] | None:
    """The words of a person's name (3+ letters), to replace with [name] in their own messages."""
    return _name_pattern(tuple(name for name in names if name))


@lru_cache(maxsize=4096)
def _name_pattern(names: tuple[str, ...]) -> re.Pattern[str] | None:
    words = sorted(
        {word for name in names if name for word in re.split(r"[\s,._-]+", name) if len(word) >= 3},
        key=len,
        reverse=True,
    )
    if not words:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.IGNORECASE)


_ANY_DIGIT = re.compile(r"\d")


def scrub(text: str, *, names: Iterable[str | None] = ()) -> str:
    """The text with personal details replaced by [url]-style placeholders."""
    if not text:
        return text
    original = text
    normalised = text if text.isascii() else text.translate(_DIGITS)
    # Cheap checks first: most messages have no digit, @ or dot, and skip most patterns.
    digits = _ANY_DIGIT.search(normalised) is not None
    marks = "." in normalised or "@" in normalised or "/" in normalised or "[" in normalised or "(" in normalised
    for pattern, replace in _STEPS:
        if pattern is _USERNAME or (pattern in (_URL, _EMAIL) and (marks or " at " in normalised)) or digits:
            original, normalised = _apply(original, normalised, pattern, replace)
    own_name = name_pattern(names)
    if own_name is not None:
        original, normalised = _apply(original, normalised, own_name, lambda _: "[name]")
    if digits:
        original, _ = _apply(original, normalised, _LONG_NUMBER, lambda _: "[number]")
    return original
