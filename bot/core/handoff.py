"""A human when needed: the hand-off relay between a user and the coordinators' group.

/human (or "kisi insaan se baat karni hai") opens a ticket and posts the question, with context and a pseudonymous
number, to the coordinators' group. A coordinator answers by replying to the bot's post; the reply reaches the user
as a fresh message from the bot (the coordinator's account stays private). Replies are mapped to tickets through
`handoff_post` and the outbox's Telegram message ids, never through `forward_from`. Every message, both ways, goes
through the outbox (kind `relay`: ahead of bulk, no quiet hours). While a ticket is open the user's messages go to
the group instead of the NLU. A planner re-posts unanswered tickets and closes silent ones.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from bot.core import buttons
from bot.core.clock import Clock
from bot.core.journal import Journal
from bot.core.outbox import outbound
from bot.core.quiet_hours import Span
from bot.core.roles import Roles
from bot.core.routes import Routes
from bot.core.types import Button, Reply, UserView
from content.coordinators import CoordinatorContent
from content.library import Library
from nlu.understanding import Understanding
from storage import handoff as stored
from storage import outbox as stored_outbox
from storage import users as stored_users
from storage.codebook import Decision, EventKind
from storage.db import Database, Session
from storage.events import NewEvent, add_events
from storage.models import HandoffTicket

GROUP_LANGUAGE = "en"  # what the bot writes in the coordinators' group
MAX_REPOSTS = 3
MAX_RELAYED_CHARS = 3500

GroupOutcome = Literal["relayed", "note", "unknown", "closed", "refused", "no_such_reply"]


@dataclass(frozen=True)
class HandoffConfig:
    chat_id: int | None  # the coordinators' group; None: no hand-offs in this deployment
    hours: Span = Span(dt.time(9), dt.time(17))
    timezone: str = "Asia/Karachi"
    repost_after: dt.timedelta = dt.timedelta(hours=2)
    close_after: dt.timedelta = dt.timedelta(hours=48)


def pseudonym(user_id: int) -> str:
    """How coordinators see a user: a number, not a name (the same number researchers see in the export)."""
    return f"№{user_id}"


class Handoff:
    def __init__(
        self,
        library: Library,
        content: CoordinatorContent,
        db: Database,
        clock: Clock,
        journal: Journal,
        roles: Roles,
        config: HandoffConfig,
    ) -> None:
        self.library = library
        self.content = content
        self.db = db
        self.clock = clock
        self.journal = journal
        self.roles = roles
        self.config = config

    def routes(self, routes: Routes) -> None:
        routes.command("human", lambda user, text: self.request(user, text, source="command"), changes_state=True)
        routes.intent("request_human", self._asked_in_words, changes_state=True)
        routes.button(buttons.HandoffAction, self._press, changes_state=True)
        routes.intercept(self.forward, logged_as=EventKind.HANDOFF_MESSAGE)

    async def _asked_in_words(self, user: UserView, text: str, _: Understanding) -> Reply:
        return await self.request(user, text, source="intent")

    # ---- the user's side --------------------------------------------------------------------------------------

    def when_answered(self, now: dt.datetime, lang: str) -> str:
        """When a coordinator will answer, from the working hours (in the deployment's time zone)."""
        zone = ZoneInfo(self.config.timezone)
        local = now.astimezone(zone)
        hours = self.config.hours
        span = f"{hours.start:%H:%M}–{hours.end:%H:%M}"
        if hours.contains(local.time()):
            return self.library.text("handoff_within_hours", lang, hours=span)
        key = "handoff_later_today" if local.time() < hours.start else "handoff_tomorrow"
        return self.library.text(key, lang, hours=span, time=f"{hours.start:%H:%M}")

    def _user_buttons(self, ticket_id: int, lang: str, *, with_name: bool) -> list[list[Button]]:
        rows = []
        if with_name:
            rows.append(
                [Button.of(self.library.text("button_share_name", lang), buttons.HandoffAction("name", ticket_id))]
            )
        rows.append([Button.of(self.library.text("button_end_handoff", lang), buttons.HandoffAction("end", ticket_id))])
        return rows

    async def request(self, user: UserView, text: str, *, source: str) -> Reply:
        """/human or asked in words: open a ticket (one at a time) and post it to the coordinators' group."""
        lang = user.language
        if self.config.chat_id is None:
            return Reply(text=self.library.text("handoff_unavailable", lang), decision=Decision.HANDOFF_UNAVAILABLE)
        if user.id is None:
            return Reply(text=self.library.text("storage_unavailable", lang), decision=Decision.STORAGE_UNAVAILABLE)
        now = self.clock.now()
        async with self.db.write() as session:
            existing = await stored.open_ticket_of(session, user_id=user.id)
            if existing is not None:
                return Reply(
                    text=self.library.text("handoff_already_open", lang),
                    buttons=self._user_buttons(existing.id, lang, with_name=False),
                    decision=Decision.HANDOFF_ALREADY_OPEN,
                )
            ticket = await stored.open_ticket(session, user_id=user.id, now=now)
            post = await self._context_post(session, ticket, user, text.strip(), now, header="handoff_post")
            await self._post(session, ticket.id, post, key="open", now=now)
            event = NewEvent(
                kind=EventKind.HANDOFF_REQUESTED, at=now, user_id=user.id, data={"ticket": ticket.id, "source": source}
            )
            await add_events(session, events=[event])
            ticket_id = ticket.id
        text_out = self.library.text("handoff_opened", lang) + "\n" + self.when_answered(now, lang)
        return Reply(
            text=text_out,
            buttons=self._user_buttons(ticket_id, lang, with_name=True),
            decision=Decision.HANDOFF_OPENED,
        )

    async def forward(self, user: UserView, text: str, received_at: dt.datetime) -> Reply | None:
        """While a ticket is open, the user's words go to the coordinators, not to the NLU."""
        if self.config.chat_id is None or user.id is None or text.startswith("/"):
            return None
        async with self.db.read() as session:  # every message asks: a read, no write lock unless a ticket is open
            if await stored.open_ticket_of(session, user_id=user.id) is None:
                return None
        now = self.clock.now()
        async with self.db.write() as session:
            ticket = await stored.open_ticket_of(session, user_id=user.id)
            if ticket is None:
                return None
            if ticket.last_activity_at < now - self.config.close_after:
                return None  # gone silent: the planner closes it; this message is an ordinary question
            body = html.escape(text[:MAX_RELAYED_CHARS])
            post = self.library.text(
                "handoff_post_message", GROUP_LANGUAGE, ticket=ticket.id, user=self._who(user, ticket), text=body
            )
            await self._post(session, ticket.id, Reply(text=post), key=f"m:{uuid.uuid4().hex}", now=now)
            await stored.touch(session, ticket_id=ticket.id, now=now)
            ticket_id = ticket.id
        return Reply(
            text=self.library.text("handoff_forwarded", user.language),
            buttons=self._user_buttons(ticket_id, user.language, with_name=False),
            decision=Decision.HANDOFF_FORWARDED,
        )

    async def _press(self, user: UserView, action: buttons.HandoffAction, _: dt.datetime) -> Reply:
        lang = user.language
        now = self.clock.now()
        async with self.db.write() as session:
            ticket = await stored.get_ticket(session, ticket_id=action.ticket_id)
            if ticket is None or ticket.user_id != user.id or ticket.status != "open":
                return Reply(text=self.library.text("handoff_not_open", lang), decision=Decision.BUTTON_UNKNOWN)
            if action.verb == "name":
                await stored.touch(session, ticket_id=ticket.id, now=now, show_name=True)
                name = html.escape(user.display_name or "?")
                post = self.library.text("handoff_post_name", GROUP_LANGUAGE, ticket=ticket.id, name=name)
                await self._post(session, ticket.id, Reply(text=post), key="name", now=now)
                await add_events(
                    session,
                    events=[
                        NewEvent(
                            kind=EventKind.HANDOFF_NAME_SHARED, at=now, user_id=user.id, data={"ticket": ticket.id}
                        )
                    ],
                )
                return Reply(text=self.library.text("handoff_name_shared", lang), decision=Decision.HANDOFF_NAME_SHARED)
            if action.verb == "end":
                await self._close(session, ticket, reason="user", now=now, tell_user=False)
                return Reply(text=self.library.text("handoff_ended", lang), decision=Decision.HANDOFF_ENDED)
        return Reply(text=self.library.text("button_expired", lang), decision=Decision.BUTTON_UNKNOWN)

    # ---- the coordinators' side -------------------------------------------------------------------------------

    async def reply_from_group(
        self, *, coordinator: int, message_id: int, replied_to: int, text: str, canned: str | None = None
    ) -> GroupOutcome:
        """A coordinator replied (in the group) to one of the bot's posts: relay it to the user, or keep it as an
        internal note when it starts with `!`. `canned` names a canned reply to send in the user's language."""
        if self.config.chat_id is None:
            return "unknown"
        now = self.clock.now()
        if not self.roles.is_coordinator(coordinator):
            self.journal.record(NewEvent(kind=EventKind.ADMIN_REFUSED, at=now, data={"command": "relay"}))
            return "refused"
        async with self.db.write() as session:
            ticket = await stored.ticket_for_group_message(
                session, group_chat_id=self.config.chat_id, telegram_message_id=replied_to
            )
            if ticket is None:
                return "unknown"
            if canned is None and text.lstrip().startswith("!"):
                await add_events(
                    session, events=[NewEvent(kind=EventKind.HANDOFF_NOTE, at=now, data={"ticket": ticket.id})]
                )
                return "note"
            if ticket.status != "open":
                notice = self.library.text("handoff_post_closed_notice", GROUP_LANGUAGE, ticket=ticket.id)
                await self._post(session, ticket.id, Reply(text=notice), key=f"closed:{message_id}", now=now)
                return "closed"
            user = await stored_users.get_user_by_id(session, user_id=ticket.user_id)
            if user is None or not user.external_id.lstrip("-").isdigit():
                return "unknown"
            lang = user.language if user.language in ("en", "ur") else "en"
            if canned is not None:
                reply = self.content.canned.get(canned)
                if reply is None:
                    return "no_such_reply"
                words = html.escape(reply.text.get(lang) or reply.text["en"])
            else:
                words = html.escape(text.strip()[:MAX_RELAYED_CHARS])
            relay = outbound(
                kind="relay",
                reply=Reply(
                    text=self.library.text("handoff_relay", lang, text=words),
                    buttons=self._user_buttons(ticket.id, lang, with_name=False),
                ),
                chat_id=int(user.external_id),
                user_id=user.id,
                dedupe_key=f"relay:{self.config.chat_id}:{message_id}",
                not_before=now,
                campaign=f"handoff:{ticket.id}",
                meta={"ticket": ticket.id},
            )
            await stored_outbox.enqueue(session, messages=[relay], now=now)
            await stored.answered(session, ticket_id=ticket.id, coordinator=coordinator, now=now)
            data: dict[str, object] = {"ticket": ticket.id}
            if canned is not None:
                data["canned"] = canned
            await add_events(
                session, events=[NewEvent(kind=EventKind.HANDOFF_REPLIED, at=now, user_id=user.id, data=data)]
            )
        return "relayed"

    async def close_from_group(self, *, coordinator: int, ticket_id: int) -> str:
        """The Close button under a hand-off: the toast the coordinator sees."""
        if not self.roles.is_coordinator(coordinator):
            self.journal.record(NewEvent(kind=EventKind.ADMIN_REFUSED, at=self.clock.now(), data={"command": "close"}))
            return self.library.text("admin_refused", GROUP_LANGUAGE)
        now = self.clock.now()
        async with self.db.write() as session:
            ticket = await stored.get_ticket(session, ticket_id=ticket_id)
            if ticket is None or not await self._close(session, ticket, reason="coordinator", now=now, tell_user=True):
                return self.library.text("handoff_toast_already_closed", GROUP_LANGUAGE, ticket=ticket_id)
        return self.library.text("handoff_toast_closed", GROUP_LANGUAGE, ticket=ticket_id)

    def canned_list(self) -> str:
        lines = [self.library.text("canned_title", GROUP_LANGUAGE)]
        for canned in self.content.canned.values():
            lines.append(f"• <code>/canned {canned.id}</code> — {html.escape(canned.text['en'][:90])}")
        return "\n".join(lines)

    # ---- plumbing ---------------------------------------------------------------------------------------------

    def _who(self, user: UserView, ticket: HandoffTicket) -> str:
        who = pseudonym(ticket.user_id)
        if ticket.show_name and user.display_name:
            who += f" ({html.escape(user.display_name)})"
        return who

    async def _context_post(
        self, session: Session, ticket: HandoffTicket, user: UserView, text: str, now: dt.datetime, *, header: str
    ) -> Reply:
        """The post in the group: who (a number), language, rung, the last three questions, the message."""
        milestone, done = await stored.latest_milestone(session, user_id=ticket.user_id)
        questions = await stored.recent_questions(session, user_id=ticket.user_id)
        titles = {m.id: m.title["en"] for m in self.library.milestones}
        lines = []
        for event in reversed(questions):
            if event.text:
                lines.append(f"• {html.escape(event.text[:200])}")
            else:
                topic = event.article_id or event.intent or "?"
                lines.append(
                    f"• <i>{self.library.text('handoff_post_no_words', GROUP_LANGUAGE, topic=html.escape(topic))}</i>"
                )
        recent = "\n".join(lines) or self.library.text("handoff_post_no_questions", GROUP_LANGUAGE)
        message = html.escape(text[:MAX_RELAYED_CHARS]) if text else "—"
        body = self.library.text(
            header,
            GROUP_LANGUAGE,
            ticket=ticket.id,
            user=self._who(user, ticket),
            lang="اردو (ur)" if user.language == "ur" else "English (en)",
            milestone=html.escape(titles.get(milestone or "", "—")),
            done=done,
            total=len(self.library.milestones),
            recent=recent,
            message=message,
        )
        close = Button.of(
            self.library.text("button_close_handoff", GROUP_LANGUAGE, ticket=ticket.id),
            buttons.HandoffAction("close", ticket.id),
        )
        return Reply(text=body, buttons=[[close]])

    async def _post(self, session: Session, ticket_id: int, reply: Reply, *, key: str, now: dt.datetime) -> None:
        """A message to the coordinators' group for this ticket, remembered so replies to it find the ticket."""
        assert self.config.chat_id is not None
        message = outbound(
            kind="relay",
            reply=reply,
            chat_id=self.config.chat_id,
            user_id=None,
            dedupe_key=f"handoff:{ticket_id}:{key}",
            not_before=now,
            campaign=f"handoff:{ticket_id}",
            meta={"ticket": ticket_id},
        )
        inserted = await stored_outbox.enqueue(session, messages=[message], now=now)
        await stored.add_posts(session, ticket_id=ticket_id, outbox_ids=[outbox_id for outbox_id, _ in inserted])

    async def _close(
        self, session: Session, ticket: HandoffTicket, *, reason: str, now: dt.datetime, tell_user: bool
    ) -> bool:
        if not await stored.close(session, ticket_id=ticket.id, reason=reason, now=now):
            return False
        user = await stored_users.get_user_by_id(session, user_id=ticket.user_id)
        if tell_user and user is not None and user.external_id.lstrip("-").isdigit():
            lang = user.language if user.language in ("en", "ur") else "en"
            notice = outbound(
                kind="relay",
                reply=Reply(text=self.library.text(f"handoff_closed_{reason}", lang)),
                chat_id=int(user.external_id),
                user_id=user.id,
                dedupe_key=f"handoff:{ticket.id}:closed",
                not_before=now,
                campaign=f"handoff:{ticket.id}",
            )
            await stored_outbox.enqueue(session, messages=[notice], now=now)
        if self.config.chat_id is not None and reason != "coordinator":
            post = self.library.text(f"handoff_post_closed_{reason}", GROUP_LANGUAGE, ticket=ticket.id)
            await self._post(session, ticket.id, Reply(text=post), key="closed", now=now)
        data = {"ticket": ticket.id, "reason": reason, "answered": ticket.first_answered_at is not None}
        await add_events(
            session, events=[NewEvent(kind=EventKind.HANDOFF_CLOSED, at=now, user_id=ticket.user_id, data=data)]
        )
        return True


@dataclass
class HandoffPlan:
    enqueued: int = 0
    closed: int = 0
    reposted: int = 0


class HandoffPlanner:
    """With the dispatcher's planning pass: re-post hand-offs nobody answered, close the ones gone silent."""

    def __init__(self, handoff: Handoff, clock: Clock) -> None:
        self.handoff = handoff
        self.clock = clock

    async def plan(self, *, now: dt.datetime | None = None, use_cursor: bool = True) -> HandoffPlan:
        handoff = self.handoff
        result = HandoffPlan()
        if handoff.config.chat_id is None:
            return result
        now = now or self.clock.now()
        async with handoff.db.write() as session:
            for ticket in await stored.silent_since(session, before=now - handoff.config.close_after):
                if await handoff._close(session, ticket, reason="silence", now=now, tell_user=True):
                    result.closed += 1
            waiting = await stored.waiting_since(
                session, before=now - handoff.config.repost_after, max_reposts=MAX_REPOSTS
            )
            for ticket in waiting:
                user = await stored_users.get_user_by_id(session, user_id=ticket.user_id)
                if user is None:
                    continue
                view = UserView(
                    user.id, user.language, display_name=user.display_name, channel=user.channel,
                    external_id=user.external_id,
                )  # fmt: skip
                post = await handoff._context_post(session, ticket, view, "", now, header="handoff_post_repost")
                await handoff._post(session, ticket.id, post, key=f"repost:{ticket.reposts + 1}", now=now)
                await stored.touch(session, ticket_id=ticket.id, now=ticket.last_activity_at, reposted_at=now,
                                   reposts=ticket.reposts + 1)  # fmt: skip
                event = NewEvent(
                    kind=EventKind.HANDOFF_REPOSTED,
                    at=now,
                    user_id=ticket.user_id,
                    data={"ticket": ticket.id, "reposts": ticket.reposts + 1},
                )
                await add_events(session, events=[event])
                result.reposted += 1
        result.enqueued = result.closed + result.reposted
        return result
