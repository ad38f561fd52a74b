"""The exported tables: each is one entry in TABLES (fields + where its rows come from). Adding a table, e.g. when
the hand-off tables land, is one more entry here; datapackage.json and docs/CODEBOOK.md follow by themselves."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from typing import Any

from research.kanon import QI, cohort_of_week, generalise, normalise_city, normalise_skill, platform_key_of_json
from research.schema import Columns, Field, Row, Table
from research.scrub import scrub
from storage import research as stored
from storage.codebook import Decision, EventKind
from storage.models import Event, MilestoneDone, OutboxMessage, User
from storage.outbox import KINDS, STATUSES

USER_ID = Field("user_id", "string", "The person's pseudonym (same in every table and every export with this key).")
OPTIONAL_USER_ID = Field(
    "user_id", "string", "The person's pseudonym; empty for anonymous rows (group questions, erased users)."
)


def _of(data: dict[str, Any] | None, key: str) -> Any:
    return data.get(key) if data else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


# ---- users -----------------------------------------------------------------------------------------------------------


async def _users(ctx: Any) -> AsyncIterator[Sequence[Row]]:
    """Two passes: count the quasi-identifier combinations, decide the generalisation, then write."""
    query = stored.users_query(ctx.period)
    monday = lru_cache(maxsize=4096)(stored.monday_of)

    def qi_of(row: Any) -> QI:
        return (
            normalise_city(row[6]), normalise_skill(row[4]), platform_key_of_json(row[5]),
            cohort_of_week(monday(row[1])),
        )  # fmt: skip

    counts: Counter[QI] = Counter()
    async for rows in stored.stream(ctx.session, query):
        counts.update(qi_of(row) for row in rows)
    ctx.kanon = generalise(counts, ctx.k)
    mapping = ctx.kanon.mapping
    pid = ctx.pseudonyms.user
    async for rows in stored.stream(ctx.session, query):
        out = []
        for row in rows:
            (user_id, started, channel, language, _, _, _, consent, version, pace, blocked, stopped, seen) = row
            city, skill, platforms, cohort = mapping[qi_of(row)]
            out.append(
                (
                    pid(user_id),
                    channel,
                    language,
                    skill or None,
                    platforms or None,
                    city or None,
                    cohort,
                    monday(started),
                    monday(seen),
                    bool(consent),
                    version,
                    pace,
                    bool(blocked),
                    bool(stopped),
                )  # fmt: skip
            )
        yield out


USERS = Table(
    name="users",
    title="People",
    description="One row per person who had started by the end of the period: their profile as they chose to give "
    "it (every field skippable), generalised for k-anonymity, and their settings now. No name, Telegram id or "
    "username.",
    fields=(
        USER_ID,
        Field("channel", "string", "Where they talk to Rahnuma.", values=("telegram", "terminal", "demo")),
        Field("language", "string", "Reply language they chose or were given.", values=("en", "ur")),
        Field(
            "skill",
            "string",
            "The skill they sell, normalised (lower case, personal details scrubbed); "
            "`other` when generalised for k-anonymity; empty when not given.",
        ),  # fmt: skip
        Field(
            "platforms",
            "string",
            "Platforms they use, sorted and joined with `+` (e.g. `fiverr+upwork`); "
            "`other` when generalised; empty when not given.",
        ),  # fmt: skip
        Field(
            "city",
            "string",
            "Their city, normalised (`lahore`, `karachi`...); `other` when generalised for "
            "k-anonymity (the first quasi-identifier to go); empty when not given.",
        ),  # fmt: skip
        Field("cohort", "string", "Start cohort: the ISO week of their first message (e.g. `2026-W48`)."),
        Field("joined_week", "date", "Monday of the week they started (UTC)."),
        Field("last_active_week", "date", "Monday of the week they last wrote or pressed a button (UTC)."),
        Field(
            "research_consent",
            "boolean",
            "Whether they consent now to their words being kept for research. "
            "Their message text is exported only while this is true.",
        ),  # fmt: skip
        Field("consent_version", "integer", "Version of docs/PRIVACY.md they last answered (consent or not)."),
        Field("nudge_pace", "string", "How often they accept nudges (/nudges).", values=("daily", "weekly", "off")),
        Field("blocked", "boolean", "They have blocked the bot (Telegram refused a message, or they left the chat)."),
        Field("proactive_stopped", "boolean", "They used /stop: no proactive message of any kind."),
    ),
    rows=_users,
    count=lambda ctx: stored.users_query(ctx.period).with_only_columns(User.id),
    primary_key=("user_id",),
    notes=(
        "k-anonymity: every combination of city × skill × platforms × cohort is shared by at least 5 people, or "
        "has been generalised (city, then skill, then platforms → `other`); manifest.json says how many.",
    ),
)


# ---- events ----------------------------------------------------------------------------------------------------------

# (column, key in event.data, the type it should have, converter when it has another): the details researchers use,
# as typed columns.
_DATA_FIELDS: tuple[tuple[str, str, type, Any], ...] = (
    ("decision", "decision", str, _str), ("nlu_intent", "nlu_intent", str, _str),
    ("fallback_reason", "fallback_reason", str, _str), ("parse_ms", "parse_ms", float, lambda v: _float(v, 1)),
    ("chars", "chars", int, _int), ("milestone", "milestone", str, _str), ("source", "source", str, _str),
    ("helpful", "helpful", bool, _bool), ("profile_field", "field", str, _str),
    ("consent_version", "version", int, _int), ("rule", "rule", str, _str),
    ("experiment", "experiment", str, _str), ("arm", "arm", str, _str), ("button", "button", str, _str),
    ("after_minutes", "after_minutes", int, _int), ("effort_count", "count", int, _int), ("pace", "pace", str, _str),
    ("unlinked_events", "events", int, _int),
)  # fmt: skip
_BY_KEY = {key: (position, wanted, convert) for position, (_, key, wanted, convert) in enumerate(_DATA_FIELDS)}
_NUDGE_ID_KINDS = frozenset(
    {EventKind.NUDGE_PLANNED, EventKind.NUDGE_SENT, EventKind.NUDGE_WITHHELD, EventKind.NUDGE_OPENED,
     EventKind.NUDGE_RESPONDED}
)  # fmt: skip


def _float(value: Any, digits: int) -> float | None:
    return round(float(value), digits) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _data_columns(kinds: Sequence[str], datas: Sequence[dict[str, Any] | None], pseudonyms: Any) -> list[list[Any]]:
    """One pass over the rows: each data key present lands in its column (typed), the rest stay empty."""
    count = len(datas)
    columns: list[list[Any]] = [[None] * count for _ in range(len(_DATA_FIELDS) + 2)]
    nudge_ids, reasons = columns[-2], columns[-1]
    by_key = _BY_KEY.get  # bound once: a million rows look up several keys each
    for index, data in enumerate(datas):
        if not data:
            continue
        for key, value in data.items():
            found = by_key(key)
            if found is not None and value is not None:
                position, wanted, convert = found
                columns[position][index] = value if type(value) is wanted else convert(value)
        kind = kinds[index]
        if kind in _NUDGE_ID_KINDS and (outbox := _int(data.get("outbox_id"))) is not None:
            nudge_ids[index] = pseudonyms.outbox(outbox)
        elif kind == EventKind.SEND_FAILED and data.get("reason"):
            reasons[index] = scrub(str(data["reason"]))[:200]
    return columns


def _words(users: Sequence[int | None], texts: Sequence[str | None], consenting: dict[int, str | None]) -> list[Any]:
    """The `text` column: words only of people who consent now, scrubbed (their own name too)."""
    return [
        None if text is None or user not in consenting else scrub(text, names=(consenting[user],))
        for user, text in zip(users, texts, strict=True)
    ]


async def _events(ctx: Any) -> AsyncIterator[Columns]:
    """Column by column: a million events are a million tuples fewer."""
    consenting = await stored.consenting_names(ctx.session)
    query = stored.events_query(ctx.period, start=ctx.events_from, stop=ctx.events_before)
    async for rows in stored.stream(ctx.session, query, ctx.batch):
        users, ats, kinds, intents, confidences, articles, sources, latencies, raw, texts = zip(*rows, strict=True)
        details = _data_columns(kinds, stored.json_objects(raw), ctx.pseudonyms)
        yield Columns(
            (
                ctx.pseudonyms.users(users), ats, kinds, details[0], intents,
                [None if c is None else round(c, 4) for c in confidences], articles, sources,
                [None if x is None else round(x, 1) for x in latencies], *details[1:],
                _words(users, texts, consenting),
            )
        )  # fmt: skip


EVENTS = Table(
    name="events",
    title="Event log",
    description="The event log (docs/EVENTS.md) in time order: every inbound message, reply and state change, with "
    "what the NLU made of it. The `data` details researchers use are typed columns here; a column is empty where "
    "its kind has no such detail. Rows are in the order things happened (ties in the order they were written).",
    fields=(
        OPTIONAL_USER_ID,
        Field("at", "datetime", "When it happened (UTC), cut to the minute."),
        Field("kind", "string", "What happened.", values_described=tuple((k.value, k.description) for k in EventKind)),
        Field(
            "decision",
            "string",
            "On `reply` events: what the bot decided to do.",
            values_described=tuple((d.value, d.description) for d in Decision),
        ),  # fmt: skip
        Field(
            "intent",
            "string",
            "For answers the article's topic intent (`ask_onboarding`, `ask_bidding`, "
            "`ask_payments`, `ask_safety`); otherwise the NLU's intent (`greet`, `nlu_fallback`...).",
        ),  # fmt: skip
        Field(
            "confidence",
            "number",
            "The NLU's confidence in the intent (Rasa softmax; for the lexical fallback the cosine similarity).",
            unit="probability (0-1)",
        ),  # fmt: skip
        Field("article_id", "string", "The article answered (a file name in content/articles/)."),
        Field("nlu_source", "string", "Which engine understood the message.", values=("rasa", "fallback")),
        Field(
            "latency_ms",
            "number",
            "On `reply`: time from receiving the message to the reply being ready.",
            unit="milliseconds",
        ),  # fmt: skip
        Field("nlu_intent", "string", "On `message`: the NLU's own intent, before the article's topic replaced it."),
        Field("fallback_reason", "string", "On `message`: why the lexical search answered instead of Rasa."),
        Field("parse_ms", "number", "On `message`: the NLU's parse time.", unit="milliseconds"),
        Field("chars", "integer", "Length of the message when its words are not kept.", unit="characters"),
        Field("milestone", "string", "On `milestone_done`/`milestone_undone`: the rung (content/milestones.yml)."),
        Field(
            "source",
            "string",
            "How it came: `text` or `button` for milestones, `send_403` for a block found by "
            "a send, `nudge` for an effort count tapped on a nudge.",
        ),  # fmt: skip
        Field("helpful", "boolean", "On `feedback`: 👍 (true) or 👎 (false)."),
        Field(
            "profile_field",
            "string",
            "On `profile_set`/`profile_skipped`: which profile field.",
            values=("skill", "platforms", "city", "language", "timezone"),
        ),  # fmt: skip
        Field("consent_version", "integer", "On `consent_given`/`consent_withdrawn`: the privacy notice's version."),
        Field("rule", "string", "On nudge events: the nudge rule (content/nudges.yml)."),
        Field("experiment", "string", "On nudge events: the experiment the rule is part of."),
        Field("arm", "string", "On nudge events and `experiment_assigned`: the experiment arm."),
        Field("button", "string", "On `nudge_opened`: which button.", values=("why", "art", "eff")),
        Field(
            "after_minutes", "integer", "On `nudge_responded`: minutes from the nudge to the answer.", unit="minutes"
        ),  # fmt: skip
        Field(
            "effort_count",
            "integer",
            "On `effort_reported`: proposals sent (the lower end of the range tapped).",
            unit="proposals",
        ),  # fmt: skip
        Field("pace", "string", "On `nudge_pace_set`: the new pace.", values=("daily", "weekly", "off")),
        Field(
            "unlinked_events",
            "integer",
            "On `data_deleted`: how many events were unlinked from the erased user.",
            unit="events",
        ),  # fmt: skip
        Field("nudge_id", "string", "On nudge events: the nudge's pseudonym (joins `nudges.nudge_id`)."),
        Field("reason", "string", "On `send_failed`: Telegram's error, short, scrubbed."),
        Field(
            "text",
            "string",
            "The user's words (messages, commands, profile answers, unanswered questions, "
            "button data), only for users who consent now, with phone numbers, e-mails, CNICs, IBANs, URL paths, "
            "@usernames, their own name and long numbers replaced by placeholders like `[phone]`. Replies are "
            "never included.",
        ),  # fmt: skip
    ),
    rows=_events,
    count=lambda ctx: stored.rows_in_period(Event, Event.at, ctx.period),
)


# ---- milestones ------------------------------------------------------------------------------------------------------


async def _milestones(ctx: Any) -> AsyncIterator[Sequence[Row]]:
    pid = ctx.pseudonyms.user
    rung = {m.id: index for index, m in enumerate(ctx.library.milestones, start=1)}
    async for rows in stored.stream(ctx.session, stored.milestones_query(ctx.period)):
        yield [
            (pid(user), milestone, rung.get(milestone), at, source, round((done - started).total_seconds() / 86400, 2))
            for user, milestone, at, done, source, started in rows
        ]


MILESTONES = Table(
    name="milestones",
    title="Rungs of the onboarding ladder reached",
    description="One row per person and rung they have marked done (the current state: a rung unticked later is "
    "not here; the history is in `events` as `milestone_done`/`milestone_undone`).",
    fields=(
        USER_ID,
        Field("milestone", "string", "The rung (content/milestones.yml)."),
        Field("rung", "integer", "Its place on the ladder, 1 = first (chose_skill)."),
        Field("done_at", "datetime", "When it was marked done (UTC), cut to the minute."),
        Field(
            "source",
            "string",
            "How: confirmed after a report in words, or ticked on /progress.",
            values=("text", "button"),
        ),  # fmt: skip
        Field("days_since_start", "number", "Days from the person's first message to this rung.", unit="days"),
    ),
    rows=_milestones,
    count=lambda ctx: stored.rows_in_period(MilestoneDone, MilestoneDone.done_at, ctx.period),
    primary_key=("user_id", "milestone"),
)


# ---- nudges ----------------------------------------------------------------------------------------------------------


async def _nudges(ctx: Any) -> AsyncIterator[Sequence[Row]]:
    pid = ctx.pseudonyms.user
    rules = ctx.library.nudges.by_id
    async for rows in stored.stream(ctx.session, stored.nudges_query(ctx.period)):
        out = []
        for outbox_id, user, campaign, meta, status, planned, delivered, reference, first, opened in rows:
            rule = _str(_of(meta, "rule")) or (campaign or "").removeprefix("nudge:") or None
            responded = None if reference is None else first is not None
            minutes = int((first - reference).total_seconds() // 60) if first is not None and reference else None
            out.append(
                (
                    ctx.pseudonyms.of("outbox", outbox_id),
                    pid(user),
                    rule,
                    rules[rule].trigger.type if rule in rules else None,
                    _str(_of(meta, "experiment")),
                    _str(_of(meta, "arm")),
                    status,
                    planned,
                    delivered,
                    responded,
                    minutes,
                    bool(opened),
                )  # fmt: skip
            )
        yield out


NUDGES = Table(
    name="nudges",
    title="Nudges and their outcomes",
    description="One row per nudge planned in the period (outbox rows of kind `nudge`), including control-arm "
    "placeholders that were withheld, with what happened and whether the person answered.",
    fields=(
        Field("nudge_id", "string", "The nudge's pseudonym (joins `events.nudge_id`)."),
        OPTIONAL_USER_ID,
        Field("rule", "string", "The nudge rule (content/nudges.yml)."),
        Field(
            "trigger",
            "string",
            "What started it.",
            values=("joined", "inactive", "stuck", "milestone", "weekly_effort"),
        ),  # fmt: skip
        Field("experiment", "string", "The experiment, when the rule is part of one."),
        Field("arm", "string", "The experiment arm (a `control` arm is withheld: nothing is sent)."),
        Field(
            "outcome",
            "string",
            "What became of it: `sent`; `withheld` (control arm, nothing sent); "
            "`uncertain` (the send may or may not have reached Telegram); `expired` (held past its expiry by quiet "
            "hours or caps); `blocked`; `cancelled` (/stop, pace off); `failed`; `pending`/`claimed` (not yet).",
            values=STATUSES,
        ),  # fmt: skip
        Field("planned_at", "datetime", "When it was planned (UTC, minute)."),
        Field(
            "delivered_at",
            "datetime",
            "When it was sent, or for `withheld` when it would have been (UTC, minute); empty otherwise.",
        ),  # fmt: skip
        Field(
            "responded",
            "boolean",
            "The person wrote or pressed a button within 48 hours after `delivered_at`: "
            "the same rule for every arm, so control arms compare like with like. Empty without `delivered_at`.",
        ),
        Field("response_minutes", "integer", "Minutes from `delivered_at` to that first answer.", unit="minutes"),
        Field("opened", "boolean", "A button on this nudge was pressed."),
    ),
    rows=_nudges,
    count=lambda ctx: stored.rows_in_period(
        OutboxMessage, OutboxMessage.created_at, ctx.period, OutboxMessage.kind == "nudge"
    ),
    primary_key=("nudge_id",),
)


# ---- broadcasts and deliveries ---------------------------------------------------------------------------------------


async def _broadcasts(ctx: Any) -> AsyncIterator[Sequence[Row]]:
    async for rows in stored.stream(ctx.session, stored.broadcasts_query(ctx.period)):
        yield [(c, first, last, int(n), *(int(x or 0) for x in outcomes)) for c, first, last, n, *outcomes in rows]


BROADCASTS = Table(
    name="broadcasts",
    title="Broadcast campaigns",
    description="One row per broadcast campaign (outbox rows of kind `broadcast`, grouped by campaign): how many "
    "messages it had and what became of them.",
    fields=(
        Field("campaign", "string", "The campaign (`broadcast:<id>`)."),
        Field("first_planned_at", "datetime", "When its first message was queued (UTC, minute)."),
        Field("last_sent_at", "datetime", "When its last message went (UTC, minute)."),
        Field("messages", "integer", "Messages queued.", unit="messages"),
        Field("delivered", "integer", "Accepted by Telegram.", unit="messages"),
        Field("blocked", "integer", "The recipient had blocked the bot.", unit="messages"),
        Field("failed", "integer", "Refused or failed after retries.", unit="messages"),
        Field("expired", "integer", "Held past the expiry (quiet hours, an outage).", unit="messages"),
        Field("cancelled", "integer", "Cancelled (the campaign, /stop).", unit="messages"),
        Field("uncertain", "integer", "May or may not have been delivered.", unit="messages"),
        Field("pending", "integer", "Not sent yet.", unit="messages"),
        Field("claimed", "integer", "Being sent at the time of the export.", unit="messages"),
    ),
    rows=_broadcasts,
    primary_key=("campaign",),
)


async def _deliveries(ctx: Any) -> AsyncIterator[Sequence[Row]]:
    pid = ctx.pseudonyms.user
    async for rows in stored.stream(ctx.session, stored.deliveries_query(ctx.period)):
        yield [
            (ctx.pseudonyms.of("outbox", i), pid(user), kind, campaign, status, planned, sent, attempts, bool(group))
            for i, user, kind, campaign, status, planned, sent, attempts, group in rows
        ]


DELIVERIES = Table(
    name="deliveries",
    title="Other messages Rahnuma sent on its own",
    description="One row per outbox message that is not a nudge (broadcasts, relays, introductions, digests, "
    "system notices), with its campaign and outcome.",
    fields=(
        Field("delivery_id", "string", "The message's pseudonym."),
        OPTIONAL_USER_ID,
        Field("kind", "string", "What kind of message.", values=tuple(k for k in KINDS if k != "nudge")),
        Field("campaign", "string", "What it belongs to (`broadcast:<id>`, `handoff:<id>`...)."),
        Field("outcome", "string", "What became of it (see `nudges.outcome`).", values=STATUSES),
        Field("planned_at", "datetime", "When it was queued (UTC, minute)."),
        Field("sent_at", "datetime", "When Telegram accepted it (UTC, minute)."),
        Field("attempts", "integer", "Send attempts.", unit="attempts"),
        Field("to_group", "boolean", "Sent to a group chat rather than a person."),
    ),
    rows=_deliveries,
    count=lambda ctx: stored.rows_in_period(
        OutboxMessage, OutboxMessage.created_at, ctx.period, OutboxMessage.kind != "nudge"
    ),
    primary_key=("delivery_id",),
)


# ---- feedback and hand-offs ------------------------------------------------------------------------------------------


async def _feedback(ctx: Any) -> AsyncIterator[Sequence[Row]]:
    pid = ctx.pseudonyms.user
    articles = ctx.library.articles
    async for rows in stored.stream(ctx.session, stored.feedback_query(ctx.period)):
        yield [
            (pid(user), at, article, articles[article].topic if article in articles else None, helpful)
            for user, at, article, helpful in rows
        ]


FEEDBACK = Table(
    name="feedback",
    title="👍/👎 on answers",
    description="One row per 👍 or 👎 pressed under an answer (the `feedback` events, with the article's topic).",
    fields=(
        OPTIONAL_USER_ID,
        Field("at", "datetime", "When (UTC, minute)."),
        Field("article_id", "string", "The article rated (content/articles/)."),
        Field(
            "topic",
            "string",
            "The article's topic.",
            values=("getting_started", "onboarding", "bidding", "payments", "safety"),
        ),  # fmt: skip
        Field("helpful", "boolean", "👍 (true) or 👎 (false)."),
    ),
    rows=_feedback,
    count=lambda ctx: stored.rows_in_period(Event, Event.at, ctx.period, Event.kind == EventKind.FEEDBACK),
)


HANDOFFS = Table(
    name="handoffs",
    title="Hand-offs to a coordinator",
    description="One row per question handed to a human coordinator. Empty until the hand-off tables land "
    "(coordinators' work); the schema is here so analysis scripts can be written now.",
    fields=(
        Field("handoff_id", "string", "The hand-off's pseudonym."),
        OPTIONAL_USER_ID,
        Field("opened_at", "datetime", "When the person asked for a human (UTC, minute)."),
        Field("topic", "string", "The topic intent of the question, when known."),
        Field("status", "string", "Where it stands (open, answered, closed...)."),
        Field("first_reply_minutes", "integer", "Minutes until a coordinator first answered.", unit="minutes"),
        Field("closed_at", "datetime", "When it was closed (UTC, minute)."),
    ),
    rows=None,
    primary_key=("handoff_id",),
)

TABLES: tuple[Table, ...] = (USERS, EVENTS, MILESTONES, NUDGES, BROADCASTS, DELIVERIES, FEEDBACK, HANDOFFS)
