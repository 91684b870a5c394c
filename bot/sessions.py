"""Conversation sessions: the turns of each conversation, in memory (default) or in SQLite.

Both stores are thread-safe and hand out one ``Session`` object per id, whose lock serialises the turns of
one conversation while different conversations run concurrently.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol


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


class SQLiteSessions(InMemorySessions):
    """Turns persisted in SQLite (WAL); sessions survive restarts and are shared by processes on one host."""

    _SCHEMA = """
    CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, state TEXT NOT NULL DEFAULT 'bot');
    CREATE TABLE IF NOT EXISTS turns (session_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL,
        text TEXT NOT NULL, mode TEXT, ts REAL NOT NULL, data TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (session_id, seq));
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db_lock = threading.Lock()
        with self._db_lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(self._SCHEMA)

    def get(self, session_id: str | None) -> Session:
        with self._lock:
            sid = session_id or uuid.uuid4().hex
            if sid in self._sessions:
                return self._sessions[sid]
            with self._db_lock:
                row = self._db.execute("SELECT state FROM sessions WHERE id = ?", (sid,)).fetchone()
                if row is None:
                    self._db.execute("INSERT INTO sessions (id) VALUES (?)", (sid,))
                rows = self._db.execute("SELECT role, text, mode, ts, data FROM turns WHERE session_id = ? "
                                        "ORDER BY seq", (sid,)).fetchall()
            session = Session(id=sid, state=row[0] if row else "bot",
                              turns=[Turn(r, t, m, ts, json.loads(d)) for r, t, m, ts, d in rows])
            self._sessions[sid] = session
            return session

    def append(self, session: Session, turn: Turn) -> None:
        with self._db_lock:
            self._db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (session.id, len(session.turns), turn.role, turn.text, turn.mode, turn.timestamp,
                              json.dumps(turn.data, default=str)))
        session.turns.append(turn)

    def set_state(self, session: Session, state: str) -> None:
        with self._db_lock:
            self._db.execute("UPDATE sessions SET state = ? WHERE id = ?", (state, session.id))
        session.state = state

    def update_turn(self, session: Session, index: int, data: dict[str, Any]) -> None:
        merged = {**session.turns[index].data, **data}
        with self._db_lock:
            self._db.execute("UPDATE turns SET data = ? WHERE session_id = ? AND seq = ?",
                             (json.dumps(merged, default=str), session.id, index))
        session.turns[index].data = merged

    def reset(self, session_id: str) -> None:
        with self._db_lock:
            self._db.execute("DELETE FROM turns WHERE session_id = ?", (session_id,))
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        super().reset(session_id)


def make_sessions(settings: Any) -> SessionStore:
    s = settings.sessions
    if s.backend == "sqlite":
        from bot.config import default_data_dir

        return SQLiteSessions(s.path or default_data_dir() / "sessions.sqlite3")
    return InMemorySessions()
