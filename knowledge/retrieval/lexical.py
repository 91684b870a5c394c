"""BM25 over the same records as the vector store (bm25s), persisted beside the store.

The index is derived data: it is rebuilt from the store's records whenever the store's revision token (set
on every write) differs from the one it was built from, so several processes, or a Chroma server shared by
several machines, never search a stale index.

Scores are normalised per query to [0, 1]: a record's BM25 score divided by the sum, over the query's
terms, of the best score any record gets for that term. 1.0 means "matches every query term as well as
the best record for each term".
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from knowledge.retrieval.catalog import RecordCatalog
from knowledge.runtime.atomic import atomic_directory
from knowledge.store import ChromaStore, Record

FORMAT = 2  # of records.json; an index of another format is rebuilt


_stemmer: Any = None


def _stem() -> Any:
    global _stemmer
    if _stemmer is None:
        import Stemmer  # PyStemmer (Snowball): "refunds" and "refund" are one term

        _stemmer = Stemmer.Stemmer("english")
    return _stemmer


def _tokenize(texts: list[str], return_ids: bool = True) -> Any:
    import bm25s

    return bm25s.tokenize(texts, lower=True, stopwords="en", stemmer=_stem(), show_progress=False,
                          return_ids=return_ids)


class Bm25Index:
    """BM25 scores over the records of one store revision, with their catalog (persisted together)."""

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory  # None: in memory only
        self.revision: str | None = None
        self.catalog = RecordCatalog()
        self._bm25: Any = None
        self._vocab: dict[str, int] = {}
        self._term_max: np.ndarray = np.zeros(0, dtype=np.float32)
        self._lock = threading.Lock()

    # --- building --------------------------------------------------------------------------------------------
    def build(self, records: Iterable[Record], revision: str) -> None:
        import bm25s

        records = list(records)
        bm25 = bm25s.BM25()
        if records:
            tokens = _tokenize([r.text for r in records])
            bm25.index(tokens, show_progress=False)
            vocab = dict(tokens.vocab)
        else:
            vocab = {}
        with self._lock:
            self._bm25 = bm25 if records else None
            self._vocab = vocab
            self.catalog = RecordCatalog.from_records(records)
            self._term_max = self._compute_term_max()
            self.revision = revision
        if self.directory is not None:
            self._save()

    def _compute_term_max(self) -> np.ndarray:
        if self._bm25 is None:
            return np.zeros(0, dtype=np.float32)
        index = self._bm25.scores
        data, indptr = np.asarray(index["data"]), np.asarray(index["indptr"])
        out = np.zeros(len(indptr) - 1, dtype=np.float32)
        nonempty = indptr[1:] > indptr[:-1]
        out[nonempty] = np.maximum.reduceat(data, indptr[:-1][nonempty]) if data.size else 0.0
        return out

    def _save(self) -> None:
        assert self.directory is not None
        with atomic_directory(self.directory) as tmp:
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "index"), show_progress=False)
            meta = {"format": FORMAT, "revision": self.revision, **self.catalog.to_json(), "vocab": self._vocab}
            (tmp / "records.json").write_text(json.dumps(meta))

    def load(self) -> bool:
        """Load the persisted index; False if there is none (or it cannot be read)."""
        import bm25s

        if self.directory is None or not (self.directory / "records.json").is_file():
            return False
        try:
            meta = json.loads((self.directory / "records.json").read_text())
            if meta.get("format") != FORMAT:
                return False
            bm25 = bm25s.BM25.load(str(self.directory / "index"), show_progress=False) \
                if meta["ids"] else None
        except (OSError, ValueError, KeyError):
            return False
        with self._lock:
            self._bm25 = bm25
            self.catalog = RecordCatalog.from_json(meta)
            self._vocab = meta["vocab"]
            self.revision = meta["revision"]
            self._term_max = self._compute_term_max()
        return True

    # --- searching -------------------------------------------------------------------------------------------
    def search(self, query: str, n: int, filters: dict[str, Any] | None = None) -> list[tuple[Record, float]]:
        """(record stub, normalised score in [0, 1]) for the best ``n`` records with a score > 0."""
        with self._lock:
            bm25, vocab, term_max, catalog = self._bm25, self._vocab, self._term_max, self.catalog
        if bm25 is None:
            return []
        terms = _tokenize([query], return_ids=False)[0]
        term_ids = sorted({vocab[t] for t in terms if t in vocab})
        if not term_ids:
            return []
        best_possible = float(term_max[term_ids].sum())
        if best_possible <= 0:
            return []
        scores = bm25.get_scores([t for t in terms if t in vocab])
        mask = catalog.mask(filters)
        if mask is not None:
            scores = scores * mask
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top])]
        return [(catalog.stub_at(int(i)), min(1.0, float(scores[i]) / best_possible))
                for i in top if scores[i] > 0]


class LexicalRetriever:
    """The BM25 side of search: ``index(store).search(query, n, filters)`` gives the best ``n`` records with their
    normalised score (and ``index(store).catalog`` what dense search needs to know of each record).

    Owns the persisted index beside the store and keeps it fresh: rebuilt here after this process writes
    (``rebuild``), and reloaded or rebuilt when another process changed the store (its revision token is checked
    at most every ``check_seconds``).
    """

    def __init__(self, directory: Path | None, check_seconds: float = 1.0) -> None:
        self.directory = directory
        self.check_seconds = check_seconds
        self._index: Bm25Index | None = None
        self._checked = 0.0
        self._lock = threading.RLock()

    def rebuild(self, store: ChromaStore) -> None:
        """After a write: a new revision, and the index built from the store as it is now."""
        with self._lock:
            revision = store.bump_revision()
            index = self._index or Bm25Index(self.directory)
            index.build(store.iter_all(), revision)
            self._index = index
            self._checked = time.monotonic()

    def index(self, store: ChromaStore) -> Bm25Index:
        """The index, current with the store (within ``check_seconds`` for other processes' writes)."""
        with self._lock:
            now = time.monotonic()
            if self._index is not None and now - self._checked < self.check_seconds:
                return self._index
            revision = store.revision(refresh=self._index is not None)
            if self._index is None:
                self._index = Bm25Index(self.directory)
                self._index.load()
            if self._index.revision != revision:
                self._index.build(store.iter_all(), revision)
            self._checked = now
            return self._index
