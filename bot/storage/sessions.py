"""Conversation sessions: the turns of each conversation, in memory (default) or in a database
(``bot/storage/transcripts.py``: SQLite or PostgreSQL through SQLAlchemy); ``bot/storage/factory.py`` picks one
from the settings.

Stores are thread-safe; ``open(id)`` holds the conversation's lock and gives its current state, so the turns of
one conversation are serialised while different conversations run concurrently.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from typing import Any, ContextManager, Iterator, Protocol


@dataclasses.dataclass
class Turn:
    role: str  # "customer", "bot", "agent" (a human), or "system" (events such as a resume)
    text: str
    mode: str | None = None
    timestamp: float = dataclasses.field(default_factory=time.time)
    data: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Session:
    id: str
    turns: list[Turn] = dataclasses.field(default_factory=list)
    state: str = "bot"  # "bot", or "human" after a handoff
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False)

    def customer_turns(self) -> list[str]:
        return [t.text for t in self.turns if t.role == "customer"]

    def turns_since_resume(self) -> list[Turn]:
        """The turns after the last time a human handed the conversation back (all turns if never)."""
        for i in range(len(self.turns) - 1, -1, -1):
            if self.turns[i].role == "system" and self.turns[i].mode == "resume":
                return self.turns[i + 1:]
        return list(self.turns)


class SessionStore(Protocol):
    def get(self, session_id: str | None) -> Session: ...

    def open(self, session_id: str | None) -> ContextManager[Session]: ...

    def exists(self, session_id: str) -> bool: ...

    def append(self, session: Session, turn: Turn) -> None: ...

    def set_state(self, session: Session, state: str) -> None: ...

    def update_turn(self, session: Session, index: int, data: dict[str, Any]) -> None: ...

    def reset(self, session_id: str) -> None: ...


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

    @contextlib.contextmanager
    def open(self, session_id: str | None) -> Iterator[Session]:
        session = self.get(session_id)
        with session.lock:
            yield session

    def exists(self, session_id: str) -> bool:
        with self._lock:
            return session_id in self._sessions

    def append(self, session: Session, turn: Turn) -> None:
        session.turns.append(turn)

    def set_state(self, session: Session, state: str) -> None:
        session.state = state

    def update_turn(self, session: Session, index: int, data: dict[str, Any]) -> None:
        """Merge ``data`` into the data of turn ``index`` (e.g. feedback on a reply)."""
        session.turns[index].data.update(data)

    def reset(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)
