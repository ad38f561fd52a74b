"""Text at the edges: clean what users send, and cut long Telegram-HTML replies where a reader would."""

from __future__ import annotations

import html
import re
import unicodedata

MAX_MESSAGE_LENGTH = 4096  # Telegram's limit, counted in UTF-16 code units after HTML entities are parsed

# C0/C1 control characters except tab and newline. NUL in particular: PostgreSQL refuses it in text and JSON.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_TAG = re.compile(r"(<[^<>]*>)")
_TAG_NAME = re.compile(r"</?\s*([a-zA-Z][\w-]*)")


def clean_text(text: str | None) -> str:
    """What users send, made safe to store and show: no control characters, no unpaired surrogates.

    Urdu letters, RTL marks and zero-width joiners stay: they are part of how Urdu is written.
    """
    if not text:
        return ""
    text = text.encode("utf-8", errors="replace").decode("utf-8")  # unpaired surrogates become "?"
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_name(name: str | None, limit: int = 256) -> str | None:
    """A display name from Telegram, cleaned and on one line; None when nothing is left."""
    cleaned = " ".join(clean_text(name).split())[:limit]
    return cleaned or None


def utf16_length(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def rendered_length(telegram_html: str) -> int:
    """How long Telegram considers a message: tags removed, entities unescaped, in UTF-16 code units."""
    return utf16_length(html.unescape(_TAG.sub("", telegram_html)))


def is_mostly_urdu_script(text: str) -> bool:
    letters = [ch for ch in text if unicodedata.category(ch).startswith("L")]
    arabic = sum(1 for ch in letters if "\u0600" <= ch <= "\u06ff" or "\u0750" <= ch <= "\u077f" or ch >= "\ufb50")
    return bool(letters) and arabic / len(letters) > 0.5


# ---- splitting ------------------------------------------------------------------------------------------------

Token = tuple[str, str]  # ("tag", raw tag) or ("text", plain text)
_SEPARATORS = ("\n\n", "\n", " ")


def split_html(telegram_html: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Cut a Telegram-HTML text into messages of at most `limit` rendered characters.

    Cuts fall between paragraphs if possible, else between lines, else between words, and only then inside a word;
    never inside a tag or an entity. Tags open at a cut are closed before it and reopened after it, so every part
    is valid HTML on its own.
    """
    if rendered_length(telegram_html) <= limit:
        return [telegram_html]
    chunks = _split(_tokenize(telegram_html), limit, 0)
    return [text for text in (_render(chunk).strip() for chunk in chunks) if text]


def _tokenize(telegram_html: str) -> list[Token]:
    tokens: list[Token] = []
    for part in _TAG.split(telegram_html):
        if not part:
            continue
        if _TAG.fullmatch(part):
            tokens.append(("tag", part))
        else:
            tokens.append(("text", html.unescape(part)))
    return tokens


def _render(tokens: list[Token]) -> str:
    return "".join(value if kind == "tag" else html.escape(value, quote=False) for kind, value in tokens)


def _length(tokens: list[Token]) -> int:
    return sum(utf16_length(value) for kind, value in tokens if kind == "text")


def _tag_name(raw: str) -> tuple[str, bool]:
    match = _TAG_NAME.match(raw)
    return (match.group(1).lower() if match else ""), raw.startswith("</")


def _pieces(tokens: list[Token], separator: str) -> list[list[Token]]:
    """Split at every separator inside text, each piece with its tags balanced."""
    pieces: list[list[Token]] = [[]]
    stack: list[tuple[str, str]] = []
    for kind, value in tokens:
        if kind == "tag":
            pieces[-1].append((kind, value))
            name, closing = _tag_name(value)
            if closing:
                for index in range(len(stack) - 1, -1, -1):
                    if stack[index][0] == name:
                        del stack[index]
                        break
            else:
                stack.append((name, value))
            continue
        for index, part in enumerate(value.split(separator)):
            if index:
                pieces[-1].extend(("tag", f"</{name}>") for name, _ in reversed(stack))
                pieces.append([("tag", raw) for _, raw in stack])
            if part:
                pieces[-1].append(("text", part))
    return [piece for piece in pieces if any(kind == "text" for kind, _ in piece)]


def _split(tokens: list[Token], limit: int, level: int) -> list[list[Token]]:
    if _length(tokens) <= limit:
        return [tokens]
    if level == len(_SEPARATORS):
        return _hard_split(tokens, limit)
    separator = _SEPARATORS[level]
    gap = utf16_length(separator)
    chunks: list[list[Token]] = []
    current: list[Token] | None = None
    current_length = 0  # kept as we go: recounting the chunk for every word made long texts quadratic
    for piece in _pieces(tokens, separator):
        for part in _split(piece, limit, level + 1):
            part_length = _length(part)
            if current is None:
                current, current_length = list(part), part_length
            elif current_length + gap + part_length <= limit:
                current.append(("text", separator))
                current.extend(part)
                current_length += gap + part_length
            else:
                chunks.append(current)
                current, current_length = list(part), part_length
    if current is not None:
        chunks.append(current)
    return chunks


def _hard_split(tokens: list[Token], limit: int) -> list[list[Token]]:
    """A single word longer than a message: cut by characters (never between a surrogate pair's halves)."""
    chunks: list[list[Token]] = [[]]
    stack: list[tuple[str, str]] = []
    room = limit
    for kind, value in tokens:
        if kind == "tag":
            chunks[-1].append((kind, value))
            name, closing = _tag_name(value)
            if closing:
                stack = [entry for entry in stack if entry[0] != name]
            else:
                stack.append((name, value))
            continue
        rest = value
        while rest:
            taken, used = 0, 0
            for ch in rest:
                width = 2 if ord(ch) > 0xFFFF else 1
                if used + width > room:
                    break
                used += width
                taken += 1
            if taken:
                chunks[-1].append(("text", rest[:taken]))
                rest = rest[taken:]
                room -= used
            if rest:
                chunks[-1].extend(("tag", f"</{name}>") for name, _ in reversed(stack))
                chunks.append([("tag", raw) for _, raw in stack])
                room = limit
    return chunks
