"""Sentiment of customer messages: negative / neutral / positive with probabilities, plus an anger signal.

Model references (``sentiment.model`` in the config):

* ``bundled:sentiment`` (default): trained by this project (``python -m finetune.sentiment``) and shipped as a
  small adapter on the bundled MiniLM body; see ``bot/data/sentiment/README.md`` for data and metrics;
* ``vader``: the vaderSentiment lexicon (the baseline it is compared with; needs ``pip install vaderSentiment``);
* any Hugging Face sequence-classification model, by directory or hub id, whose labels name the sentiment
  (``negative``/``neutral``/``positive``, ``LABEL_0..2``, ``1 star``..``5 stars``, ...; an ``anger`` label
  feeds the anger signal).
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Callable, Sequence

from knowledge.runtime.batching import MicroBatcher
from bot.errors import ConfigError
from bot.models import load_sentiment_model, use_bf16
from bot.types import Sentiment

LABELS = ("negative", "neutral", "positive")
# A fast tokenizer (shared by every classifier on the same model) is not safe to call from several threads.
_TOKENIZER_LOCK = threading.Lock()


BF16_MIN_BATCH = 8  # smaller batches run in float32, even where bf16 is on (see _transformers)


def _softmax_rows(logits: Any) -> Any:
    import torch

    return torch.softmax(logits.float(), dim=-1)


def label_mapping(id2label: dict[int, str]) -> tuple[list[str | None], int | None]:
    """For each output of a classifier, the sentiment it counts toward (or None), and the anger output's index.

    Raises ``ConfigError`` when the labels say nothing about sentiment.
    """
    names = [str(id2label[i]).strip().lower() for i in range(len(id2label))]
    targets: list[str | None] = []
    anger = None
    for i, name in enumerate(names):
        stars = re.match(r"^([1-5])\s*stars?$", name)
        if name.startswith("neg"):
            targets.append("negative")
        elif name.startswith("neu"):
            targets.append("neutral")
        elif name.startswith("pos"):
            targets.append("positive")
        elif stars:
            targets.append(("negative", "negative", "neutral", "positive", "positive")[int(stars.group(1)) - 1])
        elif name in {"anger", "angry"}:
            targets.append(None)
            anger = i
        else:
            targets.append(None)
    if not any(targets):
        generic = re.compile(r"^label_\d+$")
        if all(generic.match(n) for n in names) and len(names) in (2, 3):
            targets = ["negative", "positive"] if len(names) == 2 else list(LABELS)
        else:
            raise ConfigError(f"sentiment model labels {names} name no sentiment; expected labels such as "
                              "negative/neutral/positive (set sentiment.model to another model)")
    return targets, anger


class SentimentClassifier:
    """Batched sentiment prediction. The model loads once per process, on first use or ``warm_up()``."""

    def __init__(self, model_ref: str = "bundled:sentiment", cache_dir: Path | None = None,
                 max_length: int = 128, batch_size: int = 32, dtype: str = "auto", backend: str = "auto") -> None:
        from knowledge.settings import default_cache_dir

        self.model_ref = model_ref
        self.dtype = dtype
        self.backend = backend  # the inference path (knowledge.runtime.inference); dtype applies to torch's
        self.cache_dir = cache_dir or default_cache_dir()
        self.max_length = max_length
        self.batch_size = batch_size
        self._predict: Callable[[list[str]], list[Sentiment]] | None = None
        self._lock = threading.Lock()
        self._one = MicroBatcher(self.predict, max_batch=batch_size, name="supportbot-sentiment")

    @classmethod
    def default(cls) -> "SentimentClassifier":
        """The shipped model (``bundled:sentiment``)."""
        return cls("bundled:sentiment")

    @classmethod
    def from_settings(cls, settings: Any) -> "SentimentClassifier":
        return cls(settings.sentiment.model, cache_dir=settings.cache, dtype=settings.sentiment.dtype,
                   backend=settings.knowledge.inference)

    def warm_up(self) -> "SentimentClassifier":
        if self._predict is None:
            with self._lock:
                if self._predict is None:
                    self._predict = self._vader() if self.model_ref == "vader" else self._transformers()
        return self

    def predict(self, texts: Sequence[str]) -> list[Sentiment]:
        self.warm_up()
        assert self._predict is not None
        texts = [t if t.strip() else "." for t in texts]
        out: list[Sentiment] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(self._predict(texts[i:i + self.batch_size]))
        return out

    def predict_one(self, text: str) -> Sentiment:
        """One message; concurrent callers (the HTTP API's threads) are classified together, in one batch."""
        return self._one(text)

    # --- backends ------------------------------------------------------------------------------------------
    def _transformers(self) -> Callable[[list[str]], list[Sentiment]]:
        # imports torch, under the load lock
        model, tokenizer = load_sentiment_model(self.model_ref, self.cache_dir, self.backend)
        import torch

        from knowledge.runtime.inference import path_of
        # bf16: 2x the float32 throughput on batches here, same accuracy (bench/sentiment.py); a lone message is
        # faster in float32 (a bf16 kernel is prepared for every new input shape)
        bf16 = path_of(model) == "torch" and use_bf16(self.dtype)
        config = model.config
        if self.model_ref == "bundled:sentiment":
            targets, anger_index = list(LABELS), None
        else:
            targets, anger_index = label_mapping({int(k): v for k, v in config.id2label.items()})

        def predict(batch: list[str]) -> list[Sentiment]:
            with _TOKENIZER_LOCK:
                enc = tokenizer(batch, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt")
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16,
                                                         enabled=bf16 and len(batch) >= BF16_MIN_BATCH):
                out = model(**enc)
            probs = _softmax_rows(out.logits)
            anger_logits = getattr(out, "anger_logits", None)
            anger = torch.sigmoid(anger_logits.float()) if anger_logits is not None else None
            results = []
            for row in range(len(batch)):
                scores = dict.fromkeys(LABELS, 0.0)
                for j, target in enumerate(targets):
                    if target is not None:
                        scores[target] += float(probs[row, j])
                total = sum(scores.values()) or 1.0
                scores = {k: round(v / total, 4) for k, v in scores.items()}
                label = max(LABELS, key=lambda k: scores[k])
                a = float(anger[row]) if anger is not None else (
                    float(probs[row, anger_index]) if anger_index is not None else 0.0)
                results.append(Sentiment(label=label, score=scores[label], scores=scores, anger=round(a, 4)))
            return results

        return predict

    def _vader(self) -> Callable[[list[str]], list[Sentiment]]:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as e:
            raise ConfigError("sentiment.model = 'vader' needs vaderSentiment: "
                              "pip install 'supportbot[finetune]'") from e
        analyzer = SentimentIntensityAnalyzer()
        return lambda batch: [vader_sentiment(analyzer.polarity_scores(t)) for t in batch]


def vader_sentiment(polarity: dict[str, float]) -> Sentiment:
    """VADER's usual reading: compound >= 0.05 positive, <= -0.05 negative, else neutral."""
    compound = polarity["compound"]
    label = "positive" if compound >= 0.05 else "negative" if compound <= -0.05 else "neutral"
    scores = {"negative": polarity["neg"], "neutral": polarity["neu"], "positive": polarity["pos"]}
    score = abs(compound) if label != "neutral" else 1.0 - abs(compound)
    return Sentiment(label=label, score=round(score, 4), scores=scores)
