"""Settings fail fast with the variable's name; blanks mean "not set"."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)  # no .env from the developer's checkout
    for name in (
        "TELEGRAM_BOT_TOKEN",
        "DATABASE_URL",
        "RASA_URL",
        "RAHNUMA_COORDINATORS",
        "RAHNUMA_TIMEZONE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_defaults_match_the_contract() -> None:
    settings = load_settings()
    assert settings.telegram_bot_token is None
    assert str(settings.telegram_api_url) == "https://api.telegram.org/bot"
    assert settings.database_url == "sqlite+aiosqlite:///data/rahnuma.db"
    assert str(settings.rasa_url).rstrip("/") == "http://127.0.0.1:5005"
    assert settings.timezone_name == "Asia/Karachi"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://root@localhost/x"),
        ("RASA_URL", "localhost:5005"),
        ("RAHNUMA_COORDINATORS", "12,abc"),
        ("RAHNUMA_TIMEZONE", "Asia/Lahore_Not"),
    ],
)
def test_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_coordinators_are_comma_separated_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAHNUMA_COORDINATORS", " 111, 222 ,")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "  ")
    settings = load_settings()
    assert settings.coordinators == frozenset({111, 222})
    assert settings.telegram_bot_token is None
