"""`rahnuma report`: one self-contained HTML file that answers "who gets stuck where, and do nudges help?".

Every figure is inline SVG (research/svg.py) with a short text under it written from the same numbers. Nothing is
fetched: no script, font, stylesheet or image from anywhere, so it opens offline and can be mailed. Counts under 5
are shown as "<5" and never drawn to scale. The numbers come from grouped SQL (storage/research.py), so the report
over 100,000 people reads counts, not rows.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from html import escape

from content.library import Library
from research import svg
from research.stats import cell, median, newcombe, small, wilson
from storage import research as stored
from storage.db import Database, Session
from storage.research import Period, monday_of

TOPICS = {
    "ask_onboarding": "Getting started & accounts",
    "ask_bidding": "Proposals & bidding",
    "ask_payments": "Payments & tax",
    "ask_safety": "Safety & scams",
}
UNANSWERED = "Not answered"
LANGUAGES = (("en", "English", svg.BLUE), ("ur", "Urdu", svg.AMBER), (None, "unknown", svg.GREY))
MAX_COHORTS = 12
MAX_WEEKS_SINCE = 12


@dataclass
class Section:
    id: str
    title: str
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (plot id, svg, text under it)
    lead: str = ""


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _points(value: float) -> str:
    return f"{value * 100:+.1f} points"


def _week_label(week: int) -> str:
    return monday_of(week).strftime("%d %b")


# ---- the sections ----------------------------------------------------------------------------------------------------


async def _funnel(session: Session, library: Library, period: Period) -> tuple[Section, list[str]]:
    ladder = [m.id for m in library.milestones]
    titles = {m.id: m.title["en"] for m in library.milestones}
    started = 0
    reached: Counter[str] = Counter()
    gaps: dict[str, list[float]] = defaultdict(list)

    def close(created: dt.datetime | None, done: dict[str, dt.datetime]) -> None:
        nonlocal started
        if created is None:
            return
        started += 1
        reached.update(done.keys())
        previous = created
        for rung in ladder:
            if rung not in done:
                break
            days = (done[rung] - previous).total_seconds() / 86400
            if days >= 0:
                gaps[rung].append(days)
            previous = done[rung]

    current: int | None = None
    created: dt.datetime | None = None
    done: dict[str, dt.datetime] = {}
    async for rows in stored.ladder_rows(session, period):
        for user_id, user_created, milestone, done_at in rows:
            if user_id != current:
                close(created, done)
                current, created, done = user_id, user_created, {}
            if milestone is not None:
                done[milestone] = done_at
    close(created, done)

    section = Section("funnel", "Who gets stuck where: the onboarding ladder")
    findings: list[str] = []
    if not started:
        section.figures.append(("funnel", svg.empty_chart("Nobody started in this period.", title="Funnel"), ""))
        return section, findings
    bars = [svg.Bar("Started", started, f"{cell(started)} · 100%", suppressed=small(started), color=svg.GREY)]
    for rung in ladder:
        n = reached[rung]
        bars.append(svg.Bar(titles[rung], n, f"{cell(n)} · {_pct(n / started)}" if not small(n) else "<5",
                            suppressed=small(n)))  # fmt: skip
    steps = [("start", started), *((rung, reached[rung]) for rung in ladder)]
    drops = [
        (after / before, name_before, name_after)
        for (name_before, before), (name_after, after) in zip(steps, steps[1:], strict=False)
        if before >= 5
    ]
    text = (
        f"Of {cell(started)} people who started in this period, {_pct(reached[ladder[0]] / started)} chose a skill, "
        f"{_pct(reached['first_proposal_sent'] / started) if 'first_proposal_sent' in reached else '0%'} sent a "
        f"first proposal and {_pct(reached['first_job_won'] / started) if 'first_job_won' in reached else '0%'} "
        "won a first job (the current state of each person's ladder; a rung ticked out of order counts too)."
    )
    if drops:
        share, before, after = min(drops)
        label_before = "starting" if before == "start" else titles[before].lower()
        text += f" The steepest step is from {label_before} to “{titles[after].lower()}”: {_pct(share)} go on."
        findings.append(
            f"The steepest step of the ladder is “{titles[after]}”: only {_pct(share)} of those who got to the "
            "step before reach it."
        )
    section.figures.append(("funnel", svg.hbar_chart(bars, title="People reaching each rung", label_width=260), text))

    medians = []
    for index, rung in enumerate(ladder):
        values = gaps.get(rung, [])
        label = ("start → " if index == 0 else "→ ") + titles[rung]
        m = median(values)
        if m is None or small(len(values)):
            medians.append(svg.Bar(label, 0, "<5" if values else "none", suppressed=bool(values)))
        else:
            medians.append(svg.Bar(label, m, f"{m:.1f} days (n={cell(len(values))})", color=svg.TEAL))
    slowest = max((b for b in medians if not b.suppressed and b.value), key=lambda b: b.value, default=None)
    text = (
        "Median days from the rung before (from the first message for the first rung), among people who reached both."
    )
    if slowest is not None:
        text += (
            f" The longest wait is {slowest.label.removeprefix('→ ').lower()}: a median of {slowest.value:.1f} days."
        )
        findings.append(
            f"The longest wait is for “{slowest.label.removeprefix('→ ')}”: {slowest.value:.1f} days (median)."
        )
    section.figures.append(
        (
            "rung-days",
            svg.hbar_chart(medians, title="Median days between rungs", label_width=300, fmt=lambda v: f"{v:g} d"),
            text,
        )  # fmt: skip
    )
    return section, findings


async def _activity(session: Session, period: Period) -> tuple[Section, int]:
    """Weekly active people and retention by start cohort, from one pass over (person, start week, active week)."""
    section = Section("activity", "Activity and retention")
    weekly: Counter[int] = Counter()
    active: Counter[tuple[int, int]] = Counter()
    people: set[int] = set()
    async for rows in stored.active_weeks(session, period):
        for user_id, started, week in rows:
            weekly[week] += 1
            active[(started, week)] += 1
            people.add(user_id)
    sizes = await stored.cohort_sizes(session, period)
    if not weekly:
        section.figures.append(("wau", svg.empty_chart("No activity in this period.", title="Weekly active"), ""))
        section.figures.append(("retention", svg.empty_chart("No cohorts yet.", title="Retention"), ""))
        return section, 0
    weeks = list(range(min(weekly), max(weekly) + 1))
    values = [None if small(weekly.get(w, 0)) else float(weekly.get(w, 0)) for w in weeks]
    notes = ["<5" if small(weekly.get(w, 0)) else None for w in weeks]
    latest = weeks[-1]
    text = (
        f"People who wrote or pressed a button, by week (Monday to Sunday, UTC). The last week shown "
        f"({_week_label(latest)}) had {cell(weekly.get(latest, 0))} active people"
        + (" and may be incomplete." if period.until is None else ".")
    )
    section.figures.append(
        (
            "wau",
            svg.line_chart(
                [_week_label(w) for w in weeks],
                [("active", svg.BLUE, values)],
                title="Weekly active people",
                notes=notes,
            ),
            text,
        )  # fmt: skip
    )
    cohorts = sorted(sizes)[-MAX_COHORTS:]
    columns = list(range(min(MAX_WEEKS_SINCE, latest - cohorts[0] + 1) if cohorts else 1))
    rows, cells = [], []
    kept: dict[int, list[float]] = defaultdict(list)
    for start in cohorts:
        size = sizes[start]
        rows.append(f"{_week_label(start)} ({cell(size)})")
        line: list[tuple[float | None, str]] = []
        for k in columns:
            if start + k > latest:
                line.append((None, ""))
                continue
            n = active.get((start, start + k), 0)
            if small(n) or small(size):
                line.append((None, "<5"))
            else:
                line.append((n / size, _pct(n / size)))
                kept[k].append(n / size)
        cells.append(line)
    text = "Share of each start cohort (rows: the week people started, with its size) active 0, 1, 2… weeks later."
    for k in (1, 4):
        if kept.get(k):
            text += f" Week {k}: {_pct(sum(kept[k]) / len(kept[k]))} on average over {len(kept[k])} cohorts."
    section.figures.append(
        ("retention", svg.heatmap(rows, [f"+{k}" for k in columns], cells, title="Retention by start cohort"), text)
    )
    return section, len(people)


async def _questions(session: Session, library: Library, period: Period) -> tuple[Section, list[str]]:
    section = Section("questions", "Questions: topics, unanswered, and which content to fix")
    findings: list[str] = []
    rows = await stored.questions(session, period)
    by_topic: Counter[tuple[str, str | None]] = Counter()
    by_week: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for week, kind, intent, language, n in rows:
        if kind == "unanswered":
            topic = UNANSWERED
        elif intent in TOPICS:
            topic = TOPICS[intent]
        else:
            continue  # greetings, thanks, out of scope...: not questions about freelancing
        by_topic[(topic, language if language in ("en", "ur") else None)] += n
        by_week[week][0] += n
        by_week[week][1] += n if topic == UNANSWERED else 0
    if not by_topic:
        section.figures.append(("topics", svg.empty_chart("No questions in this period.", title="Topics"), ""))
        section.figures.append(("unanswered", svg.empty_chart("No questions.", title="Unanswered"), ""))
    else:
        topics = [*TOPICS.values(), UNANSWERED]
        used_languages = [(code, name, color) for code, name, color in LANGUAGES if any(k[1] == code for k in by_topic)]
        groups = []
        for topic in topics:
            if not any(by_topic[(topic, code)] for code, _, _ in used_languages):
                continue
            bars = [svg.Bar(name, by_topic[(topic, code)], cell(by_topic[(topic, code)]),
                            suppressed=small(by_topic[(topic, code)]), color=color)
                    for code, name, color in used_languages]  # fmt: skip
            groups.append((topic, bars))
        total = sum(by_topic.values())
        top_topic = max(
            (t for t in topics if t != UNANSWERED), key=lambda t: sum(by_topic[(t, c)] for c, _, _ in LANGUAGES)
        )
        urdu = sum(n for (_, language), n in by_topic.items() if language == "ur")
        text = (
            f"{cell(total)} questions about freelancing (messages the bot took for a question on a topic, and those "
            f"it could not answer), by topic and the person's language. Most are about {top_topic.lower()}; "
            f"{_pct(urdu / total)} come from people who chose Urdu."
        )
        section.figures.append(
            (
                "topics",
                svg.grouped_hbar_chart(
                    groups, title="Questions by topic and language", legend=[(n, c) for _, n, c in used_languages]
                ),
                text,
            )  # fmt: skip
        )
        weeks = list(range(min(by_week), max(by_week) + 1))
        shares = [
            None if by_week[w][0] < 5 else by_week[w][1] / by_week[w][0] for w in weeks
        ]  # a share of fewer than 5 questions says nothing
        first = next((s for s in shares if s is not None), None)
        last = next((s for s in reversed(shares) if s is not None), None)
        text = "Share of questions the bot could not answer, by week: the questions to write articles for."
        if first is not None and last is not None:
            text += f" It went from {_pct(first)} in the first week to {_pct(last)} in the last."
            findings.append(
                f"Unanswered questions: {_pct(first)} of questions in the first week, {_pct(last)} in the last."
            )
        section.figures.append(
            (
                "unanswered",
                svg.line_chart(
                    [_week_label(w) for w in weeks],
                    [("unanswered", svg.RED, shares)],
                    title="Unanswered share by week",
                    fmt=_pct,
                    maximum=max([s for s in shares if s is not None] or [0.1]) * 1.2,
                ),
                text,
            )  # fmt: skip
        )
    feedback = await stored.feedback_by_article(session, period)
    rated = [(article, up, down) for article, (up, down) in feedback.items() if up + down >= 5]
    rated.sort(key=lambda item: (-(item[2] / (item[1] + item[2])), -(item[1] + item[2])))
    shown = rated[:12]
    if not shown:
        section.figures.append(("feedback", svg.empty_chart("Fewer than 5 ratings per article so far.",
                                                            title="Feedback"), ""))  # fmt: skip
        return section, findings
    bars_rows = []
    for article, up, down in shown:
        title = library.articles[article].title["en"] if article in library.articles else article
        bars_rows.append((title[:36] + ("…" if len(title) > 36 else ""), [("not helpful", down, svg.RED),
                                                                          ("helpful", up, svg.TEAL)]))  # fmt: skip
    worst_article, worst_up, worst_down = shown[0]
    worst_title = library.articles[worst_article].title["en"] if worst_article in library.articles else worst_article
    text = (
        f"Articles with at least 5 ratings, the most often unhelpful first (12 shown of {len(rated)}). "
        f"Fix first: “{worst_title}” ({_pct(worst_down / (worst_up + worst_down))} not helpful of "
        f"{cell(worst_up + worst_down)} ratings)."
    )
    findings.append(
        f"Content to fix first: “{worst_title}” ({_pct(worst_down / (worst_up + worst_down))} of ratings not helpful)."
    )
    section.figures.append(
        ("feedback", svg.stacked_hbar_chart(bars_rows, title="Helpful or not, by article", label_width=290,
                                            count_text=cell, legend=[("not helpful", svg.RED), ("helpful", svg.TEAL)]),
         text)
    )  # fmt: skip
    return section, findings


async def _nudges(session: Session, library: Library, period: Period) -> tuple[Section, list[str]]:
    section = Section("nudges", "Do nudges help?")
    findings: list[str] = []
    rows = await stored.nudge_outcomes(session, period)
    outcomes: Counter[str] = Counter()
    by_rule: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_arm: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for campaign, experiment_id, arm_name, status, responded, n in rows:
        outcomes[status] += n
        rule = (campaign or "").removeprefix("nudge:")
        if status == "sent":
            by_rule[rule][0] += n
            by_rule[rule][1] += n if responded else 0
        if experiment_id and arm_name and status in ("sent", "withheld"):
            by_arm[(experiment_id, arm_name)][0] += n
            by_arm[(experiment_id, arm_name)][1] += n if responded else 0
    section.lead = (
        "A nudge counts as answered when the person writes or presses a button within 48 hours of it. Control arms "
        "send nothing; the same 48 hours after the time they would have gone are counted, so arms compare like "
        "with like. Intervals are 95% Wilson intervals; differences use Newcombe's interval."
    )
    if not rows:
        section.figures.append(("nudge-rules", svg.empty_chart("No nudges in this period.", title="Nudges"), ""))
        return section, findings
    items = []
    for rule in sorted(by_rule, key=lambda r: -by_rule[r][0]):
        trials, successes = by_rule[rule]
        if small(trials):
            items.append(svg.Interval(rule, None, 0, 0, "<5 sent"))
            continue
        share, low, high = wilson(successes, trials)
        items.append(
            svg.Interval(rule, share, low, high, f"{_pct(share)} of {cell(trials)} ({_pct(low)}–{_pct(high)})")
        )
    upper = min(1.0, svg.nice_max(max((i.high for i in items if i.estimate is not None), default=0.5)))
    status_text = ", ".join(f"{cell(n)} {status}" for status, n in outcomes.most_common())
    text = f"Share of sent nudges answered within 48 hours, by rule. All nudges planned in the period: {status_text}."
    section.figures.append(
        ("nudge-rules", svg.interval_chart(items, title="Response rate by nudge rule", lower=0, upper=upper), text)
    )
    for experiment in library.nudges.experiments:
        arms = [arm for arm in experiment.arms if (experiment.id, arm.name) in by_arm]
        if not arms:
            continue
        control = next((arm for arm in arms if not arm.send), arms[0])
        c_trials, c_successes = by_arm[(experiment.id, control.name)]
        rates, differences = [], []
        for index, arm in enumerate(arms):
            trials, successes = by_arm[(experiment.id, arm.name)]
            color = svg.GREY if arm is control else svg.SERIES[index % len(svg.SERIES)]
            name = f"{arm.name} (nothing sent)" if arm is control and not arm.send else arm.name
            if small(trials):
                rates.append(svg.Interval(name, None, 0, 0, "<5", color))
                continue
            share, low, high = wilson(successes, trials)
            rates.append(svg.Interval(name, share, low, high, f"{_pct(share)} of {cell(trials)}", color))
            if arm is control or small(c_trials):
                continue
            difference, d_low, d_high = newcombe((successes, trials), (c_successes, c_trials))
            verdict = "clearly above control" if d_low > 0 else "clearly below control" if d_high < 0 else "not clear"
            differences.append(svg.Interval(arm.name, difference, d_low, d_high,
                                            f"{_points(difference)} ({verdict})", color))  # fmt: skip
            findings.append(
                f"Experiment {experiment.id}: “{arm.name}” is answered {_points(difference)} more often than "
                f"control (95% CI {_points(d_low)} to {_points(d_high)}; {verdict})."
                if difference >= 0
                else f"Experiment {experiment.id}: “{arm.name}” is answered {_points(difference)} vs control "
                f"(95% CI {_points(d_low)} to {_points(d_high)}; {verdict})."
            )
        upper = min(1.0, svg.nice_max(max((i.high for i in rates if i.estimate is not None), default=0.5)))
        text = (
            f"Experiment {experiment.id} on rule {experiment.rule}: the share answered within 48 hours in each arm "
            "(people are assigned by a stable hash, so arms are comparable)."
        )
        section.figures.append(
            (
                f"experiment-{experiment.id}",
                svg.interval_chart(
                    rates, title=f"{experiment.id}: response by arm", lower=0, upper=upper, label_width=210
                ),
                text,
            )  # fmt: skip
        )
        if differences:
            span = max(0.05, *(max(abs(i.low), abs(i.high)) for i in differences))
            bound = svg.nice_max(span)
            text = "Difference to control in percentage points, with 95% confidence intervals (Newcombe). " + " ".join(
                f"{d.label}: {_points(d.estimate or 0)} ({_points(d.low)} to {_points(d.high)})." for d in differences
            )
            section.figures.append(
                (
                    f"experiment-{experiment.id}-difference",
                    svg.interval_chart(
                        differences,
                        title=f"{experiment.id}: difference to control",
                        lower=-bound,
                        upper=bound,
                        zero=0,
                        fmt=lambda v: f"{v * 100:+.0f}",
                    ),
                    text,
                )  # fmt: skip
            )
    return section, findings


async def _broadcasts(session: Session, period: Period) -> Section:
    section = Section("broadcasts", "Broadcasts")
    campaigns = await stored.broadcast_outcomes(session, period)
    if not campaigns:
        section.figures.append(("broadcasts", svg.empty_chart("No broadcasts in this period.", title="Broadcasts"), ""))
        return section
    rows = []
    totals: Counter[str] = Counter()
    for campaign in sorted(campaigns):
        counts = campaigns[campaign]
        other = sum(n for status, n in counts.items() if status not in ("sent", "blocked", "failed"))
        segments = [("delivered", counts.get("sent", 0), svg.BLUE), ("blocked", counts.get("blocked", 0), svg.RED),
                    ("failed", counts.get("failed", 0), svg.AMBER), ("other", other, svg.GREY)]  # fmt: skip
        for name, n, _ in segments:
            totals[name] += n
        rows.append((campaign.removeprefix("broadcast:"), segments))
    total = sum(totals.values()) or 1
    text = (
        f"{len(campaigns)} broadcasts, {cell(total)} messages: {_pct(totals['delivered'] / total)} delivered, "
        f"{_pct(totals['blocked'] / total)} to people who had blocked the bot, {_pct(totals['failed'] / total)} "
        "failed; other = expired, cancelled, uncertain or still queued."
    )
    legend = [("delivered", svg.BLUE), ("blocked", svg.RED), ("failed", svg.AMBER), ("other", svg.GREY)]
    section.figures.append(
        ("broadcasts", svg.stacked_hbar_chart(rows, title="Broadcast outcomes", legend=legend, count_text=cell), text)
    )
    return section


# ---- the page --------------------------------------------------------------------------------------------------------


async def build_report(db: Database, *, library: Library, period: Period, now: dt.datetime | None = None) -> str:
    """The whole report as one HTML string."""
    async with db.read() as session:
        await stored.prepare_for_scans(session, cache_mib=256, map_file=True)
        totals = await stored.totals(session, period)
        first, last = await stored.time_span(session)
        funnel, funnel_findings = await _funnel(session, library, period)
        activity, active_people = await _activity(session, period)
        questions, question_findings = await _questions(session, library, period)
        nudges, nudge_findings = await _nudges(session, library, period)
        broadcasts = await _broadcasts(session, period)
    sections = [funnel, activity, questions, nudges, broadcasts]
    start = period.since or first
    end = period.until or last
    span = f"{start:%d %b %Y} – {end:%d %b %Y}" if start and end else "no data yet"
    created = (now or dt.datetime.now(dt.UTC)).strftime("%d %b %Y %H:%M UTC")
    findings = funnel_findings + nudge_findings + question_findings
    return _page(span=span, created=created, totals={**totals, "active": active_people}, sections=sections,
                 findings=findings)  # fmt: skip


CSS = """
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2f6fb0; --paper: #ffffff; --wash: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--wash); color: var(--ink);
       font: 15px/1.55 system-ui, -apple-system, "Segoe UI", "Noto Sans", sans-serif; }
header { background: #17324d; color: #fff; padding: 28px 0 22px; }
.wrap { max-width: 900px; margin: 0 auto; padding: 0 20px; }
h1 { margin: 0 0 4px; font-size: 26px; letter-spacing: -0.01em; }
header p { margin: 0; color: #c9d6e3; }
.cards { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: -18px auto 8px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.card b { display: block; font-size: 22px; }
.card span { color: var(--muted); font-size: 13px; }
nav { margin: 14px 0 0; font-size: 14px; }
nav a { color: var(--accent); margin-right: 14px; text-decoration: none; }
section, .findings { background: var(--paper); border: 1px solid var(--line); border-radius: 12px;
                     padding: 18px 22px 8px; margin: 18px 0; }
h2 { font-size: 19px; margin: 0 0 6px; }
.lead { color: var(--muted); margin: 0 0 10px; }
figure { margin: 14px 0 18px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--ink); margin-top: 6px; font-size: 14px; }
.findings ul { margin: 6px 0 12px; padding-left: 20px; }
footer { color: var(--muted); font-size: 13px; padding: 8px 0 40px; }
@media print { body { background: #fff; } section, .findings { break-inside: avoid; border: none; } }
@media (max-width: 640px) { .cards { grid-template-columns: repeat(2, 1fr); } }
"""


def _page(*, span: str, created: str, totals: dict[str, int], sections: list[Section], findings: list[str]) -> str:
    cards = [
        (cell(totals["users"]), "people started"),
        (cell(totals["active"]), "were active"),
        (f"{totals['events']:,}", "events logged"),
        (span, "period"),
    ]
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Rahnuma research report</title>",
        f"<style>{CSS}</style></head><body>",
        '<header><div class="wrap"><h1>Rahnuma research report</h1>',
        f"<p>Who gets stuck where, and do nudges help? · {escape(span)} · made {escape(created)}</p></div></header>",
        '<div class="wrap"><div class="cards">',
        *(f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>' for value, label in cards),
        "</div>",
        "<nav>" + "".join(f'<a href="#{s.id}">{escape(s.title.split(":")[0])}</a>' for s in sections) + "</nav>",
    ]
    if findings:
        parts.append('<div class="findings"><h2>In short</h2><ul>')
        parts += [f"<li>{escape(finding)}</li>" for finding in findings]
        parts.append("</ul></div>")
    for section in sections:
        parts.append(f'<section id="{section.id}"><h2>{escape(section.title)}</h2>')
        if section.lead:
            parts.append(f'<p class="lead">{escape(section.lead)}</p>')
        for plot_id, chart, text in section.figures:
            parts.append(f'<figure class="plot" data-plot="{escape(plot_id)}">{chart}')
            if text:
                parts.append(f"<figcaption>{escape(text)}</figcaption>")
            parts.append("</figure>")
        parts.append("</section>")
    parts.append(
        "<footer>Made by <code>rahnuma report</code> from the event log. Counts under 5 are shown as “&lt;5” and "
        "never drawn to scale; shares of fewer than 5 are left out. Weeks run Monday to Sunday in UTC. People are "
        "counted, never named: see docs/RESEARCH.md and docs/CODEBOOK.md.</footer></div></body></html>"
    )
    return "\n".join(parts)
