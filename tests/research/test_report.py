"""The researchers' report: every plot renders in a real browser (headless Chromium, offline), small cells show as
"<5", the file needs nothing from the network, and the statistics are right."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from content.library import Library
from research.demo import DemoRefused, fill
from research.report import build_report
from research.stats import cell, newcombe, wilson
from storage import users as stored_users
from storage.db import Database
from storage.research import Period
from tests.conftest import TEST_NOW
from tests.research.png import read_png

CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
)  # fmt: skip
# Injected into a copy of the report: measures every plot after layout and writes the result into the DOM.
MEASURE = """<script>
const plots = [...document.querySelectorAll('figure.plot')].map(figure => {
  const svg = figure.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  const shapes = svg ? [...svg.querySelectorAll('rect, path, circle, line')]
    .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length : 0;
  const texts = svg ? svg.querySelectorAll('text').length : 0;
  return {plot: figure.dataset.plot, width: box.width, height: box.height, shapes: shapes, texts: texts};
});
const out = document.createElement('pre'); out.id = 'render-check'; out.textContent = JSON.stringify(plots);
document.body.appendChild(out);
</script>"""
EXPECTED_PLOTS = {
    "funnel", "rung-days", "wau", "retention", "topics", "unanswered", "feedback", "nudge-rules",
    "experiment-welcome_d3_wording", "experiment-welcome_d3_wording-difference", "broadcasts",
}  # fmt: skip


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs Debian's chromium package)")
        pytest.skip("chromium is not installed: apt-get install -y chromium")
    return found


def run_chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"  # a fresh profile every run
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip


@pytest.fixture
async def demo_report(db: Database, library: Library) -> str:
    await fill(db, library=library, users=240, seed=3, until=TEST_NOW, weeks=10)
    return await build_report(db, library=library, period=Period(), now=TEST_NOW)


async def test_every_plot_renders_in_headless_chromium(demo_report: str, tmp_path: Path) -> None:
    """Each figure's SVG has a size and drawn shapes after layout, and the screenshot is not blank."""
    report = tmp_path / "report.html"
    report.write_text(demo_report, encoding="utf-8")
    measured = tmp_path / "measured.html"
    measured.write_text(demo_report.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = run_chromium(tmp_path, "--virtual-time-budget=5000", "--dump-dom", measured.as_uri()).stdout
    found = re.search(r'<pre id="render-check">(.*?)</pre>', dom, re.DOTALL)
    assert found, "the measuring script did not run"
    plots = json.loads(found.group(1).replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    assert {p["plot"] for p in plots} == EXPECTED_PLOTS
    for plot in plots:
        assert plot["width"] > 300 and plot["height"] > 50, plot
        assert plot["shapes"] >= 3 and plot["texts"] >= 2, plot

    screenshot = tmp_path / "report.png"
    run_chromium(tmp_path, "--window-size=1000,2400", f"--screenshot={screenshot}", report.as_uri())
    width, height, rows = read_png(screenshot)
    assert (width, height) == (1000, 2400)
    background = {bytes((0xF5, 0xF7, 0xFA)), bytes((0xFF, 0xFF, 0xFF))}
    inked, colours = 0, set()
    for row in rows[::8]:
        for x in range(0, width * 3, 3 * 4):
            pixel = row[x : x + 3]
            colours.add(pixel)
            inked += pixel not in background
    assert inked / ((height // 8) * (width // 4)) > 0.08, "the screenshot is (nearly) blank"
    assert len(colours) > 50


async def test_report_is_self_contained(demo_report: str) -> None:
    """Nothing is fetched: no script, stylesheet, font or image from anywhere."""
    assert "<script" not in demo_report and "<link" not in demo_report and "<img" not in demo_report
    assert "@import" not in demo_report and "url(http" not in demo_report and " src=" not in demo_report
    links = set(re.findall(r"https?://[^\s\"'<>)]+", demo_report))
    assert links <= {"http://www.w3.org/2000/svg"}  # the SVG namespace is a name, not a request


async def test_small_counts_show_as_under_five(db: Database, library: Library) -> None:
    """Three people: the report never prints how many exactly."""
    for external_id in ("9100000001", "9100000002", "9100000003"):
        async with db.write() as session:
            await stored_users.create_user(session, channel="telegram", external_id=external_id, now=TEST_NOW)
    html = await build_report(db, library=library, period=Period(), now=TEST_NOW)
    assert ">&lt;5<" in html  # the "people started" card
    assert "3 people" not in html and ">3<" not in html


def test_cells_and_intervals() -> None:
    assert [cell(n) for n in (0, 1, 4, 5, 1234)] == ["0", "<5", "<5", "5", "1,234"]
    share, low, high = wilson(40, 100)
    assert share == 0.4 and round(low, 4) == 0.3094 and round(high, 4) == 0.4980  # Newcombe (1998), table I style
    difference, d_low, d_high = newcombe((56, 70), (48, 80))
    assert round(difference, 4) == 0.2 and round(d_low, 4) == 0.0524 and round(d_high, 4) == 0.3339  # Newcombe ex.


async def test_demo_data_refuses_a_database_with_real_users(db: Database, library: Library) -> None:
    async with db.write() as session:
        await stored_users.create_user(session, channel="telegram", external_id="9100000009", now=TEST_NOW)
    with pytest.raises(DemoRefused, match="real users"):
        await fill(db, library=library, users=10, until=TEST_NOW)
    summary = await fill(db, library=library, users=10, until=TEST_NOW, force=True)
    assert summary.users == 10 and summary.events > 10 * 5
