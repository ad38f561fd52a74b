"""Logging for every `rahnuma` command: one format, and no secret in any line, tracebacks included."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then replaces every known secret (bot token, Rasa token, webhook secret...) wherever it
    appears, so a URL with `?token=` inside some library's error message cannot leak it."""

    def __init__(self, secrets: Iterable[str], fmt: str = FORMAT) -> None:
        super().__init__(fmt)
        self.secrets = sorted({secret for secret in secrets if len(secret) >= 4}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("httpx", "alembic", "apscheduler", "tornado.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # At DEBUG these dump payloads: PTB every update and API call, aiosqlite every statement with its parameters,
    # i.e. users' words. Never below INFO for them, whatever RAHNUMA_LOG_LEVEL says.
    for payloads in ("telegram", "aiosqlite", "httpcore", "hpack"):
        logging.getLogger(payloads).setLevel(max(logging.INFO, root.level))
