"""What coordinators and operators run from the shell: roles (`rahnuma admin`) and broadcasts (`rahnuma
broadcast`). The CLI only writes to the database; the running bot's dispatcher (or `rahnuma dispatch --once`)
delivers."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable
from typing import TextIO
from zoneinfo import ZoneInfo

from bot.core.broadcasts import Draft, Report, describe
from bot.runtime import Runtime
from storage import roles as stored_roles
from storage.broadcasts import Segment
from storage.codebook import EventKind
from storage.events import NewEvent, add_events

BAR_WIDTH = 30


async def admin(runtime: Runtime, *, action: str, role: str | None, user_id: int | None, out: TextIO) -> int:
    """`rahnuma admin add|remove|list --role coordinator|researcher USER_ID`."""
    now = runtime.clock.now()
    if action == "list":
        async with runtime.db.read() as session:
            grants = await stored_roles.grants(session)
        for telegram_id in sorted(runtime.settings.coordinators):
            print(f"coordinator  {telegram_id}  (RAHNUMA_COORDINATORS)", file=out)
        for grant in grants:
            if role is None or grant.role == role:
                print(f"{grant.role:<12} {grant.telegram_user_id}  (granted {grant.granted_at:%Y-%m-%d})", file=out)
        if not grants and not runtime.settings.coordinators:
            print("No coordinators or researchers yet.", file=out)
        return 0
    assert role is not None and user_id is not None
    async with runtime.db.write() as session:
        if action == "add":
            changed = await stored_roles.grant(session, telegram_user_id=user_id, role=role, now=now, granted_by="cli")
            kind = EventKind.ROLE_GRANTED
        else:
            changed = await stored_roles.revoke(session, telegram_user_id=user_id, role=role)
            kind = EventKind.ROLE_REVOKED
        if changed:
            data = {"role": role, "telegram_user_id": user_id}
            await add_events(session, events=[NewEvent(kind=kind, at=now, data=data)])
    if action == "remove" and role == "coordinator" and user_id in runtime.settings.coordinators:
        print(f"{user_id} is in RAHNUMA_COORDINATORS: remove it there too.", file=out)
    verb = (
        ("now has" if changed else "already had")
        if action == "add"
        else ("no longer has" if changed else "did not have")
    )
    print(f"{user_id} {verb} the {role} role. A running bot picks this up within 30 seconds.", file=out)
    return 0


async def create_broadcast(
    runtime: Runtime,
    *,
    draft: Draft,
    yes: bool,
    out: TextIO,
    ask: Callable[[str], str] = input,
) -> int:
    """`rahnuma broadcast create`: count, confirm (unless --yes), enqueue."""
    service = runtime.coordination.broadcasts
    counts = await service.count(draft.segment)
    total = counts["en"] + counts["ur"]
    zone = ZoneInfo(runtime.settings.timezone_name)
    when = draft.send_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if draft.send_at else "now"
    print(
        f"Segment: {describe(draft.segment)}\nRecipients: {total} ({counts['en']} in English, {counts['ur']} in Urdu)"
        f"\nSend: {when} (each recipient outside their quiet hours)",
        file=out,
    )
    if total == 0:
        print("Nobody matches this segment; nothing was created.", file=out)
        return 1
    try:
        broadcast_id = await service.create(draft)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not yes and not _confirmed(ask, f"Send broadcast #{broadcast_id} to {total} recipients? [y/N] "):
        await service.cancel(broadcast_id)
        print(f"Not sent: broadcast #{broadcast_id} cancelled.", file=out)
        return 1
    outcome = await service.confirm(broadcast_id, twice=False, source="cli")
    if outcome.status == "twice":
        question = (
            f"The same text went to the same segment {outcome.hours_since or 0:.0f} h ago (#{outcome.other_id}). "
            "Send again? [y/N] "
        )
        if not _confirmed(ask, question):
            await service.cancel(broadcast_id)
            print(f"Not sent: broadcast #{broadcast_id} cancelled.", file=out)
            return 1
        outcome = await service.confirm(broadcast_id, twice=True, source="cli")
    print(
        f"Broadcast #{broadcast_id} {'queued' if outcome.status == 'confirmed' else outcome.status} "
        f"for {outcome.recipients} recipients. `rahnuma broadcast show {broadcast_id} --wait` follows the delivery.",
        file=out,
    )
    return 0


def _confirmed(ask: Callable[[str], str], question: str) -> bool:
    try:
        return ask(question).strip().casefold() in ("y", "yes")
    except EOFError:
        return False


def _line(report: Report, zone: ZoneInfo) -> str:
    b = report.broadcast
    c = report.counts
    when = (b.send_at or b.created_at).astimezone(zone).strftime("%Y-%m-%d %H:%M")
    text = " ".join((b.text_en or b.text_ur or "").split())[:40]
    return (
        f"#{b.id:<5} {b.status:<9} {when}  {describe(Segment.of(b.segment))}  \u201c{text}\u201d\n"
        f"       sent {c.get('sent', 0)} · pending {c.get('pending', 0) + c.get('claimed', 0)} · held for quiet hours "
        f"{c.get('held', 0)} · blocked {c.get('blocked', 0)} · failed {c.get('failed', 0)} · uncertain "
        f"{c.get('uncertain', 0)} · cancelled {c.get('cancelled', 0)} · expired {c.get('expired', 0)}"
    )


async def list_broadcasts(runtime: Runtime, *, out: TextIO) -> int:
    reports = await runtime.coordination.broadcasts.recent_reports(limit=20)
    zone = ZoneInfo(runtime.settings.timezone_name)
    for report in reports:
        print(_line(report, zone), file=out)
    if not reports:
        print("No broadcasts yet.", file=out)
    return 0


def progress_bar(report: Report) -> str:
    total = report.broadcast.recipients or report.total or 1
    done = report.total - report.open
    filled = min(BAR_WIDTH, round(BAR_WIDTH * done / total))
    c = report.counts
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total} done · sent {c.get('sent', 0)} · "
        f"held {c.get('held', 0)} · blocked {c.get('blocked', 0)} · failed {c.get('failed', 0)}"
    )


async def show_broadcast(
    runtime: Runtime, *, broadcast_id: int, wait: bool, out: TextIO, poll_seconds: float = 1.0
) -> int:
    """`rahnuma broadcast show ID [--wait]`: the delivery report; with --wait a progress bar until nothing is
    left to send."""
    service = runtime.coordination.broadcasts
    zone = ZoneInfo(runtime.settings.timezone_name)
    report = await service.report(broadcast_id)
    if report is None:
        print(f"No broadcast #{broadcast_id}.", file=sys.stderr)
        return 1
    while wait and (report.open or report.broadcast.status in ("draft", "scheduled")):
        if report.broadcast.status == "draft":
            break
        print("\r" + progress_bar(report), end="", file=out, flush=True)
        await asyncio.sleep(poll_seconds)
        report = await service.report(broadcast_id) or report
    if wait:
        print("\r" + progress_bar(report), file=out)
    print(_line(report, zone), file=out)
    b = report.broadcast
    print(
        f"recipients when confirmed: {b.recipients if b.recipients is not None else '-'} · rows enqueued: "
        f"{b.enqueued} · created {b.created_at:%Y-%m-%d %H:%M} UTC"
        + (f" · finished {b.finished_at:%Y-%m-%d %H:%M} UTC" if b.finished_at else ""),
        file=out,
    )
    return 0


async def cancel_broadcast(runtime: Runtime, *, broadcast_id: int, out: TextIO) -> int:
    stopped = await runtime.coordination.broadcasts.cancel(broadcast_id)
    if stopped is None:
        print(f"Broadcast #{broadcast_id} is not pending (finished, cancelled or unknown).", file=out)
        return 1
    print(f"Broadcast #{broadcast_id} cancelled: {stopped} messages that had not gone were stopped.", file=out)
    return 0


def parse_when(text: str, zone: ZoneInfo) -> dt.datetime:
    """--at: ISO-8601; without an offset, in RAHNUMA_TIMEZONE (the coordinator's time)."""
    moment = dt.datetime.fromisoformat(text.strip())
    return (moment if moment.tzinfo else moment.replace(tzinfo=zone)).astimezone(dt.UTC)
