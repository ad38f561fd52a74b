"""The vocabulary of the event log: every event kind and reply decision, with what it means.

docs/EVENTS.md (the researchers' codebook) is checked against these enums by a test, and the research export takes
its descriptions from here, so code, docs and exports cannot drift apart.
"""

from __future__ import annotations

from enum import StrEnum


class _Described(StrEnum):
    """A string enum whose members carry a one-line description: `NAME = "value", "what it means"`."""

    description: str

    def __new__(cls, value: str, description: str = "") -> _Described:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member


class EventKind(_Described):
    MESSAGE = "message", "a text message arrives (private chat)"
    MESSAGE_STICKER = "message_sticker", "a sticker arrives"
    MESSAGE_VOICE = "message_voice", "a voice note arrives"
    MESSAGE_PHOTO = "message_photo", "a photo arrives"
    MESSAGE_VIDEO = "message_video", "a video arrives"
    MESSAGE_DOCUMENT = "message_document", "a file arrives"
    MESSAGE_LOCATION = "message_location", "a location arrives"
    MESSAGE_OTHER = "message_other", "any other non-text message"
    COMMAND = "command", "a slash command; `text` is the command (never its arguments without consent)"
    BUTTON = "button", "an inline button is pressed; `text` is its callback data"
    BUTTON_REFUSED = "button_refused", "a button whose data the bot never sends (forged or from a removed feature)"
    PROFILE_ANSWER = "profile_answer", "free text answering an open /profile question"
    FEEDBACK = "feedback", "👍 or 👎 on an answer"
    MILESTONE_DONE = "milestone_done", "a rung of the ladder is confirmed or ticked"
    MILESTONE_UNDONE = "milestone_undone", "a rung is unticked"
    EFFORT_REPORTED = "effort_reported", "the user says how many proposals they sent"
    PROFILE_SET = "profile_set", "a profile field is saved (the value stays in `user`)"
    PROFILE_SKIPPED = "profile_skipped", "a profile question is skipped"
    CONSENT_GIVEN = "consent_given", "research consent is given"
    CONSENT_WITHDRAWN = "consent_withdrawn", "research consent is withdrawn"
    DATA_DELETED = "data_deleted", "/delete_me is confirmed (no user_id)"
    REPLY = "reply", "the reply the bot decided on for a turn"
    SEND_FAILED = "send_failed", "Telegram refused a reply (the user did not get it)"
    UNANSWERED = "unanswered", "nothing close was found for a question"
    GROUP_QUESTION = "group_question", "a question addressed to the bot in a group (never linked to a person)"
    BOT_BLOCKED = "bot_blocked", "the user blocked the bot (or deleted the chat)"
    BOT_UNBLOCKED = "bot_unblocked", "the user unblocked the bot"
    NUDGE_PLANNED = "nudge_planned", "a nudge was put in the outbox (or a control-arm placeholder)"
    NUDGE_SENT = "nudge_sent", "Telegram accepted a nudge"
    NUDGE_WITHHELD = "nudge_withheld", "a control-arm nudge reached the time it would have been sent; nothing sent"
    NUDGE_OPENED = "nudge_opened", "a button on a nudge was pressed"
    NUDGE_RESPONDED = "nudge_responded", "the user wrote within 48 h after a nudge was sent"
    EXPERIMENT_ASSIGNED = "experiment_assigned", "a user was assigned an arm of a nudge experiment"
    NUDGE_PACE_SET = "nudge_pace_set", "/nudges: the pace was changed"
    PROACTIVE_STOPPED = "proactive_stopped", "/stop: no proactive message of any kind until /resume"
    PROACTIVE_RESUMED = "proactive_resumed", "/resume"
    # ---- coordinators (issue 10) ----
    ADMIN_REFUSED = "admin_refused", "someone without the role typed a coordinator command"
    ROLE_GRANTED = "role_granted", "`rahnuma admin add`: a coordinator or researcher role was given"
    ROLE_REVOKED = "role_revoked", "`rahnuma admin remove`: a role was taken away"
    COHORT_CREATED = "cohort_created", "/cohort new: a coordinator created a cohort and its join link"
    COHORT_JOINED = "cohort_joined", "a user joined a cohort through its link (/start c-<tag>)"
    BROADCAST_ANSWER = "broadcast_answer", "a coordinator's free text answering a /broadcast wizard question"
    BROADCAST_CONFIRMED = "broadcast_confirmed", "a coordinator confirmed a broadcast (from Telegram or the CLI)"
    BROADCAST_ENQUEUED = "broadcast_enqueued", "every recipient of a broadcast is in the outbox"
    BROADCAST_FINISHED = "broadcast_finished", "nothing of a broadcast is left to send; the report went out"
    BROADCAST_CANCELLED = "broadcast_cancelled", "a broadcast was cancelled; what had not gone was stopped"
    UNANSWERED_ADDED = "unanswered_added", "a coordinator marked a group of unanswered questions as added to content"
    HANDOFF_REQUESTED = "handoff_requested", "a user asked for a human (/human or in words); a ticket opened"
    HANDOFF_MESSAGE = "handoff_message", "a user wrote while their hand-off was open: passed to the coordinators"
    HANDOFF_REPLIED = "handoff_replied", "a coordinator's reply (or canned reply) was relayed to the user"
    HANDOFF_NOTE = "handoff_note", "a coordinator wrote an internal note on a ticket (a reply starting with !)"
    HANDOFF_REPOSTED = "handoff_reposted", "an unanswered hand-off was posted to the coordinators again"
    HANDOFF_NAME_SHARED = "handoff_name_shared", "the user agreed to show their name to the coordinators"
    HANDOFF_CLOSED = "handoff_closed", "a hand-off ended (a coordinator, the user, or silence)"
    RISK_FLAGGED = "risk_flagged", "a message looked like a scam or payment risk: safety answer first"
    # ---- peer support (issue 12) ----
    PEER_OPTED_IN = "peer_opted_in", "/buddy: the user asked for a buddy (what they seek, whether the city is shared)"
    PEER_OPTED_OUT = "peer_opted_out", "the user stopped looking for a buddy"
    PEER_PROPOSED = "peer_proposed", "matching proposed a buddy; a card went to the outbox (one event per side)"
    PEER_WAITING = "peer_waiting", "no buddy fits yet: the user was told once that they wait for the next opt-in"
    PEER_ACCEPTED = "peer_accepted", "the user accepted a buddy card"
    PEER_SKIPPED = "peer_skipped", "the user skipped a buddy card (the pair is never proposed again)"
    PEER_INTRODUCED = "peer_introduced", "both accepted: the buddies were introduced (one event per side)"
    PEER_MESSAGE = "peer_message", "free text typed after pressing Message my buddy (its words are never kept here)"
    PEER_RELAYED = "peer_relayed", "a message went to the buddy through the outbox (length only, never the words)"
    PEER_RELAY_REFUSED = "peer_relay_refused", "a message for the buddy was refused (rate limit, media, paused)"
    PEER_REPORTED = "peer_reported", "the user reported their buddy: the pair is paused, coordinators told"
    PEER_REVIEWED = "peer_reviewed", "a coordinator decided on a reported pair (the reported side's event)"
    PEER_ENDED = "peer_ended", "a pair ended (the user, silence for three weeks, an expired card, an erasure)"
    PEER_USERNAME_SHARED = "peer_username_shared", "the user pressed Share my @username: it went to their buddy"
    PEER_CHECKIN = "peer_checkin", "the weekly buddy check-in was answered (did you talk?)"
    WIN_STORY_WRITTEN = "win_story_written", "after a first job won, the user wrote one line of advice (to review)"
    WIN_STORY_REVIEWED = "win_story_reviewed", "a coordinator approved (or not) a win story for the circle digests"
    CIRCLE_JOINED = "circle_joined", "/circle: the user asked for the weekly circle digest"
    CIRCLE_LEFT = "circle_left", "the user stopped the weekly circle digest"


# What counts as the user talking to the bot (a nudge answered, last-seen).
INBOUND_KINDS = frozenset(
    {
        EventKind.MESSAGE, EventKind.COMMAND, EventKind.BUTTON, EventKind.PROFILE_ANSWER, EventKind.MESSAGE_STICKER,
        EventKind.MESSAGE_VOICE, EventKind.MESSAGE_PHOTO, EventKind.MESSAGE_VIDEO, EventKind.MESSAGE_DOCUMENT,
        EventKind.MESSAGE_LOCATION, EventKind.MESSAGE_OTHER,
    }
)  # fmt: skip


class Decision(_Described):
    """What the bot decided to do with a turn (`data.decision` on `reply` events)."""

    ANSWER = "answer", "answered with an article"
    ANSWER_WITH_ALTERNATIVES = (
        "answer_with_alternatives",
        "answered with the best article, plausible but not sure, and offered the next two as buttons",
    )
    PICKED = "picked", "showed an article the user picked from buttons"
    DID_YOU_MEAN = "did_you_mean", "offered up to three articles as buttons"
    DONT_KNOW = "dont_know", "nothing close: said so honestly"
    GREET = "greet", "small talk"
    GOODBYE = "goodbye", "small talk"
    THANKS = "thanks", "small talk"
    HELP = "help", "/help or asked for help"
    OUT_OF_SCOPE = "out_of_scope", "a question outside freelancing"
    NOT_YET = "not_yet", "a feature that is not built yet"
    EMPTY = "empty", "an empty message"
    NON_TEXT = "non_text", "a sticker, voice note or file"
    WELCOME = "welcome", "/start"
    CHOOSE_LANGUAGE = "choose_language", "/language"
    LANGUAGE_SET = "language_set", "a language button"
    FEEDBACK = "feedback", "thanked for 👍/👎"
    MILESTONE_CONFIRM = "milestone_confirm", "asked to confirm a reported rung"
    MILESTONE_DONE = "milestone_done", "a rung was marked"
    MILESTONE_ALREADY = "milestone_already", "the rung was already marked"
    MILESTONE_DECLINED = "milestone_declined", "the user said not yet"
    MILESTONE_TOGGLED = "milestone_toggled", "a rung was ticked or unticked on /progress"
    MILESTONE_UNKNOWN = "milestone_unknown", "a button named a rung that does not exist"
    PROGRESS = "progress", "/progress checklist"
    PROGRESS_NEXT = "progress_next", "the next rung and its article"
    PROGRESS_WHICH = "progress_which", "asked which rung a report was about"
    PROFILE_SHOW = "profile_show", "/profile with a stored profile"
    PROFILE_ASK = "profile_ask", "asked a profile question"
    PROFILE_DONE = "profile_done", "the last profile question was answered"
    PROFILE_CANCELLED = "profile_cancelled", "/cancel during the profile"
    PROFILE_STALE = "profile_stale", "a message that arrived before the question it would answer (not taken)"
    PROFILE_INVALID = "profile_invalid", "a profile answer that is not allowed (asked again)"
    CONSENT_THANKS = "consent_thanks", "research consent given"
    CONSENT_DECLINED = "consent_declined", "research consent declined or withdrawn"
    PRIVACY_REPORT = "privacy_report", "/privacy"
    PRIVACY_NOTHING = "privacy_nothing", "/privacy from someone with nothing stored"
    DELETE_CONFIRM = "delete_confirm", "/delete_me asks to confirm"
    DELETE_DONE = "delete_done", "data erased"
    DELETE_NOTHING = "delete_nothing", "nothing to erase"
    DELETE_CANCELLED = "delete_cancelled", "the user kept their data"
    BUTTON_UNKNOWN = "button_unknown", "an old or forged button"
    UNKNOWN_COMMAND = "unknown_command", "a command the bot does not know"
    SAVE_FAILED = "save_failed", "a change could not be saved; the user was asked to try again"
    STORAGE_UNAVAILABLE = "storage_unavailable", "the records could not be read; the user was asked to try again"
    PRIVATE_ONLY = "private_only", "a personal command in a group: pointed to a private chat"
    GROUP_HELP = "group_help", "/help in a group"
    NUDGE_SETTINGS = "nudge_settings", "/nudges"
    NUDGE_PACE_SET = "nudge_pace_set", "a pace button on /nudges"
    PROACTIVE_STOPPED = "proactive_stopped", "/stop or asked to stop messages"
    PROACTIVE_RESUMED = "proactive_resumed", "/resume or asked to resume messages"
    NUDGE_WHY = "nudge_why", "explained why a nudge came"
    EFFORT_NOTED = "effort_noted", "an effort count from a nudge's buttons"
    # ---- coordinators (issue 10) ----
    ADMIN_REFUSED = "admin_refused", "a coordinator command from someone without the role: politely refused"
    BROADCAST_STEP = "broadcast_step", "a step of the /broadcast wizard (text, segment, preview and count, time)"
    BROADCAST_CONFIRMED = "broadcast_confirmed", "a broadcast was confirmed and queued"
    BROADCAST_TWICE = "broadcast_twice", "the same broadcast went to the same segment within a day: asked again"
    BROADCAST_CANCELLED = "broadcast_cancelled", "a broadcast or its draft was cancelled"
    BROADCAST_LIST = "broadcast_list", "/broadcasts: recent broadcasts with live delivery counts"
    COHORT = "cohort", "/cohort: cohorts and their join links"
    STATS = "stats", "/stats"
    EXPORT_ELSEWHERE = "export_elsewhere", "/export outside Telegram's document path: told how to get the export"
    UNANSWERED_LIST = "unanswered_list", "/unanswered: grouped questions the bot could not answer and 👎 answers"
    UNANSWERED_ADDED = "unanswered_added", "a group was marked as added to content"
    HANDOFF_OPENED = "handoff_opened", "told when a coordinator will answer; the question went to the group"
    HANDOFF_ALREADY_OPEN = "handoff_already_open", "asked for a human while a hand-off was already open"
    HANDOFF_UNAVAILABLE = "handoff_unavailable", "asked for a human where no coordinators' group is set up"
    HANDOFF_FORWARDED = "handoff_forwarded", "a message during an open hand-off went to the coordinators"
    HANDOFF_ENDED = "handoff_ended", "the user ended their hand-off"
    HANDOFF_NAME_SHARED = "handoff_name_shared", "the user let coordinators see their name"
    RISK_WARNING = "risk_warning", "a message that looked like a scam got the safety answer first"
    # ---- peer support (issue 12) ----
    BUDDY_ASK = "buddy_ask", "/buddy: asked what kind of buddy the user wants"
    BUDDY_PREVIEW = "buddy_preview", "showed exactly what a buddy would see, before the opt-in"
    BUDDY_OPTED_IN = "buddy_opted_in", "the user is on the list for a buddy"
    BUDDY_OPTED_OUT = "buddy_opted_out", "the user stopped looking for a buddy"
    BUDDY_STATUS = "buddy_status", "/buddy from someone already on the list or paired"
    BUDDY_ACCEPTED = "buddy_accepted", "a buddy card accepted; waiting for the other side"
    BUDDY_INTRODUCED = "buddy_introduced", "both accepted: the introduction"
    BUDDY_SKIPPED = "buddy_skipped", "a buddy card skipped"
    BUDDY_COMPOSE = "buddy_compose", "asked for the message to relay to the buddy"
    BUDDY_RELAYED = "buddy_relayed", "a message was passed to the buddy"
    BUDDY_RELAY_REFUSED = "buddy_relay_refused", "a message for the buddy was refused (no buddy, paused, rate, media)"
    BUDDY_REPORTED = "buddy_reported", "thanked for a report; the pair is paused"
    BUDDY_ENDED = "buddy_ended", "the user ended their buddy pair"
    BUDDY_USERNAME_SHARED = "buddy_username_shared", "the user's @username went to their buddy (or they have none)"
    BUDDY_CHECKIN = "buddy_checkin", "thanked for answering the weekly buddy check-in"
    WIN_STORY_ASK = "win_story_ask", "asked for the one line of advice (after Share advice)"
    WIN_STORY_THANKS = "win_story_thanks", "thanked for a win story; a coordinator will review it"
    WIN_STORY_DECLINED = "win_story_declined", "the user chose not to share advice"
    CIRCLE = "circle", "/circle: the weekly circle digest explained, with a button to join or leave"
    CIRCLE_SET = "circle_set", "joined or left the weekly circle digest"
