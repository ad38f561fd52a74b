"""A core Reply as Telegram messages: HTML parts within Telegram's length limit, and the inline keyboard."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.core.text import split_html
from bot.core.types import Button, Reply


def keyboard_of(rows: list[list[Button]]) -> InlineKeyboardMarkup | None:
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(button.label, url=button.url)
                if button.url
                else InlineKeyboardButton(button.label, callback_data=button.data)
                for button in row
            ]
            for row in rows
        ]
    )


def message_parts(reply: Reply) -> list[tuple[str, InlineKeyboardMarkup | None]]:
    """The texts to send, cut at paragraph boundaries; the buttons go under the last one."""
    parts = split_html(reply.text) or [reply.text]
    keyboard = keyboard_of(reply.buttons)
    return [(text, keyboard if index == len(parts) - 1 else None) for index, text in enumerate(parts)]
