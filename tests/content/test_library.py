"""The curated content obeys its rules, money answers state their figures, and rendering never lets raw HTML through."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from content.library import (
    STALE_AFTER_DAYS,
    Article,
    ContentError,
    Library,
    asks_for_a_number,
    check_library,
    parse_article,
    to_telegram_html,
)


def library_of(*articles: Article) -> Library:
    return Library(articles={a.id: a for a in articles}, ui={})


def made_up(library: Library, **changes: object) -> Article:
    """An article built from a real one, with the given fields replaced."""
    return dataclasses.replace(library.articles["platform_service_fees"], **changes)  # type: ignore[arg-type]


def test_every_article_passes_content_check(library: Library) -> None:
    """`rahnuma content check` has no errors on the shipped content."""
    report = check_library(library)
    assert report.errors == []
    assert len(library.articles) >= 60


def test_every_topic_and_both_languages_are_covered(library: Library) -> None:
    topics = {article.topic for article in library}
    assert topics == {"getting_started", "onboarding", "bidding", "payments", "safety"}
    assert all(article.body["ur"] and article.title["ur"] for article in library)


def test_reviews_older_than_180_days_are_warned_not_failed(library: Library) -> None:
    """A stale `reviewed` date is a warning naming the file; the day before the limit is fine."""
    report = check_library(library, today=dt.date(2030, 1, 1))
    assert report.errors == []
    assert len(report.warnings) == len(library.articles)
    assert all("reviewed" in w and w.split(":")[0].endswith(".md") for w in report.warnings)
    article = made_up(library, id="fresh_enough", reviewed=dt.date(2026, 1, 1))
    on_the_limit = dt.date(2026, 1, 1) + dt.timedelta(days=STALE_AFTER_DAYS)
    assert check_library(library_of(article), today=on_the_limit).warnings == []
    late = check_library(library_of(article), today=on_the_limit + dt.timedelta(days=1))
    assert [w.split(":")[0] for w in late.warnings] == ["fresh_enough.md"]


def test_a_question_in_two_articles_is_an_error(library: Library) -> None:
    """The NLU can't tell two articles apart if they share a training question (case and punctuation ignored)."""
    first = library.articles["platform_service_fees"]
    twin = made_up(library, id="fees_again", questions=("How much commission does Fiverr take?", "what else"))
    report = check_library(library_of(first, twin))
    assert any(e.startswith("fees_again.md: question") and "platform_service_fees.md" in e for e in report.errors)


@pytest.mark.parametrize(
    "question",
    [
        "how much commission does fiverr take",
        "how many connects do i need",
        "fiverr pending clearance how long",
        "upwork minimum withdrawal",
        "payoneer fees for pakistan",
        "kitne din lagte hain",
        "upwork kitna kaat ta hai",
        "sadapay ki limit kya hai",
        "فائیور کتنی کمیشن لیتا ہے",
        "جاز کیش والٹ کی حد کتنی ہے",
    ],
)
def test_questions_that_ask_for_a_figure_are_recognised(question: str) -> None:
    assert asks_for_a_number(question)


@pytest.mark.parametrize(
    "question",
    ["how do i withdraw from fiverr", "client wants to skip the fees and pay outside", "payoneer account kaise banaun"],
)
def test_questions_without_a_figure_are_not_flagged(question: str) -> None:
    assert not asks_for_a_number(question)


def test_a_figure_question_with_no_digit_in_a_body_is_an_error_naming_the_file(library: Library) -> None:
    """A question like "How much does Fiverr take?" must not get "Fiverr keeps a commission" in either language."""
    dodge = made_up(
        library,
        id="fee_dodge",
        questions=("how much commission does fiverr take",),
        body={"en": "Fiverr keeps a commission: check its help page.", "ur": "Fiverr کمیشن رکھتا ہے، ہیلپ دیکھیں۔"},
    )
    errors = [e for e in check_library(library_of(dodge)).errors if "no digit" in e]
    assert len(errors) == 2
    assert all(e.startswith("fee_dodge.md:") for e in errors)
    assert any("the en body" in e for e in errors) and any("the ur body" in e for e in errors)


def test_urdu_numerals_count_as_a_figure(library: Library) -> None:
    article = made_up(
        library,
        id="urdu_digits",
        questions=("فائیور کتنی کمیشن لیتا ہے",),
        body={"en": "Fiverr keeps 20% (2026-11).", "ur": "Fiverr ہر آرڈر کا ۲۰٪ رکھتا ہے۔"},
    )
    assert not [e for e in check_library(library_of(article)).errors if "no digit" in e]


def test_the_real_fees_article_passes_the_figure_rule(library: Library) -> None:
    article = library.articles["platform_service_fees"]
    assert any(asks_for_a_number(q) for q in article.questions)
    assert not [e for e in check_library(library_of(article)).errors if "no digit" in e]


# Each money article states the figure its questions ask for, in English and in Urdu (audit 2026-11, section 2).
MONEY_FIGURES: dict[str, list[tuple[str, str]]] = {
    "platform_service_fees": [("20%", "20%"), ("$8 of $10", "$8"), ("15%", "15%"), ("$5", "$5")],
    "upwork_connects": [("$0.15", "$0.15"), ("140", "140"), ("10 a month", "10")],
    "fiverr_withdrawal": [("14 days", "14 دن"), ("7 days", "7 دن"), ("3 days", "3 دن")],
    "upwork_withdrawal": [("5 days", "5 دن"), ("10 days", "10 دن"), ("$0.99", "$0.99")],
    "direct_to_local_bank": [("$0.99", "$0.99"), ("3 days", "3 دن"), ("$5", "$5")],
    "freelancer_withdrawal": [("$30", "$30"), ("15 days", "15 دن")],
    "freelancer_bids": [("8 bids a month", "8 بڈز"), ("$5", "$5")],
    "guru_account_create": [("5% to 9%", "5% سے 9%")],
    "payoneer_setup": [("$1", "$1"), ("1%", "1%"), ("3%", "3%")],
    "sadapay_nayapay": [("2%", "2%"), ("3%", "3%"), ("$98", "$98")],
    "jazzcash_easypaisa": [("Rs 25,000", "Rs 25,000"), ("Rs 50,000", "Rs 50,000")],
    "taxes_fbr_filing": [("0.25%", "0.25%"), ("1%", "1%"), ("30 June 2026", "30 جون 2026")],
    "pseb_registration": [("0.25%", "0.25%"), ("1%", "1%")],
    "payment_routes_pakistan": [("50%", "50%"), ("$5,000", "$5,000")],
    "unpaid_work_disputes": [("7 days", "7 دن"), ("14 days", "14 دن"), ("48 hours", "48 گھنٹے"), ("4 days", "4 دن")],
    "job_success_score": [("90%", "90%"), ("$1,000", "$1,000"), ("14 days", "14 دن")],
    "upwork_profile_review": [("24 hours", "24 گھنٹے")],
    "beginner_pricing": [("$5", "$5"), ("$4", "$4")],
}


@pytest.mark.parametrize("article_id", sorted(MONEY_FIGURES))
def test_money_articles_state_their_figures_in_both_languages(library: Library, article_id: str) -> None:
    """A beginner asking "how much / how many days" gets the number, in English and in Urdu."""
    article = library.articles[article_id]
    for english, urdu in MONEY_FIGURES[article_id]:
        assert english in article.body["en"], f"{article_id}: English body lacks {english!r}"
        assert urdu in article.body["ur"], f"{article_id}: Urdu body lacks {urdu!r}"
    assert "2026" in article.body["en"] and "2026" in article.body["ur"], f"{article_id}: figures need their date"


def test_menu_paths_in_urdu_point_forward(library: Library) -> None:
    """Menu paths use "→": a "←" between Latin menu words displays reversed in Urdu text."""
    assert [a.id for a in library if "←" in a.body["ur"]] == []


def test_repeat_client_milestone_links_a_repeat_client_article(library: Library) -> None:
    rung = next(m for m in library.milestones if m.id == "repeat_client")
    assert rung.article is not None and "repeat" in rung.article


def test_a_ladder_without_doubt_words_fails_the_check(library: Library) -> None:
    """Without them "payment kab aayegi?" names the first payment and would be confirmed as news."""
    assert "kab" in library.doubt_words and "نہیں" in library.doubt_words
    report = check_library(dataclasses.replace(library, doubt_words=()))
    assert any("doubt_words" in error for error in report.errors)


def test_broken_front_matter_names_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken_article.md"
    broken.write_text("no front matter here\n")
    with pytest.raises(ContentError, match="broken_article.md"):
        parse_article(broken)


def test_markdown_subset_renders_and_html_is_escaped() -> None:
    rendered = to_telegram_html("**Fees** <script>x</script>\n- item [Fiverr Help](https://help.fiverr.com/a?b=1&c=2)")
    assert "<b>Fees</b>" in rendered
    assert "&lt;script&gt;" in rendered
    assert "• item" in rendered
    assert '<a href="https://help.fiverr.com/a?b=1&amp;c=2">Fiverr Help</a>' in rendered
