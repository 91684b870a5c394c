"""SmolLM2 decode speed on this CPU: first-token latency and tokens/s, fp32 vs bf16 weights.

    .venv/bin/python bench/generation_speed.py [--tokens 48] [--reps 3]

Decoding a 135M-parameter model one token at a time reads every weight once per token, so it is bound by
memory bandwidth, not arithmetic: halving the bytes per weight (bf16) is the lever. int8 dynamic
quantisation (per-tensor or per-channel, with or without the tied lm_head) was tried and produced
degenerate text with this model, so it is not offered. Writes bench/results/generation_speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import save  # noqa: E402

QUESTIONS = ["when will I get my money back after returning?", "do you deliver to Norway and how much is it?",
             "how long does a warranty repair take?"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=48)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import torch

    from bot.config import load_settings
    from bot.models import load_causal_lm
    from bot.prompting import PromptPassage, build_messages
    from knowledge import KnowledgeBase

    settings = load_settings()
    tok, fp32 = load_causal_lm("bundled:smollm2", settings.cache)
    kb = KnowledgeBase(settings=settings) if KnowledgeBase(settings=settings).exists() else None
    prompts = []
    for q in QUESTIONS:
        hits = kb.search(q, k=3) if kb else []
        passages = [PromptPassage(h.title, h.text) for h in hits] or [PromptPassage("Refunds", "Refunds take 5 days.")]
        prompts.append(tok.apply_chat_template(build_messages(q, passages), add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True))
    variants = {"fp32": fp32, "bf16": load_causal_lm("bundled:smollm2", settings.cache, "bfloat16")[1]}
    out: dict = {"tokens": args.tokens, "torch_threads": torch.get_num_threads(),
                 "prompt_tokens": [int(p["input_ids"].shape[1]) for p in prompts]}
    texts: dict[str, list[str]] = {}
    for name, model in variants.items():
        first, rate = [], []
        texts[name] = []
        with torch.inference_mode():
            model.generate(**prompts[0], max_new_tokens=4, do_sample=False)
            for _ in range(args.reps):
                for enc in prompts:
                    t = time.perf_counter()
                    model.generate(**enc, max_new_tokens=1, do_sample=False)
                    ft = time.perf_counter() - t
                    t = time.perf_counter()
                    ids = model.generate(**enc, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False)
                    dt = time.perf_counter() - t
                    first.append(ft * 1000)
                    rate.append((args.tokens - 1) / max(1e-6, dt - ft))
            for enc in prompts:
                ids = model.generate(**enc, max_new_tokens=args.tokens, do_sample=False)
                texts[name].append(tok.decode(ids[0][enc["input_ids"].shape[1]:], skip_special_tokens=True))
        out[name] = {"first_token_ms_p50": round(statistics.median(first), 1),
                     "decode_tokens_per_s_p50": round(statistics.median(rate), 1)}
        print(name, out[name], flush=True)
    out["bf16_speedup_decode"] = round(out["bf16"]["decode_tokens_per_s_p50"] / out["fp32"]["decode_tokens_per_s_p50"], 2)
    out["identical_greedy_outputs"] = sum(a == b for a, b in zip(texts["fp32"], texts["bf16"]))
    out["outputs"] = texts
    print(f"bf16 decode speed-up {out['bf16_speedup_decode']}x; identical outputs "
          f"{out['identical_greedy_outputs']}/{len(prompts)}")
    save("generation_speed", out)


if __name__ == "__main__":
    main()
