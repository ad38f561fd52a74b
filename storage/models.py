"""The tables. `event` is append-only: the raw material for researchers, sized for millions of rows.

Every `*_at` column is a `UtcDateTime` (aware UTC on every backend) and its value is passed in from the caller's
clock, never taken from the database server, so tests and `--at` runs control time.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a real 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# AUTOINCREMENT on SQLite: an id is never given again after its row is deleted (an erased user's id must not pass
# to the next newcomer while a message of the erased user is still in flight).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table of a model, for bulk statements that skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


class User(Base):
    """One person on one channel (Telegram or the terminal)."""

    __tablename__ = "user"
    __table_args__ = (
        Index("uq_user_channel_external_id", "channel", "external_id", unique=True),
        Index("ix_user_last_seen_at", "last_seen_at"),
        Index("ix_user_created_at", "created_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(256))
    language: Mapped[str] = mapped_column(String(8), default="en")
    language_chosen: Mapped[bool] = mapped_column(default=False)
    timezone: Mapped[str | None] = mapped_column(String(64))
    skill: Mapped[str | None] = mapped_column(String(200))
    platforms: Mapped[list[str] | None] = mapped_column(JSON)
    city: Mapped[str | None] = mapped_column(String(100))
    # The /profile question this user is answering now, and when it was asked: a message that arrived before the
    # question cannot be its answer (several quick messages must not fill the following questions).
    profile_step: Mapped[str | None] = mapped_column(String(32))
    profile_step_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    research_consent: Mapped[bool] = mapped_column(default=False, server_default=false())
    consent_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # Set when Telegram says the user blocked the bot (a 403, or a my_chat_member update); cleared when they return.
    blocked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # /stop: no proactive message of any kind (nudges, broadcasts, digests) until /resume.
    proactive_stopped_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # /nudges: "daily" (up to the caps), "weekly" (one a week at most) or "off".
    nudge_pace: Mapped[str] = mapped_column(String(8), default="daily", server_default="daily")


class MilestoneDone(Base):
    """The current state of the ladder: one row per milestone a user has marked done (history is in `event`)."""

    __tablename__ = "milestone_done"
    __table_args__ = (
        Index("ix_milestone_done_milestone_done_at", "milestone", "done_at"),
        Index("ix_milestone_done_done_at", "done_at"),
    )

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    milestone: Mapped[str] = mapped_column(String(48), primary_key=True)
    done_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))


class Event(Base):
    """Every inbound message, reply and state change, with what the NLU made of it and how long it took."""

    __tablename__ = "event"
    __table_args__ = (
        Index("ix_event_user_id_at", "user_id", "at"),
        Index("ix_event_at", "at"),
        Index("ix_event_kind_at", "kind", "at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("user.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    article_id: Mapped[str | None] = mapped_column(String(96))
    nlu_source: Mapped[str | None] = mapped_column(String(16))
    latency_ms: Mapped[float | None] = mapped_column(Float)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class OutboxMessage(Base):
    """One message Rahnuma sends on its own (nudge, broadcast, relay, introduction, digest, system notice).

    The table is the schedule: planners insert rows (the dedupe key makes planning twice enqueue once), the
    dispatcher claims due rows with a lease, sends them and records the outcome. Nothing lives only in memory.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (
        Index("uq_outbox_message_dedupe_key", "dedupe_key", unique=True),
        Index("ix_outbox_message_due", "status", "priority", "not_before"),
        Index("ix_outbox_message_user_id_status", "user_id", "status"),
        Index("ix_outbox_message_campaign_status", "campaign", "status"),
        Index("ix_outbox_message_claimed_until", "claimed_until", postgresql_where=text("status = 'claimed'")),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("user.id", ondelete="SET NULL"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    # Rendered in the recipient's language: {"text": html, "buttons": [[{"label", "data" | "url"}]]}.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    priority: Mapped[int] = mapped_column(SmallInteger)
    not_before: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Held while the recipient's local time is in quiet hours (nudges, broadcasts); never for relays and replies.
    quiet_hours: Mapped[bool] = mapped_column(default=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Set right before the send: a crash after it means the message may have gone (see docs/OUTBOX.md).
    sending_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(300))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # What it belongs to, for reports: "nudge:<rule>", "broadcast:<id>", "handoff:<id>"...
    campaign: Mapped[str | None] = mapped_column(String(64))
    # Kind-specific facts researchers need (rule, experiment, arm...).
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # First message from the user after a nudge was sent (within 48 h): the nudge's measured effect.
    responded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class PlannerCursor(Base):
    """How far each planner has looked: the next pass plans only what became due since, so a pass costs what is
    due, not how many users there are."""

    __tablename__ = "planner_cursor"

    name: Mapped[str] = mapped_column(String(48), primary_key=True)
    planned_until: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ExperimentAssignment(Base):
    """Which arm of a nudge experiment each user is in (a stable hash decides; the row records it once)."""

    __tablename__ = "experiment_assignment"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    experiment: Mapped[str] = mapped_column(String(48), primary_key=True)
    arm: Mapped[str] = mapped_column(String(32))
    assigned_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


# ---- coordinators (issue 10): roles, cohorts, broadcasts, hand-off tickets ---------------------------------------


class RoleGrant(Base):
    """A role given from the CLI (`rahnuma admin add`), on top of RAHNUMA_COORDINATORS. Keyed by Telegram user id,
    so a coordinator can be granted before they ever talk to the bot."""

    __tablename__ = "role_grant"

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)  # coordinator | researcher
    granted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    granted_by: Mapped[str | None] = mapped_column(String(64))


class Cohort(Base):
    """A training cohort; users join through t.me/<bot>?start=c-<tag>."""

    __tablename__ = "cohort"

    tag: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CohortMember(Base):
    __tablename__ = "cohort_member"
    __table_args__ = (Index("ix_cohort_member_tag", "tag"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(32), ForeignKey("cohort.tag", ondelete="CASCADE"), primary_key=True)
    joined_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Broadcast(Base):
    """A broadcast from its draft (the /broadcast wizard keeps its step here, so a restart loses nothing) to its
    delivery. Recipients are expanded into outbox rows in batches; `cursor_user_id` is committed with each batch, so
    an expansion cut short resumes where it stopped (and the outbox's dedupe keys make a repeat harmless)."""

    __tablename__ = "broadcast"
    __table_args__ = (
        Index("ix_broadcast_status_send_at", "status", "send_at"),
        Index("ix_broadcast_created_by_status", "created_by", "status"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_by: Mapped[int | None] = mapped_column(BigInteger)  # Telegram user id; NULL from the CLI
    # draft → scheduled → sending (every recipient enqueued) → done; or cancelled
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[str | None] = mapped_column(String(16))  # the wizard's open question while a draft
    step_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    text_en: Mapped[str | None] = mapped_column(Text)
    text_ur: Mapped[str | None] = mapped_column(Text)
    tip_id: Mapped[str | None] = mapped_column(String(64))
    segment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Hash of the texts and the segment: the same broadcast twice within a day asks for a second confirmation.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    recipients: Mapped[int | None] = mapped_column(Integer)  # counted when confirmed
    send_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    cursor_user_id: Mapped[int] = mapped_column(BigInteger, default=0)
    enqueued: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    confirmed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    expanded_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class HandoffTicket(Base):
    """A user asked for a human: open until a coordinator closes it, the user ends it, or it stays silent."""

    __tablename__ = "handoff_ticket"
    __table_args__ = (
        Index("ix_handoff_ticket_user_id_status", "user_id", "status"),
        Index("ix_handoff_ticket_status_last_activity_at", "status", "last_activity_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(8))  # open | closed
    assignee: Mapped[int | None] = mapped_column(BigInteger)  # Telegram id of the first coordinator who answered
    show_name: Mapped[bool] = mapped_column(default=False)  # the user agreed to show their name to coordinators
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_activity_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    first_answered_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    reposted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    reposts: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    closed_reason: Mapped[str | None] = mapped_column(String(16))


class HandoffPost(Base):
    """A message the bot posted to the coordinators' group for a ticket. Its Telegram message id is the outbox
    row's `telegram_message_id` once sent: a coordinator's reply is mapped to its ticket through this table, never
    through `forward_from` (which users can hide)."""

    __tablename__ = "handoff_post"
    __table_args__ = (Index("ix_handoff_post_ticket_id", "ticket_id"),)

    outbox_id: Mapped[int] = mapped_column(BigId, ForeignKey("outbox_message.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigId, ForeignKey("handoff_ticket.id", ondelete="CASCADE"))


# ---- peer support (issue 12): buddies and circles ----------------------------------------------------------------


class PeerOptIn(Base):
    """A user who asked for a buddy (/buddy): what they want, and whether their city may be shown."""

    __tablename__ = "peer_optin"
    __table_args__ = (Index("ix_peer_optin_opted_in_at", "opted_in_at"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    seeking: Mapped[str] = mapped_column(String(8))  # peer (same step) | ahead (a helper) | help (helps one behind)
    share_city: Mapped[bool] = mapped_column(default=False)
    opted_in_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The odd one out is told once that they wait for the next opt-in.
    waiting_told_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # "Message my buddy" was pressed: the next text goes to the buddy (for a few minutes).
    compose_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class PeerPair(Base):
    """Two users proposed to each other. Never the same two twice: (user_low, user_high) is unique for ever, so a
    pair declined, reported or ended is never proposed again. Erasing a user sets their side to NULL."""

    __tablename__ = "peer_pair"
    __table_args__ = (
        Index("uq_peer_pair_user_low_user_high", "user_low", "user_high", unique=True),
        Index("ix_peer_pair_user_high", "user_high"),
        Index("ix_peer_pair_status", "status"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_low: Mapped[int | None] = mapped_column(BigId, ForeignKey("user.id", ondelete="SET NULL"))
    user_high: Mapped[int | None] = mapped_column(BigId, ForeignKey("user.id", ondelete="SET NULL"))
    # proposed → active (both accepted) → ended; proposed → declined (a Skip, or no answer); active → paused (report)
    status: Mapped[str] = mapped_column(String(12))
    low_accepted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    high_accepted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    proposed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    last_message_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    ended_reason: Mapped[str | None] = mapped_column(String(16))  # skip|end|report|silence|expired|deleted|withdrew
    # When the remaining buddy was told that the other erased their data (reason "deleted").
    notice_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class PeerSeat(Base):
    """A user's place in their one open (proposed, active or paused) pair: the primary key makes "at most one
    buddy" a constraint, so two matching passes in two processes cannot give anyone a second buddy."""

    __tablename__ = "peer_seat"
    __table_args__ = (Index("ix_peer_seat_pair_id", "pair_id"),)

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    pair_id: Mapped[int] = mapped_column(BigId, ForeignKey("peer_pair.id", ondelete="CASCADE"))


class CircleMember(Base):
    """A user who wants the weekly circle digest (anonymous aggregates of the people who started with them)."""

    __tablename__ = "circle_member"

    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True)
    joined_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class CircleDigest(Base):
    """One week's circle digest, expanded into outbox rows in batches by user id; `cursor_user_id` is committed with
    each batch, so an expansion spread over several passes (or cut short by a crash) resumes where it stopped."""

    __tablename__ = "circle_digest"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)  # the slot's date, YYYY-MM-DD
    cursor_user_id: Mapped[int] = mapped_column(BigInteger, default=0)
    enqueued: Mapped[int] = mapped_column(Integer, default=0)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class WinStory(Base):
    """One line of advice offered after a first job won: written by the user (asked, optional), approved by a
    coordinator in the coordinators' group, then shown in circle digests without a name. Erased with its author."""

    __tablename__ = "win_story"
    __table_args__ = (
        Index("ix_win_story_user_id_status", "user_id", "status"),
        Index("ix_win_story_status_decided_at", "status", "decided_at"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("user.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(12))  # writing → pending → approved | rejected
    text: Mapped[str | None] = mapped_column(Text)
    asked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)  # when "Share advice" was pressed
    written_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)  # the coordinator's Telegram id
