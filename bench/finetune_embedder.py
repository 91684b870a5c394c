"""Embedder fine-tuning on BANKING77 (issue: fine-tuning), on this CPU.

    .venv/bin/python bench/finetune_embedder.py          # ~7 min on 2 cores; bench/results/finetune_embedder.json

The bundled MiniLM is fine-tuned with finetune.embedder's defaults on the 80% split of BANKING77 (the same split
as the retrieval benchmark: one FAQ entry per intent, its training queries as question variants); top-1 and
recall@3 are measured on the 20% dev split through the bot's hybrid search, before and after.

    .venv/bin/python bench/finetune_embedder.py --tune --learning-rate X --out NAME   # choose options

``--tune`` never touches the 20% dev split: it trains on 80% of the 80% split and measures on the other 20% of
it (a tuning split, seed 99). Options are chosen there, then reported on the dev split.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import banking77_entries, banking77_split, save  # noqa: E402


def main() -> None:
    import argparse
    import dataclasses

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hard-negatives", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--tune", action="store_true",
                   help="train on 80%% of the 80%% split, measure on its other 20%% (the dev split is not used)")
    p.add_argument("--out", default=None, help="results file name in bench/results (default: finetune_embedder, "
                   "or finetune_embedder_tune with --tune)")
    args = p.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    from finetune.embedder import EmbedderOptions, split_variants, train
    from knowledge.schema import FAQEntry

    train_split, dev = banking77_split()
    entries = [FAQEntry(**e) for e in banking77_entries(train_split)]
    data_note = "BANKING77 80% split (seed 13)"
    if args.tune:  # the fine-tuning script's own hold-out, on the training entries only
        entries, dev = split_variants(entries, 0.2, seed=99)
        data_note = "BANKING77 80% split (seed 13), less its 20% tuning split (seed 99), measured on the tuning split"
    options = EmbedderOptions()
    changes = {k: v for k, v in (("hard_negatives", args.hard_negatives), ("learning_rate", args.learning_rate),
                                 ("epochs", args.epochs)) if v is not None}
    options = dataclasses.replace(options, **changes)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        meta = train(entries, Path(tmp) / "model", options, dev=[(t, i) for t, i in dev],
                     command="bench/finetune_embedder.py " + " ".join(sys.argv[1:]), data_note=data_note)
    meta["wall_seconds"] = round(time.perf_counter() - start, 1)
    b, a = meta["before"], meta["after"]
    print(f"dense top-1 {b['dense_top1']:.4f} -> {a['dense_top1']:.4f} "
          f"({100 * (a['dense_top1'] - b['dense_top1']):+.2f} points)")
    print(f"top-1 {b['top1']:.4f} -> {a['top1']:.4f} ({100 * (a['top1'] - b['top1']):+.2f} points); "
          f"recall@3 {b['recall_at_3']:.4f} -> {a['recall_at_3']:.4f}; training {meta['train_seconds']:.0f} s, "
          f"whole run {meta['wall_seconds']:.0f} s")
    print("wrote", save(args.out or ("finetune_embedder_tune" if args.tune else "finetune_embedder"), meta))


if __name__ == "__main__":
    main()
