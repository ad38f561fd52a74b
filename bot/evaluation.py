"""`rahnuma nlu eval`: what users would get on held-out questions (nlu/tests/test_nlu.yml), never trained on.

It evaluates the bot's decisions (understand → decide, the same code a message goes through), not Rasa alone,
which is why it lives in bot/ and not in nlu/.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bot.core.answers import Answers
from bot.core.types import UserView
from bot.settings import PROJECT_ROOT, Settings
from content.library import Library, load_library
from nlu import rasa_process
from nlu.client import RETRIEVAL_INTENT, RasaClient
from nlu.examples import TEST_FILE, Example, read_examples
from nlu.lexical import LexicalSearch
from nlu.pipeline import Understander

OUT_OF_SCOPE = {"out_of_scope", "nlu_fallback"}


@dataclass
class Figures:
    examples: int
    rasa_intent_accuracy: float  # Rasa's own view: every article question counts as the one intent `faq`
    intent_accuracy: float  # the bot's view: an article question must land on its topic (ask_payments...)
    intent_macro_f1: float
    article_examples: int
    article_top1: float
    article_answered: float
    out_of_scope_examples: int
    out_of_scope_recall: float
    in_scope_rejected: float
    seconds: float


def load_examples(path: Path = TEST_FILE) -> list[Example]:
    return read_examples(path)


def expected_intent(label: str, library: Library) -> str:
    if label.startswith(f"{RETRIEVAL_INTENT}/"):
        return library.articles[label.split("/", 1)[1]].intent
    return label


def macro_f1(pairs: list[tuple[str, str]]) -> float:
    labels = {expected for expected, _ in pairs}
    scores = []
    for label in labels:
        tp = sum(1 for e, p in pairs if e == label and p == label)
        fp = sum(1 for e, p in pairs if e != label and p == label)
        fn = sum(1 for e, p in pairs if e == label and p != label)
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        scores.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


async def evaluate(
    understander: Understander, answers: Answers, examples: list[Example]
) -> tuple[Figures, list[dict[str, object]]]:
    """Run every example through the real understand → decide path; return the figures and the misses."""
    library = answers.library
    viewer = UserView(id=None, language="en", language_chosen=True, display_name=None)
    started = time.perf_counter()
    pairs: list[tuple[str, str]] = []
    rasa_hits = 0
    top1 = answered = articles = 0
    misses: list[dict[str, object]] = []
    for example in examples:
        understanding = await understander.understand(example.text)
        reply = answers.decide(understanding, viewer)
        candidates = answers.steer_by_platform(understanding)
        if understanding.intent == RETRIEVAL_INTENT and candidates:
            predicted = library.articles[candidates[0].article_id].intent
        else:
            predicted = "out_of_scope" if understanding.intent in OUT_OF_SCOPE else understanding.intent
        expected = expected_intent(example.label, library)
        rasa_label = RETRIEVAL_INTENT if example.label.startswith(f"{RETRIEVAL_INTENT}/") else example.label
        rasa_predicted = "out_of_scope" if understanding.intent in OUT_OF_SCOPE else understanding.intent
        rasa_hits += rasa_predicted == ("out_of_scope" if rasa_label in OUT_OF_SCOPE else rasa_label)
        pairs.append((expected, predicted))
        wrong_article = False
        if example.label.startswith(f"{RETRIEVAL_INTENT}/"):
            articles += 1
            wanted = example.label.split("/", 1)[1]
            hit = bool(candidates) and candidates[0].article_id == wanted
            top1 += hit
            answered += reply.article_id == wanted
            wrong_article = not hit
        if predicted != expected or wrong_article:
            misses.append(
                {"text": example.text, "label": example.label, "predicted": predicted,
                 "article": candidates[0].article_id if candidates else None, "decision": str(reply.decision)}
            )  # fmt: skip
    oos = [(e, p) for e, p in pairs if e == "out_of_scope"]
    in_scope = [(e, p) for e, p in pairs if e != "out_of_scope"]
    figures = Figures(
        examples=len(pairs),
        rasa_intent_accuracy=rasa_hits / len(pairs),
        intent_accuracy=sum(e == p for e, p in pairs) / len(pairs),
        intent_macro_f1=macro_f1(pairs),
        article_examples=articles,
        article_top1=top1 / articles if articles else 0.0,
        article_answered=answered / articles if articles else 0.0,
        out_of_scope_examples=len(oos),
        out_of_scope_recall=sum(p == "out_of_scope" for _, p in oos) / len(oos) if oos else 0.0,
        in_scope_rejected=sum(p == "out_of_scope" for _, p in in_scope) / len(in_scope) if in_scope else 0.0,
        seconds=time.perf_counter() - started,
    )
    return figures, misses


async def evaluate_against(rasa_url: str, *, library: Library | None = None) -> tuple[Figures, list[dict[str, object]]]:
    library = library or load_library()
    rasa = RasaClient(rasa_url, timeout_seconds=30)
    try:
        return await evaluate(Understander(LexicalSearch(library), rasa), Answers(library), load_examples())
    finally:
        await rasa.aclose()


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


def run_evaluation(settings: Settings, *, cross_validation: bool, as_json: bool) -> int:
    with rasa_process.serving(settings.rasa_executable, log_file=PROJECT_ROOT / "data" / "rasa-eval.log") as url:
        figures, misses = asyncio.run(evaluate_against(url))
    result: dict[str, object] = asdict(figures)
    if cross_validation:
        result.update(cross_validate(settings.rasa_executable))
    if as_json:
        print(json.dumps({**result, "misses": misses}, ensure_ascii=False, indent=2))
        return 0
    for miss in misses:
        print(f"  miss: {miss['text']!r} expected {miss['label']} got {miss['predicted']} / {miss['article']}")
    print(f"Held-out examples: {figures.examples} ({figures.article_examples} article questions, "
          f"{figures.out_of_scope_examples} out of scope) in {figures.seconds:.1f} s")  # fmt: skip
    for key, value in result.items():
        if isinstance(value, float) and key != "seconds":
            print(f"  {key:22} {value:.3f}")
    return 0
