"""The slash commands Rahnuma knows, who they are for, and whether they touch personal data.

The Telegram wiring registers each with its filters and builds the command menus from this list (descriptions in
content/ui.yml as `command_<name>`), so a command exists in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Audience = Literal["everyone", "coordinator"]


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
)
BY_NAME = {command.name: command for command in COMMANDS}


def user_commands() -> list[Command]:
    return [command for command in COMMANDS if command.audience == "everyone"]
