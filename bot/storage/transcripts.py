"""Conversations in a database, through SQLAlchemy: SQLite (WAL) by default, PostgreSQL (or any SQLAlchemy URL)
for several workers or machines.

The database is the only source of truth: every ``open()`` / ``get()`` reads the conversation's state, so handoff
state set by one worker is seen by the next request on another. Its turns are read again only when the database
says they changed (their number, or the conversation's ``updated_at``, which every write sets, differs from what
this process last wrote or read); otherwise the process's copy serves, so a turn costs the same at the fiftieth
message as at the first. Turns are numbered per conversation (``seq``, unique with the conversation id); an append
locks its conversation first, so two processes appending to one conversation take turns, and a number taken
from an out-of-date copy fails on the unique index and is retried with the database's. Within a process, a lock
per conversation orders its turns, as for the in-memory store.

Each turn keeps what analytics need in columns (role, text, mode, time, latency, confidence, sentiment,
escalation reason, feedback rating) and the rest (sources, the escalation event, feedback comment) as JSON.
Unanswered questions have their own table. Text is stored as the engine hands it over: with personal data
already masked (``[privacy]``).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from bot.storage.sessions import Session, Turn
from knowledge.runtime.cache import RecentCache

SCHEMA_VERSION = 1
KNOWN_CONVERSATIONS = 2048  # recent conversations whose turns a process keeps


def _tables(metadata: Any) -> dict[str, Any]:
    from sqlalchemy import Column, Float, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

    conversations = Table(
        "conversations", metadata,
        Column("id", String(128), primary_key=True),
        Column("state", String(16), nullable=False, default="bot"),
        Column("created_at", Float, nullable=False),
        Column("updated_at", Float, nullable=False),
    )
    turns = Table(
        "turns", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("conversation_id", String(128), ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        Column("seq", Integer, nullable=False),
        Column("role", String(16), nullable=False),
        Column("text", Text, nullable=False),
        Column("mode", String(16)),
        Column("ts", Float, nullable=False),
        Column("latency_ms", Float),
        Column("confidence", Float),
        Column("sentiment", String(16)),
        Column("escalation_reason", String(64)),
        Column("feedback", String(8)),
        Column("data", Text, nullable=False, default="{}"),
        UniqueConstraint("conversation_id", "seq", name="uq_turn_seq"),
        Index("ix_turns_ts", "ts"),
    )
    unanswered = Table(
        "unanswered", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", Float, nullable=False),
        Column("conversation_id", String(128)),
        Column("question", Text, nullable=False),
        Column("best_entry", String(256)),
        Column("best_score", Float),
        Index("ix_unanswered_ts", "ts"),
    )
    return {"conversations": conversations, "turns": turns, "unanswered": unanswered}


def database_url(path_or_url: str | Path) -> str:
    """A SQLAlchemy URL; a plain path means a SQLite file."""
    text = str(path_or_url)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class DatabaseSessions:
    """A ``SessionStore`` on any SQLAlchemy database."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import MetaData, create_engine, event

        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # Enough pooled connections for the HTTP API's threads (40 by default): a connection made and dropped
        # per statement costs more than the statement.
        kwargs: dict[str, Any] = {"pool_size": 20, "max_overflow": 30}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:  # a server may drop idle connections
            kwargs["pool_pre_ping"] = True
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        self.metadata = MetaData()
        self.t = _tables(self.metadata)
        self.metadata.create_all(self.engine)
        self._sql = _statements(self.t)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # conversation id -> (its updated_at, its turns) as this process last wrote or read them
        self._known: RecentCache[str, tuple[float, list[Turn]]] = RecentCache(KNOWN_CONVERSATIONS)
        # SQLite takes one writer at a time, and a writer that finds the database locked sleeps in its busy
        # handler (1, 2, 5, ... up to 100 ms a nap) whether or not the lock is freed meanwhile: under the HTTP
        # API's concurrent turns those naps made the slowest requests. This process's writers queue on a lock
        # instead; the busy handler is left to writers in other processes.
        self._write_lock: Any = threading.Lock() if self.is_sqlite else contextlib.nullcontext()

    # --- SessionStore -------------------------------------------------------------------------------------------
    def get(self, session_id: str | None) -> Session:
        """The conversation as stored now (created if new)."""
        sid = session_id or uuid.uuid4().hex
        return self._load_or_create(sid, self._lock(sid), known=session_id is not None)

    @contextlib.contextmanager
    def open(self, session_id: str | None) -> Iterator[Session]:
        sid = session_id or uuid.uuid4().hex
        lock = self._lock(sid)
        with lock:
            yield self._load_or_create(sid, lock, known=session_id is not None)

    def exists(self, session_id: str) -> bool:
        from sqlalchemy import select

        c = self.t["conversations"]
        with self.engine.connect() as conn:
            return conn.execute(select(c.c.id).where(c.c.id == session_id)).first() is not None

    def append(self, session: Session, turn: Turn) -> None:
        from sqlalchemy.exc import IntegrityError

        row = _columns(turn)
        for attempt in range(5):
            try:
                with self._writing() as conn:
                    # Touching the conversation first locks it (its row in PostgreSQL, the database in SQLite)
                    # until this turn is in: other processes' appends to it wait, then see this turn.
                    conn.execute(self._sql["touch"], {"cid": session.id, "at": turn.timestamp})
                    # The next number is the session's length, unless another process wrote since it was read
                    # (then the insert fails on the unique number, and the retry asks the database).
                    seq = len(session.turns) if attempt == 0 else \
                        conn.execute(self._sql["next_seq"], {"cid": session.id}).scalar_one()
                    conn.execute(self._sql["insert_turn"], {"conversation_id": session.id, "seq": seq, **row})
                break
            except IntegrityError:  # another process took this number: take the next
                if attempt == 4:
                    raise
        session.turns.append(turn)
        self._remember(session.id, turn.timestamp, session.turns)

    def set_state(self, session: Session, state: str) -> None:
        from sqlalchemy import update

        c = self.t["conversations"]
        now = time.time()
        with self._writing() as conn:
            conn.execute(update(c).where(c.c.id == session.id).values(state=state, updated_at=now))
        session.state = state
        self._remember(session.id, now, session.turns)

    def update_turn(self, session: Session, index: int, data: dict[str, Any]) -> None:
        from sqlalchemy import update

        old = session.turns[index]  # replaced, not changed: other sessions and this process's copy share it
        turn = Turn(old.role, old.text, old.mode, old.timestamp, {**old.data, **data})
        t = self.t["turns"]
        now = time.time()
        with self._writing() as conn:
            conn.execute(update(t).where(t.c.conversation_id == session.id, t.c.seq == index)
                         .values(**_columns(turn)))
            conn.execute(self._sql["touch"], {"cid": session.id, "at": now})  # others re-read
        session.turns[index] = turn
        self._remember(session.id, now, session.turns)

    def reset(self, session_id: str) -> None:
        from sqlalchemy import delete

        with self._writing() as conn:
            conn.execute(delete(self.t["turns"]).where(self.t["turns"].c.conversation_id == session_id))
            conn.execute(delete(self.t["conversations"]).where(self.t["conversations"].c.id == session_id))
        self._forget(session_id)

    def log_unanswered(self, session_id: str, question: str, best_entry: str | None, best_score: float | None,
                       ts: float | None = None) -> None:
        """Record a question the bot could not answer (``ts``: when, default now)."""
        with self._writing() as conn:
            conn.execute(self.t["unanswered"].insert().values(ts=time.time() if ts is None else ts,
                                                              conversation_id=session_id,
                                                              question=question, best_entry=best_entry,
                                                              best_score=best_score))

    def close(self) -> None:
        self.engine.dispose()

    # --- internals ----------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _writing(self) -> Iterator[Any]:
        """A write transaction (committed at the end), one at a time in this process on SQLite."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    def _lock(self, sid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(sid, threading.Lock())

    def _load_or_create(self, sid: str, lock: threading.Lock, known: bool) -> Session:
        """One read for a conversation that exists; a new id is created first."""
        session = self._load(sid, lock) if known else None
        while session is None:
            self._ensure(sid)
            session = self._load(sid, lock)
        return session

    def _ensure(self, sid: str) -> None:
        from sqlalchemy.exc import IntegrityError

        if self.exists(sid):
            return
        now = time.time()
        try:
            with self._writing() as conn:
                conn.execute(self.t["conversations"].insert().values(id=sid, state="bot", created_at=now,
                                                                     updated_at=now))
        except IntegrityError:  # created by another process meanwhile
            pass

    def _load(self, sid: str, lock: threading.Lock) -> Session | None:
        """The stored conversation, None if there is none."""
        with self.engine.connect() as conn:
            row = conn.execute(self._sql["state"], {"cid": sid}).first()
            if row is None:
                self._forget(sid)
                return None
            state, updated_at, n = row
            known = self._known.get(sid)
            if known is not None and known[0] == updated_at and len(known[1]) == n:  # unchanged since
                turns = list(known[1])
            else:
                rows = conn.execute(self._sql["turns"], {"cid": sid}).all()
                turns = [Turn(role, text, mode, ts, json.loads(data)) for role, text, mode, ts, data in rows]
                self._remember(sid, updated_at, turns)
        return Session(id=sid, turns=turns, state=state, lock=lock)

    def _remember(self, sid: str, updated_at: float, turns: list[Turn]) -> None:
        self._known.put(sid, (updated_at, list(turns)))

    def _forget(self, sid: str) -> None:
        self._known.pop(sid)


def _statements(t: dict[str, Any]) -> dict[str, Any]:
    """The statements of every turn, built once: building SQLAlchemy expressions costs more than running them."""
    from sqlalchemy import bindparam, func, select, update

    turns, conversations = t["turns"], t["conversations"]
    cid = bindparam("cid")
    count = select(func.count()).where(turns.c.conversation_id == cid).scalar_subquery()
    return {
        "next_seq": select(func.coalesce(func.max(turns.c.seq) + 1, 0)).where(turns.c.conversation_id == cid),
        "insert_turn": turns.insert(),
        "touch": update(conversations).where(conversations.c.id == cid).values(updated_at=bindparam("at")),
        "state": select(conversations.c.state, conversations.c.updated_at, count).where(conversations.c.id == cid),
        "turns": select(turns.c.role, turns.c.text, turns.c.mode, turns.c.ts, turns.c.data)
        .where(turns.c.conversation_id == cid).order_by(turns.c.seq),
    }


def _columns(turn: Turn) -> dict[str, Any]:
    d = turn.data
    escalation = d.get("escalation") or {}
    return {"role": turn.role, "text": turn.text, "mode": turn.mode, "ts": turn.timestamp,
            "latency_ms": d.get("latency_ms"), "confidence": d.get("confidence"),
            "sentiment": (d.get("sentiment") or {}).get("label"), "escalation_reason": escalation.get("reason"),
            "feedback": (d.get("feedback") or {}).get("rating"), "data": json.dumps(d, default=str)}
