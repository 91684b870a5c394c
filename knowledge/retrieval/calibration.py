"""One calibrated probability per candidate entry, from the matcher's and retrieval's signals.

For the top candidates of a query (FAQ entries, each with the matcher's logit for its best-matching question and
retrieval's fused score), the features of candidate ``i`` are

    matcher            its matcher logit
    retrieval          its fused retrieval score (dense + BM25, in [0, 1])
    matcher_margin     its logit minus the best logit of the *other* candidates
    retrieval_margin   its retrieval score minus the best score of the other candidates
    retrieval_top      1 if retrieval ranked it first, else 0

and its probability of being the entry that answers the message is ``sigmoid(w . features + b)``. ``w`` and ``b``
are fitted by logistic regression on the calibration parts of several knowledge bases of different shapes (1, 3
and 10 phrasings per entry, ``bench/matcher.py --calibrate``) and stored with the matcher (``matcher.json``), so
that one threshold means the same thing for every shape. A matcher without a fitted calibration (a replacement
cross-encoder) is read as ``sigmoid(logit)``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

FEATURES = ("matcher", "retrieval", "matcher_margin", "retrieval_margin", "retrieval_top")
_NO_OTHER = {"matcher": -8.0, "retrieval": 0.0}  # the "best other" of a lone candidate


def feature_rows(logits: Sequence[float], retrieval: Sequence[float]) -> list[list[float]]:
    """The features of each candidate (in retrieval's order: the first is retrieval's top)."""
    rows = []
    n = len(logits)
    for i in range(n):
        other_l = max((logits[j] for j in range(n) if j != i), default=_NO_OTHER["matcher"])
        other_r = max((retrieval[j] for j in range(n) if j != i), default=_NO_OTHER["retrieval"])
        rows.append([float(logits[i]), float(retrieval[i]), float(logits[i] - other_l),
                     float(retrieval[i] - other_r), 1.0 if i == 0 else 0.0])
    return rows


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """``sigmoid(w . features + b)``; without weights, ``sigmoid(matcher logit)``."""

    weights: tuple[float, ...] = ()
    bias: float = 0.0

    @classmethod
    def from_meta(cls, meta: dict[str, Any] | None) -> "Calibration":
        if not meta:
            return cls()
        if list(meta.get("features", [])) != list(FEATURES):
            raise ValueError(f"calibration features {meta.get('features')} are not {list(FEATURES)}")
        return cls(tuple(float(w) for w in meta["weights"]), float(meta["bias"]))

    def to_meta(self, **extra: Any) -> dict[str, Any]:
        return {"features": list(FEATURES), "weights": [round(w, 6) for w in self.weights],
                "bias": round(self.bias, 6), **extra}

    def probabilities(self, logits: Sequence[float], retrieval: Sequence[float]) -> list[float]:
        if not self.weights:
            return [_sigmoid(x) for x in logits]
        return [_sigmoid(sum(w * x for w, x in zip(self.weights, row)) + self.bias)
                for row in feature_rows(logits, retrieval)]
