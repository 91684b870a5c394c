"""Sentence embeddings for the knowledge base (the bundled MiniLM by default), loaded lazily and shared."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from knowledge.runtime.batching import MicroBatcher
from knowledge.runtime.cache import RecentCache
from knowledge.runtime.inference import path_of
from knowledge.runtime.models import identity, load_sentence_transformer, transformer_attribute, use_bf16


class Embedder:
    """Turns texts into L2-normalised float32 vectors. The model loads on first use (or ``warm_up()``)."""

    def __init__(self, model_ref: str = "bundled:embedder", cache_dir: Path | None = None,
                 batch_size: int = 32, dtype: str = "auto", max_recent: int = 2048, backend: str = "auto") -> None:
        from knowledge.settings import default_cache_dir

        self.model_ref = model_ref
        self.dtype = dtype
        self.backend = backend  # the inference path (knowledge.runtime.inference); dtype applies to torch's
        self.cache_dir = cache_dir or default_cache_dir()
        self.batch_size = batch_size
        self._model: Any = None
        self._bf16 = False
        self._lock = threading.Lock()
        # Recent query vectors: a customer message is embedded once per turn although retrieval, the escalation
        # policy and the grounding check all use it.
        self._recent: RecentCache[str, np.ndarray] = RecentCache(max_recent)
        self._pending: dict[str, Future[np.ndarray]] = {}  # prefetched, not done yet
        self._recent_lock = threading.Lock()  # orders a prefetch and the queries that wait for it
        # Concurrent single queries (the HTTP API's threads) are embedded together, in one batch.
        # (Each vector is copied out of its batch: a cached row must not keep the whole batch array alive.)
        self._queries = MicroBatcher(lambda texts: [_shared(v.copy()) for v in self.embed(texts)], max_batch=64,
                                     name="supportbot-embed")

    def warm_up(self) -> "Embedder":
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = load_sentence_transformer(self.model_ref, self.cache_dir, self.backend)
                    self._bf16 = self.path == "torch" and use_bf16(self.dtype)
        return self

    @property
    def path(self) -> str:
        """The inference path the model runs on: torch, onnx or onnx-int8 (loads the model)."""
        self.warm_up()
        module = self._model[0]
        return path_of(getattr(module, transformer_attribute(module)))

    @property
    def identity(self) -> str:
        """What a knowledge base records as its vectors' model (the reference; a shipped adapter's version too)."""
        return identity(self.model_ref)

    @property
    def dimension(self) -> int:
        self.warm_up()
        getter = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        import torch

        # bf16 autocast: ~2.4x the fp32 throughput on CPUs with native bf16, same BANKING77 accuracy
        # (bench/results/embedding_dtype.json); the shared fp32 weights are left untouched.
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self._bf16):
            vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=show_progress)
        return np.asarray(vectors, dtype=np.float32)

    def prefetch(self, text: str) -> None:
        """Start embedding a query on the batching thread while the caller does something else (the chat turn
        classifies the message's sentiment meanwhile); ``embed_query`` then finds it done, or waits for it."""
        with self._recent_lock:
            if text in self._recent or text in self._pending:
                return
            future = self._queries.submit(text)
            self._pending[text] = future
        future.add_done_callback(lambda done: self._settle(text, done))  # outside the lock: it may run here

    def embed_query(self, text: str) -> np.ndarray:
        with self._recent_lock:
            vector = self._recent.get(text)
            if vector is not None:
                return vector
            pending = self._pending.get(text)
        if pending is not None:
            return pending.result()  # kept by _settle
        vector = self._queries(text)
        with self._recent_lock:
            self._remember(text, vector)
        return vector

    def _settle(self, text: str, future: "Future[np.ndarray]") -> None:
        """A prefetched query is done: into the recent queries, whether or not anyone asks for it."""
        failed = future.exception() is not None
        with self._recent_lock:
            self._pending.pop(text, None)
            if not failed:
                self._remember(text, future.result())

    def forget_recent(self) -> None:
        """Drop the recent queries' vectors (benchmarks: the next query is embedded, as a new question is)."""
        self._recent.clear()

    def _remember(self, text: str, vector: np.ndarray) -> None:  # under _recent_lock
        self._recent.put(text, vector)


def _shared(vector: np.ndarray) -> np.ndarray:
    """Read-only: one query vector is shared by all its callers."""
    vector.flags.writeable = False
    return vector
