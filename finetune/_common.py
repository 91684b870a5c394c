"""Training data pieces shared by the fine-tuning tasks and the benchmarks: the shared-data location, the error
for unusable training data, and deterministic splits.

Everything here sits below the task modules (``finetune.generator``, ``embedder``, ``sentiment``) and imports none
of them, so that any task can use it without an import circle."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any, Callable

from bot.errors import SupportbotError

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class TrainingDataError(SupportbotError):
    """Training data that cannot be used: names the file, line and field."""


def stratified_split(items: list[Any], share: float, seed: int, key: Callable[[Any], Any]) -> tuple[list, list]:
    """(rest, held out): ``share`` of each group held out, groups in sorted order, deterministic."""
    groups: dict[Any, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    rest, held = [], []
    rng = random.Random(seed)
    for k in sorted(groups, key=str):
        group = groups[k][:]
        rng.shuffle(group)
        n = round(len(group) * share)
        held.extend(group[:n])
        rest.extend(group[n:])
    return rest, held


def banking77_split(path: Path = DEFAULT_DATA_DIR / "banking77" / "train.csv", seed: int = 13,
                    dev_share: float = 0.2) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """BANKING77's train.csv split per intent with a fixed seed, exact duplicates dropped: ({intent: texts},
    [(held-out text, intent)]). The benchmarks measure on the held-out part; whatever the project builds from
    BANKING77 (the escalation policy's fraud examples) comes from the rest."""
    by_intent: dict[str, list[str]] = {}
    with Path(path).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_intent.setdefault(row["category"], []).append(row["text"].strip())
    rng = random.Random(seed)
    train: dict[str, list[str]] = {}
    dev: list[tuple[str, str]] = []
    for intent in sorted(by_intent):
        texts = list(dict.fromkeys(by_intent[intent]))
        rng.shuffle(texts)
        n_dev = max(1, round(len(texts) * dev_share))
        dev.extend((t, intent) for t in texts[:n_dev])
        train[intent] = texts[n_dev:]
    return train, dev
