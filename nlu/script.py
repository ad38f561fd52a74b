"""Urdu as people type it: the same letter can arrive as Urdu's code point or as the Arabic one beside it."""

from __future__ import annotations

import re

# Arabic-keyboard letters that Urdu writes with its own code points (ي ك ه ى ۀ), and both sets of Eastern digits
_URDU_LETTERS = str.maketrans(
    {"\u064a": "\u06cc", "\u0649": "\u06cc", "\u0643": "\u06a9", "\u0647": "\u06c1", "\u06c0": "\u06c1"}
    | {chr(0x0660 + digit): str(digit) for digit in range(10)}
    | {chr(0x06F0 + digit): str(digit) for digit in range(10)}
)
# Upwork written with alef madda, "آپ ورک" (as in آپ, "you"): the training data writes اپ ورک. Rasa called
# "آپ ورک سے پیسے جاز کیش میں کیسے منگواؤں" out of scope at 0.999 and the same words with اپ ورک `faq`.
_UPWORK_WITH_MADDA = re.compile(r"(?<!\w)(?:\u0622|\u0627\u0653)\u067e(\s?)\u0648\u0631\u06a9(?!\w)")


def with_urdu_letters(text: str) -> str:
    """The same text with Urdu's own letters, Western digits and Upwork spelled as the training data spells it."""
    return _UPWORK_WITH_MADDA.sub("\u0627\u067e\\1\u0648\u0631\u06a9", text.translate(_URDU_LETTERS))
