"""/export: only researchers and coordinators reach the handler; the zip holds the whole export and its manifest."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zipfile
from pathlib import Path

from telegram import Chat, Message, MessageEntity, Update, User

from bot.app import build_application
from bot.handlers.coordinators import export_for_staff
from bot.settings import load_settings
from content.library import Library
from research.share import make_zip
from storage import users as stored_users
from storage.db import Database
from tests.conftest import TEST_NOW

SALT = "test-salt-for-research-exports-0123456789"


def command_update(sender: int, text: str = "/export") -> Update:
    chat = Chat(id=sender, type=Chat.PRIVATE)
    user = User(id=sender, first_name="Someone", is_bot=False)
    message = Message(
        message_id=1, date=dt.datetime.now(dt.UTC), chat=chat, from_user=user, text=text,
        entities=[MessageEntity(MessageEntity.BOT_COMMAND, 0, len(text))],
    )  # fmt: skip
    return Update(update_id=1, message=message)


def test_only_staff_reach_the_export_handler() -> None:
    """A researcher's or coordinator's /export passes the handler's filters; anyone else's does not (they get the
    coordinators' polite refusal)."""
    settings = load_settings(TELEGRAM_BOT_TOKEN="123:abc")
    application = build_application(settings)
    handler = next(
        h for group in application.handlers.values() for h in group
        if getattr(h, "callback", None) is export_for_staff
    )  # fmt: skip
    assert application.bot_data.staff_filter is not None
    application.bot_data.staff_filter.add_user_ids([4242])  # what sync_role_filters does for a granted role
    assert handler.filters.check_update(command_update(4242))
    assert not handler.filters.check_update(command_update(5151))


async def test_the_zip_holds_the_export_and_says_how_big_it_is(
    committed_db: Database, database_url: str, library: Library, tmp_path: Path
) -> None:
    async with committed_db.write() as session:
        await stored_users.create_user(
            session, channel="telegram", external_id="5550001111", display_name="Hina Baig", now=TEST_NOW
        )
    shared = await asyncio.to_thread(make_zip, database_url, salt=SALT, folder=tmp_path, library=library, now=TEST_NOW)
    assert shared.path.name.startswith("rahnuma-export-20261127-0400-") and shared.fits()
    assert not shared.fits(limit=10)
    with zipfile.ZipFile(shared.path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("rahnuma-export/manifest.json"))
        everything = b"".join(archive.read(name) for name in names)
    assert {"rahnuma-export/users.csv", "rahnuma-export/datapackage.json", "rahnuma-export/events.csv"} <= names
    assert manifest["tables"]["users"]["rows"] == 1
    assert b"5550001111" not in everything and b"Hina" not in everything
