"""The scrubber takes personal details out of message text before it leaves in an export."""

from __future__ import annotations

import pytest

from research.scrub import scrub


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me 0300-1234567", "call me [phone]"),
        ("call me 03001234567", "call me [phone]"),
        ("number +92 300 1234567 hai", "number [phone] hai"),
        ("+923001234567", "[phone]"),
        ("0092-300-1234567", "[phone]"),
        ("(0300) 123 4567 pe whatsapp", "[phone] pe whatsapp"),
        ("whatsapp ۰۳۰۰۱۲۳۴۵۶۷ pe", "whatsapp [phone] pe"),  # Urdu digits
        ("office (042) 3576 1234", "office [phone]"),
        ("uk client +44 20 7946 0958", "uk client [phone]"),
        ("mail ali.khan+fiverr@gmail.com now", "mail [email] now"),
        ("ali [at] gmail [dot] com", "[email]"),
        ("ali at gmail dot com", "[email]"),
        ("CNIC 35202-1234567-1", "CNIC [cnic]"),
        ("cnic 3520212345671 hai", "cnic [cnic] hai"),
        ("IBAN PK36 SCBL 0000 0011 2345 6702.", "IBAN [iban]."),
        ("pk36scbl0000001123456702", "[iban]"),
        ("GB29 NWBK 6016 1331 9268 19", "[iban]"),
        ("see https://www.fiverr.com/ayesha_gfx?ref=1, ok", "see www.fiverr.com/[path], ok"),
        ("my gig fiverr.com/ayesha_gfx/logo-design", "my gig fiverr.com/[path]"),
        ("t.me/ayesha_k and wa.me/923001234567", "t.me/[path] and wa.me/[path]"),
        ("card 4111 1111 1111 1111", "card [number]"),
        ("my telegram is @ayesha_sid", "my telegram is [username]"),
    ],
)
def test_personal_details_are_replaced(text: str, expected: str) -> None:
    assert scrub(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I earned 25000 rupees on 2026-11-27, level 2 seller, 20% fee, $5 minimum",
        "fiverr.com or https://upwork.com/ which is better?",
        "order #12345678 done",
        "I work at fiverr dot com",  # not an e-mail: only known mail providers are read in the spaced form
        "Payoneer se 1,500 dollar nikalne hain",
        "میں نے پہلا آرڈر مکمل کیا",
    ],
)
def test_ordinary_messages_keep_their_words(text: str) -> None:
    assert scrub(text) == text


def test_the_writers_own_name_is_replaced_but_not_other_words() -> None:
    assert (
        scrub("Main Ayesha Siddiqui hoon, ayesha here", names=["Ayesha Siddiqui"])
        == "Main [name] [name] hoon, [name] here"
    )
    assert scrub("Ali ne kaha", names=["Al"]) == "Ali ne kaha"  # names shorter than 3 letters are not matched


def test_several_details_in_one_message() -> None:
    text = "Ayesha: 0300-1234567, ayesha@example.com, 35202-1234567-1, https://fiverr.com/ayesha"
    assert scrub(text, names=["Ayesha"]) == "[name]: [phone], [email], [cnic], fiverr.com/[path]"
