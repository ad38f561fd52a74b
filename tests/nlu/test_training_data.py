"""The Rasa project is consistent: generated files are current, held-out examples are never trained on, and
`rasa data validate` passes."""

from __future__ import annotations

import subprocess

import pytest

from bot.evaluation import load_examples
from content.library import Library, normalise_question
from nlu import rasa_process
from nlu.build import DOMAIN_FILE, FAQ_FILE, annotate, render_domain, render_faq_data
from nlu.examples import intent_examples as load_intent_examples


def test_generated_files_match_the_content(library: Library) -> None:
    """`rahnuma nlu build` output is committed and current (CI would otherwise train on stale questions)."""
    assert FAQ_FILE.read_text(encoding="utf-8") == render_faq_data(library)
    assert DOMAIN_FILE.read_text(encoding="utf-8") == render_domain(library)


def test_misspelt_platforms_are_annotated_with_their_canonical_value() -> None:
    assert annotate("fivver se paise") == '[fivver]{"entity": "platform", "value": "fiverr"} se paise'
    assert annotate("Upwork profile") == "[Upwork](platform) profile"


def test_held_out_examples_are_never_training_examples(library: Library) -> None:
    trained = {normalise_question(q) for article in library for q in article.questions}
    trained |= {normalise_question(t) for texts in load_intent_examples().values() for t in texts}
    held_out = load_examples()
    assert len(held_out) >= 150
    leaked = [e.text for e in held_out if normalise_question(e.text) in trained]
    assert leaked == []


def test_every_held_out_article_label_is_a_real_article(library: Library) -> None:
    labels = {e.label.split("/", 1)[1] for e in load_examples() if e.label.startswith("faq/")}
    assert labels <= set(library.articles)
    assert len(labels) >= 35


@pytest.mark.rasa
def test_rasa_data_validate_passes() -> None:
    rasa = rasa_process.NLU_DIR.parent / ".venv-rasa" / "bin" / "rasa"
    result = subprocess.run(
        [str(rasa), "data", "validate", "--domain", str(DOMAIN_FILE), "--data", str(FAQ_FILE.parent),
         "--config", str(rasa_process.NLU_DIR / "config.yml")],
        capture_output=True, text=True, env=rasa_process.rasa_env(), timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
