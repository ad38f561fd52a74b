"""The slash commands Rahnuma knows, who they are for, and whether they touch personal data.

The Telegram wiring registers each with its filters and builds the command menus from this list (descriptions in
content/ui.yml as `command_<name>`), so a command exists in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# "staff": coordinators and researchers (read-only: stats); "coordinator": coordinators only.
Audience = Literal["everyone", "coordinator", "staff"]


@dataclass(frozen=True)
class Command:
    name: str
    # Shows or changes the sender's own data: in a group it only answers "let's talk in private".
    personal: bool = True
    menu: bool = True
    audience: Audience = "everyone"


COMMANDS: tuple[Command, ...] = (
    Command("start"),
    Command("help", personal=False),
    Command("language"),
    Command("progress"),
    Command("profile"),
    Command("cancel", menu=False),
    Command("nudges"),
    Command("stop"),
    Command("resume"),
    Command("privacy"),
    Command("delete_me"),
    # ---- peer support (issue 12) ----
    Command("buddy"),
    Command("b", menu=False),  # /b <message>: to the buddy, through Rahnuma
    Command("circle"),
    # ---- coordinators (issue 10) ----
    Command("human"),
    Command("broadcast", audience="coordinator"),
    Command("broadcasts", audience="coordinator"),
    Command("cohort", audience="coordinator"),
    Command("stats", audience="staff"),
    Command("unanswered", audience="staff"),
    Command("export", audience="staff"),  # a zip document: bot/handlers/export.py
    Command("canned", audience="coordinator", menu=False),  # in the coordinators' group, as a reply to a hand-off
)
BY_NAME = {command.name: command for command in COMMANDS}


def user_commands() -> list[Command]:
    return [command for command in COMMANDS if command.audience == "everyone"]


def coordinator_commands() -> list[Command]:
    """Commands only coordinators (and, for "staff", researchers) may use."""
    return [command for command in COMMANDS if command.audience != "everyone"]
