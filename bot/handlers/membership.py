"""Learning who blocked the bot: Telegram sends a my_chat_member update when a user blocks or unblocks it."""

from __future__ import annotations

from telegram import ChatMember, Update
from telegram.constants import ChatType

from bot.handlers.context import RahnumaContext, person_of

_GONE = {ChatMember.BANNED, ChatMember.LEFT}


async def track_private_chat(update: Update, context: RahnumaContext) -> None:
    """A private chat's member status changed: blocked (kicked) or back (member)."""
    change = update.my_chat_member
    if change is None or change.chat.type != ChatType.PRIVATE or update.effective_user is None:
        return
    blocked = change.new_chat_member.status in _GONE
    was_blocked = change.old_chat_member.status in _GONE
    if blocked != was_blocked:
        await context.conversation.blocked_changed(person_of(update), blocked=blocked)
