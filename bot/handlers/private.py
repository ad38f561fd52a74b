"""Private chats with a freelancer: commands, free text, stickers and voice notes, and every button."""

from __future__ import annotations

from telegram import Update
from telegram.constants import ChatType

from bot.core.types import InboundKind
from bot.handlers.context import RahnumaContext, person_of
from bot.handlers.sending import acknowledge, edit_reply, send_reply
from storage.codebook import Decision

NON_TEXT_KINDS: tuple[InboundKind, ...] = ("sticker", "voice", "photo", "video", "document", "location")


def command_name(text: str) -> tuple[str, str]:
    """`/Profile@RahnumaBot extra words` → ("profile", "extra words")."""
    head, _, argument = text.partition(" ")
    return head.lstrip("/").split("@", 1)[0].lower(), argument.strip()


async def run_command(update: Update, context: RahnumaContext) -> None:
    """A known command in a private chat; the core decides what it means."""
    message = update.effective_message
    if message is None or not message.text:
        return
    name, argument = command_name(message.text)
    await send_reply(update, context, await context.conversation.command(person_of(update), name, argument))


async def answer_text(update: Update, context: RahnumaContext) -> None:
    """Free text (and unknown /commands, which deserve an answer too): understand it and answer from the content."""
    message = update.effective_message
    if message is None:
        return
    await send_reply(update, context, await context.conversation.handle_text(person_of(update), message.text or ""))


async def answer_non_text(update: Update, context: RahnumaContext) -> None:
    """Stickers, voice notes, photos and the like: a kind text reply."""
    message = update.effective_message
    kind: InboundKind = "other"
    if message is not None:
        kind = next((k for k in NON_TEXT_KINDS if getattr(message, k, None)), "other")
    await send_reply(update, context, await context.conversation.handle_non_text(person_of(update), kind))


async def press_button(update: Update, context: RahnumaContext) -> None:
    """Every inline button, known or not: the press is always answered so the client's spinner stops."""
    query = update.callback_query
    if query is None:
        return
    chat = query.message.chat if query.message is not None else None
    if chat is None or chat.type != ChatType.PRIVATE or update.effective_user is None:
        await acknowledge(query, context.runtime.library.text("button_expired", "en"))
        return
    reply = await context.conversation.press(person_of(update), query.data or "")
    if reply.toast_only:
        await acknowledge(query, reply.text)
        if reply.decision is Decision.FEEDBACK:
            await edit_reply_markup_quietly(update)
        return
    await acknowledge(query)
    if reply.replace and await edit_reply(query, reply):
        return
    await send_reply(update, context, reply)


async def edit_reply_markup_quietly(update: Update) -> None:
    """Remove the 👍/👎 buttons once pressed; an old or already-edited message keeps them, which is harmless."""
    query = update.callback_query
    if query is None:
        return
    try:
        await query.edit_message_reply_markup(reply_markup=None)
    except Exception:  # noqa: BLE001 - cosmetic: the feedback itself is stored
        return
