"""The consistency classifier: the probability that a passage supports a claim (one answer sentence).

    checker = ConsistencyChecker.from_settings(settings)     # None when answer.consistency_model = "none"
    checker.supported(["No, we do not take Apple Pay."], ["We accept Visa, ..., Apple Pay, ..."])  # [False]

Models (``answer.consistency_model``):

* ``bundled:consistency`` (default) - the adapter shipped in ``bot/data/consistency`` (trained by
  ``finetune.consistency``, FactCC-style) on ``bundled:minilm``, with its threshold;
* a directory written by ``python -m finetune.consistency`` - the same, with that directory's threshold;
* any Hugging Face sequence classifier with an entailment label (an NLI model, for users with internet: a path or
  a hub id) - the probability of its ``entailment`` label (or of its last label), read against
  ``answer.consistency_threshold``;
* ``none`` - no classifier: the rules (``bot.conversation.facts``) and the overlap / similarity checks remain.

A claim is checked against each passage it cites, read through its *window*: the passage sentences that share the
most words with the claim (``evidence_window``; the classifier was trained on such windows, which keeps the pair
short and the contrast sharp); it is supported when one of them supports it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Sequence

import re

from bot.shipped import CONSISTENCY_DIR

CONSISTENCY_FILE = "consistency.json"
BUNDLED_CONSISTENCY = "bundled:consistency"


_SPLIT = re.compile(r"(?<=[.!?;:])\s+|\n+")
_WORD = re.compile(r"[a-z0-9]+")
WINDOW_SENTENCES = 2
FP32_ONLY = "a safety check: a grounding verdict must not move with quantisation"  # knowledge.runtime.inference


def evidence_window(claim: str, passage: str, size: int = WINDOW_SENTENCES) -> str:
    """The ``size`` sentences of ``passage`` sharing the most words with ``claim``, in passage order (the whole
    passage when it is that short)."""
    parts = [p.strip() for p in _SPLIT.split(passage) if p and p.strip()]
    if len(parts) <= size:
        return " ".join(parts)
    words = set(_WORD.findall(claim.lower()))
    scores = [len(words & set(_WORD.findall(p.lower()))) / (1 + len(set(_WORD.findall(p.lower())))) ** 0.3
              for p in parts]
    keep = sorted(sorted(range(len(parts)), key=lambda i: -scores[i])[:size])
    return " ".join(parts[i] for i in keep)


def consistency_dir(ref: str) -> Path | None:
    if ref == BUNDLED_CONSISTENCY:
        return CONSISTENCY_DIR
    path = Path(ref).expanduser()
    return path if (path / CONSISTENCY_FILE).is_file() else None


class _Loaded:
    def __init__(self, model: Any, tokenizer: Any, max_length: int, threshold: float | None, column: int) -> None:
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self.threshold = threshold  # the model's own threshold (None: a foreign model, use the setting)
        self.column = column  # -1: one logit (sigmoid); else the softmax column of "entailment"
        self.lock = threading.Lock()

    def probabilities(self, claims: Sequence[str], passages: Sequence[str]) -> list[float]:
        import torch

        if not claims:
            return []
        with self.lock:
            # the passage is cut first; a claim too long for the window is cut too ("only_second" would raise)
            enc = self.tokenizer(list(claims), list(passages), padding=True, truncation="longest_first",
                                 max_length=self.max_length, return_tensors="pt")
        with torch.inference_mode():
            logits = self.model(**enc).logits.float()
        if self.column < 0:
            return torch.sigmoid(logits.squeeze(-1)).reshape(-1).tolist()
        return torch.softmax(logits, dim=-1)[:, self.column].tolist()


def load_consistency(ref: str, cache_dir: Path, backend: str = "auto") -> _Loaded:
    from knowledge.runtime.inference import files_identity, optimise_model
    from knowledge.runtime.models import loading, materialize, shared

    own = consistency_dir(ref)
    if own is not None:
        meta = json.loads((own / CONSISTENCY_FILE).read_text(encoding="utf-8"))
        body = materialize(meta.get("body", "bundled:minilm"), cache_dir)

        def load() -> _Loaded:
            from transformers import AutoTokenizer

            from knowledge.retrieval.pair_model import assemble

            tokenizer, max_length = AutoTokenizer.from_pretrained(body), int(meta.get("max_length", 256))
            model = optimise_model(assemble(own, body), tokenizer, name="consistency", cache_dir=cache_dir,
                                   source=f"consistency:{files_identity(own, body)}", backend=backend, pairs=True,
                                   max_length=max_length, no_int8=FP32_ONLY)
            return _Loaded(model, tokenizer, max_length, float(meta["threshold"]), -1)

        return shared(f"consistency-{backend}", str(own.resolve()), lambda: loading(ref, "consistency", load))
    location = materialize(ref, cache_dir)

    def load_foreign() -> _Loaded:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        model = AutoModelForSequenceClassification.from_pretrained(location)
        model.eval()
        labels = {str(v).lower(): int(k) for k, v in (model.config.id2label or {}).items()}
        column = labels.get("entailment", max(labels.values(), default=0))
        if int(getattr(model.config, "num_labels", 1) or 1) == 1:
            column = -1
        tokenizer = AutoTokenizer.from_pretrained(location)
        model = optimise_model(model, tokenizer, name="consistency-" + Path(location).name[:30], cache_dir=cache_dir,
                               source=f"seqcls:{files_identity(location)}", backend=backend, pairs=True,
                               max_length=512, no_int8=FP32_ONLY)
        return _Loaded(model, tokenizer, 512, None, column)

    return shared(f"consistency-{backend}", location, lambda: loading(ref, "consistency", load_foreign))


class ConsistencyChecker:
    """``supported(claims, passages)`` -> one bool per claim. Light until used."""

    def __init__(self, model: str = BUNDLED_CONSISTENCY, threshold: float | None = None,
                 cache_dir: Path | None = None, backend: str = "auto") -> None:
        self.model_ref = model
        self.threshold_setting = threshold
        self.cache_dir = cache_dir
        self.backend = backend  # the inference path (knowledge.runtime.inference)
        self._loaded: _Loaded | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "ConsistencyChecker | None":
        a = settings.answer
        if a.consistency_model == "none":
            return None
        return cls(a.consistency_model, a.consistency_threshold, settings.cache, settings.knowledge.inference)

    def warm_up(self) -> "ConsistencyChecker":
        if self._loaded is None:
            from knowledge.settings import default_cache_dir

            self._loaded = load_consistency(self.model_ref, self.cache_dir or default_cache_dir(), self.backend)
        return self

    @property
    def threshold(self) -> float:
        self.warm_up()
        assert self._loaded is not None
        if self.threshold_setting is not None:
            return self.threshold_setting
        return self._loaded.threshold if self._loaded.threshold is not None else 0.5

    def scores(self, claims: Sequence[str], passages: Sequence[str]) -> list[float]:
        """For each claim, the best probability over ``passages`` that a passage supports it."""
        self.warm_up()
        assert self._loaded is not None
        if not claims or not passages:
            return [0.0] * len(claims)
        pairs = [(c, evidence_window(c, p)) for c in claims for p in passages]
        probs = self._loaded.probabilities([c for c, _ in pairs], [p for _, p in pairs])
        n = len(passages)
        return [max(probs[i * n:(i + 1) * n]) for i in range(len(claims))]

    def supported(self, claims: Sequence[str], passages: Sequence[str]) -> list[bool]:
        t = self.threshold
        return [s >= t for s in self.scores(claims, passages)]
