"""The matcher: reranks a search's FAQ candidates with a cross-encoder and gives each a calibrated probability that
it answers the message.

    hits = kb.search(message)                       # dense + BM25, one fused score per entry
    hits = Matcher.from_settings(settings).run(message, hits)

For each of the top ``candidates`` FAQ hits, the cross-encoder reads the message with the entry's best-matching
question (``[CLS] message [SEP] question [SEP]``) and gives a logit; ``knowledge.retrieval.calibration`` combines
the logits with retrieval's scores into probabilities. The FAQ hits come back with ``score`` = that probability
(the retrieval score and the logit are kept in ``Hit.signals``), best first; document passages keep their retrieval
score (the grounding check guards what is written from them).

Models (``knowledge.matcher``):

* ``bundled:matcher`` (default) - the adapter shipped in ``knowledge/data/matcher`` (trained by
  ``finetune.matcher``) on ``bundled:minilm``, with its calibration;
* a directory written by ``python -m finetune.matcher`` - the same, with that directory's calibration;
* any Hugging Face cross-encoder or sequence classifier (a path or a hub id, e.g. ``BAAI/bge-reranker-base``):
  one logit (or the second of two) per pair, read as ``sigmoid(logit)`` (no calibration);
* ``none`` - no matcher: hits keep their retrieval scores.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Sequence

from knowledge.retrieval.calibration import Calibration
from knowledge.runtime.models import loading, materialize, shared
from knowledge.schema import Hit

MATCHER_DIR = Path(__file__).resolve().parents[1] / "data" / "matcher"
MATCHER_FILE = "matcher.json"  # marks a directory written by ``finetune.matcher``
BUNDLED_MATCHER = "bundled:matcher"


def matcher_dir(ref: str) -> Path | None:
    """The supportbot matcher directory ``ref`` names (the shipped one, or a ``finetune.matcher`` output)."""
    if ref == BUNDLED_MATCHER:
        return MATCHER_DIR
    path = Path(ref).expanduser()
    return path if (path / MATCHER_FILE).is_file() else None


class _Loaded:
    """A loaded cross-encoder: ``logits(query, candidates)``."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, calibration: Calibration) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.calibration = calibration
        self.lock = threading.Lock()  # a fast tokenizer is not safe to call from several threads
        labels = int(getattr(model.config, "num_labels", 1) or 1)
        self.column = 0 if labels == 1 else labels - 1
        self.two_way = labels == 2

    def logits(self, query: str, candidates: Sequence[str]) -> list[float]:
        import torch

        if not candidates:
            return []
        with self.lock:
            enc = self.tokenizer([query] * len(candidates), list(candidates), padding=True,
                                 truncation="longest_first", max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**enc).logits.float()
        if self.two_way:
            return (out[:, 1] - out[:, 0]).tolist()
        return out[:, self.column].tolist()


def load_matcher(ref: str, cache_dir: Path, backend: str = "auto") -> _Loaded:
    """The cross-encoder ``ref`` names, loaded once per process, on the inference path ``backend`` chooses
    (``knowledge.runtime.inference``)."""
    from knowledge.runtime.inference import files_identity, optimise_model

    own = matcher_dir(ref)
    if own is not None:
        meta = json.loads((own / MATCHER_FILE).read_text(encoding="utf-8"))
        body = materialize(meta.get("body", "bundled:minilm"), cache_dir)
        max_length = int(meta.get("question_max_length", 64))

        def load() -> _Loaded:
            from transformers import AutoTokenizer

            from knowledge.retrieval.pair_model import assemble

            tokenizer = AutoTokenizer.from_pretrained(body)
            model = optimise_model(assemble(own, body), tokenizer, name="matcher", cache_dir=cache_dir,
                                   source=f"pair:{files_identity(own, body)}", backend=backend, pairs=True,
                                   max_length=max_length)
            return _Loaded(model, tokenizer, max_length, Calibration.from_meta(meta.get("calibration")))

        return shared(f"matcher-{backend}", str(own.resolve()), lambda: loading(ref, "matcher", load))
    location = materialize(ref, cache_dir)

    def load_foreign() -> _Loaded:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(location)
        model.eval()
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = optimise_model(model, tokenizer, name="matcher-" + Path(location).name[:30], cache_dir=cache_dir,
                               source=f"seqcls:{files_identity(location)}", backend=backend, pairs=True,
                               max_length=256)
        return _Loaded(model, tokenizer, 256, Calibration())

    return shared(f"matcher-{backend}", location, lambda: loading(ref, "matcher", load_foreign))


class Matcher:
    """``run(message, hits)`` -> the hits with calibrated FAQ probabilities, best first. Light until used."""

    def __init__(self, model: str = BUNDLED_MATCHER, cache_dir: Path | None = None, candidates: int = 6,
                 backend: str = "auto") -> None:
        self.model_ref = model
        self.cache_dir = cache_dir
        self.candidates = candidates
        self.backend = backend
        self._loaded: _Loaded | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "Matcher | None":
        """The configured matcher (``knowledge.matcher``), or None when it is ``none``."""
        ks = settings.knowledge
        if ks.matcher == "none":
            return None
        return cls(ks.matcher, settings.cache, ks.matcher_candidates, ks.inference)

    def warm_up(self) -> "Matcher":
        if self._loaded is None:
            from knowledge.settings import default_cache_dir

            self._loaded = load_matcher(self.model_ref, self.cache_dir or default_cache_dir(), self.backend)
        return self

    def score(self, query: str, candidates: Sequence[str]) -> list[float]:
        """The raw logits of (query, candidate) pairs."""
        self.warm_up()
        assert self._loaded is not None
        return self._loaded.logits(query, candidates)

    def run(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        faq = [h for h in hits if h.kind == "faq"][:self.candidates]
        if not faq:
            return list(hits)
        self.warm_up()
        assert self._loaded is not None
        # the question that matched (the entry's first question when its answer was the best match)
        logits = self._loaded.logits(query, [h.title if h.matched_field == "answer" else h.matched for h in faq])
        probs = self._loaded.calibration.probabilities(logits, [h.score for h in faq])
        scored = [h.model_copy(update={"score": max(0.0, min(1.0, p)),
                                       "signals": {**h.signals, "retrieval": round(h.score, 4),
                                                   "matcher": round(x, 4)}})
                  for h, x, p in zip(faq, logits, probs)]
        documents = [h for h in hits if h.kind == "document"]  # FAQ hits beyond the candidates are dropped
        return sorted(scored + documents, key=lambda h: -h.score)
