"""The encoder models on each inference path, side by side in one run: speed and quality (issue: fast on every CPU).

    .venv/bin/python bench/inference.py [--out inference]            # ~10 min on 2 cores

Paths (``knowledge.runtime.inference``): torch fp32, torch bf16 (only where the CPU has native bf16), ONNX Runtime
fp32 and ONNX Runtime int8 (each asked for by name), and what ``auto`` chooses. For each:

* the embedder (``bundled:embedder``): throughput in texts/s on 2,000 BANKING77 texts (batches of 32, as ingest
  embeds), one query at a time (p50 ms, as a chat turn embeds), and quality: BANKING77 dev top-1 of the nearest
  train text (the project's 80/20 split; 1 = every dev text's nearest train text has its intent);
* the matcher (``bundled:matcher``): ms per message for 6 candidates (p50), and the largest logit difference from
  fp32 on those pairs (its dev figures on the decision: bench/matcher.py run with each path);
* the sentiment model (``bundled:sentiment``): one message (p50 ms) and its dev figures (``finetune.sentiment``'s
  dev splits: review negative recall, TweetEval macro recall, anger F1);
* ingest end to end: the 10,003 BANKING77 texts through ``KnowledgeBase.add`` (fp32 torch and auto only).

Writes bench/results/inference.json. Measure alone on the machine: nothing else may run meanwhile.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import SHARED, banking77_entries, banking77_split, percentiles, require, save  # noqa: E402

PATHS = (("torch-fp32", "torch", "float32"), ("torch-bf16", "torch", "bfloat16"), ("onnx", "onnx", "float32"),
         ("onnx-int8", "onnx-int8", "float32"), ("auto", "auto", "auto"))


def embedder_figures(backend: str, dtype: str, train: dict, dev: list) -> dict:
    import numpy as np

    from knowledge.embedder import Embedder

    e = Embedder("bundled:embedder", dtype=dtype, backend=backend).warm_up()
    texts = [t for ts in train.values() for t in ts]
    labels = [i for i, ts in train.items() for _ in ts]
    sample = texts[:2000]
    e.embed(sample[:64])
    t = time.perf_counter()
    e.embed(sample)
    throughput = len(sample) / (time.perf_counter() - t)
    singles = []
    for text in [d for d, _ in dev[:220]]:
        t = time.perf_counter()
        e.embed([text])
        singles.append((time.perf_counter() - t) * 1000)
    index = e.embed(texts)
    queries = e.embed([d for d, _ in dev])
    nearest = np.argmax(queries @ index.T, axis=1)
    top1 = float(np.mean([labels[j] == gold for j, (_, gold) in zip(nearest, dev)]))
    return {"path": e.path, "texts_per_s": round(throughput, 1), "query": percentiles(singles[20:]),
            "banking77_dev_top1": round(top1, 4)}


def matcher_figures(backend: str, dev: list, train: dict, reference: list | None) -> tuple[dict, list]:
    import random

    from knowledge.retrieval.matcher import load_matcher
    from knowledge.runtime.inference import path_of
    from knowledge.settings import default_cache_dir

    m = load_matcher("bundled:matcher", default_cache_dir(), backend)
    rng = random.Random(13)
    intents = sorted(train)
    items = []
    for text, gold in dev[:200]:
        others = rng.sample([i for i in intents if i != gold], 5)
        items.append((text, [train[i][0] for i in [gold, *others]]))
    m.logits(items[0][0], items[0][1])
    times, logits = [], []
    for text, cands in items:
        t = time.perf_counter()
        logits.append(m.logits(text, cands))
        times.append((time.perf_counter() - t) * 1000)
    out = {"path": path_of(m.model), "message_6_candidates": percentiles(times),
           "top1_of_6": round(sum(max(range(6), key=lambda k: row[k]) == 0 for row in logits) / len(logits), 4)}
    if reference is not None:
        out["logit_abs_max_vs_fp32"] = round(max(abs(a - b) for r, g in zip(reference, logits)
                                                 for a, b in zip(r, g)), 4)
        out["top1_agreement_vs_fp32"] = round(sum(max(range(6), key=lambda k: r[k]) == max(range(6), key=lambda k: g[k])
                                                  for r, g in zip(reference, logits)) / len(logits), 4)
    return out, logits


def sentiment_figures(backend: str, dtype: str, splits: object, messages: list[str]) -> dict:
    from bot.escalation.sentiment import SentimentClassifier
    from finetune.sentiment import evaluate
    from knowledge.runtime.inference import path_of

    clf = SentimentClassifier("bundled:sentiment", dtype=dtype, backend=backend).warm_up()
    for m in messages[:20]:
        clf.predict([m])
    times = []
    for m in messages[20:220]:
        t = time.perf_counter()
        clf.predict([m])
        times.append((time.perf_counter() - t) * 1000)
    dev = evaluate(clf.predict, splits.dev)  # type: ignore[attr-defined]
    from bot.models import load_sentiment_model
    from knowledge.settings import default_cache_dir

    model, _ = load_sentiment_model("bundled:sentiment", default_cache_dir(), backend)
    return {"path": path_of(model), "message": percentiles(times),
            "reviews_negative_recall": dev["reviews"].get("negative_recall"),
            "tweeteval_macro_recall": dev["tweeteval_sentiment"]["macro_recall"],
            "anger_precision": dev["tweeteval_emotion"].get("anger_precision"),
            "anger_recall": dev["tweeteval_emotion"].get("anger_recall")}


def ingest_seconds(backend: str, dtype: str, train: dict, dev: list) -> dict:
    from knowledge import KnowledgeBase
    from knowledge.settings import load_knowledge_settings

    by_intent = {i: list(ts) for i, ts in train.items()}
    for text, gold in dev:
        by_intent[gold].append(text)
    entries = banking77_entries(by_intent)
    n = sum(len(e["questions"]) for e in entries)
    settings = load_knowledge_settings().model_copy(deep=True)
    settings.knowledge.inference = backend
    settings.knowledge.embedding_dtype = dtype
    settings.knowledge.review_instructions = False  # the embedders' cost, not the review's
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(path=Path(tmp) / "kb", settings=settings)
        kb.embedder.warm_up()
        t = time.perf_counter()
        kb.add(entries, source="banking77")
        seconds = time.perf_counter() - t
    return {"texts": n, "seconds": round(seconds, 1), "texts_per_s": round(n / seconds, 1)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="inference")
    p.add_argument("--no-ingest", action="store_true")
    args = p.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    from finetune.escalation_examples import bitext_split
    from finetune.sentiment import shared_splits
    from knowledge.runtime.cpu import cpu_features
    from knowledge.runtime.inference import APPLIED
    from knowledge.runtime.models import native_bf16

    cpu = cpu_features()
    train, dev = banking77_split()
    splits = shared_splits(require(SHARED))
    messages = [r["instruction"] for r in bitext_split()[1]][:220]
    import onnxruntime

    result: dict = {"cpu": cpu.summary(), "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                    "threads": torch.get_num_threads(), "paths": {}}
    reference = None
    for label, backend, dtype in PATHS:
        if label == "torch-bf16" and not native_bf16():
            continue
        row: dict = {}
        row["embedder"] = embedder_figures(backend, dtype, train, dev)
        row["matcher"], logits = matcher_figures(backend, dev, train, reference)
        if label == "torch-fp32":
            reference = logits
        row["sentiment"] = sentiment_figures(backend, dtype, splits, messages)
        result["paths"][label] = row
        print(label, row, flush=True)
    if not args.no_ingest:
        result["ingest"] = {label: ingest_seconds(backend, dtype, train, dev)
                            for label, backend, dtype in (("torch-fp32", "torch", "float32"), ("auto", "auto", "auto"))}
        print("ingest", result["ingest"], flush=True)
    result["auto_choices"] = {name: {"path": a.backend, "reason": a.reason, "check": a.check.get("onnx-int8")}
                              for name, a in APPLIED.items()}
    base = result["paths"]["torch-fp32"]
    result["ratios_vs_torch_fp32"] = {
        label: {"embedder_texts_per_s": round(r["embedder"]["texts_per_s"] / base["embedder"]["texts_per_s"], 2),
                "embedder_query_p50": round(base["embedder"]["query"]["p50_ms"] / r["embedder"]["query"]["p50_ms"], 2),
                "matcher_p50": round(base["matcher"]["message_6_candidates"]["p50_ms"]
                                     / r["matcher"]["message_6_candidates"]["p50_ms"], 2),
                "sentiment_p50": round(base["sentiment"]["message"]["p50_ms"] / r["sentiment"]["message"]["p50_ms"],
                                       2)}
        for label, r in result["paths"].items()}
    print(result["ratios_vs_torch_fp32"])
    print("wrote", save(args.out, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
