"""The escalation rules' data: example messages (shipped files and the configuration), their embeddings, the
built-in sensitive topics and the topic classifier fitted on examples against counter-examples.

Embeddings and fitted weights are caches on disk (``<cache>/escalation/``), keyed by the embedding model and the
texts, so they are computed once per model; ``supportbot models install`` prepares them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bot.shipped import ESCALATION_DIR
from knowledge.runtime.atomic import load_array, save_array

DATA_DIR = ESCALATION_DIR  # bot/data/escalation

# Hand-written examples of each built-in topic (``Topic.builtin`` adds the shipped files below).
BUILTIN_TOPICS: dict[str, list[str]] = {
    "legal_threat": [
        "I'm going to sue you", "I will take legal action against your company", "my lawyer will contact you",
        "I'm talking to my attorney about this", "see you in court", "I'll file a lawsuit",
        "I am reporting you to the consumer protection agency", "this is illegal and I will report it",
        "expect to hear from my solicitor", "I'm filing a complaint with the regulator",
        "if this isn't resolved I will take legal action", "I will take you to court",
        "I'm going to report you to the police",
    ],
    "fraud": [
        "someone used my card without my permission", "there are transactions on my account that I didn't make",
        "I think my account has been hacked", "I've been scammed", "my identity was stolen",
        "there is an unauthorized charge on my card", "someone else logged into my account",
        "I got a phishing email pretending to be you", "my card was stolen and used",
        "fraudulent purchase on my account",
    ],
    "account_closure": [
        "close my account", "I want to delete my account and all my data", "cancel my membership for good",
        "I'm leaving, close everything", "terminate my account",
    ],
    "safety": [
        "the product caught fire", "the device exploded", "I was injured by your product",
        "the charger is smoking", "my child swallowed a part", "I got an electric shock from it",
    ],
}

# Built-in topics with more examples and with counter-examples, from files (finetune/escalation_examples.py).
TOPIC_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "fraud": (("fraud_banking77.txt",), ("ordinary_request.txt", "not_fraud_banking77.txt")),
}

_WORD = re.compile(r"\w+")


@dataclasses.dataclass(frozen=True)
class Topic:
    """A sensitive topic: example messages and, optionally, shipped files of counter-examples (messages that
    resemble the topic but are not on it, e.g. "Why was I charged a fee on my card?" for fraud). With
    counter-examples a classifier decides; without, the similarity to the closest example."""

    examples: tuple[str, ...]
    counter_files: tuple[str, ...] = ()

    @classmethod
    def builtin(cls, name: str) -> "Topic":
        examples, counter = TOPIC_FILES.get(name, ((), ()))
        return cls(tuple(BUILTIN_TOPICS[name]) + tuple(t for f in examples for t in read_examples(DATA_DIR / f)),
                   counter)


def read_examples(path: Path) -> list[str]:
    """One example per line; blank lines and ``#`` comments skipped."""
    lines = path.read_text(encoding="utf-8").split("\n")
    return [s.strip() for s in lines if s.strip() and not s.lstrip().startswith("#")]


class ExampleSet:
    """Example texts and their embeddings (computed once per embedding model, cached on disk)."""

    def __init__(self, texts: Sequence[str], embedder: Any, cache_dir: Path) -> None:
        self.texts = list(dict.fromkeys(t for t in texts if t.strip()))
        self._embedder = embedder
        self._cache_dir = Path(cache_dir) / "escalation"
        self._vectors: np.ndarray | None = None

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            self._vectors = self._load()
        return self._vectors

    @property
    def digest(self) -> str:
        """Names the texts and the embedding model: the cache key of the vectors (and of what is fitted on them)."""
        return hashlib.sha256("\n".join([self._embedder.identity, *self.texts]).encode()).hexdigest()[:24]

    def _load(self) -> np.ndarray:
        if not self.texts:
            return np.zeros((0, 1), dtype=np.float32)
        path = self._cache_dir / f"{self.digest}.npy"
        vectors = load_array(path)
        if vectors is not None and vectors.shape[0] == len(self.texts):
            return vectors
        vectors = self._embedder.embed(self.texts)
        save_array(path, vectors)
        return vectors

    def best(self, vector: np.ndarray) -> tuple[float, str]:
        """Highest cosine similarity to an example, and that example."""
        if not self.texts:
            return 0.0, ""
        sims = self.vectors @ vector
        i = int(np.argmax(sims))
        return float(sims[i]), self.texts[i]


class TopicClassifier:
    """Logistic regression on the embeddings: a topic's examples against its counter-examples (classes weighted
    to balance; ``C`` is ``escalation.topic_classifier_c``, 16, chosen on a tuning split of BANKING77:
    bench/escalation.py --tune). Fitted once per embedding model and example set, then cached on disk (a few
    hundred bytes) and shared in the process."""

    TOL = 1e-6  # to convergence: lbfgs's default tolerance stops early, where the result hangs on row order
    # and on the bf16 rounding of the embeddings (0.96 or 0.89 for one message; 0.86 converged)
    _fitted: dict[str, tuple[np.ndarray, float]] = {}
    _fit_lock = threading.Lock()

    def __init__(self, examples: ExampleSet, counter_examples: Sequence[ExampleSet], cache_dir: Path,
                 C: float = 16.0) -> None:
        self.C = C
        self.examples = examples
        self.counter_examples = list(counter_examples)
        self._cache_dir = Path(cache_dir) / "escalation"
        self._weights: tuple[np.ndarray, float] | None = None

    @property
    def weights(self) -> tuple[np.ndarray, float]:
        if self._weights is None:
            digests = " ".join(e.digest for e in [self.examples, *self.counter_examples])
            key = hashlib.sha256(f"{digests} C={self.C} tol={self.TOL}".encode())
            self._weights = self._load_or_fit(key.hexdigest()[:24])
        return self._weights

    def _load_or_fit(self, key: str) -> tuple[np.ndarray, float]:
        with self._fit_lock:
            if key not in self._fitted:
                path = self._cache_dir / f"topic-{key}.npy"
                w = load_array(path)
                if w is None:
                    w = self._fit()
                    save_array(path, w)
                self._fitted[key] = (w[:-1], float(w[-1]))
            return self._fitted[key]

    def _fit(self) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        pos, neg = self.examples.vectors, np.vstack([e.vectors for e in self.counter_examples])
        x = np.vstack([pos, neg])
        y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
        model = LogisticRegression(C=self.C, class_weight="balanced", tol=self.TOL, max_iter=10000).fit(x, y)
        return np.r_[model.coef_[0], model.intercept_[0]].astype(np.float32)

    def probability(self, vectors: Sequence[np.ndarray]) -> float:
        """The highest probability, over ``vectors`` (a message and its clauses), of being on the topic."""
        w, b = self.weights
        logit = float(np.clip((np.stack(vectors) @ w + b).max(), -50.0, 50.0))
        return 1.0 / (1.0 + np.exp(-logit))


_CLAUSE_BREAK = re.compile(r"(?<=[.!?;])\s+|,\s*|\s+(?:but|and|so|because)\s+", re.IGNORECASE)


def message_vectors(embedder: Any, message: str, clause_min_words: int = 2) -> list[np.ndarray]:
    """The message's embedding and its clauses': "I still haven't got my refund, I want to talk to a person" is a
    request for a person although the message as a whole is closest to an ordinary refund question."""
    parts = clauses(message, clause_min_words)
    vector = embedder.embed_query(message)
    return [vector, *embedder.embed(parts)] if parts else [vector]


def clauses(message: str, min_words: int = 2) -> list[str]:
    """The message's sentences and clauses of ``min_words`` words or more; empty when it is a single clause."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(message) if p and len(_WORD.findall(p)) >= min_words]
    return [] if len(parts) < 2 else parts
