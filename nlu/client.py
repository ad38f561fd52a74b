"""Async client for Rasa's `/model/parse`, with timeouts; errors become RasaUnavailable, never a crash."""

from __future__ import annotations

import time
from typing import Any

import httpx

from nlu.understanding import ArticleCandidate, Understanding

RETRIEVAL_INTENT = "faq"


class RasaUnavailable(RuntimeError):
    """Rasa did not answer usefully (down, not trained, slow, or an error); the caller falls back."""


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
        """Parse one message; raise RasaUnavailable on any transport or protocol problem."""
        started = time.perf_counter()
        try:
            response = await self._http.post("/model/parse", json={"text": text}, params=self._params)
        except httpx.HTTPError as exc:
            raise RasaUnavailable(f"{type(exc).__name__}: {exc or 'no answer'}") from exc
        if response.status_code != 200:
            raise RasaUnavailable(f"HTTP {response.status_code} from /model/parse: {response.text[:200]}")
        try:
            payload = response.json()
        except ValueError as exc:
            raise RasaUnavailable("Rasa answered with something that is not JSON") from exc
        return understanding_from_rasa(payload, parse_ms=(time.perf_counter() - started) * 1000)

    async def status(self) -> dict[str, Any]:
        """`/status`: which model is loaded; raises RasaUnavailable when the server is down."""
        try:
            response = await self._http.get("/status", params=self._params)
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result
        except (httpx.HTTPError, ValueError) as exc:
            raise RasaUnavailable(str(exc) or type(exc).__name__) from exc


def understanding_from_rasa(payload: dict[str, Any], *, parse_ms: float = 0.0) -> Understanding:
    """Turn Rasa's parse result into an Understanding; a model without NLU is treated as unavailable."""
    intent = payload.get("intent") or {}
    name = intent.get("name")
    if not name:
        raise RasaUnavailable("the loaded Rasa model returned no intent (is it trained?)")
    entities: dict[str, list[str]] = {}
    for entity in payload.get("entities") or []:
        values = entities.setdefault(str(entity.get("entity")), [])
        value = str(entity.get("value", "")).lower()
        if value and value not in values:
            values.append(value)
    selector = (payload.get("response_selector") or {}).get(RETRIEVAL_INTENT) or {}
    candidates = []
    for ranked in selector.get("ranking") or []:
        key = str(ranked.get("intent_response_key", ""))
        if key.startswith(f"{RETRIEVAL_INTENT}/"):
            candidates.append(ArticleCandidate(key.split("/", 1)[1], float(ranked.get("confidence", 0.0))))
    return Understanding(
        intent=str(name),
        confidence=float(intent.get("confidence") or 0.0),
        source="rasa",
        entities=entities,
        articles=tuple(candidates),
        parse_ms=parse_ms,
    )
