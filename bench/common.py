"""Helpers shared by the benchmark scripts: data locations, the BANKING77 split, timing summaries."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"


def require(path: Path) -> Path:
    if not path.exists():
        sys.exit(f"{path} not found: the public data sets live in ../shared/data beside the repository")
    return path


def banking77_split(seed: int = 13, dev_share: float = 0.2) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """BANKING77 train.csv split 80/20 per intent with a fixed seed: ({intent: train texts}, [(text, intent)])."""
    from finetune._common import banking77_split as split

    return split(require(SHARED / "banking77" / "train.csv"), seed, dev_share)


def banking77_entries(train: dict[str, list[str]]) -> list[dict]:
    return [{"id": intent, "questions": texts, "answer": f"(curated answer for {intent.replace('_', ' ')})",
             "category": "banking"} for intent, texts in train.items()]


def percentiles(values_ms: list[float]) -> dict[str, float]:
    s = sorted(values_ms)  # p95: nearest rank (the smallest value with at least 95% of the values at or below it)
    return {"p50_ms": round(statistics.median(s), 2), "p95_ms": round(s[max(0, math.ceil(0.95 * len(s)) - 1)], 2),
            "mean_ms": round(statistics.fmean(s), 2)}


def save(name: str, data: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


class RecordingGenerator:
    """Wraps a generator and records what the language model wrote (``outputs``: one ``{"answer": text,
    "passages": [...]}`` per call, the whole text it produced before the bot's checks stopped reading it, and the
    passages its prompt held)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.outputs: list[dict] = []

    def __getattr__(self, name):  # quote_only and the rest: the wrapped generator's
        return getattr(self.inner, name)

    def warm_up(self):
        self.inner.warm_up()
        return self

    def generate(self, messages):
        text = self.inner.generate(messages)
        self.outputs.append({"answer": text})
        return text

    def stream(self, messages, **options):
        from bot.conversation.prompting import parse_passages

        record = {"answer": "", "passages": parse_passages(messages)}
        self.outputs.append(record)
        for piece in self.inner.stream(messages, **options):
            record["answer"] += piece
            yield piece
