"""The plain data the core exchanges with its adapters (Telegram, terminal chat, `ask --json`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from bot.core import buttons
from storage.codebook import Decision

Channel = Literal["telegram", "cli"]
InboundKind = Literal["text", "sticker", "voice", "photo", "video", "document", "location", "other"]
MAX_LABEL_CHARS = 60


@dataclass(frozen=True)
class Person:
    """Who is writing, as the adapter knows them; display_name is raw user input (escape before showing)."""

    channel: Channel
    external_id: str
    display_name: str | None = None
    language_hint: str | None = None
    # The Telegram @username, never stored: shared with a buddy only when the user presses "Share my @username".
    username: str | None = None

    @property
    def hinted_language(self) -> str:
        return "ur" if (self.language_hint or "").lower().startswith("ur") else "en"


@dataclass(frozen=True)
class Button:
    """An inline button: callback data built by the codec (bot/core/buttons.py), or a link."""

    label: str
    data: str | None = None
    url: str | None = None

    @classmethod
    def of(cls, label: str, action: buttons.ButtonAction) -> Button:
        return cls(label[:MAX_LABEL_CHARS], data=buttons.encode(action))

    @classmethod
    def link(cls, label: str, url: str) -> Button:
        return cls(label[:MAX_LABEL_CHARS], url=url)


@dataclass
class Reply:
    """One answer: Telegram-flavoured HTML text, optional inline buttons, and what it was based on."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    article_id: str | None = None
    nlu_source: str | None = None
    decision: Decision = Decision.ANSWER
    latency_ms: float = 0.0
    # True when the reply should replace the message whose button was pressed (e.g. a ticked checklist).
    replace: bool = False
    # A short notice for the pressed button's spinner (answerCallbackQuery); the text is then not sent as a message.
    toast_only: bool = False


@dataclass(frozen=True)
class UserView:
    """What the core knows about the user for one turn; id is None for a guest the database does not hold."""

    id: int | None
    language: str
    language_chosen: bool = False
    display_name: str | None = None
    research_consent: bool = False
    profile_step: str | None = None
    profile_step_at: dt.datetime | None = None
    timezone: str | None = None
    blocked: bool = False
    # Who this is on their channel (a Telegram user id for role checks); None for guests.
    channel: str | None = None
    external_id: str | None = None
    username: str | None = None  # from this turn's update only (never stored)
