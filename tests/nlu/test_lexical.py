"""The lexical search: what it finds when a beginner's words are not the training questions' words."""

from __future__ import annotations

import pytest

from nlu.lexical import ConceptLexicon, LexicalSearch, words_of


@pytest.fixture(scope="module")
def lexicon() -> ConceptLexicon:
    return ConceptLexicon.load()


def test_a_concept_is_found_in_all_three_scripts(lexicon: ConceptLexicon) -> None:
    for message in ("how much commission does it take", "kitna cut rakhta hai", "کتنی کٹوتی ہوتی ہے"):
        assert {"fee", "how_much"} <= lexicon.find(words_of(message)), message


def test_prefixes_phrases_and_spellings_of_platforms_count(lexicon: ConceptLexicon) -> None:
    assert "withdraw" in lexicon.find(words_of("paise kaise nikalwaun"))  # nikal* matches nikalwaun
    assert "withdraw" in lexicon.find(words_of("پیسے کیسے نکلواؤں"))
    assert "withdraw" in lexicon.find(words_of("can I cash out today"))  # a two-word form
    assert "withdraw" not in lexicon.find(words_of("cash is king"))  # ...only as the whole phrase
    assert "fiverr" in lexicon.find(words_of("fivver pe gig"))  # a misspelling from entities.yml
    assert "fiverr" in lexicon.find(words_of("فائیور پر گگ"))


def test_an_unrelated_word_sharing_letters_is_no_concept(lexicon: ConceptLexicon) -> None:
    assert "fee" not in lexicon.find(words_of("cutting edge design"))  # "cut" is a whole word, not a prefix


def test_a_fee_question_worded_like_no_training_question_finds_the_fees_article(lexical: LexicalSearch) -> None:
    # Neither phrasing is in the training data; they share the concepts "fee" and "how much" with it.
    for message in ("Fiverr apne paas kitna cut rakhta hai har order pe?", "فائیور والے ہر آرڈر سے کتنا کاٹتے ہیں"):
        assert lexical.rank(message)[0].article_id == "platform_service_fees", message


def test_a_question_built_from_several_training_questions_still_finds_its_article(lexical: LexicalSearch) -> None:
    assert lexical.rank("bijli chali jati hai to kaam kaise karun")[0].article_id == "power_internet_backup"


def test_something_off_topic_is_closest_to_the_out_of_scope_examples(lexical: LexicalSearch) -> None:
    assert lexical.rank("what is the capital of france")[0].article_id == "intent:out_of_scope"


def test_common_roman_urdu_words_are_not_mistaken_for_concepts(lexicon: ConceptLexicon) -> None:
    """ "ban sakta" is "can be made", not a ban; a 2FA code is no remittance purpose code."""
    assert "suspended" not in lexicon.find(words_of("17 saal ka hun upwork pe account ban sakta he"))
    assert "purpose_code" not in lexicon.find(words_of("verification ka code nahi aa raha"))
    assert "bank" in lexicon.find(words_of("اپ ورک میں آئی بین ڈالنا ہے"))  # IBAN, written as two Urdu words


def test_urdu_typed_on_an_arabic_keyboard_reads_as_urdu(lexical: LexicalSearch) -> None:
    """ك ي ه and Eastern digits are what an Arabic keyboard gives for ک ی ہ and 0-9."""
    assert words_of("كتنى فيس ۲۰ ٢٠") == words_of("کتنی فیس 20 20")
    urdu = lexical.rank("فائیور سے پیسے کیسے نکالیں", limit=1)
    arabic_keyboard = lexical.rank("فائيور سے پيسے كيسے نكاليں", limit=1)
    assert urdu == arabic_keyboard and urdu[0].article_id == "fiverr_withdrawal"
