"""Urdu as people type it: the same letter can arrive as Urdu's code point or as the Arabic one beside it, and the
same word can arrive in Urdu script, in Roman Urdu or as English ("پیسے", "paisay"; "اکاؤنٹ", "account")."""

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

# Payoneer has no settled Urdu spelling; the training data mostly writes پایونیر. Rasa gave
# "پیونیئر سے پیسے نکالنے پر کتنی فیس لگتی ہے؟" no article to answer, and the same words with پایونیر the Payoneer
# article (a blind trial, round 15).
_PAYONEER = re.compile(
    r"(?<!\w)(?:پیونیئر|پیونیر|پےونیئر|پےونیر|پے ?اونیئر|پے ?اونیر|پایونیئر|پائیونیر|پائونیر|پیئونیر|پے ?انیر)(?!\w)"
)


def with_urdu_letters(text: str) -> str:
    """The same text with Urdu's own letters, Western digits, and Upwork and Payoneer spelled as the training data
    spells them."""
    text = _UPWORK_WITH_MADDA.sub("\u0627\u067e\\1\u0648\u0631\u06a9", text.translate(_URDU_LETTERS))
    return _PAYONEER.sub("پایونیر", text)


# Urdu consonants as Latin letters, for `consonant_skeleton`. Letters that stand for vowels or are often left out
# in Roman Urdu (ا آ و ی ے ہ ھ ع ء ئ ؤ, h, w, y, v) are dropped in both scripts; letters that sound alike in
# Pakistani speech meet (ث س ص ش -> s, ذ ز ض ظ ژ -> z, ط ٹ ت -> t, ق ک خ -> k, ڑ ر -> r, ڈ د -> d).
_SKELETON_LETTERS = dict(zip("بپتٹثجچخدڈذرڑزژسشصضطظغفقکگلمنںۃ", "bpttsjckddzrrzzsssztzgfkkglmnnt", strict=True))
_ROMAN_DROPPED = frozenset("aeiouywhv")


def consonant_skeleton(word: str) -> str:
    """The word's consonants, as one spelling for all three scripts: "kaise" and "کیسے" are both "ks".

    Roman Urdu has no fixed spelling and Urdu script leaves short vowels out, so consonants are what the
    spellings of one word share. A repeated consonant counts once ("account" and "اکاؤنٹ" are both "knt").
    """
    if any("\u0600" <= letter <= "\u06ff" for letter in word):
        letters = [_SKELETON_LETTERS.get(letter, "") for letter in word]
    else:
        latin = word.replace("ch", "C").replace("c", "k").replace("q", "k").replace("x", "ks").replace("C", "c")
        letters = [letter for letter in latin if letter.isalpha() and letter not in _ROMAN_DROPPED]
    skeleton: list[str] = []
    for letter in letters:
        if letter and (not skeleton or skeleton[-1] != letter):
            skeleton.append(letter)
    return "".join(skeleton)
