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
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from knowledge.store import Record

# Metadata kept per record for filtering without asking the store ("tags" is matched by containment).
FILTER_KEYS = ("category", "language", "kind", "entry_id", "source")
_KEPT = FILTER_KEYS + ("tags", "variants")  # what searches need of a record before fetching it
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
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory  # None: in memory only
        self.revision: str | None = None
        self.ids: list[str] = []
        self.entry_ids: list[str] = []
        self.filters: list[dict[str, Any]] = []
        self.position: dict[str, int] = {}
        self._bm25: Any = None
        self._vocab: dict[str, int] = {}
        self._term_max: np.ndarray = np.zeros(0, dtype=np.float32)
        self._lock = threading.Lock()

    # --- building --------------------------------------------------------------------------------------------
    def build(self, records: Iterable[Record], revision: str) -> None:
        import bm25s

        records = list(records)
        bm25 = bm25s.BM25()
        ids = [r.id for r in records]
        if records:
            tokens = _tokenize([r.text for r in records])
            bm25.index(tokens, show_progress=False)
            vocab = dict(tokens.vocab)
        else:
            vocab = {}
        with self._lock:
            self._bm25 = bm25 if records else None
            self._vocab = vocab
            self.ids = ids
            self.entry_ids = [r.entry_id for r in records]
            self.filters = [{k: r.metadata.get(k) for k in _KEPT if r.metadata.get(k) is not None}
                            for r in records]
            self.position = {rid: i for i, rid in enumerate(ids)}
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
        self.directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".bm25.", dir=self.directory.parent))
        try:
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "index"), show_progress=False)
            meta = {"format": FORMAT, "revision": self.revision, "ids": self.ids, "entry_ids": self.entry_ids,
                    "filters": self.filters, "vocab": self._vocab}
            (tmp / "records.json").write_text(json.dumps(meta))
            old = self.directory.with_name(self.directory.name + ".old")
            if self.directory.exists():
                os.replace(self.directory, old)
            os.replace(tmp, self.directory)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

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
            self.ids, self.entry_ids, self.filters = meta["ids"], meta["entry_ids"], meta["filters"]
            self.position = {rid: i for i, rid in enumerate(self.ids)}
            self._vocab = meta["vocab"]
            self.revision = meta["revision"]
            self._term_max = self._compute_term_max()
        return True

    # --- searching -------------------------------------------------------------------------------------------
    def stub(self, record_id: str) -> Record | None:
        """The record as far as this index knows it (no text): entry id and filterable metadata, marked
        ``stub``; None for a record it does not have (added since it was built)."""
        i = self.position.get(record_id)
        if i is None:
            return None
        return Record(self.ids[i], self.entry_ids[i], "", {**self.filters[i], "stub": True})

    def _mask(self, filters: dict[str, Any] | None) -> np.ndarray | None:
        if not filters:
            return None
        mask = np.ones(len(self.ids), dtype=np.float32)
        for i, meta in enumerate(self.filters):
            for key, want in filters.items():
                if want is None:
                    continue
                have = meta.get(key)
                if key == "tags":
                    wanted = [want] if isinstance(want, str) else list(want)
                    if not have or not all(t in have for t in wanted):
                        mask[i] = 0
                elif isinstance(want, (list, tuple, set)):
                    if have not in want:
                        mask[i] = 0
                elif have != want:
                    mask[i] = 0
        return mask

    def search(self, query: str, n: int, filters: dict[str, Any] | None = None) -> list[tuple[int, float]]:
        """(record position, normalised score in [0, 1]) for the best ``n`` records with a score > 0."""
        with self._lock:
            bm25, vocab, term_max = self._bm25, self._vocab, self._term_max
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
        mask = self._mask(filters)
        if mask is not None:
            scores = scores * mask
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top])]
        return [(int(i), min(1.0, float(scores[i]) / best_possible)) for i in top if scores[i] > 0]
