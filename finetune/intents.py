"""The intent data sets as train / calibration / dev splits, shared by the matcher's training and its benchmark.

Every text of BANKING77, HWU64 (its ``fold = train`` rows only) and Bitext belongs to exactly one part, per intent,
with a fixed seed:

* ``train``  - the matcher learns from these pairs; the benchmark's knowledge bases take their phrasings from here;
* ``calib``  - the decision defaults and the calibration are chosen on these (never on dev);
* ``dev``    - reported only.

BANKING77 keeps the project's existing 80 / 20 split (``finetune._common.banking77_split``: its 20% is the dev
part every BANKING77 figure is measured on) and takes its calibration part (1/8) out of the 80%.
"""

from __future__ import annotations

import csv
import dataclasses
import random
from pathlib import Path

from finetune._common import DEFAULT_DATA_DIR, banking77_split

DATASETS = ("banking77", "hwu64", "bitext")

# Intents of one set that another set's knowledge base could rightly answer: never used as out-of-scope texts for
# that knowledge base (and never as negatives across sets in training).
OVERLAPS: dict[tuple[str, str], set[str]] = {
    # texts of <first> that are in scope for a knowledge base built from <second>
    ("bitext", "banking77"): {"get_refund", "track_refund", "check_refund_policy", "payment_issue",
                              "check_payment_methods", "delete_account", "edit_account", "create_account",
                              "recover_password", "contact_customer_service", "contact_human_agent", "complaint",
                              "check_cancellation_fee", "registration_problems", "switch_account", "review"},
    ("hwu64", "banking77"): {"qa_currency", "general_quirky"},
    ("banking77", "hwu64"): {"exchange_rate"},
    ("hwu64", "bitext"): {"email_query", "email_sendemail", "general_quirky", "takeaway_order", "takeaway_query"},
    ("bitext", "hwu64"): set(),
    ("banking77", "bitext"): {"request_refund", "Refund_not_showing_up", "edit_personal_details",
                              "terminate_account", "card_payment_not_recognised", "cancel_transfer",
                              "passcode_forgotten", "contactless_not_working", "order_physical_card",
                              "card_delivery_estimate", "card_arrival", "lost_or_stolen_card"},
}


@dataclasses.dataclass
class IntentSet:
    name: str
    train: dict[str, list[str]]
    calib: dict[str, list[str]]
    dev: dict[str, list[str]]

    def pairs(self, part: str) -> list[tuple[str, str]]:
        """(text, intent) of one part, in a fixed order."""
        return [(t, intent) for intent, texts in sorted(getattr(self, part).items()) for t in texts]


def _read(name: str, data_dir: Path) -> dict[str, list[str]]:
    by_intent: dict[str, list[str]] = {}
    if name == "hwu64":
        with (data_dir / "hwu64" / "hwu64.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                if row["fold"] == "train":
                    by_intent.setdefault(row["intent"], []).append(row["text"].strip())
    elif name == "bitext":
        with (data_dir / "bitext" / "customer_support_sample.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                by_intent.setdefault(row["intent"], []).append(row["instruction"].strip())
    else:
        raise ValueError(name)
    return {k: [t for t in dict.fromkeys(v) if t] for k, v in by_intent.items()}


def _split(texts: list[str], rng: random.Random, calib: float, dev: float) -> tuple[list[str], list[str], list[str]]:
    texts = texts[:]
    rng.shuffle(texts)
    n_dev = max(1, round(len(texts) * dev))
    n_cal = max(1, round(len(texts) * calib))
    return texts[n_dev + n_cal:], texts[n_dev:n_dev + n_cal], texts[:n_dev]


def load(name: str, data_dir: Path = DEFAULT_DATA_DIR, seed: int = 13) -> IntentSet:
    """One data set's three parts (deterministic)."""
    rng = random.Random(f"{name}-{seed}")
    if name == "banking77":
        rest, held = banking77_split(data_dir / "banking77" / "train.csv", seed)
        dev: dict[str, list[str]] = {}
        for text, intent in held:
            dev.setdefault(intent, []).append(text)
        train, calib = {}, {}
        for intent in sorted(rest):
            texts = rest[intent][:]
            rng.shuffle(texts)
            n = max(1, round(len(texts) / 8))
            calib[intent], train[intent] = texts[:n], texts[n:]
        return IntentSet(name, train, calib, dev)
    parts: tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]] = ({}, {}, {})
    for intent, texts in sorted(_read(name, data_dir).items()):
        for part, chosen in zip(parts, _split(texts, rng, 0.1, 0.2)):
            part[intent] = chosen
    return IntentSet(name, *parts)


def load_all(data_dir: Path = DEFAULT_DATA_DIR, seed: int = 13) -> dict[str, IntentSet]:
    return {name: load(name, data_dir, seed) for name in DATASETS}


def in_scope_for(text_set: str, intent: str, kb_set: str) -> bool:
    """Whether a text of ``text_set`` with ``intent`` could rightly be answered by a knowledge base of ``kb_set``."""
    return text_set == kb_set or intent in OVERLAPS.get((text_set, kb_set), set())


def bitext_responses(data_dir: Path = DEFAULT_DATA_DIR) -> dict[str, list[tuple[str, str]]]:
    """Bitext's (instruction, response) rows per intent: what an answer to a request says."""
    out: dict[str, list[tuple[str, str]]] = {}
    with (data_dir / "bitext" / "customer_support_sample.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["intent"], []).append((row["instruction"].strip(), row["response"].strip()))
    return out
