"""The core's side of the outbox: how each kind of proactive message is treated, and a Reply as a stored payload.

Every message Rahnuma sends on its own goes through here into the `outbox_message` table; the dispatcher
(bot/delivery/) is the only code that sends it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from bot.core.types import Button, Reply
from storage.outbox import NewMessage


@dataclass(frozen=True)
class KindPolicy:
    priority: int  # lower goes first
    quiet_hours: bool  # held while the recipient's local time is quiet
    ttl: dt.timedelta  # dropped as expired after this, never delivered stale
    proactive: bool  # stopped by /stop (a reply a user asked for, e.g. a coordinator's answer, is not)


POLICIES: dict[str, KindPolicy] = {
    "relay": KindPolicy(priority=0, quiet_hours=False, ttl=dt.timedelta(days=2), proactive=False),
    "system": KindPolicy(priority=1, quiet_hours=False, ttl=dt.timedelta(days=1), proactive=False),
    "intro": KindPolicy(priority=3, quiet_hours=True, ttl=dt.timedelta(days=3), proactive=True),
    "nudge": KindPolicy(priority=5, quiet_hours=True, ttl=dt.timedelta(days=2), proactive=True),
    "digest": KindPolicy(priority=6, quiet_hours=True, ttl=dt.timedelta(days=3), proactive=True),
    "broadcast": KindPolicy(priority=7, quiet_hours=True, ttl=dt.timedelta(days=7), proactive=True),
}
PROACTIVE_KINDS = tuple(kind for kind, policy in POLICIES.items() if policy.proactive)


def payload_of(reply: Reply) -> dict[str, Any]:
    """What is stored: the rendered text and buttons, exactly as the recipient will see them."""
    return {
        "text": reply.text,
        "buttons": [
            [{"label": b.label, **({"url": b.url} if b.url else {"data": b.data})} for b in row]
            for row in reply.buttons
        ],
    }


def reply_of(payload: dict[str, Any]) -> Reply:
    rows = [
        [Button(str(b["label"]), data=b.get("data"), url=b.get("url")) for b in row]
        for row in payload.get("buttons", [])
    ]
    return Reply(text=str(payload.get("text", "")), buttons=rows)


def outbound(
    *,
    kind: str,
    reply: Reply,
    chat_id: int,
    user_id: int | None,
    dedupe_key: str,
    not_before: dt.datetime,
    expires_at: dt.datetime | None = None,
    priority: int | None = None,
    campaign: str | None = None,
    meta: dict[str, Any] | None = None,
) -> NewMessage:
    """A row for the outbox, with its kind's priority, quiet-hours rule and expiry unless given."""
    policy = POLICIES[kind]
    return NewMessage(
        user_id=user_id,
        chat_id=chat_id,
        kind=kind,
        payload=payload_of(reply),
        priority=policy.priority if priority is None else priority,
        not_before=not_before,
        expires_at=expires_at or not_before + policy.ttl,
        quiet_hours=policy.quiet_hours,
        dedupe_key=dedupe_key,
        campaign=campaign,
        meta=meta,
    )
