"""The escalation policy: when a conversation should go to a human, as a reason code and a detail.

Rules (each switchable in ``[escalation]``), checked in this order:

* ``customer_request``  - the message is closer to an example request for a person (shipped examples from
  Bitext's ``contact_human_agent`` plus hand-written ones, and any in ``request_examples``) than to any example
  of an ordinary request, and similar enough to it (``request_min_similarity``);
* ``sensitive_topic``   - the message is on a configured topic (legal threat, fraud, ...): close to one of its
  examples, or, for a topic with counter-examples (the built-in ``fraud``: BANKING77's fraud intents against
  its other intents and Bitext's ordinary requests), judged on the topic by a classifier fitted on the two. A
  topic is the company's deliberate choice, so it wins even over an ordinary request it resembles (with
  ``account_closure`` on, "delete my account" goes to a person);
* ``negative_sentiment`` - very negative or angry now, or negative in N of the last M customer turns;
* ``repeated_failure``  - the customer repeats an earlier question, or (after answering) the bot would give
  its K-th fallback in a row;
* ``low_confidence``    - (off by default) any fallback goes to a human instead.

Only turns since the last handoff was resumed count, so a resumed conversation starts with a clean slate.
Without a human (``human_available = false``) only ``customer_request`` is checked: it gets an honest answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bot.storage.sessions import Turn
from bot.types import Sentiment

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "escalation"  # bot/data/escalation

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


@dataclasses.dataclass(frozen=True)
class Decision:
    """A rule that fired: its reason code and what exactly triggered it."""

    reason: str
    detail: str


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
        return hashlib.sha256("\n".join([self._embedder.model_ref, *self.texts]).encode()).hexdigest()[:24]

    def _load(self) -> np.ndarray:
        if not self.texts:
            return np.zeros((0, 1), dtype=np.float32)
        path = self._cache_dir / f"{self.digest}.npy"
        if path.is_file():
            try:
                vectors = np.load(path)
                if vectors.shape[0] == len(self.texts):
                    return vectors
            except (OSError, ValueError):
                pass
        vectors = self._embedder.embed(self.texts)
        _save_atomically(path, vectors)
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
    to balance, ``C`` = 16, chosen on a tuning split of BANKING77: bench/escalation.py --tune). Fitted once per
    embedding model and example set, then cached on disk (a few hundred bytes) and shared in the process."""

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
                try:
                    w = np.load(path)
                except (OSError, ValueError):
                    w = self._fit()
                    _save_atomically(path, w)
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


class EscalationPolicy:
    """Decides, turn by turn, whether to hand the conversation to a human."""

    def __init__(self, settings: Any, embedder: Any, cache_dir: Path) -> None:
        self.settings = settings  # EscalationSettings
        self.embedder = embedder
        requests = read_examples(DATA_DIR / "customer_request.txt") + list(settings.request_examples)
        self.requests = ExampleSet(requests, embedder, cache_dir)
        shipped: dict[str, ExampleSet] = {}  # each shipped file embedded once, whichever rules use it

        def shipped_set(name: str) -> ExampleSet:
            if name not in shipped:
                shipped[name] = ExampleSet(read_examples(DATA_DIR / name), embedder, cache_dir)
            return shipped[name]

        self.ordinary = shipped_set("ordinary_request.txt")
        topics = {**{name: Topic.builtin(name) for name in BUILTIN_TOPICS if name in settings.sensitive_topics},
                  **{name: Topic(tuple(examples)) for name, examples in settings.topics.items()}}
        unknown = [t for t in settings.sensitive_topics if t not in topics]
        if unknown:
            from bot.errors import ConfigError

            raise ConfigError(f"escalation.sensitive_topics: unknown topic(s) {', '.join(unknown)}; built in: "
                              f"{', '.join(BUILTIN_TOPICS)}; define others in [escalation.topics]")
        self.topics = {name: ExampleSet(topics[name].examples, embedder, cache_dir)
                       for name in settings.sensitive_topics}
        self.classifiers = {name: TopicClassifier(self.topics[name],
                                                  [shipped_set(f) for f in topics[name].counter_files], cache_dir)
                            for name in settings.sensitive_topics if topics[name].counter_files}
        self._lock = threading.Lock()
        self._ready = False

    def warm_up(self) -> "EscalationPolicy":
        with self._lock:
            if not self._ready:
                self.embedder.warm_up()
                for examples in (self.requests, self.ordinary, *self.topics.values()):
                    examples.vectors  # noqa: B018 - embeds (or loads from cache) now
                for classifier in self.classifiers.values():
                    classifier.weights  # noqa: B018 - fits (or loads from cache) now
                self._ready = True
        return self

    # --- before the bot answers ----------------------------------------------------------------------------
    def before_answer(self, message: str, sentiment: Sentiment | None, history: Sequence[Turn]) -> Decision | None:
        """Rules that apply to the message itself. ``history``: the turns since the last resume, without it."""
        s = self.settings
        if not s.enabled:
            return None
        self.warm_up()
        vectors = message_vectors(self.embedder, message)
        vector = vectors[0]
        if s.customer_request:
            for v in vectors:
                score, example = self.requests.best(v)
                if score >= s.request_min_similarity and score > self.ordinary.best(v)[0]:
                    return Decision("customer_request", f"asked for a person (similarity {score:.2f} to "
                                                        f"\"{example}\")")
        if not s.human_available:
            return None
        for name, examples in self.topics.items():
            score, example = max((examples.best(v) for v in vectors), key=lambda pair: pair[0])
            classifier = self.classifiers.get(name)
            if classifier is None:
                if score >= s.topic_min_similarity:
                    return Decision("sensitive_topic", f"{name} (similarity {score:.2f} to \"{example}\")")
            else:
                p = classifier.probability(vectors)
                if p >= s.topic_min_probability:
                    return Decision("sensitive_topic", f"{name} (probability {p:.2f}; closest example "
                                                       f"\"{example}\", similarity {score:.2f})")
        if s.negative_sentiment and sentiment is not None:
            negative = sentiment.scores.get("negative", 1.0 if sentiment.label == "negative" else 0.0)
            if negative >= s.very_negative:
                return Decision("negative_sentiment", f"very negative message (p={negative:.2f})")
            if sentiment.anger >= s.anger:
                return Decision("negative_sentiment", f"angry message (anger p={sentiment.anger:.2f})")
            labels = [_turn_sentiment(t) for t in history if t.role == "customer"] + [sentiment.label]
            window = labels[-s.negative_window:]
            if window.count("negative") >= s.negative_turns:
                return Decision("negative_sentiment", f"negative in {window.count('negative')} of the last "
                                                      f"{len(window)} customer messages")
        if s.repeated_failure:
            earlier = [t.text for t in history if t.role == "customer"]
            if earlier and len(_WORD.findall(message)) >= 3:
                sims = np.stack([self.embedder.embed_query(t) for t in earlier]) @ vector
                i = int(np.argmax(sims))
                if sims[i] >= s.repeat_similarity:
                    return Decision("repeated_failure", f"asked the same question again (similarity "
                                                        f"{float(sims[i]):.2f} to \"{earlier[i]}\")")
        return None

    # --- when the bot would give a fallback ----------------------------------------------------------------
    def on_fallback(self, history: Sequence[Turn], best_score: float) -> Decision | None:
        """Rules that apply when the bot has no answer. ``history`` ends with the current customer turn."""
        s = self.settings
        if not s.enabled or not s.human_available:
            return None
        if s.low_confidence:
            return Decision("low_confidence", f"no confident answer (best evidence {best_score:.2f})")
        if s.repeated_failure:
            streak = 1
            for t in reversed([t for t in history if t.role == "bot"]):
                if t.mode != "fallback":
                    break
                streak += 1
            if streak >= s.fallback_streak:
                return Decision("repeated_failure", f"{streak} answers in a row without an answer (fallback)")
        return None


def _save_atomically(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` so that a concurrent reader never sees half a file; a cache, so a failure to
    write is not an error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npy.tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, path)
    except OSError:
        pass


_CLAUSE_BREAK = re.compile(r"(?<=[.!?;])\s+|,\s*|\s+(?:but|and|so|because)\s+", re.IGNORECASE)


def message_vectors(embedder: Any, message: str) -> list[np.ndarray]:
    """The message's embedding and its clauses': "I still haven't got my refund, I want to talk to a person" is a
    request for a person although the message as a whole is closest to an ordinary refund question."""
    parts = clauses(message)
    vector = embedder.embed_query(message)
    return [vector, *embedder.embed(parts)] if parts else [vector]


def clauses(message: str) -> list[str]:
    """The message's sentences and clauses of two words or more; empty when it is a single clause."""
    parts = [p.strip() for p in _CLAUSE_BREAK.split(message) if p and len(_WORD.findall(p)) >= 2]
    return [] if len(parts) < 2 else parts


def _turn_sentiment(turn: Turn) -> str | None:
    data = turn.data.get("sentiment")
    return data.get("label") if isinstance(data, dict) else None
