"""`rahnuma nlu eval`: what users would get on held-out questions (nlu/tests/test_nlu.yml), never trained on.

It evaluates the bot's decisions (understand → decide, the same code a message goes through), not Rasa alone,
which is why it lives in bot/ and not in nlu/. Figures are given for the whole file and for each language slice
(English, Roman Urdu, Urdu script), so another system (bench/peer_baseline.py) can be printed side by side.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.core.answers import Answers
from bot.core.conversation import routed_to_feature
from bot.core.progress import REPORT_INTENT, rescued_as_report, takes_as_report
from bot.settings import PROJECT_ROOT, Settings
from content.library import Library, load_library
from nlu import rasa_process
from nlu.client import RETRIEVAL_INTENT, RasaClient
from nlu.examples import SLICES, TEST_FILE, Example, language_slice, read_examples
from nlu.lexical import LexicalSearch
from nlu.pipeline import FALLBACK_INTENT, Understander
from nlu.understanding import Understanding
from storage.codebook import Decision

OUT_OF_SCOPE = "out_of_scope"
REFUSED = (Decision.DONT_KNOW, Decision.OUT_OF_SCOPE)


@dataclass(frozen=True)
class Outcome:
    """What one message got, in the terms the figures count."""

    predicted: str  # topic of the article shown or suggested first, a conversational intent, or out_of_scope
    article: str | None  # the article the first reply shows (None: no article shown)
    offered: tuple[str, ...] = ()  # articles one tap away (alternatives or did-you-mean buttons)
    decision: str = ""

    def first_reply_right(self, label: str) -> bool:
        return label.startswith(f"{RETRIEVAL_INTENT}/") and self.article == label.split("/", 1)[1]

    def is_right(self, label: str, expected: str) -> bool:
        """The topic the user gets is the expected one and, for an article question, the first reply is its article."""
        wrong_article = label.startswith(f"{RETRIEVAL_INTENT}/") and not self.first_reply_right(label)
        return self.predicted == expected and not wrong_article


def expected_intent(label: str, library: Library) -> str:
    """An article question's topic intent (ask_payments...), else the label; nlu_fallback counts as out_of_scope."""
    if label.startswith(f"{RETRIEVAL_INTENT}/"):
        return library.articles[label.split("/", 1)[1]].intent
    return OUT_OF_SCOPE if label == FALLBACK_INTENT else label


def outcome(answers: Answers, understanding: Understanding, text: str) -> Outcome:
    """The policy's plan for one message, routed the way Conversation does: personal intents first (one below
    `personal_confidence`, and a "report" that names no milestone, go through the policy instead), then the policy,
    then a refusal that names a rung and asks nothing goes to the report after all (Progress registers both routes).

    Answers.decide renders exactly this plan (tests/bot/test_answers.py), so the plan is what the user gets.
    """
    library = answers.library
    bar = answers.thresholds.report_confidence
    declined = understanding.intent == REPORT_INTENT and not takes_as_report(text, understanding, library, bar)
    if routed_to_feature(understanding, answers.thresholds) and not declined:
        return Outcome(predicted=understanding.intent, article=None, decision=understanding.intent)
    plan = answers.plan(understanding)
    if plan.decision is Decision.DONT_KNOW and rescued_as_report(text, library):
        return Outcome(predicted=REPORT_INTENT, article=None, decision=str(Decision.MILESTONE_CONFIRM))
    if plan.article_id:
        predicted = library.articles[plan.article_id].intent
    elif plan.decision is Decision.DID_YOU_MEAN:
        predicted = library.articles[plan.others[0]].intent
    elif plan.decision in REFUSED:
        predicted = OUT_OF_SCOPE
    else:
        predicted = understanding.intent
    return Outcome(predicted=predicted, article=plan.article_id, offered=plan.others, decision=str(plan.decision))


@dataclass
class SliceFigures:
    """Figures for one language slice (or all of the file)."""

    examples: int = 0
    topic_right: int = 0  # an article question counts only if the article shown (or suggested first) has its topic
    articles: int = 0
    first_reply_right: int = 0  # the first reply IS the right article (not a did-you-mean, not a button)
    one_tap: int = 0  # the right article is the first reply or one of its buttons
    answered_wrong: int = 0  # the first reply is another article
    out_of_scope: int = 0
    out_of_scope_refused: int = 0
    in_scope: int = 0
    in_scope_refused: int = 0

    def add(self, label: str, expected: str, result: Outcome) -> None:
        self.examples += 1
        self.topic_right += result.predicted == expected
        if label.startswith(f"{RETRIEVAL_INTENT}/"):
            wanted = label.split("/", 1)[1]
            self.articles += 1
            self.first_reply_right += result.article == wanted
            self.one_tap += result.article == wanted or wanted in result.offered
            self.answered_wrong += result.article is not None and result.article != wanted
        if expected == OUT_OF_SCOPE:
            self.out_of_scope += 1
            self.out_of_scope_refused += result.predicted == OUT_OF_SCOPE
        else:
            self.in_scope += 1
            self.in_scope_refused += result.predicted == OUT_OF_SCOPE

    @property
    def rates(self) -> dict[str, float]:
        def rate(part: int, whole: int) -> float:
            return part / whole if whole else float("nan")

        return {
            "topic_accuracy": rate(self.topic_right, self.examples),
            "first_reply_right": rate(self.first_reply_right, self.articles),
            "one_tap": rate(self.one_tap, self.articles),
            "answered_wrong": rate(self.answered_wrong, self.articles),
            "out_of_scope_recall": rate(self.out_of_scope_refused, self.out_of_scope),
            "in_scope_refused": rate(self.in_scope_refused, self.in_scope),
        }


@dataclass
class Figures:
    """One system's figures on the held-out file: all of it and each language slice."""

    system: str
    overall: SliceFigures = field(default_factory=SliceFigures)
    slices: dict[str, SliceFigures] = field(default_factory=lambda: {name: SliceFigures() for name in SLICES})
    seconds: float = 0.0
    misses: list[dict[str, object]] = field(default_factory=list)

    def add(self, example: Example, expected: str, result: Outcome) -> None:
        self.overall.add(example.label, expected, result)
        self.slices[language_slice(example.text)].add(example.label, expected, result)
        if not result.is_right(example.label, expected):
            self.misses.append(
                {"text": example.text, "label": example.label, "predicted": result.predicted,
                 "article": result.article, "decision": result.decision}
            )  # fmt: skip

    # Kept for the regression guard in tests/nlu/test_rasa.py and `--json`.
    @property
    def intent_accuracy(self) -> float:
        return self.overall.rates["topic_accuracy"]

    @property
    def article_answered(self) -> float:
        return self.overall.rates["first_reply_right"]

    @property
    def out_of_scope_recall(self) -> float:
        return self.overall.rates["out_of_scope_recall"]

    def as_dict(self) -> dict[str, object]:
        return {
            "system": self.system,
            "seconds": round(self.seconds, 2),
            "overall": {**asdict(self.overall), **self.overall.rates},
            "slices": {name: {**asdict(figures), **figures.rates} for name, figures in self.slices.items()},
        }


def load_examples(path: Path = TEST_FILE) -> list[Example]:
    return read_examples(path)


def score_outcomes(
    system: str, examples: Iterable[Example], outcomes: Iterable[Outcome], library: Library, seconds: float = 0.0
) -> Figures:
    figures = Figures(system=system, seconds=seconds)
    for example, result in zip(examples, outcomes, strict=True):
        figures.add(example, expected_intent(example.label, library), result)
    return figures


async def evaluate(understander: Understander, answers: Answers, examples: list[Example]) -> Figures:
    """Run every example through the real understand → decide path."""
    started = time.perf_counter()
    outcomes = [outcome(answers, await understander.understand(e.text), e.text) for e in examples]
    return score_outcomes("Rahnuma", examples, outcomes, answers.library, time.perf_counter() - started)


async def evaluate_against(
    rasa_url: str, held_out: Sequence[Path] = (TEST_FILE,), *, library: Library | None = None
) -> list[Figures]:
    """Rahnuma's figures on each held-out file, one Understander for all."""
    library = library or load_library()
    rasa = RasaClient(rasa_url, timeout_seconds=30)
    understander, answers = Understander(LexicalSearch(library), rasa), Answers(library)
    try:
        return [await evaluate(understander, answers, load_examples(path)) for path in held_out]
    finally:
        await rasa.aclose()


def evaluate_rahnuma(settings: Settings, held_out: Sequence[Path] = (TEST_FILE,)) -> list[Figures]:
    """Start a Rasa server with the trained model and evaluate the whole bot on each held-out file."""
    log_file = PROJECT_ROOT / "data" / "rasa-eval.log"
    with rasa_process.serving(settings.rasa_executable, log_file=log_file, timeout=600) as url:
        return asyncio.run(evaluate_against(url, held_out))


def cross_validate(rasa: Path, folds: int = 5) -> dict[str, float]:
    """Rasa's own k-fold cross-validation on the training data (trains `folds` models: minutes)."""
    with tempfile.TemporaryDirectory() as out:
        command = [
            str(rasa), "test", "nlu", "--config", str(rasa_process.NLU_DIR / "config.yml"),
            "--nlu", str(rasa_process.NLU_DIR / "data"), "--cross-validation", "--folds", str(folds), "--out", out,
        ]  # fmt: skip
        subprocess.run(command, env=rasa_process.rasa_env(), check=True, stdout=subprocess.DEVNULL)
        report = json.loads((Path(out) / "intent_report.json").read_text())
        figures = {
            "cv_intent_accuracy": report["accuracy"],
            "cv_intent_macro_f1": report["macro avg"]["f1-score"],
        }
        selector = Path(out) / "response_selection_report.json"
        if selector.exists():
            figures["cv_article_accuracy"] = json.loads(selector.read_text()).get("accuracy", 0.0)
        return figures


# ---- printing ---------------------------------------------------------------------------------------------------

TARGETS = {"topic_accuracy": 0.95, "first_reply_right": 0.92, "out_of_scope_recall": 0.9}
_MEASURES = (
    ("topic_accuracy", "topic accuracy"),
    ("first_reply_right", "first reply = right article"),
    ("one_tap", "right article one tap away"),
    ("answered_wrong", "first reply = wrong article"),
    ("out_of_scope_recall", "out-of-scope recall"),
    ("in_scope_refused", "in scope but refused"),
)
_SLICE_NAMES = {"english": "English", "roman_urdu": "Roman Urdu", "urdu_script": "Urdu script"}


def side_by_side(systems: list[Figures], *, held_out: Path = TEST_FILE, out: Callable[[str], None] = print) -> None:
    """A table per measure: each system's figure overall and by language slice, with the issue's targets."""
    first = systems[0]
    counts = ", ".join(f"{_SLICE_NAMES[name]} {figures.examples}" for name, figures in first.slices.items())
    path = held_out.resolve()
    shown_path = path.relative_to(PROJECT_ROOT) if path.is_relative_to(PROJECT_ROOT) else path
    out(
        f"Held-out file {shown_path}: {first.overall.examples} messages ({counts}); "
        f"{first.overall.articles} article questions, {first.overall.out_of_scope} out of scope"
    )
    header = "| measure | system | all | " + " | ".join(_SLICE_NAMES[name] for name in SLICES) + " | target |"
    out(header)
    out("|" + "---|" * (header.count("|") - 1))
    for key, title in _MEASURES:
        for system in systems:
            cells = [system.overall.rates[key], *(system.slices[name].rates[key] for name in SLICES)]
            target = f"≥ {TARGETS[key]}" if key in TARGETS else ""
            shown = " | ".join("—" if value != value else f"{value:.3f}" for value in cells)
            out(f"| {title} | {system.system} | {shown} | {target} |")
    for system in systems:
        out(f"{system.system}: {system.seconds:.1f} s for {system.overall.examples} messages")


def run_evaluation(settings: Settings, *, cross_validation: bool, as_json: bool) -> int:
    [figures] = evaluate_rahnuma(settings)
    extra: dict[str, float] = cross_validate(settings.rasa_executable) if cross_validation else {}
    if as_json:
        print(json.dumps({**figures.as_dict(), **extra, "misses": figures.misses}, ensure_ascii=False, indent=2))
        return 0
    for miss in figures.misses:
        print(f"  miss: {miss['text']!r} expected {miss['label']} got {miss['predicted']} / {miss['article']}")
    side_by_side([figures])
    for key, value in extra.items():
        print(f"  {key:22} {value:.3f}")
    return 0
