"""Urdu as people type it reaches the NLU as the training data writes it."""

from __future__ import annotations

import pytest

from nlu.script import consonant_skeleton, with_urdu_letters


def test_arabic_keyboard_letters_and_eastern_digits_become_urdu_ones() -> None:
    assert with_urdu_letters("كتنى فيس ۲۰ ٢٠") == "کتنی فیس 20 20"


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("آپ ورک سے پیسے کیسے نکالوں", "اپ ورک سے پیسے کیسے نکالوں"),
        ("آپورک پر اکاؤنٹ", "اپورک پر اکاؤنٹ"),
        ("آپ ورک۔", "اپ ورک۔"),
    ],
)
def test_upwork_written_with_alef_madda_reads_as_upwork(typed: str, read: str) -> None:
    assert with_urdu_letters(typed) == read


@pytest.mark.parametrize("text", ["کیا آپ کام کرتے ہیں", "آپ ورکشاپ میں آئیں", "اپ ورک"])
def test_you_and_other_words_are_left_alone(text: str) -> None:
    """آپ ("you") on its own, or before a longer word, is not Upwork."""
    assert with_urdu_letters(text) == text


@pytest.mark.parametrize(
    ("spellings", "skeleton"),
    [
        (("paise", "paisay", "پیسے"), "ps"),
        (("kaise", "kese", "کیسے"), "ks"),
        (("account", "akaunt", "اکاؤنٹ"), "knt"),
        (("check", "chek", "چیک"), "ck"),
        (("kitni", "کتنی"), "ktn"),
    ],
)
def test_one_word_in_three_scripts_has_one_consonant_skeleton(spellings: tuple[str, ...], skeleton: str) -> None:
    assert {consonant_skeleton(word) for word in spellings} == {skeleton}


def test_different_words_keep_different_skeletons() -> None:
    assert len({consonant_skeleton(word) for word in ("paise", "fees", "bank", "کام", "نام")}) == 5


def test_payoneer_is_read_in_the_spelling_the_training_data_uses() -> None:
    """A blind trial's "پیونیئر سے پیسے نکالنے پر کتنی فیس لگتی ہے؟" got no answer; spelled پایونیر it got the
    Payoneer article."""
    for spelling in ("پیونیئر", "پیونیر", "پےونیئر", "پے اونیئر", "پے اونیر", "پایونیئر"):
        assert with_urdu_letters(f"{spelling} سے پیسے") == "پایونیر سے پیسے", spelling
    assert with_urdu_letters("پیونیرز") == "پیونیرز"  # only whole words
