"""The long-lived parts of a running Rahnuma (content, database, Rasa client, conversation), opened together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.conversation import Conversation
from bot.settings import Settings
from content.library import Library, load_library
from nlu.client import RasaClient, RasaUnavailable
from storage.db import create_engine, create_session_factory

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    library: Library
    engine: AsyncEngine
    rasa: RasaClient
    conversation: Conversation

    async def aclose(self) -> None:
        await self.rasa.aclose()
        await self.engine.dispose()

    async def rasa_status(self) -> str | None:
        """None when Rasa answers with a loaded model, else a one-line explanation for the operator."""
        try:
            status = await self.rasa.status()
        except RasaUnavailable as exc:
            return (
                f"Rasa is not reachable at {self.rasa.base_url} ({exc}); answering through the lexical fallback. "
                "Start it with `rahnuma nlu serve`."
            )
        if not status.get("model_file"):
            return "Rasa is running without a model; run `rahnuma nlu train`. Answering through the lexical fallback."
        return None


async def open_runtime(settings: Settings, *, library: Library | None = None) -> Runtime:
    """Build every long-lived client once; the caller must `await runtime.aclose()`."""
    library = library or load_library()
    engine = create_engine(settings.database_url)
    rasa = RasaClient(
        str(settings.rasa_url),
        token=settings.rasa_token.get_secret_value() if settings.rasa_token else None,
        timeout_seconds=settings.rasa_timeout_seconds,
    )
    conversation = Conversation(library=library, sessions=create_session_factory(engine), rasa=rasa)
    return Runtime(settings=settings, library=library, engine=engine, rasa=rasa, conversation=conversation)
