"""API keys and per-key rate limits of the HTTP API.

Keys come from ``[server] api_keys`` / ``admin_keys`` / ``agent_keys`` and from ``$SUPPORTBOT_API_KEYS`` /
``$SUPPORTBOT_ADMIN_KEYS`` / ``$SUPPORTBOT_AGENT_KEYS`` (comma-separated). A key is only ever compared in constant time and referred to by
its ``key_id`` (the first 8 hex digits of its SHA-256), in logs, metrics and rate-limit buckets alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import threading
import time
from typing import Literal, Sequence

from bot.errors import ConfigError


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]


def _from_env(name: str) -> list[str]:
    return [k.strip() for k in os.environ.get(name, "").split(",") if k.strip()]


Role = Literal["user", "agent", "admin"]
_RANK = {"user": 0, "agent": 1, "admin": 2}  # a key listed twice takes the higher role


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and role. ``user`` keys chat and read the conversations they started;
    ``agent`` keys (human agents' tools) also read any conversation, post agent messages and hand back;
    ``admin`` keys are user keys that may also change the knowledge base."""

    key_id: str
    role: Role = "user"

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def agent(self) -> bool:
        return self.role == "agent"

    def scoped(self, session_id: str) -> str:
        """The stored id of this key's conversation ``session_id``: ids are namespaced by key, so that no key can
        reach (or choose) another key's conversation."""
        return f"{self.key_id}:{session_id}"

    def unscoped(self, stored: str) -> str:
        """The id this key knows its conversation by."""
        prefix = f"{self.key_id}:"
        return stored[len(prefix):] if stored.startswith(prefix) else stored


class ApiKeys:
    def __init__(self, api_keys: Sequence[str], admin_keys: Sequence[str], agent_keys: Sequence[str] = ()) -> None:
        self._keys = [(k.encode("utf-8"), "user") for k in api_keys] + \
            [(k.encode("utf-8"), "admin") for k in admin_keys] + [(k.encode("utf-8"), "agent") for k in agent_keys]
        short = [key_id(k.decode()) for k, _ in self._keys if len(k) < 16]
        if short:
            raise ConfigError(f"API keys must be at least 16 characters (key id {', '.join(short)}); "
                              "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'")

    @classmethod
    def from_settings(cls, server: object) -> ApiKeys:
        return cls(list(getattr(server, "api_keys", [])) + _from_env("SUPPORTBOT_API_KEYS"),
                   list(getattr(server, "admin_keys", [])) + _from_env("SUPPORTBOT_ADMIN_KEYS"),
                   list(getattr(server, "agent_keys", [])) + _from_env("SUPPORTBOT_AGENT_KEYS"))

    def __bool__(self) -> bool:
        return bool(self._keys)

    def check(self, token: str) -> Principal | None:
        """The key's principal, or None; every key is compared (constant time, whichever matches)."""
        given = token.encode("utf-8")
        found: Principal | None = None
        for key, role in self._keys:
            if hmac.compare_digest(given, key) and (found is None or _RANK[role] > _RANK[found.role]):
                found = Principal(key_id(token), role)  # type: ignore[arg-type]
        return found


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, in bursts of up to ``per_minute``.

    In-process: with N workers, a key gets up to N times the rate (documented; a shared limiter would need a
    shared store)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """0.0 if the request may go ahead, else the seconds to wait before the next one will."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[who] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[who] = (tokens - 1.0, now)
            return 0.0
