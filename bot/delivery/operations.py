"""What operators run from the shell: one dispatch pass, a preview of nudges, and the outbox's state."""

from __future__ import annotations

import datetime as dt
import sys
from typing import TextIO

from bot.core.clock import Clock
from bot.core.nudges import NudgePlanner
from bot.delivery.pacing import Pacer
from bot.delivery.sender import TelegramSender
from bot.runtime import Runtime
from storage import outbox as stored_outbox
from storage import users as stored_users


async def dispatch_once(runtime: Runtime, *, clock: Clock, pinned: bool, out: TextIO = sys.stdout) -> int:
    """Plan what is due at the clock's time and send everything due now, then stop.

    With a pinned clock (`--at`) the planners look back over each rule's window instead of moving their cursors,
    so a pass at a test time does not stop the running bot from planning at the real time.
    """
    from bot.app import bulk_bot

    bot = bulk_bot(runtime.settings)
    await bot.initialize()
    try:
        for planner in runtime.planners:
            planner.clock = clock
        dispatcher = runtime.dispatcher(TelegramSender(bot, Pacer(runtime.settings.send_rate)), clock=clock)
        report = await dispatcher.run_once(use_cursor=not pinned)
    finally:
        await bot.shutdown()
    outcomes = ", ".join(f"{name} {count}" for name, count in sorted(report.outcomes.items())) or "nothing due"
    print(
        f"At {clock.now():%Y-%m-%d %H:%M} UTC: planned {report.planned}, claimed {report.claimed}: {outcomes}", file=out
    )
    return 0


async def preview_nudges(
    runtime: Runtime, *, at: dt.datetime, telegram_id: str | None, out: TextIO = sys.stdout
) -> int:
    """What a planning pass at `at` would enqueue and why, writing nothing."""
    planner = next(p for p in runtime.planners if isinstance(p, NudgePlanner))
    user_id = None
    if telegram_id is not None:
        async with runtime.db.read() as session:
            user = await stored_users.get_user(session, channel="telegram", external_id=telegram_id)
        if user is None:
            print(f"No Telegram user {telegram_id} is stored.", file=out)
            return 1
        user_id = user.id
    report = await planner.plan(now=at, dry_run=True, use_cursor=False, user_id=user_id)
    print(f"Nudges a pass at {at:%Y-%m-%d %H:%M} UTC would plan: {len(report.planned)} "
          f"(of {report.candidates} candidates; skipped: {dict(report.skipped) or 'none'})", file=out)  # fmt: skip
    for nudge in report.planned:
        arm = f" arm={nudge.arm}" + (" (control: nothing sent)" if nudge.withheld else "") if nudge.arm else ""
        print(
            f"  user {nudge.user_id}: {nudge.rule}{arm}, due {nudge.due:%Y-%m-%d %H:%M}, not before "
            f"{nudge.not_before:%Y-%m-%d %H:%M}, expires {nudge.expires_at:%Y-%m-%d %H:%M} ({nudge.reason})",
            file=out,
        )
    return 0


async def outbox_stats(runtime: Runtime, *, now: dt.datetime, out: TextIO = sys.stdout) -> int:
    """Counts by kind and status, the oldest pending row, and the send rate over the last minutes."""
    async with runtime.db.read() as session:
        counts = await stored_outbox.status_counts(session)
        oldest = await stored_outbox.oldest_pending(session)
        rates = {
            minutes: await stored_outbox.sent_since(session, since=now - dt.timedelta(minutes=minutes))
            for minutes in (1, 5, 15)
        }
    statuses = sorted({status for _, status in counts})
    kinds = sorted({kind for kind, _ in counts})
    print("kind        " + "".join(f"{status:>11}" for status in statuses), file=out)
    for kind in kinds:
        print(f"{kind:12}" + "".join(f"{counts.get((kind, status), 0):>11}" for status in statuses), file=out)
    if not kinds:
        print("(the outbox is empty)", file=out)
    print(f"oldest pending: {oldest:%Y-%m-%d %H:%M} UTC" if oldest else "oldest pending: none", file=out)
    print("sent: " + ", ".join(f"{n} in the last {m} min ({n / (m * 60):.2f}/s)" for m, n in rates.items()), file=out)
    return 0
