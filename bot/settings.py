"""Typed settings from the environment and `.env`; a wrong value stops the start with the variable's name."""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.core.quiet_hours import QuietHours, Span

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SUPPORTED_DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


class SettingsError(RuntimeError):
    """A setting is missing or malformed; the message names the variable."""


class Settings(BaseSettings):
    """Every knob Rahnuma reads. The env variable names are a contract: keep them."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    telegram_bot_token: SecretStr | None = Field(default=None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: AnyHttpUrl = Field(default=AnyHttpUrl("https://api.telegram.org/bot"), alias="TELEGRAM_API_URL")
    database_url: str = Field(default="sqlite+aiosqlite:///data/rahnuma.db", alias="DATABASE_URL")
    rasa_url: AnyHttpUrl = Field(default=AnyHttpUrl("http://127.0.0.1:5005"), alias="RASA_URL")
    rasa_token: SecretStr | None = Field(default=None, alias="RASA_TOKEN")
    rasa_timeout_seconds: float = Field(default=3.0, gt=0, le=60, alias="RASA_TIMEOUT_SECONDS")
    coordinators: Annotated[frozenset[int], NoDecode] = Field(default=frozenset(), alias="RAHNUMA_COORDINATORS")
    timezone_name: str = Field(default="Asia/Karachi", alias="RAHNUMA_TIMEZONE")
    webhook_url: AnyHttpUrl | None = Field(default=None, alias="RAHNUMA_WEBHOOK_URL")
    webhook_secret: SecretStr | None = Field(default=None, alias="RAHNUMA_WEBHOOK_SECRET")
    webhook_listen: str = Field(default="0.0.0.0", alias="RAHNUMA_WEBHOOK_LISTEN")
    webhook_port: int = Field(default=8443, gt=0, lt=65536, alias="RAHNUMA_WEBHOOK_PORT")
    rasa_venv: Path = Field(default=PROJECT_ROOT / ".venv-rasa", alias="RASA_VENV")
    log_level: str = Field(default="INFO", alias="RAHNUMA_LOG_LEVEL")
    # The outbox and its dispatcher (docs/OUTBOX.md)
    send_rate: float = Field(default=25.0, gt=0, le=1000, alias="RAHNUMA_SEND_RATE")
    dispatch_interval: float = Field(default=1.0, gt=0, le=60, alias="RAHNUMA_DISPATCH_INTERVAL")
    quiet_hours: str = Field(default="22:00-09:00", alias="RAHNUMA_QUIET_HOURS")
    friday_quiet_hours: str = Field(default="12:30-14:30", alias="RAHNUMA_FRIDAY_QUIET_HOURS")
    nudge_daily_cap: int = Field(default=1, ge=0, le=10, alias="RAHNUMA_NUDGE_DAILY_CAP")
    nudge_weekly_cap: int = Field(default=3, ge=0, le=50, alias="RAHNUMA_NUDGE_WEEKLY_CAP")
    worker_id: str | None = Field(default=None, max_length=64, alias="RAHNUMA_WORKER_ID")
    # Research exports (docs/RESEARCH.md): the key of the pseudonyms. Only `rahnuma export` and /export need it,
    # and they check it (32+ characters); the bot runs without it.
    research_salt: SecretStr | None = Field(default=None, alias="RAHNUMA_RESEARCH_SALT")
    # Coordinators (docs/COORDINATORS.md): their Telegram group, working hours, hand-off timers
    coordinator_chat_id: int | None = Field(default=None, alias="RAHNUMA_COORDINATOR_CHAT_ID")
    coordinator_hours: str = Field(default="09:00-17:00", alias="RAHNUMA_COORDINATOR_HOURS")
    handoff_repost_minutes: int = Field(default=120, ge=5, le=7 * 24 * 60, alias="RAHNUMA_HANDOFF_REPOST_MINUTES")
    handoff_close_hours: int = Field(default=48, ge=1, le=30 * 24, alias="RAHNUMA_HANDOFF_CLOSE_HOURS")

    @field_validator(
        "telegram_bot_token", "rasa_token", "webhook_secret", "webhook_url", "research_salt", mode="before"
    )
    @classmethod
    def _blank_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("coordinator_chat_id", mode="before")
    @classmethod
    def _chat_id(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return None
            if not value.strip().lstrip("-").isdigit():
                raise ValueError("expected the coordinators' Telegram group id, an integer such as -1001234567890")
            return int(value.strip())
        return value

    @field_validator("coordinator_hours")
    @classmethod
    def _working_hours(cls, value: str) -> str:
        Span.parse(value)
        return value.strip()

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("use 1-256 characters A-Z, a-z, 0-9, _ and - (what Telegram accepts as secret_token)")
        return value

    @model_validator(mode="after")
    def _webhook_needs_a_shared_secret(self) -> Settings:
        # Every worker behind one webhook URL must check the same secret: an invented one per process would make
        # all but the last worker refuse Telegram's updates.
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError("RAHNUMA_WEBHOOK_SECRET is required when RAHNUMA_WEBHOOK_URL is set")
        return self

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc}); example: sqlite+aiosqlite:///data/rahnuma.db") from exc
        if url.drivername not in SUPPORTED_DATABASE_DRIVERS:
            raise ValueError(
                f"driver {url.drivername!r} is not supported; use one of {', '.join(SUPPORTED_DATABASE_DRIVERS)}"
            )
        return value

    @field_validator("coordinators", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.lstrip("-").isdigit() for part in parts):
                raise ValueError("expected comma-separated Telegram user ids, e.g. 12345,67890")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("timezone_name")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; example: Asia/Karachi") from exc
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _daily_span(cls, value: str) -> str:
        Span.parse(value)
        return value

    @field_validator("friday_quiet_hours")
    @classmethod
    def _optional_span(cls, value: str) -> str:
        if value.strip():
            Span.parse(value)
        return value.strip()

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("use one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value.upper()

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone_name)

    @property
    def quiet(self) -> QuietHours:
        friday = Span.parse(self.friday_quiet_hours) if self.friday_quiet_hours else None
        return QuietHours(night=Span.parse(self.quiet_hours), friday_prayer=friday)

    @property
    def working_hours(self) -> Span:
        return Span.parse(self.coordinator_hours)

    @property
    def rasa_executable(self) -> Path:
        return self.rasa_venv / "bin" / "rasa"

    def secrets(self) -> list[str]:
        """Every secret value set, for the log filter that keeps them out of every log line."""
        values = [self.telegram_bot_token, self.rasa_token, self.webhook_secret, self.research_salt]
        return [value.get_secret_value() for value in values if value is not None and value.get_secret_value()]


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's report into one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            message = str(error["msg"]).removeprefix("Value error, ")
            lines.append(f"{name}: {message}" if error["loc"] else message)
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None
