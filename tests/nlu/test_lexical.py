"""The lexical search: what it finds when a beginner's words are not the training questions' words."""

from __future__ import annotations

import dataclasses

import pytest

from content.library import Library
from nlu.lexical import ConceptLexicon, LexicalSearch, features, skeleton_features, words_of


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


def test_a_low_star_count_is_a_bad_review_and_five_stars_a_good_one(lexicon: ConceptLexicon) -> None:
    """Good and bad reviews were the most confused pair in cross-validation; the number of stars tells them apart."""
    for message in ("buyer gave me 2 stars unfairly", "ek star de diya", "خریدار نے تین اسٹار دیے"):
        assert "negative" in lexicon.find(words_of(message)), message
    for message in ("how to get 5 stars", "فائیو اسٹار ریویو کیسے ملے"):
        assert "positive" in lexicon.find(words_of(message)), message
        assert "negative" not in lexicon.find(words_of(message)), message


def test_being_asked_to_deposit_money_for_work_reads_as_a_scam(lexicon: ConceptLexicon) -> None:
    """ "5000 jama karao to kaam milega" got "I don't know" in round 9: the deposit, not a word like "scam", tells."""
    for message in ("5000 jama karao to data entry ka kaam milega", "پہلے 3000 جمع کروائیں پھر کام ملے گا"):
        assert "scam" in lexicon.find(words_of(message)), message
    assert "scam" not in lexicon.find(words_of("paise jama ho gaye account mein"))  # money arriving is no deposit


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


def test_the_learned_ranker_tells_neighbours_apart_where_shared_letters_mislead(lexical: LexicalSearch) -> None:
    """The cosine alone ranks profile_photo first for the first ("pictures") and freelancer_account_create for the
    second; the SVM has learned which trigrams separate those articles."""
    for message, expected in (
        ("client keeps sending me dirty pictures", "client_harassment"),
        ("freelancer.com ka paisa bank mein kaise laoon", "freelancer_withdrawal"),
    ):
        articles = [c for c in lexical.rank(message, limit=8) if not c.article_id.startswith("intent:")]
        assert articles[0].article_id == expected, message


def test_with_rasa_down_an_off_topic_question_is_out_of_scope_and_keyboard_mash_unknown(
    lexical: LexicalSearch,
) -> None:
    assert lexical.understand("how do I train my parrot to type", reason="test").intent == "out_of_scope"
    assert lexical.understand("zqxj vwkb", reason="test").intent == "nlu_fallback"
    assert lexical.understand("🙂🙂", reason="test").intent == "nlu_fallback"  # nothing the search knows


def test_roman_urdu_and_urdu_script_meet_on_consonant_skeletons() -> None:
    """The two spellings share no letter; the learned ranker sees them share most skeleton features."""
    roman = skeleton_features("meri behen bhi yehi chahti thi")
    urdu = skeleton_features("میری بہن بھی یہی چاہتی تھی")
    assert len(roman.keys() & urdu.keys()) >= 0.8 * len(urdu)
    assert not features("meri behen", ConceptLexicon({})).keys() & features("میری بہن", ConceptLexicon({})).keys()


def test_a_long_junk_word_does_not_outweigh_the_question(lexical: LexicalSearch) -> None:
    question = "withdraw my fiverr money to my meezan bank account"
    assert lexical.rank(question + " " + "x" * 40, limit=1)[0].article_id == "fiverr_withdrawal"


def test_a_library_of_two_articles_still_ranks_both(library: Library) -> None:
    """Two owners make the SVM binary (one plane): both articles must still get their own score."""
    two = {key: library.articles[key] for key in ("platform_service_fees", "fiverr_withdrawal")}
    small = LexicalSearch(dataclasses.replace(library, articles=two), intent_examples={})
    assert small.rank("how much does fiverr take")[0].article_id == "platform_service_fees"
    assert small.rank("fiverr se paise kaise nikalein")[0].article_id == "fiverr_withdrawal"
