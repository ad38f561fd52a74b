"""Any Rasa problem (down, hanging, malformed, untrained, an intent we never trained) means the lexical search
answers, with the reason in the event: never a failed turn, and never a leaked token."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from content.library import Library
from nlu.client import RasaClient, RasaUnavailable, understanding_from_rasa
from nlu.lexical import LexicalSearch
from nlu.pipeline import Understander

TOKEN = "secret-rasa-token-77"
QUESTION = "how can i take out my earnings from fiverr"


@asynccontextmanager
async def fake_rasa(
    answer: Callable[[], bytes | None], received: list[dict[str, Any]] | None = None
) -> AsyncIterator[str]:
    """An HTTP server on a free port answering every request with answer() (None: accept and never answer);
    with `received`, each request's JSON body is appended to it."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if received is not None:
            length = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
            received.append(json.loads(await reader.readexactly(int(length.split(b":")[1]))))
        body = answer()
        if body is None:
            await asyncio.sleep(3600)
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
        writer.write(body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


def good_payload(intent: str = "faq") -> dict[str, Any]:
    return {
        "intent": {"name": intent, "confidence": 0.9},
        "entities": [],
        "response_selector": {
            "faq": {"ranking": [{"intent_response_key": "faq/fiverr_withdrawal", "confidence": 0.8}]}
        },
    }


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param([], id="a-list"),
        pytest.param(None, id="null"),
        pytest.param({"intent": None}, id="no-intent"),
        pytest.param({"intent": {"name": "faq", "confidence": "high"}}, id="confidence-a-word"),
        pytest.param({"intent": {"name": "faq", "confidence": float("nan")}}, id="confidence-nan"),
    ],
)
def test_malformed_parse_results_are_unavailable_not_crashes(payload: object) -> None:
    with pytest.raises(RasaUnavailable):
        understanding_from_rasa(payload)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"intent": {"name": "faq", "confidence": 0.5}, "entities": "fiverr"}, id="entities-a-string"),
        pytest.param(
            {
                "intent": {"name": "faq", "confidence": 0.5},
                "response_selector": {"faq": {"ranking": [{"confidence": 1}]}},
            },
            id="ranking-without-key",
        ),
        pytest.param({"intent": {"name": "greet", "confidence": 0.9}, "response_selector": []}, id="no-selector"),
        pytest.param(
            {"intent": {"name": "faq", "confidence": 0.5}, "response_selector": {"faq": []}}, id="selector-list"
        ),
    ],
)
def test_odd_optional_parts_are_ignored(payload: object) -> None:
    """Optional parts in an odd shape are skipped: the intent still counts, with no article candidates."""
    understanding = understanding_from_rasa(payload)
    assert understanding.articles == () and understanding.entities == {}


def test_a_candidate_without_confidence_counts_as_zero() -> None:
    payload = {"intent": {"name": "faq"}, "response_selector": {"faq": {"ranking": [{"intent_response_key": "faq/x"}]}}}
    understanding = understanding_from_rasa(payload)
    assert (understanding.confidence, understanding.articles[0].confidence) == (0.0, 0.0)


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        pytest.param(lambda: None, "ReadTimeout", id="hangs"),
        pytest.param(lambda: b"<html>oops</html>", "not JSON", id="not-json"),
        pytest.param(lambda: json.dumps([1, 2]).encode(), "not a JSON object", id="json-list"),
        pytest.param(lambda: json.dumps({"intent": {}}).encode(), "no intent", id="untrained"),
    ],
)
async def test_a_broken_rasa_means_the_lexical_answer_with_the_reason(
    library: Library, lexical: LexicalSearch, answer: Callable[[], bytes | None], reason: str
) -> None:
    async with fake_rasa(answer) as url:
        client = RasaClient(url, token=TOKEN, timeout_seconds=0.5)
        understanding = await Understander(lexical, client).understand(QUESTION)
        await client.aclose()
    assert understanding.source == "fallback"
    assert understanding.top_article is not None and understanding.top_article.article_id == "fiverr_withdrawal"
    assert understanding.degraded_reason is not None and reason in understanding.degraded_reason
    assert TOKEN not in understanding.degraded_reason


async def test_rasa_down_means_fallback_without_the_token_in_the_reason(lexical: LexicalSearch) -> None:
    client = RasaClient("http://127.0.0.1:9", token=TOKEN, timeout_seconds=0.5)
    understanding = await Understander(lexical, client).understand(QUESTION)
    with pytest.raises(RasaUnavailable) as status_error:
        await client.status()
    await client.aclose()
    assert understanding.source == "fallback"
    assert understanding.top_article is not None and understanding.top_article.article_id == "fiverr_withdrawal"
    assert TOKEN not in str(understanding.degraded_reason) and TOKEN not in str(status_error.value)


async def test_an_intent_this_project_never_trained_is_not_passed_on(lexical: LexicalSearch) -> None:
    """If Rasa ever answers an intent name that is not ours (e.g. a user's words after "/"), it becomes a fallback."""
    async with fake_rasa(lambda: json.dumps(good_payload("withdraw my fiverr money")).encode()) as url:
        client = RasaClient(url, timeout_seconds=2)
        understanding = await Understander(lexical, client).understand("/withdraw my fiverr money")
        await client.aclose()
    assert understanding.intent == "nlu_fallback" and understanding.source == "rasa"


async def test_an_http_error_from_rasa_is_reported_without_the_url(lexical: LexicalSearch) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = RasaClient(url, token=TOKEN, timeout_seconds=2)
    with pytest.raises(RasaUnavailable) as error:
        await client.status()
    await client.aclose()
    server.close()
    assert "401" in str(error.value) and TOKEN not in str(error.value) and "token=" not in str(error.value)


async def test_arabic_keyboard_letters_reach_rasa_as_urdu_letters(lexical: LexicalSearch) -> None:
    """Rasa was trained on Urdu's own code points; "كتنى" typed on an Arabic keyboard must read as "کتنی"."""
    received: list[dict[str, Any]] = []
    async with fake_rasa(lambda: json.dumps(good_payload()).encode(), received) as url:
        client = RasaClient(url, timeout_seconds=2)
        await Understander(lexical, client).understand("فائیور كتنى فيس ليتا ہے")
        await client.aclose()
    assert received[0]["text"] == "فائیور کتنی فیس لیتا ہے"
