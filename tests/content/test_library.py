"""The curated content obeys its rules, and rendering never lets raw HTML through."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from content.library import ContentError, Library, check_library, parse_article, to_telegram_html


def test_every_article_passes_content_check(library: Library) -> None:
    """`rahnuma content check` has no errors on the shipped content."""
    report = check_library(library)
    assert report.errors == []
    assert len(library.articles) >= 40


def test_every_topic_and_both_languages_are_covered(library: Library) -> None:
    topics = {article.topic for article in library}
    assert topics == {"getting_started", "onboarding", "bidding", "payments", "safety"}
    assert all(article.body["ur"] and article.title["ur"] for article in library)


def test_check_reports_stale_reviews_and_shared_questions(library: Library) -> None:
    report = check_library(library, today=dt.date(2030, 1, 1))
    assert report.warnings and all("reviewed" in w for w in report.warnings)


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
