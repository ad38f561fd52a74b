"""The composition root: every long-lived part of a running Rahnuma, built once and closed together."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.core.answers import Answers
from bot.core.clock import Clock, SystemClock
from bot.core.conversation import Conversation
from bot.core.coordination import Coordination, CoordinationSettings
from bot.core.journal import Journal
from bot.core.nudges import NudgePlanner, Nudges, NudgeSettings
from bot.core.privacy import Privacy
from bot.core.profile import Profile
from bot.core.progress import Progress
from bot.core.users import Users
from bot.delivery.dispatcher import Dispatcher, Planner, Sender
from bot.settings import Settings
from content.library import Library, load_library
from nlu.client import RasaClient, RasaUnavailable
from nlu.lexical import LexicalSearch
from nlu.pipeline import Understander
from storage.db import Database

log = logging.getLogger(__name__)


def build_conversation(
    *,
    library: Library,
    db: Database,
    journal: Journal,
    clock: Clock,
    rasa: RasaClient | None,
    lexical: LexicalSearch | None = None,
    default_timezone: str = "Asia/Karachi",
    coordination: Coordination | None = None,
) -> Conversation:
    """The core with its collaborators; tests build it the same way, with their own database and clock."""
    answers = Answers(library)
    return Conversation(
        library=library,
        users=Users(db, journal, clock),
        journal=journal,
        clock=clock,
        understander=Understander(lexical or LexicalSearch(library), rasa),
        answers=answers,
        progress=Progress(library, db, journal, clock, report_confidence=answers.thresholds.report_confidence),
        profile=Profile(library, db, clock, default_timezone=default_timezone),
        privacy=Privacy(library, db, clock),
        features=[Nudges(library, db, clock, journal, answers), *(coordination.features() if coordination else [])],
    )


def dispatch_batch_size(send_rate: float, interval: float) -> int:
    """Rows a dispatcher claims at once: one interval's worth at the send rate. Half of that left the sender idle
    at every batch boundary (claim, then the first send's go-ahead): 22.7 instead of 24.4 msg/s at 25/s in
    bench/broadcast.py."""
    return max(5, round(send_rate * interval))


@dataclass
class Runtime:
    settings: Settings
    library: Library
    db: Database
    journal: Journal
    clock: Clock
    rasa: RasaClient
    conversation: Conversation
    planners: list[Planner]
    coordination: Coordination

    def dispatcher(self, sender: Sender, *, clock: Clock | None = None) -> Dispatcher:
        """The outbox dispatcher over this runtime's database and planners, sending through `sender`."""
        settings = self.settings
        return Dispatcher(
            db=self.db,
            clock=clock or self.clock,
            sender=sender,
            planners=self.planners,
            quiet_hours=settings.quiet,
            default_timezone=settings.timezone_name,
            worker=settings.worker_id,
            batch_size=dispatch_batch_size(settings.send_rate, settings.dispatch_interval),
        )

    async def aclose(self) -> None:
        await self.journal.aclose()
        await self.rasa.aclose()
        await self.db.dispose()

    async def rasa_status(self) -> str | None:
        """None when Rasa answers with a loaded model, else a one-line explanation for the operator."""
        try:
            status = await self.rasa.status()
        except RasaUnavailable as exc:
            return (
                f"Rasa is not reachable at {self.rasa.base_url} ({exc}); answering through the lexical fallback. "
                "Start it with `rahnuma nlu serve`."
            )
        if not status.get("model_file"):
            return "Rasa is running without a model; run `rahnuma nlu train`. Answering through the lexical fallback."
        return None


async def open_runtime(settings: Settings, *, library: Library | None = None, clock: Clock | None = None) -> Runtime:
    """Build every long-lived client once and start the journal; the caller must `await runtime.aclose()`."""
    library = library or load_library()
    clock = clock or SystemClock()
    db = Database.connect(settings.database_url)
    journal = Journal(db)
    journal.start()
    rasa = RasaClient(
        str(settings.rasa_url),
        token=settings.rasa_token.get_secret_value() if settings.rasa_token else None,
        timeout_seconds=settings.rasa_timeout_seconds,
    )
    coordination = Coordination(
        library=library, db=db, clock=clock, journal=journal, settings=CoordinationSettings.from_settings(settings)
    )
    conversation = build_conversation(
        library=library,
        db=db,
        journal=journal,
        clock=clock,
        rasa=rasa,
        default_timezone=settings.timezone_name,
        coordination=coordination,
    )
    nudge_settings = NudgeSettings(daily_cap=settings.nudge_daily_cap, weekly_cap=settings.nudge_weekly_cap)
    return Runtime(
        settings=settings,
        library=library,
        db=db,
        journal=journal,
        clock=clock,
        rasa=rasa,
        conversation=conversation,
        planners=[NudgePlanner(library, db, clock, nudge_settings), *coordination.planners()],
        coordination=coordination,
    )
