"""Which feature handles which command, button, intent or message: each feature registers its own.

The conversation owns only the generic turn (load the user, guard the database, log the turn); a new feature adds
a module with a `routes()` method and one line in bot/runtime.py, instead of a branch in the conversation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.buttons import ButtonAction
from bot.core.types import InboundKind, Reply, UserView
from nlu.understanding import Understanding
from storage.codebook import EventKind

CommandHandler = Callable[[UserView, str], Awaitable[Reply]]
ButtonHandler = Callable[[UserView, Any, dt.datetime], Awaitable[Reply]]
IntentHandler = Callable[[UserView, str, Understanding], Awaitable[Reply | None]]
Interceptor = Callable[[UserView, str, dt.datetime], Awaitable[Reply | None]]
# A /start payload with a feature's prefix (e.g. "c-" joins a cohort): returns a line to add to the welcome.
StartPayloadHandler = Callable[[UserView, str], Awaitable[str | None]]
# A sticker, photo or voice note a feature answers itself (e.g. media while writing to a buddy); None: not mine.
NonTextHandler = Callable[[UserView, InboundKind], Awaitable[Reply | None]]


@dataclass(frozen=True)
class Route:
    handler: Callable[..., Awaitable[Any]]
    # A database failure inside means "I couldn't save that" (True) or "I can't read your records" (False).
    changes_state: bool
    logged_as: EventKind | None = None  # interceptors: the kind of the inbound event they consume


@dataclass
class Routes:
    commands: dict[str, Route] = field(default_factory=dict)
    buttons: dict[type[ButtonAction], Route] = field(default_factory=dict)
    intents: dict[str, Route] = field(default_factory=dict)
    unanswered: list[Route] = field(default_factory=list)
    interceptors: list[Route] = field(default_factory=list)
    start_payloads: dict[str, StartPayloadHandler] = field(default_factory=dict)
    non_text: list[NonTextHandler] = field(default_factory=list)

    def command(self, name: str, handler: CommandHandler, *, changes_state: bool) -> None:
        if name in self.commands:
            raise ValueError(f"command /{name} is routed twice")
        self.commands[name] = Route(handler, changes_state)

    def button(self, action: type[ButtonAction], handler: ButtonHandler, *, changes_state: bool) -> None:
        if action in self.buttons:
            raise ValueError(f"button {action.__name__} is routed twice")
        self.buttons[action] = Route(handler, changes_state)

    def intent(self, name: str, handler: IntentHandler, *, changes_state: bool) -> None:
        if name in self.intents:
            raise ValueError(f"intent {name} is routed twice")
        self.intents[name] = Route(handler, changes_state)

    def unanswered_message(self, handler: IntentHandler, *, changes_state: bool) -> None:
        """A message the answer policy would refuse ("I don't know") that a feature may still take, e.g. a progress
        report Rasa read as a question; None: not mine, and the refusal stands."""
        self.unanswered.append(Route(handler, changes_state))

    def intercept(self, handler: Interceptor, *, logged_as: EventKind) -> None:
        """Free text a feature takes before the NLU sees it (an open /profile question, a hand-off...)."""
        self.interceptors.append(Route(handler, changes_state=True, logged_as=logged_as))

    def start_payload(self, prefix: str, handler: StartPayloadHandler) -> None:
        """`/start <prefix><rest>` (a deep link t.me/<bot>?start=<prefix><rest>): the feature handles <rest>."""
        if prefix in self.start_payloads:
            raise ValueError(f"start payload prefix {prefix!r} is routed twice")
        self.start_payloads[prefix] = handler

    def non_text_handler(self, handler: NonTextHandler) -> None:
        """Stickers, photos, voice notes: a feature may answer them before the generic "text only" reply."""
        self.non_text.append(handler)


class Feature(Protocol):
    def routes(self, routes: Routes) -> None: ...
