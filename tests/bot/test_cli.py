"""`rahnuma` as a scripted check would use it: `ask --json` is a contract; bad settings fail with the name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.settings import PROJECT_ROOT

RAHNUMA = [sys.executable, "-m", "bot.cli"]


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    scrubbed = {
        k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "RAHNUMA_", "RASA_", "DATABASE_"))
    }
    scrubbed.update(
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        RASA_URL="http://127.0.0.1:9",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    scrubbed.update(env)
    return subprocess.run(
        RAHNUMA + args, capture_output=True, text=True, cwd=tmp_path, env=scrubbed, timeout=60, check=False
    )


def test_ask_json_answers_on_a_fresh_database_even_without_rasa(tmp_path: Path) -> None:
    """A fresh clone with Rasa down: `ask --json` still prints one object with the contract's keys."""
    result = run(["ask", "--json", "how do I withdraw money from fiverr"], tmp_path)
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert {"intent", "confidence", "article", "reply"} <= set(payload)
    assert payload["article"] == "fiverr_withdrawal"
    assert payload["intent"] == "ask_payments"
    assert payload["nlu_source"] == "fallback"


def test_ask_with_a_user_remembers_the_language(tmp_path: Path) -> None:
    first = run(["ask", "--json", "--user", "u1", "--language", "ur", "hello"], tmp_path)
    assert first.returncode == 0, first.stderr
    second = json.loads(run(["ask", "--json", "--user", "u1", "fiverr se paise kaise nikalein"], tmp_path).stdout)
    assert any("\u0600" <= ch <= "\u06ff" for ch in second["reply"])


def test_malformed_database_url_names_the_variable(tmp_path: Path) -> None:
    result = run(["ask", "hi"], tmp_path, DATABASE_URL="postgres//nope")
    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_without_a_token_explains_itself(tmp_path: Path) -> None:
    result = run(["run"], tmp_path)
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" in result.stderr
