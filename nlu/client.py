"""Async client for Rasa's `/model/parse`, with timeouts; every Rasa problem becomes RasaUnavailable, never a crash.

Error messages never contain the request URL: with RASA_TOKEN set, Rasa's token travels as `?token=` in it.
"""

from __future__ import annotations

import math
import time
from typing import Any

import httpx

from nlu.script import with_urdu_letters
from nlu.understanding import ArticleCandidate, Understanding

RETRIEVAL_INTENT = "faq"


class RasaUnavailable(RuntimeError):
    """Rasa did not answer usefully (down, not trained, slow, malformed); the caller falls back."""


class RasaClient:
    """One pooled HTTP client per process; opened at start and closed at shutdown."""

    def __init__(self, base_url: str, *, token: str | None = None, timeout_seconds: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._params = {"token": token} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_seconds, connect=min(1.0, timeout_seconds)),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def parse(self, text: str) -> Understanding:
        """Parse one message; raise RasaUnavailable on any transport or protocol problem.

        A leading "/" makes Rasa read a message as an intent trigger ("/withdraw fiverr" would come back as the
        intent "withdraw fiverr" with confidence 1.0), so it is removed: users' words are never intent names.
        Arabic-keyboard letters become Urdu's own (ك -> ک), as in the training data.
        """
        text = with_urdu_letters(text.lstrip().lstrip("/").strip())
        if not text:
            raise RasaUnavailable("nothing to parse")
        started = time.perf_counter()
        payload = await self._request("POST", "/model/parse", json={"text": text})
        return understanding_from_rasa(payload, parse_ms=(time.perf_counter() - started) * 1000)

    async def status(self) -> dict[str, Any]:
        """`/status`: which model is loaded; raises RasaUnavailable when the server is down."""
        payload = await self._request("GET", "/status")
        if not isinstance(payload, dict):
            raise RasaUnavailable("/status did not answer with a JSON object")
        return payload

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, params=self._params, **kwargs)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"{type(exc).__name__} on {path}: {_without_url(exc)}") from None
        if response.status_code != 200:
            raise RasaUnavailable(f"HTTP {response.status_code} from {path}")
        try:
            return response.json()
        except ValueError:
            raise RasaUnavailable(f"{path} answered with something that is not JSON") from None


def _without_url(exc: httpx.HTTPError) -> str:
    message = str(exc) or "no answer"
    try:
        url = str(exc.request.url)
    except RuntimeError:  # no request attached
        return message[:200]
    return message.replace(url, "<rasa>")[:200]


def understanding_from_rasa(payload: Any, *, parse_ms: float = 0.0) -> Understanding:
    """Turn Rasa's parse result into an Understanding. Anything malformed (a list, nulls, missing keys, NaN) is
    RasaUnavailable, so the caller answers through the lexical search instead of failing the turn."""
    try:
        return _understanding(payload, parse_ms)
    except RasaUnavailable:
        raise
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise RasaUnavailable(f"malformed parse result ({type(exc).__name__})") from None


def _confidence(value: Any) -> float:
    number = float(value if value is not None else 0.0)
    if math.isnan(number) or not 0.0 <= number <= 1.0:
        raise ValueError("confidence outside 0..1")
    return number


def _understanding(payload: Any, parse_ms: float) -> Understanding:
    if not isinstance(payload, dict):
        raise RasaUnavailable("the parse result is not a JSON object")
    intent = payload.get("intent") or {}
    name = intent.get("name") if isinstance(intent, dict) else None
    if not name or not isinstance(name, str):
        raise RasaUnavailable("the loaded Rasa model returned no intent (is it trained?)")
    entities: dict[str, list[str]] = {}
    for entity in payload.get("entities") or []:
        if not isinstance(entity, dict) or not entity.get("entity"):
            continue
        values = entities.setdefault(str(entity["entity"]), [])
        value = str(entity.get("value") or "").lower()
        if value and value not in values:
            values.append(value)
    selector = (payload.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    candidates = []
    for ranked in selector.get("ranking") or []:
        key = str(ranked.get("intent_response_key") or "")
        if key.startswith(f"{RETRIEVAL_INTENT}/"):
            candidates.append(ArticleCandidate(key.split("/", 1)[1], _confidence(ranked.get("confidence"))))
    return Understanding(
        intent=name,
        confidence=_confidence(intent.get("confidence")),
        source="rasa",
        entities=entities,
        articles=tuple(candidates),
        parse_ms=parse_ms,
    )
