"""Who may do what: coordinators (RAHNUMA_COORDINATORS plus grants in the database) and researchers.

Coordinators broadcast, see /stats and /unanswered, and answer hand-offs; researchers may read stats and export
(issue 11), never broadcast. A role check is a set lookup on a cache that `refresh()` reloads from the database
(the Telegram adapter does it every half minute and when an unknown person types a coordinator command), so the
hot path of an ordinary user's message never queries roles.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.core.types import UserView
from storage import roles as stored_roles
from storage.db import Database

COORDINATOR = "coordinator"
RESEARCHER = "researcher"
ROLES = stored_roles.ROLES


def telegram_id(user: UserView | None) -> int | None:
    """The Telegram user id behind a stored user, or None (terminal users have no Telegram id)."""
    if user is None or user.external_id is None or user.channel != "telegram":
        return None
    text = user.external_id
    return int(text) if text.lstrip("-").isdigit() else None


class Roles:
    def __init__(self, db: Database, *, coordinators: Iterable[int] = ()) -> None:
        self.db = db
        self.configured = frozenset(coordinators)  # from settings: always coordinators, cannot be removed
        self._granted: dict[str, frozenset[int]] = {role: frozenset() for role in ROLES}

    async def refresh(self) -> bool:
        """Reload the grants; True when anything changed."""
        async with self.db.read() as session:
            grants = await stored_roles.grants(session)
        fresh = {role: frozenset(g.telegram_user_id for g in grants if g.role == role) for role in ROLES}
        changed = fresh != self._granted
        self._granted = fresh
        return changed

    @property
    def coordinators(self) -> frozenset[int]:
        return self.configured | self._granted[COORDINATOR]

    @property
    def researchers(self) -> frozenset[int]:
        return self._granted[RESEARCHER] - self.coordinators

    @property
    def staff(self) -> frozenset[int]:
        """Everyone who may read stats: coordinators and researchers."""
        return self.coordinators | self._granted[RESEARCHER]

    def is_coordinator(self, telegram_user_id: int | None) -> bool:
        return telegram_user_id is not None and telegram_user_id in self.coordinators

    def may_read_stats(self, telegram_user_id: int | None) -> bool:
        """Coordinators and researchers: /stats, /unanswered, and the research export (issue 11)."""
        return telegram_user_id is not None and telegram_user_id in self.staff

    def may_broadcast(self, telegram_user_id: int | None) -> bool:
        return self.is_coordinator(telegram_user_id)
