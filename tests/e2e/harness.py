"""Process handles for the e2e tests: the emulator, the bot under test, and their logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.simulated_user import BotApiLog

LOG_TAIL_LINES = 200


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def stop_process(process: subprocess.Popen[bytes], first_signal: signal.Signals, grace: float) -> None:
    """Stop a child started with start_new_session=True: a polite signal, then SIGKILL to its group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, first_signal)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)  # whatever the child left behind in its group
    process.wait(timeout=10)


@dataclass(frozen=True)
class Emulator:
    client_url: str  # telegram-test-api's client API: the simulated users' side
    bot_api_url: str  # the PTB base_url, ending in /bot
    control_url: str  # the proxy's root, for /_e2e/ introspection
    process: subprocess.Popen[bytes]
    log_path: Path


@dataclass(frozen=True)
class Checkpoint:
    log_offset: int
    api_seq: int


class BotUnderTest:
    """The running `rahnuma run` process, as the tests see it."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path, api: BotApiLog) -> None:
        self.process = process
        self.log_path = log_path
        self.api = api

    def log_text(self, since: int = 0) -> str:
        with self.log_path.open("rb") as handle:
            handle.seek(since)
            return handle.read().decode("utf-8", errors="replace")

    def assert_alive(self) -> None:
        code = self.process.poll()
        assert code is None, f"the bot process exited with code {code}; its log:\n{tail(self.log_path)}"

    async def checkpoint(self) -> Checkpoint:
        calls = await self.api.calls()
        return Checkpoint(log_offset=self.log_path.stat().st_size, api_seq=max((c["seq"] for c in calls), default=0))

    async def assert_healthy_since(self, checkpoint: Checkpoint) -> None:
        """Alive, no ERROR or traceback in its log, and no Bot API call that Telegram would have refused."""
        self.assert_alive()
        new_log = self.log_text(checkpoint.log_offset)
        bad = [
            line for line in new_log.splitlines() if " ERROR " in line or " CRITICAL " in line or "Traceback" in line
        ]
        assert not bad, "the bot logged errors:\n" + "\n".join(bad) + "\n\nfull log since the checkpoint:\n" + new_log
        refused = [c for c in await self.api.rejected() if c["seq"] > checkpoint.api_seq]
        assert not refused, "the emulated Telegram refused calls:\n" + json.dumps(refused, indent=2, ensure_ascii=False)


def migrate_and_start_bot(rahnuma: str, *, cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """`rahnuma db upgrade`, then `rahnuma run` in its own process group, logging to log_path."""

    migrate = subprocess.run(
        [rahnuma, "db", "upgrade"], cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if migrate.returncode != 0:
        pytest.fail(
            f"`rahnuma db upgrade` failed ({migrate.returncode}):\n{migrate.stdout}\n{migrate.stderr}", pytrace=False
        )
    with log_path.open("wb") as log_file:
        return subprocess.Popen(
            [rahnuma, "run"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
