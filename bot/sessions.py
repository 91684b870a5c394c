"""Conversation sessions: the turns of each conversation, in memory (thread-safe)."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any


@dataclasses.dataclass
class Turn:
    role: str  # "customer", "bot" or "agent"
    text: str
    mode: str | None = None
    timestamp: float = dataclasses.field(default_factory=time.time)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Session:
    id: str
    turns: list[Turn] = dataclasses.field(default_factory=list)
    state: str = "bot"  # "bot" or "human" after a handoff
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)


class InMemorySessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def get(self, session_id: str | None) -> Session:
        with self._lock:
            sid = session_id or uuid.uuid4().hex
            if sid not in self._sessions:
                self._sessions[sid] = Session(id=sid)
            return self._sessions[sid]

    def reset(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
