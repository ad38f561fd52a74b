"""Telegram's HTML parse mode, checked the way the Bot API checks it (tdlib's parser), for the reliability tests.

The Python twin of the checker in tests/e2e/emulator.js: every `<` must open or close a supported tag, tags must
nest, only `&lt; &gt; &amp; &quot;` and numeric entities are decoded (any other `&` stays as it is), and the
parsed text must be 1..4096 characters, counted in UTF-16 code units as Telegram counts them.
"""

from __future__ import annotations

import re

MAX_MESSAGE_LENGTH = 4096
TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre"}
    | {"blockquote", "tg-emoji"}
)
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);")
_START_TAG = re.compile(r"([a-zA-Z][a-zA-Z0-9-]*)")


class TelegramHtmlError(ValueError):
    """What Telegram would answer with `400 Bad Request: can't parse entities: ...`."""


def utf16_length(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def parse(text: str) -> str:
    """The plain text Telegram would show for `text` in HTML parse mode; raises TelegramHtmlError."""
    plain: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "&":
            match = _ENTITY.match(text, i)
            decoded = _decode(match.group(1)) if match else None
            if match and decoded is not None:
                plain.append(decoded)
                i = match.end()
            else:
                plain.append("&")  # Telegram keeps an undecodable '&' as it is
                i += 1
            continue
        if ch != "<":
            plain.append(ch)
            i += 1
            continue
        end = text.find(">", i)
        if end == -1:
            raise TelegramHtmlError(f"Unclosed start tag at offset {i}")
        inner = text[i + 1 : end]
        if inner.startswith("/"):
            name = inner[1:].strip().lower()
            if not stack:
                raise TelegramHtmlError(f"Unexpected end tag at offset {i}")
            expected = stack.pop()
            if name and name != expected:
                raise TelegramHtmlError(f'Unmatched end tag at offset {i}, expected "</{expected}>", found "</{name}>"')
        else:
            match = _START_TAG.match(inner)
            name = match.group(1).lower() if match else ""
            if name not in TAGS:
                raise TelegramHtmlError(f'Unsupported start tag "{name}" at offset {i}')
            if name == "span" and not re.search(r"class\s*=\s*[\"']?tg-spoiler", inner):
                raise TelegramHtmlError('Tag "span" must have class "tg-spoiler"')
            stack.append(name)
        i = end + 1
    if stack:
        raise TelegramHtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1]}"')
    return "".join(plain)


def check_message(text: str) -> str:
    """A sendMessage text in HTML mode that Telegram accepts: parses, not empty, at most 4096 characters."""
    plain = parse(text)
    if not plain.strip():
        raise TelegramHtmlError("message text is empty")
    if utf16_length(plain) > MAX_MESSAGE_LENGTH:
        raise TelegramHtmlError(f"message is too long ({utf16_length(plain)} UTF-16 code units)")
    return plain


def _decode(body: str) -> str | None:
    if body.startswith("#"):
        code = int(body[2:], 16) if body[1:2] in ("x", "X") else int(body[1:])
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else None
    return _NAMED.get(body)
