"""The session store the settings ask for: ``[sessions] backend`` = memory, sqlite or database."""

from __future__ import annotations

from typing import Any

from bot.storage.sessions import InMemorySessions, SessionStore


def make_sessions(settings: Any) -> SessionStore:
    s = settings.sessions
    if s.backend == "memory":
        return InMemorySessions()
    from bot.storage.transcripts import DatabaseSessions, database_url  # SQLAlchemy: only when asked for

    if s.backend == "database":
        return DatabaseSessions(database_url(s.url))  # type: ignore[arg-type]
    from knowledge.settings import default_data_dir

    return DatabaseSessions(database_url(s.path or default_data_dir() / "transcripts.sqlite3"))
