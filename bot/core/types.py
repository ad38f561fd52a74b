"""The plain data the core exchanges with its adapters (Telegram, terminal chat, `ask --json`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Channel = Literal["telegram", "cli"]
InboundKind = Literal["text", "sticker", "voice", "photo", "video", "document", "location", "other"]


@dataclass(frozen=True)
class Person:
    """Who is writing, as the adapter knows them; display_name is raw user input (escape before showing)."""

    channel: Channel
    external_id: str
    display_name: str | None = None
    language_hint: str | None = None


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass
class Reply:
    """One answer: Telegram-flavoured HTML text, optional inline buttons, and what it was based on."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    article_id: str | None = None
    nlu_source: str | None = None
    decision: str = "static"
    latency_ms: float = 0.0
    # True when the reply should replace the message whose button was pressed (e.g. a ticked checklist).
    replace: bool = False
