"""An undo journal that makes each write to the store all-or-nothing, even under ``kill -9`` or power loss.

Chroma commits each call on its own, and an ingest is many calls (batches of upserts, metadata updates,
deletions, the revision token, the BM25 index). So before the first of them, :meth:`WriteJournal.transaction`
saves what is needed to undo them all: the ids the write will create, and the previous text, metadata and vector
of every record it will change or delete (for a reindex, the whole collection and its embedding model). The
journal is written to a temporary file, flushed to disk and renamed into place; when the write has finished,
derived indexes included, it is deleted: that deletion is the commit.

A write that fails with an error is undone at once. A journal found with no writer holding the lock belongs to a
write that died: :meth:`recover` undoes what that
write did (deletes the records it created, puts back the ones it changed or deleted, bumps the revision so the
BM25 index is rebuilt) and deletes the journal. Undoing is idempotent, so dying while recovering is recovered by
the next open. Writers and recovery take an exclusive ``flock`` on a lock file beside the journal: another process
never undoes a write that is still running. (With a Chroma server shared by several machines, the lock and the
journal are per machine: run ingests for one collection from one machine.)
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from knowledge.store import ChromaStore, Record

FORMAT = 1


class WriteJournal:
    """``with journal.transaction(store, touched=ids, created=ids): ...writes...``; ``recover(store)`` on open."""

    def __init__(self, directory: Path, collection: str) -> None:
        self.path = Path(directory) / f"journal-{collection}.npz"
        self.lock_path = Path(directory) / f".write-{collection}.lock"
        self._thread_lock = threading.RLock()  # flock is per open file: threads of one process queue here

    # --- writing -------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self, store: ChromaStore, touched: Sequence[str] = (), created: Sequence[str] = (),
                    whole_collection: bool = False) -> Iterator[None]:
        """Journal the undo of a write, run it, commit. ``touched``: ids of existing records the write changes or
        deletes; ``created``: ids it adds; ``whole_collection``: the write replaces the collection (reindex)."""
        with self._locked(blocking=True):
            self._recover_locked(store)
            if whole_collection:
                previous, vectors = _all_with_vectors(store)
            else:
                previous, vectors = _with_vectors(store, list(dict.fromkeys(touched)))
            kept = {r.id for r in previous}
            self._save({"format": FORMAT, "collection": store.name,
                        "reset_model": store.embedding_model if whole_collection else None,
                        "created": [i for i in dict.fromkeys(created) if i not in kept],
                        "restore": [{"id": r.id, "text": r.text, "metadata": r.metadata} for r in previous]},
                       vectors)
            try:
                yield
            except BaseException:  # a failed write (a Chroma error, Ctrl-C) is undone now, if it can be
                with contextlib.suppress(Exception):
                    self._recover_locked(store)
                raise
            self._commit()

    def _save(self, meta: dict[str, Any], vectors: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, meta=np.frombuffer(json.dumps(meta, ensure_ascii=False).encode("utf-8"), dtype=np.uint8),
                 vectors=vectors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buffer.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_directory(self.path.parent)

    def _commit(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        _fsync_directory(self.path.parent)

    # --- recovering ----------------------------------------------------------------------------------------
    def pending(self) -> bool:
        return self.path.is_file()

    def recover(self, store: ChromaStore) -> bool:
        """Undo a write that died (its journal is here and no writer holds the lock); True if one was undone.
        A write still running in another process is left alone."""
        if not self.pending():
            return False
        with self._locked(blocking=False) as locked:
            return locked and self._recover_locked(store)

    def _recover_locked(self, store: ChromaStore) -> bool:
        if not self.pending():
            return False
        try:
            with np.load(self.path) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                vectors = np.asarray(data["vectors"])
        except (OSError, ValueError, KeyError) as e:
            # written with fsync and renamed into place, so this is damage from outside: keep it for a person
            from knowledge.errors import KnowledgeBaseError

            raise KnowledgeBaseError(f"{self.path}: an unfinished write's journal cannot be read ({e}); the "
                                     f"knowledge base may hold part of that write: re-run the ingest, then "
                                     f"delete this file") from None
        if meta.get("reset_model"):
            store.reset(meta["reset_model"])
        elif meta["created"]:
            store.delete(meta["created"])
        restore = [Record(id=r["id"], entry_id=str(r["metadata"].get("entry_id", "")), text=r["text"],
                          metadata=r["metadata"]) for r in meta["restore"]]
        if restore:  # deleted first: Chroma would merge the metadata the write gave them with the old
            store.delete([r.id for r in restore])
            store.upsert(restore, vectors)
        store.bump_revision()
        self._commit()
        return True

    @contextlib.contextmanager
    def _locked(self, blocking: bool) -> Iterator[bool]:
        if not self._thread_lock.acquire(blocking=blocking):
            yield False
            return
        try:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.lock_path, "a+b") as f:
                try:
                    fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    yield False
                    return
                try:
                    yield True
                finally:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()


def _with_vectors(store: ChromaStore, ids: list[str], batch: int = 2000) -> tuple[list[Record], np.ndarray]:
    records: list[Record] = []
    vectors: list[np.ndarray] = []
    for start in range(0, len(ids), batch):
        got, vecs = store.get_with_vectors(ids[start:start + batch])
        records += got
        vectors.append(vecs)
    return records, _stack(vectors)


def _all_with_vectors(store: ChromaStore) -> tuple[list[Record], np.ndarray]:
    records: list[Record] = []
    vectors: list[np.ndarray] = []
    for got, vecs in store.iter_with_vectors():
        records += got
        vectors.append(vecs)
    return records, _stack(vectors)


def _stack(parts: list[np.ndarray]) -> np.ndarray:
    parts = [p for p in parts if len(p)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 0), dtype=np.float32)


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
