"""Knowledge-layer benchmark on BANKING77 (issue: knowledge layer).

    .venv/bin/python bench/retrieval.py [--scale 100000] [--queries 400]

Quality: one entry per intent, its variants = the 80% texts; the 20% are queries. Top-1 entry accuracy and
recall@3 for dense-only, BM25-only, weighted fusion and RRF. Speed: embedding throughput while ingesting,
re-ingest of unchanged data, query latency at ~10k records and at --scale records (synthetic variants whose
vectors are noisy copies of real ones, inserted directly), peak memory. Writes bench/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import banking77_entries, banking77_split, percentiles, save  # noqa: E402
from knowledge import KnowledgeBase  # noqa: E402
from knowledge.store import Record  # noqa: E402

METHODS = ("dense", "bm25", "weighted", "rrf")


def minilm_flops_per_token(seq_len: float) -> float:
    """Forward FLOPs per token of MiniLM-L6 (6 layers, d=384, ffn=1536): 2 x MACs of the matmuls + attention."""
    d, ffn, layers = 384, 1536, 6
    per_layer = 4 * d * d + 2 * d * ffn + 2 * seq_len * d  # QKV+out, FFN, attention scores+mix
    return 2.0 * layers * per_layer


def quality(kb: KnowledgeBase, dev: list[tuple[str, str]]) -> dict:
    embed = functools.lru_cache(maxsize=None)(kb.embedder.embed_query)
    kb.embedder.embed_query = embed  # the same query embedding for every method
    out = {}
    for method in METHODS:
        top1 = rec3 = 0
        for text, intent in dev:
            ids = [h.entry_id for h in kb.search(text, k=3, method=method)]
            top1 += bool(ids) and ids[0] == intent
            rec3 += intent in ids
        out[method] = {"top1": round(top1 / len(dev), 4), "recall@3": round(rec3 / len(dev), 4)}
        print(f"  {method:9s} top-1 {out[method]['top1']:.4f}  recall@3 {out[method]['recall@3']:.4f}", flush=True)
    # The same without variant support (the best variant alone decides an entry's score).
    support = kb.fusion.support  # the fusion component took knowledge.variant_support when kb was built
    kb.fusion.support = 1
    top1 = rec3 = 0
    for text, intent in dev:
        ids = [h.entry_id for h in kb.search(text, k=3)]
        top1 += bool(ids) and ids[0] == intent
        rec3 += intent in ids
    kb.fusion.support = support
    out["weighted_best_variant_only"] = {"top1": round(top1 / len(dev), 4), "recall@3": round(rec3 / len(dev), 4)}
    print(f"  weighted, best variant only {out['weighted_best_variant_only']}", flush=True)
    del kb.embedder.embed_query
    return out


def latency(kb: KnowledgeBase, queries: list[str]) -> dict:
    """Per query, embedding included: the embedder's cache of recent queries (which the quality run filled with
    these very queries) is emptied before each one."""
    for q in queries[:20]:
        kb.search(q)  # warm-up
    times = []
    for q in queries:
        kb.embedder.forget_recent()
        start = time.perf_counter()
        kb.search(q)
        times.append((time.perf_counter() - start) * 1000)
    return percentiles(times)


def scale_up(kb: KnowledgeBase, target: int, seed: int = 7) -> int:
    """Add synthetic variants (shuffled words, vector = real vector + noise) until the store has ``target``."""
    store = kb.store()
    base = store._col.get(include=["embeddings", "metadatas", "documents"])
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    vecs = np.asarray(base["embeddings"], dtype=np.float32)
    have = store.count()
    records, vectors, i = [], [], 0
    while have + len(records) < target:
        j = rng.randrange(len(base["ids"]))
        words = base["documents"][j].split()
        rng.shuffle(words)
        meta = dict(base["metadatas"][j])
        meta["text_hash"] = meta["hash"] = f"synthetic-{i}"
        records.append(Record(id=f"synthetic-{i}", entry_id=meta["entry_id"], text=" ".join(words), metadata=meta))
        v = vecs[j] + nrng.normal(0, 0.04, size=vecs.shape[1]).astype(np.float32)
        vectors.append(v / np.linalg.norm(v))
        i += 1
    store.upsert(records, np.stack(vectors))
    kb.lexical.rebuild(store)
    return store.count()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=100_000, help="records for the large-store latency run")
    ap.add_argument("--queries", type=int, default=400, help="queries for each latency measurement")
    args = ap.parse_args()

    import torch

    train, dev = banking77_split()
    entries = banking77_entries(train)
    n_texts = sum(len(e["questions"]) for e in entries)
    print(f"BANKING77: {len(entries)} entries, {n_texts} variants, {len(dev)} dev queries; "
          f"torch threads {torch.get_num_threads()}", flush=True)
    results: dict = {"dataset": "banking77 train.csv, 80/20 split per intent, seed 13",
                     "entries": len(entries), "variants": n_texts, "dev_queries": len(dev)}

    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(path=Path(tmp) / "kb")
        kb.embedder.warm_up()
        texts = [q for e in entries for q in e["questions"]]
        tok = kb.embedder._model.tokenizer
        mean_tokens = float(np.mean([len(tok(t)["input_ids"]) for t in texts]))

        start = time.perf_counter()
        report = kb.add(entries, source="banking77")
        ingest_s = time.perf_counter() - start
        start = time.perf_counter()
        kb.embedder.embed(texts)
        embed_s = time.perf_counter() - start
        start = time.perf_counter()
        again = kb.add(entries, source="banking77")
        reingest_s = time.perf_counter() - start
        assert again.records_embedded == 0 and again.unchanged == len(entries)

        gflop = minilm_flops_per_token(mean_tokens) * mean_tokens / 1e9
        results["ingest"] = {
            "records": report.records_embedded, "first_ingest_s": round(ingest_s, 2),
            "ingest_texts_per_s": round(report.records_embedded / ingest_s, 1),
            "embedding_only_texts_per_s": round(len(texts) / embed_s, 1),
            "mean_tokens_per_text": round(mean_tokens, 1),
            "gflop_per_text": round(gflop, 4),
            "achieved_gflops": round(gflop * len(texts) / embed_s, 1),
            "reingest_unchanged_s": round(reingest_s, 2),
            "reingest_share_of_first": round(reingest_s / ingest_s, 4),
        }
        print(f"  ingest {results['ingest']}", flush=True)

        results["quality"] = quality(kb, dev)
        queries = [t for t, _ in dev]
        random.Random(1).shuffle(queries)
        results["latency_10k"] = {"records": kb.store().count(), **latency(kb, queries[: args.queries])}
        print(f"  latency at {results['latency_10k']['records']} records: {results['latency_10k']}", flush=True)

        if args.scale:
            n = scale_up(kb, args.scale)
            results["latency_scaled"] = {"records": n, **latency(kb, queries[: args.queries])}
            print(f"  latency at {n} records: {results['latency_scaled']}", flush=True)
    results["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    results["cpu"] = {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    print(f"  peak RSS {results['peak_rss_mib']} MiB -> {save('retrieval', results)}")


if __name__ == "__main__":
    main()
