"""`rahnuma nlu eval` counts what the user would get: messages are routed the way Conversation routes them."""

from __future__ import annotations

from bot.core.answers import Answers
from bot.core.progress import REPORT_INTENT as REPORT
from bot.evaluation import OUT_OF_SCOPE, outcome
from content.library import Library
from nlu.understanding import ArticleCandidate, Understanding


def _understood(intent: str, confidence: float, *scores: tuple[str, float]) -> Understanding:
    articles = tuple(ArticleCandidate(article, score) for article, score in scores)
    return Understanding(intent=intent, confidence=confidence, source="rasa", entities={}, articles=articles)


def test_a_report_that_names_a_milestone_is_a_report(library: Library) -> None:
    result = outcome(Answers(library), _understood(REPORT, 0.9), "pehla order mil gaya")
    assert result.predicted == REPORT and result.article is None


def test_a_report_that_names_nothing_is_refused_like_the_bot_refuses_it(library: Library) -> None:
    """Rasa calls keyboard mash a progress report; Progress declines it and the policy says "I don't know"."""
    result = outcome(Answers(library), _understood(REPORT, 0.5, ("payoneer_setup", 0.1)), "aaaaaa")
    assert result.predicted == OUT_OF_SCOPE


def test_an_unanswerable_question_that_reads_as_a_report_goes_to_the_report(library: Library) -> None:
    """Rasa unsure it is a question, no article close: the milestone named in it wins over "I don't know"."""
    text = "الحمدللہ آج فائیور پر میرا پہلا آرڈر آیا ہے!"
    result = outcome(Answers(library), _understood("faq", 0.98, ("fiverr_gig_create", 0.2)), text)
    assert result.predicted == REPORT
    unrelated = outcome(Answers(library), _understood("faq", 0.98, ("fiverr_gig_create", 0.2)), "kya haal hai")
    assert unrelated.predicted == OUT_OF_SCOPE


def test_a_report_rasa_is_sure_of_is_taken_even_without_a_milestone_when_the_bar_allows(library: Library) -> None:
    """With a report bar, "today is a great day, client hired me for the logo job" style reports that name no rung
    reach the checklist; under the bar (and by default) they go through the policy."""
    from bot.core.answers import Thresholds

    text = "aaj zindagi ka sab se acha din hai"
    trusting = Answers(library, Thresholds(report_confidence=0.9))
    assert outcome(trusting, _understood(REPORT, 0.95), text).predicted == REPORT
    assert outcome(trusting, _understood(REPORT, 0.6), text).predicted == OUT_OF_SCOPE
    assert outcome(Answers(library), _understood(REPORT, 0.95), text).predicted == OUT_OF_SCOPE


def test_a_personal_intent_rasa_is_unsure_of_is_answered_like_a_question(library: Library) -> None:
    """ "mera mood off hai" read as stop_nudges at 0.6: under the personal bar nothing is stopped, the policy answers
    (here "I don't know"); at the bar, and with the bar off (0, the default before round 15), the stop goes through."""
    from bot.core.answers import Thresholds
    from bot.core.conversation import routed_to_feature

    doubting = Answers(library, Thresholds(personal_confidence=0.9))
    unsure_stop = _understood("stop_nudges", 0.6, ("payoneer_setup", 0.1))
    assert not routed_to_feature(unsure_stop, doubting.thresholds)
    assert outcome(doubting, unsure_stop, "mera mood off hai").predicted == OUT_OF_SCOPE
    assert outcome(doubting, _understood("stop_nudges", 0.95), "stop messaging me").predicted == "stop_nudges"
    assert outcome(Answers(library, Thresholds(personal_confidence=0.0)), unsure_stop, "x").predicted == "stop_nudges"
    lexical = Understanding(intent="stop_nudges", confidence=0.3, source="lexical", entities={}, articles=())
    assert routed_to_feature(lexical, doubting.thresholds)  # no Rasa confidence to doubt when Rasa is down


def test_the_personal_bar_never_stands_between_a_report_and_progress(library: Library) -> None:
    """Reports have their own rule (they must name a rung), whatever the personal bar."""
    from bot.core.answers import Thresholds

    doubting = Answers(library, Thresholds(personal_confidence=0.99))
    assert outcome(doubting, _understood(REPORT, 0.5), "pehla order mil gaya").predicted == REPORT
