"""The real Rasa server, trained on this project's data, understands English, Roman Urdu and Urdu script."""

from __future__ import annotations

import pytest

from bot.core.conversation import Conversation
from bot.core.types import Person
from nlu.client import RasaClient
from nlu.evaluate import evaluate, load_examples

pytestmark = pytest.mark.rasa

BILAL = Person(channel="telegram", external_id="2002", display_name="Bilal")


async def test_greeting_is_understood(rasa_client: RasaClient) -> None:
    understanding = await rasa_client.parse("assalam o alaikum")
    assert understanding.source == "rasa"
    assert understanding.intent == "greet"


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("how can i take out my earnings from fiverr", "fiverr_withdrawal"),
        ("upwork profile reject ho gayi ab kya karun", "upwork_profile_review"),
        ("پے اونیر اکاؤنٹ کیسے کھولیں", "payoneer_setup"),
        ("what are connects on upwork", "upwork_connects"),
    ],
)
async def test_questions_in_three_scripts_pick_the_right_article(
    rasa_conversation: Conversation, question: str, article: str
) -> None:
    """A user's question, in any of the three ways people write, is answered with the matching article."""
    reply = await rasa_conversation.handle_text(BILAL, question)
    assert reply.nlu_source == "rasa"
    assert reply.article_id == article, reply.text


async def test_platform_entity_is_extracted_from_a_misspelling(rasa_client: RasaClient) -> None:
    understanding = await rasa_client.parse("fivver par gig kaise banate hain")
    assert understanding.entities.get("platform") == ["fiverr"]


async def test_out_of_scope_gets_a_friendly_redirect(rasa_conversation: Conversation) -> None:
    reply = await rasa_conversation.handle_text(BILAL, "who will win the cricket match tomorrow")
    assert reply.decision in {"out_of_scope", "dont_know"}
    assert reply.article_id is None


async def test_rasa_down_means_fallback_not_failure(conversation: Conversation, library) -> None:  # type: ignore[no-untyped-def]
    """With Rasa unreachable the user still gets the article, and the event log says `fallback`."""
    closed = RasaClient("http://127.0.0.1:9", timeout_seconds=0.5)
    degraded = Conversation(library=library, sessions=conversation.sessions, rasa=closed)
    reply = await degraded.handle_text(BILAL, "how can i take out my earnings from fiverr")
    await closed.aclose()
    assert reply.nlu_source == "fallback"
    assert reply.article_id == "fiverr_withdrawal"


async def test_held_out_accuracy_does_not_regress(rasa_conversation: Conversation) -> None:
    """Guard on nlu/tests/test_nlu.yml (never trained on): intent accuracy stays at or above 0.88."""
    figures, misses = await evaluate(rasa_conversation, load_examples())
    assert figures.examples >= 150
    assert figures.intent_accuracy >= 0.88, misses[:20]
    assert figures.article_top1 >= 0.80, misses[:20]
    assert figures.out_of_scope_recall >= 0.80, misses[:20]
