"""Pseudonyms: HMAC-SHA256 of internal ids under RAHNUMA_RESEARCH_SALT.

The same salt gives the same pseudonym in every export (so exports join); another salt gives unrelated ones (so a
leaked export cannot be linked to the next). Without the salt nobody can go back from a pseudonym to an id, and the
manifest names the key only by its id: the first 8 hex digits of SHA-256 of the salt.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from functools import lru_cache, partial

SALT_VARIABLE = "RAHNUMA_RESEARCH_SALT"
MIN_SALT_CHARS = 32
PSEUDONYM_HEX = 16  # 64 bits: no collision to speak of below billions of ids


class SaltError(ValueError):
    """The research salt is missing or too weak; the message names the variable."""


def check_salt(salt: str | None) -> str:
    if salt is None or not salt.strip():
        raise SaltError(
            f"{SALT_VARIABLE} is not set: exports need it to pseudonymise ids. Set it to {MIN_SALT_CHARS} or more "
            'random characters, e.g. `python -c "import secrets; print(secrets.token_urlsafe(48))"` (.env.example).'
        )
    if len(salt) < MIN_SALT_CHARS:
        raise SaltError(
            f"{SALT_VARIABLE} is too short ({len(salt)} characters): use {MIN_SALT_CHARS} or more random characters."
        )
    return salt


def key_id(salt: str) -> str:
    """Names the key in a manifest without revealing it."""
    return hashlib.sha256(salt.encode()).hexdigest()[:8]


class Pseudonyms:
    """`user(42)` → `'3f9c…'`; each kind of id (user, outbox row...) has its own namespace."""

    def __init__(self, salt: str | None) -> None:
        self._key = check_salt(salt).encode()
        self.key_id = key_id(self._key.decode())
        self._users: dict[int, str] = {}
        # A nudge's events (planned, sent, opened, answered) come within days of each other in the time-ordered log:
        # a bounded cache spares most of their HMACs without growing with the log.
        self.outbox = lru_cache(maxsize=1 << 16)(partial(self.of, "outbox"))

    def of(self, kind: str, value: int) -> str:
        # hmac.digest: the same HMAC in one C call, a fifth of the cost of hmac.new(...).hexdigest()
        return hmac.digest(self._key, f"{kind}:{value}".encode(), "sha256").hex()[:PSEUDONYM_HEX]

    def user(self, user_id: int | None) -> str | None:
        """Cached: an export asks for the same user once per event."""
        if user_id is None:
            return None
        found = self._users.get(user_id)
        if found is None:
            found = self._users[user_id] = self.of("user", user_id)
        return found

    def users(self, user_ids: Iterable[int | None]) -> list[str | None]:
        """`user` for a column of ids, with the cache read inline (a million calls fewer for the event log)."""
        known = self._users
        return [known[u] if u in known else self.user(u) for u in user_ids]
