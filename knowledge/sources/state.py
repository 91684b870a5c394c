"""What each source's last sync read, in a SQLite file beside the store (``sources.sqlite3``): per page or file its
validators (ETag, Last-Modified), the hash of what was read from it, its links (a ``304 Not Modified`` page is still
crawled through), the entries it gave, and when it was fetched and last changed; and the sync runs, so that any
process (a CLI, an HTTP worker) can report the last one. A row is written only after the store write it describes
has committed: an interrupted sync leaves rows that are at worst older than the store, which the next sync
re-reads."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    source TEXT NOT NULL, url TEXT NOT NULL, etag TEXT, last_modified TEXT, hash TEXT,
    links TEXT NOT NULL DEFAULT '[]', entries TEXT NOT NULL DEFAULT '[]',
    fetched_at REAL NOT NULL, changed_at REAL NOT NULL, PRIMARY KEY (source, url));
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL, pid INTEGER,
    status TEXT NOT NULL, sources TEXT NOT NULL DEFAULT '[]', report TEXT, error TEXT);
"""


@dataclasses.dataclass
class PageState:
    url: str
    etag: str | None = None
    last_modified: str | None = None
    hash: str | None = None
    links: list[str] = dataclasses.field(default_factory=list)
    entries: list[str] = dataclasses.field(default_factory=list)
    fetched_at: float = 0.0
    changed_at: float = 0.0


class SyncState:
    """``pages(source)``, ``put(source, pages)``, ``delete(source, urls)``; ``start_run`` / ``finish_run`` /
    ``last_run``. One short transaction per call (WAL), so readers in other processes never wait long."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            with db:
                yield db
        finally:
            db.close()

    def pages(self, source: str) -> dict[str, PageState]:
        with self._db() as db:
            rows = db.execute("SELECT url, etag, last_modified, hash, links, entries, fetched_at, changed_at "
                              "FROM pages WHERE source = ?", (source,)).fetchall()
        return {r[0]: PageState(r[0], r[1], r[2], r[3], json.loads(r[4]), json.loads(r[5]), r[6], r[7])
                for r in rows}

    def put(self, source: str, pages: list[PageState]) -> None:
        if not pages:
            return
        with self._db() as db:
            db.executemany(
                "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(source, p.url, p.etag, p.last_modified, p.hash, json.dumps(p.links), json.dumps(p.entries),
                  p.fetched_at, p.changed_at) for p in pages])

    def delete(self, source: str, urls: list[str]) -> None:
        if urls:
            with self._db() as db:
                db.executemany("DELETE FROM pages WHERE source = ? AND url = ?", [(source, u) for u in urls])

    # --- runs -----------------------------------------------------------------------------------------------
    def start_run(self, sources: list[str], pid: int) -> int:
        with self._db() as db:
            cur = db.execute("INSERT INTO runs (started_at, pid, status, sources) VALUES (?, ?, 'running', ?)",
                             (time.time(), pid, json.dumps(sources)))
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, report: dict[str, Any] | None, error: str | None = None) -> None:
        with self._db() as db:
            db.execute("UPDATE runs SET finished_at = ?, status = ?, report = ?, error = ? WHERE id = ?",
                       (time.time(), "failed" if error else "finished", json.dumps(report) if report else None,
                        error, run_id))

    def last_run(self) -> dict[str, Any] | None:
        with self._db() as db:
            row = db.execute("SELECT id, started_at, finished_at, pid, status, sources, report, error FROM runs "
                             "ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return {"id": row[0], "started_at": row[1], "finished_at": row[2], "pid": row[3], "status": row[4],
                "sources": json.loads(row[5]), "report": json.loads(row[6]) if row[6] else None, "error": row[7]}
