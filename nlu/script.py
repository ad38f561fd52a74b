"""Urdu as people type it: the same letter can arrive as Urdu's code point or as the Arabic one beside it."""

from __future__ import annotations

# Arabic-keyboard letters that Urdu writes with its own code points (ي ك ه ى ۀ), and both sets of Eastern digits
_URDU_LETTERS = str.maketrans(
    {"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9", "\u0647": "\u06c1", "\u06c0": "\u06c1"}
    | {chr(0x0660 + digit): str(digit) for digit in range(10)}
    | {chr(0x06F0 + digit): str(digit) for digit in range(10)}
)


def with_urdu_letters(text: str) -> str:
    """The same text with Urdu's own letters and Western digits: the training data is written that way."""
    return text.translate(_URDU_LETTERS)
