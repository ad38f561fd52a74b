"""Parse the held-out files once, score them under any thresholds, compare two models message by message.

    .venv/bin/python bench/held_out.py parse --rasa-url http://127.0.0.1:5077 --out data/held_out-<model>.json
    .venv/bin/python bench/held_out.py score data/held_out-<model>.json [--set personal_confidence=0.5 ...] [--misses]
    .venv/bin/python bench/held_out.py compare data/held_out-A.json data/held_out-B.json

`make nlu-eval` starts its own Rasa server and parses every file again for each run; a model comparison (retrained
data, a threshold question) needs the parses of two models kept side by side, and a threshold question needs no
parse at all. Scoring goes through bot.evaluation.outcome, the same route Conversation takes. Choosing thresholds on
these figures is not allowed (issue 9): they are chosen by bench/calibrate.py on the training data.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.core.answers import Answers, Thresholds  # noqa: E402
from bot.evaluation import Outcome, expected_intent, load_examples, outcome, score_outcomes  # noqa: E402
from content.library import Library, load_library  # noqa: E402
from nlu.client import RasaClient  # noqa: E402
from nlu.examples import HELD_OUT_FILES, Example  # noqa: E402
from nlu.lexical import LexicalSearch  # noqa: E402
from nlu.pipeline import Understander  # noqa: E402
from nlu.understanding import ArticleCandidate, Understanding  # noqa: E402

SHOWN = ("topic_accuracy", "first_reply_right", "out_of_scope_recall")


async def parse(rasa_url: str, files: list[Path]) -> dict[str, Any]:
    """Every held-out message through the real Understander (Rasa, then the lexical blend)."""
    library = load_library()
    rasa = RasaClient(rasa_url, timeout_seconds=30)
    understander = Understander(LexicalSearch(library), rasa)
    parsed: dict[str, Any] = {}
    try:
        for path in files:
            rows = []
            for example in load_examples(path):
                understanding = await understander.understand(example.text)
                rows.append({"text": example.text, "label": example.label, "understanding": _as_json(understanding)})
            parsed[path.name] = rows
    finally:
        await rasa.aclose()
    return parsed


def _as_json(understanding: Understanding) -> dict[str, Any]:
    return dataclasses.asdict(understanding)


def _understanding(data: dict[str, Any]) -> Understanding:
    articles = tuple(ArticleCandidate(**candidate) for candidate in data["articles"])
    return Understanding(**{**data, "articles": articles})


Outcomes = dict[str, list[tuple[dict[str, Any], Outcome]]]


def outcomes(parsed: dict[str, Any], answers: Answers) -> Outcomes:
    return {
        name: [(row, outcome(answers, _understanding(row["understanding"]), row["text"])) for row in rows]
        for name, rows in parsed.items()
    }


def score(by_file: Outcomes, library: Library) -> None:
    for name, rows in by_file.items():
        examples = [Example(text=row["text"], label=row["label"]) for row, _ in rows]
        figures = score_outcomes("Rahnuma", examples, [result for _, result in rows], library)
        cells = [f"{figures.overall.rates[key]:.3f}" for key in SHOWN]
        by_slice = "  ".join(
            f"{slice_name} " + "/".join(f"{part.rates[key]:.3f}" for key in SHOWN)
            for slice_name, part in figures.slices.items()
        )
        print(f"{name:28s} {' / '.join(cells)}   {by_slice}")


def compare(old: Outcomes, new: Outcomes, library: Library) -> None:
    """The messages whose outcome changed between two parses, with the label: what a retraining won and lost."""
    for name in [name for name in old if name in new]:
        for (row, was), (_, now) in zip(old[name], new[name], strict=True):
            if (was.predicted, was.article) == (now.predicted, now.article):
                continue
            label = row["label"]
            expected = expected_intent(label, library)
            right_before, right_after = was.is_right(label, expected), now.is_right(label, expected)
            mark = "~" if right_before == right_after else "+" if right_after else "-"
            print(f"{mark} {name}: {row['text'][:70]!r} [{label}] {was.predicted}/{was.article} -> "
                  f"{now.predicted}/{now.article}")  # fmt: skip


def misses(by_file: Outcomes, library: Library) -> None:
    """Every message whose outcome is wrong, with its label and what it got."""
    for name, rows in by_file.items():
        for row, result in rows:
            label = row["label"]
            if not result.is_right(label, expected_intent(label, library)):
                print(f"x {name}: {row['text'][:70]!r} [{label}] {result.predicted}/{result.article} {result.decision}")


def _thresholds(settings: list[str]) -> Thresholds:
    changes = {key: float(value) for key, value in (setting.split("=", 1) for setting in settings)}
    return dataclasses.replace(Thresholds(), **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    parse_command = commands.add_parser("parse", help="parse every held-out file through a running Rasa server")
    parse_command.add_argument("--rasa-url", required=True)
    parse_command.add_argument("--out", type=Path, required=True)
    parse_command.add_argument("--held-out", type=Path, action="append", help="default: nlu.examples.HELD_OUT_FILES")
    for name in ("score", "compare"):
        command = commands.add_parser(name)
        command.add_argument("parsed", type=Path, nargs=1 if name == "score" else 2)
        command.add_argument("--set", action="append", default=[], metavar="THRESHOLD=VALUE")
    commands.choices["score"].add_argument("--misses", action="store_true", help="list every wrong outcome")
    args = parser.parse_args()
    if args.command == "parse":
        files = args.held_out or [path for path in HELD_OUT_FILES if path.exists()]
        args.out.write_text(json.dumps(asyncio.run(parse(args.rasa_url, files)), ensure_ascii=False))
        print(f"parsed {len(files)} files into {args.out}")
        return
    library = load_library()
    answers = Answers(library, _thresholds(args.set))
    by_parse = [outcomes(json.loads(path.read_text()), answers) for path in args.parsed]
    print("file                         topic / first reply / out-of-scope recall, then by slice")
    for by_file in by_parse:
        score(by_file, library)
    if args.command == "compare":
        compare(*by_parse, library)
    elif args.misses:
        misses(by_parse[0], library)


if __name__ == "__main__":
    main()
