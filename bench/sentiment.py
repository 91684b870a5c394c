"""Sentiment benchmark: the shipped classifier against the VADER lexicon on held-out dev splits, and speed.

    .venv/bin/python bench/sentiment.py [--model bundled:sentiment] [--dtype auto|float32|bfloat16] [--out NAME]

Dev splits are those of ``finetune.sentiment.shared_splits`` (never trained on): review sentences (20%),
TweetEval sentiment (40% of its val file), TweetEval emotion val (anger). Speed: one message at a time, as in
the chat path (p50/p95 over 300 customer-style messages after warm-up), and batched throughput.
Writes bench/results/sentiment.json.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import SHARED, percentiles, require, save  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bundled:sentiment")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    p.add_argument("--out", default="sentiment", help="results file name in bench/results")
    args = p.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    from bot.escalation.sentiment import SentimentClassifier
    from finetune.escalation_examples import bitext_split
    from finetune.sentiment import evaluate, shared_splits

    splits = shared_splits(require(SHARED))
    result: dict = {"model": args.model, "dtype": args.dtype, "dev_sizes": {k: len(v) for k, v in splits.dev.items()}}
    for name, ref in (("model", args.model), ("vader", "vader")):
        clf = SentimentClassifier(ref, dtype=args.dtype).warm_up()
        result[name] = evaluate(clf.predict, splits.dev)

    clf = SentimentClassifier(args.model, dtype=args.dtype).warm_up()
    train, test = bitext_split()
    messages = [r["instruction"] for r in test][:300]
    for m in messages[:20]:
        clf.predict_one(m)
    times = []
    for m in messages:
        t = time.perf_counter()
        clf.predict_one(m)
        times.append((time.perf_counter() - t) * 1000)
    result["latency_single_message"] = percentiles(times)
    batch = [r["instruction"] for r in test]
    t = time.perf_counter()
    clf.predict(batch)
    result["batched_messages_per_s"] = round(len(batch) / (time.perf_counter() - t), 1)
    # How often ordinary support requests read as negative: what the escalation thresholds were tuned on
    # (Bitext's train split; bench/escalation.py measures the policy on the test split).
    ordinary = [r["instruction"] for r in train if r["intent"] not in
                {"complaint", "contact_human_agent", "contact_customer_service"}]
    preds = clf.predict(ordinary)
    result["bitext_ordinary_train"] = {
        "n": len(ordinary),
        "labelled_negative": round(sum(p.label == "negative" for p in preds) / len(preds), 4),
        "p_negative_ge_0.95": round(sum(p.scores["negative"] >= 0.95 for p in preds) / len(preds), 4),
        "anger_ge_0.85": round(sum(p.anger >= 0.85 for p in preds) / len(preds), 4),
    }
    path = save(args.out, result)
    for name in ("model", "vader"):
        r = result[name]
        print(f"{name:6s} reviews negative recall {r['reviews']['negative_recall']:.3f}  "
              f"tweeteval macro recall {r['tweeteval_sentiment']['macro_recall']:.3f}  "
              f"anger P/R {r['tweeteval_emotion'].get('anger_precision', 0):.3f}/"
              f"{r['tweeteval_emotion'].get('anger_recall', 0):.3f}")
    print("single message:", result["latency_single_message"], " batched/s:", result["batched_messages_per_s"])
    print("bitext ordinary:", result["bitext_ordinary_train"])
    print("wrote", path)


if __name__ == "__main__":
    main()
