"""The terminal adapters over the core: `rahnuma chat` (a conversation) and `rahnuma ask` (one message)."""

from __future__ import annotations

import asyncio
import getpass
import html
import json
import re
import sys
import uuid
from typing import Any

from bot.core.commands import BY_NAME
from bot.core.types import Person, Reply
from bot.runtime import Runtime

_BREAKS = re.compile(r"<br\s*/?>", re.IGNORECASE)
_LINK = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def plain_text(telegram_html: str) -> str:
    """Telegram HTML as terminal text: links become `text (url)`, other tags vanish, entities unescape."""
    text = _BREAKS.sub("\n", telegram_html)
    text = _LINK.sub(lambda m: f"{m.group(2)} ({html.unescape(m.group(1))})", text)
    return html.unescape(_TAG.sub("", text))


def render_for_terminal(reply: Reply) -> tuple[str, list[str]]:
    """The reply's text and its buttons as a numbered list; returns (text, callback data by number)."""
    lines = [plain_text(reply.text)]
    choices: list[str] = []
    for row in reply.buttons:
        labels = []
        for button in row:
            choices.append(button.data or button.url or "")
            labels.append(f"[{len(choices)}] {button.label}")
        lines.append("  ".join(labels))
    return "\n".join(lines), choices


async def chat(runtime: Runtime, *, user: str | None = None, notice: str | None = None) -> None:
    """An interactive conversation on stdin/stdout; numbers press the buttons shown; Ctrl-D or /quit ends it."""
    person = Person(channel="cli", external_id=user or f"terminal:{getpass.getuser()}", display_name=getpass.getuser())
    if notice:
        print(notice)
    problem = await runtime.rasa_status()
    if problem:
        print(f"Note: {problem}")
    text, choices = render_for_terminal(await runtime.conversation.command(person, "start"))
    print(text)
    while True:
        try:
            line = await asyncio.to_thread(input, "\nyou> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return
        line = line.strip()
        if line in ("/quit", "/exit"):
            return
        if line.isdigit() and 1 <= int(line) <= len(choices):
            data = choices[int(line) - 1]
            if data.startswith("http"):
                print(f"(a link: {data})")
                continue
            reply = await runtime.conversation.press(person, data)
        elif line.startswith("/") and line[1:].split(maxsplit=1)[:1] and line[1:].split()[0].lower() in BY_NAME:
            name, _, argument = line[1:].partition(" ")
            reply = await runtime.conversation.command(person, name.lower(), argument)
        else:
            reply = await runtime.conversation.handle_text(person, line)
        text, choices = render_for_terminal(reply)
        print(f"\nrahnuma> {text}")


async def ask(runtime: Runtime, text: str, *, user: str | None, as_json: bool, language: str | None = None) -> int:
    """One message, one reply. Without --user the asker is a new, throwaway user."""
    person = Person(channel="cli", external_id=user or f"ask:{uuid.uuid4().hex}")
    if language:
        await runtime.conversation.press(person, f"lang:{language}")
    reply = await runtime.conversation.handle_text(person, text)
    if as_json:
        payload: dict[str, Any] = {
            "intent": reply.intent,
            "confidence": None if reply.confidence is None else round(reply.confidence, 4),
            "article": reply.article_id,
            "reply": plain_text(reply.text),
            "reply_html": reply.text,
            "decision": str(reply.decision),
            "nlu_source": reply.nlu_source,
            "buttons": [button.data or button.url for row in reply.buttons for button in row],
            "latency_ms": round(reply.latency_ms, 2),
        }
        json.dump(payload, sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        print(render_for_terminal(reply)[0])
    return 0
