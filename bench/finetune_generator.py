"""Generator fine-tuning on Bitext, on this CPU: SmolLM2-135M before and after, and LoRA vs full throughput.

    .venv/bin/python bench/finetune_generator.py                       # default options; bench/results/finetune_generator.json
    .venv/bin/python bench/finetune_generator.py --method full --epochs 0.1 --no-evaluate --out finetune_generator_full_speed
    .venv/bin/python bench/finetune_generator.py --shipped              # the shipped adapter vs the plain model, held out

A company FAQ is made from the Bitext customer-support sample: ``--per-intent`` rows of each of its 27 intents
(train part of the 70/30 split of ``finetune.escalation_examples``), one entry per row (the customer's request as
the question, the agent's reply as the curated answer). Bitext's ``{{placeholders}}`` are filled with one
fictitious company's details (phone number, opening hours, web site, ...), so that answers carry the concrete
facts a real FAQ has, and the key-fact metric has numbers to look for. ``finetune.generator.train`` then holds out
15% of the entries, builds every example with the bot's own retrieval and prompt, and measures ROUGE-L, key facts,
grounding rate and no-answer accuracy on the held-out questions before and after training.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import SHARED, require, save  # noqa: E402

from finetune.bitext import COMPANY, fill  # noqa: E402,F401  (COMPANY: re-exported for older callers)


def bitext_entries(per_intent: int, seed: int = 13, part: str = "train") -> list:
    """``per_intent`` rows of each intent from the ``part`` ("train" or "test") of Bitext, as FAQ entries
    (deterministic)."""
    import random

    from finetune.escalation_examples import bitext_split
    from knowledge.schema import FAQEntry

    require(SHARED / "bitext")
    train, test = bitext_split()
    by_intent: dict[str, list[dict]] = {}
    for row in train if part == "train" else test:
        by_intent.setdefault(row["intent"], []).append(row)
    rng = random.Random(seed)
    rows = [r for intent in sorted(by_intent) for r in rng.sample(by_intent[intent], per_intent)]
    return [FAQEntry(id=f"bitext-{i:04d}", questions=[fill(r["instruction"]).strip()],
                     answer=fill(r["response"]).strip(), category=r["category"].lower()) for i, r in enumerate(rows)]


def main() -> None:
    from finetune.generator import GeneratorOptions

    defaults = GeneratorOptions()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-intent", type=int, default=10, help="Bitext rows (FAQ entries) per intent")
    p.add_argument("--method", choices=["lora", "full"], default=defaults.method)
    p.add_argument("--epochs", type=float, default=defaults.epochs)
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=defaults.bf16)
    p.add_argument("--max-length", type=int, default=defaults.max_length)
    p.add_argument("--evaluate", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--out", default="finetune_generator", help="results file name in bench/results")
    p.add_argument("--keep", type=Path, help="keep the fine-tuned model in this directory")
    p.add_argument("--shipped", action="store_true",
                   help="no training: the plain model vs the shipped adapter (bundled:grounded) on Bitext's test "
                        "part, which neither was trained on; bench/results/finetune_generator_shipped.json")
    args = p.parse_args()
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    if args.shipped:
        shipped(args, GeneratorOptions())
        return
    from finetune.generator import train

    entries = bitext_entries(args.per_intent)
    options = dataclasses.replace(defaults, method=args.method, epochs=args.epochs, bf16=args.bf16,
                                  max_length=args.max_length)
    command = "bench/finetune_generator.py " + " ".join(sys.argv[1:])
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        meta = train(entries, args.keep or Path(tmp) / "model", options, command=command, evaluate=args.evaluate,
                     data_note=f"Bitext customer-support sample, {args.per_intent} rows per intent "
                               f"({len(entries)} entries), placeholders filled with a fictitious company")
    meta["wall_seconds"] = round(time.perf_counter() - start, 1)
    meta["threads"] = torch.get_num_threads()
    print(f"{meta['steps']} steps, {meta['seconds_per_step']} s/step, {meta['train_tokens_per_s']} tokens/s, "
          f"loss {meta['first_loss']} -> {meta['final_loss']}; whole run {meta['wall_seconds']:.0f} s")
    for key in ("before", "after"):
        if key in meta:
            m = {k: v for k, v in meta[key].items() if k != "samples"}
            print(key, m)
    print("wrote", save(args.out, meta))


def shipped(args: argparse.Namespace, options) -> None:
    """Held-out before/after for the shipped grounded-answer adapter: Bitext's test part as an FAQ (``--per-intent``
    rows per intent), examples built by the bot's retrieval and prompt as ``finetune.generator`` builds them
    (20% no-answer, the gold entry and its near-duplicates removed), at most ``max_eval``; the plain model and the
    adapter write freely (as the fine-tuning figures are measured), and the adapter once more the way the bot runs
    it by default (quote-only decoding)."""
    import random

    from bot.config import load_settings
    from bot.generation.local import CausalLMGenerator
    from finetune.generator import _knowledge_base, build_examples, evaluate_generator

    entries = bitext_entries(args.per_intent, part="test")
    start = time.perf_counter()
    out: dict = {"data": f"Bitext test part (never trained on), {args.per_intent} rows per intent "
                         f"({len(entries)} entries), placeholders filled", "command": "bench/finetune_generator.py "
                                                                                     + " ".join(sys.argv[1:])}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, knowledge={"path": Path(tmp) / "kb"})
        kb = _knowledge_base(entries, settings, Path(tmp) / "kb")
        examples = build_examples(entries, kb, options, settings.generator.max_passages,
                                  random.Random(options.seed))
        random.Random(options.seed).shuffle(examples)
        examples = examples[: options.max_eval]
        out["examples"] = len(examples)
        g = settings.generator
        for name, adapter, quote in (("plain", "none", False), ("shipped adapter", "bundled:grounded", False),
                                     ("shipped adapter, quote-only (the bot's default)", "bundled:grounded", True)):
            gen = CausalLMGenerator(g.model, settings.cache, g.max_new_tokens, dtype="float32",
                                    prompt_lookup_tokens=10, adapter=adapter, quote_only=quote)
            t = time.perf_counter()
            out[name] = evaluate_generator(gen, examples, kb.embedder.embed, settings)
            out[name]["seconds"] = round(time.perf_counter() - t, 1)
            print(name, {k: v for k, v in out[name].items() if k != "samples"}, flush=True)
    out["wall_seconds"] = round(time.perf_counter() - start, 1)
    print("wrote", save("finetune_generator_shipped", out))


if __name__ == "__main__":
    main()
