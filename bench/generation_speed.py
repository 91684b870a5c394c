"""SmolLM2 generation speed on this CPU, through the bot's own generator (streaming).

    .venv/bin/python bench/generation_speed.py [--questions 8] [--max-new-tokens 96]
    .venv/bin/python bench/generation_speed.py --adapters     # the plain model vs the shipped adapter, default
                                                               # dtype and prompt lookup, interleaved per prompt;
                                                               # also a fixed-length decode and quote-only mode

Baseline: plain fp32 transformers ``generate`` (greedy). Variants: bfloat16 weights (decoding a 135M model
one token at a time reads every weight per token, so it is bound by memory bandwidth and Python overhead,
not arithmetic), and prompt-lookup decoding (drafts tokens from n-grams of the prompt, which grounded
answers copy from, and verifies them in one forward pass; greedy-equivalent). Prompts are the real RAG
prompts for the demo knowledge base's scripted questions. Reports first-token latency (time to the first
streamed text) and tokens per second over whole answers (prefill included). int8 dynamic quantisation was
tried and gave degenerate text with this model. Quality is compared with bench/engine.py (see docs/benchmarks.md).
Writes bench/results/generation_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, save  # noqa: E402

VARIANTS = {
    "fp32 greedy (plain transformers generate)": {"dtype": "float32", "prompt_lookup_tokens": 0},
    "fp32 + prompt lookup": {"dtype": "float32", "prompt_lookup_tokens": 10},
    "bf16 greedy": {"dtype": "bfloat16", "prompt_lookup_tokens": 0},
    "bf16 + prompt lookup (default on bf16 CPUs)": {"dtype": "bfloat16", "prompt_lookup_tokens": 10},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--adapters", action="store_true", help="compare generator.adapter none / bundled:grounded")
    args = ap.parse_args()
    import torch

    from bot.config import load_settings
    from bot.generation.local import CausalLMGenerator
    from bot.conversation.prompting import PromptPassage, build_messages
    from knowledge import KnowledgeBase

    cases = [json.loads(line) for line in (REPO / "bench" / "data" / "acme_scripted.jsonl").read_text().splitlines()
             if line.strip()]
    questions = [c["turns"][-1] for c in cases if c["type"] in ("article", "paraphrase")][: args.questions]
    out: dict = {"questions": len(questions), "max_new_tokens": args.max_new_tokens,
                 "torch_threads": torch.get_num_threads(), "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"})
        kb = KnowledgeBase(settings=settings)
        kb.ingest(REPO / "examples" / "acme")
        prompts = [build_messages(q, [PromptPassage(h.title, h.text) for h in kb.search(q, k=3)]) for q in questions]
    if args.adapters:
        compare_adapters(prompts, settings, args, out)
        return
    texts: dict[str, list[str]] = {}
    for name, opts in VARIANTS.items():
        gen = CausalLMGenerator("bundled:smollm2", settings.cache, args.max_new_tokens, **opts).warm_up()
        gen.generate(prompts[0])  # warm-up
        first, rates = [], []
        texts[name] = []
        for messages in prompts:
            start = time.perf_counter()
            pieces, t_first = [], None
            for piece in gen.stream(messages):
                t_first = t_first or time.perf_counter() - start
                pieces.append(piece)
            total = time.perf_counter() - start
            text = "".join(pieces)
            n_tokens = len(gen._tok(text, add_special_tokens=False)["input_ids"]) + 1
            first.append((t_first or total) * 1000)
            rates.append(n_tokens / total)
            texts[name].append(text)
        out["variants"][name] = {"first_token_ms_p50": round(statistics.median(first), 1),
                                 "tokens_per_s_mean": round(statistics.fmean(rates), 1)}
        print(name, out["variants"][name], flush=True)
    base = next(iter(out["variants"].values()))["tokens_per_s_mean"]
    for name, v in out["variants"].items():
        v["speedup"] = round(v["tokens_per_s_mean"] / base, 2)
        v["identical_to_fp32_greedy"] = sum(a == b for a, b in zip(texts[name], next(iter(texts.values()))))
    out["outputs"] = texts
    print(json.dumps(out["variants"], indent=2))
    save("generation_speed", out)


def _timed(gen, messages) -> tuple[float, float, str]:
    start = time.perf_counter()
    pieces, t_first = [], None
    for piece in gen.stream(messages):
        t_first = t_first or time.perf_counter() - start
        pieces.append(piece)
    total = time.perf_counter() - start
    text = "".join(pieces)
    n_tokens = len(gen._tok(text, add_special_tokens=False)["input_ids"]) + 1
    return (t_first or total) * 1000, n_tokens / total, text


def _decode_only(gen, messages, n: int) -> tuple[float, float]:
    """(prefill ms, decode tokens/s) for exactly ``n`` new greedy tokens (the end token ignored, no drafting): the
    cost per token of the model itself, whatever it would answer."""
    import torch

    enc = gen._tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    pad = gen._tok.pad_token_id if gen._tok.pad_token_id is not None else gen._tok.eos_token_id
    with torch.inference_mode():
        start = time.perf_counter()
        gen._model(**enc, logits_to_keep=1)
        prefill = time.perf_counter() - start
        start = time.perf_counter()
        gen._model.generate(**enc, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=pad)
        total = time.perf_counter() - start
    return prefill * 1000, (n - 1) / max(1e-6, total - prefill)


def compare_adapters(prompts, settings, args, out: dict) -> None:
    """The plain bundled model and the shipped adapter (merged), same dtype and decoding, prompt by prompt."""
    from bot.generation.local import CausalLMGenerator

    g = settings.generator
    gens = {name: CausalLMGenerator("bundled:smollm2", settings.cache, args.max_new_tokens, g.dtype,
                                    g.prompt_lookup_tokens, adapter).warm_up()
            for name, adapter in (("plain (adapter none)", "none"), ("bundled:grounded", "bundled:grounded"))}
    for gen in gens.values():
        gen.generate(prompts[0])  # warm-up
    stats = {name: {"first": [], "rates": [], "texts": []} for name in gens}
    for messages in prompts:
        for name, gen in gens.items():
            first, rate, text = _timed(gen, messages)
            stats[name]["first"].append(first)
            stats[name]["rates"].append(rate)
            stats[name]["texts"].append(text)
    decode = {name: {"prefill": [], "rates": []} for name in gens}
    quoted = {name: {"first": [], "total": [], "texts": []} for name in gens}
    for messages in prompts:  # the same work for both: a fixed number of tokens, and the default quote-only mode
        for name, gen in gens.items():
            prefill, rate = _decode_only(gen, messages, args.max_new_tokens)
            decode[name]["prefill"].append(prefill)
            decode[name]["rates"].append(rate)
            gen.quote_only = True
            start = time.perf_counter()
            pieces, first = [], None
            for piece in gen.stream(messages):
                first = first or time.perf_counter() - start
                pieces.append(piece)
            quoted[name]["first"].append((first or time.perf_counter() - start) * 1000)
            quoted[name]["total"].append((time.perf_counter() - start) * 1000)
            quoted[name]["texts"].append("".join(pieces))
            gen.quote_only = False
    out["decode_only"] = {name: {"prefill_ms_p50": round(statistics.median(v["prefill"]), 1),
                                 "decode_tokens_per_s_mean": round(statistics.fmean(v["rates"]), 1)}
                          for name, v in decode.items()}
    out["quote_only"] = {name: {"first_text_ms_p50": round(statistics.median(v["first"]), 1),
                                "whole_answer_ms_p50": round(statistics.median(v["total"]), 1),
                                "outputs": v["texts"]} for name, v in quoted.items()}
    print(json.dumps({"decode_only": out["decode_only"],
                      "quote_only": {k: {a: b for a, b in v.items() if a != "outputs"}
                                     for k, v in out["quote_only"].items()}}))
    out["dtype"], out["prompt_lookup_tokens"] = g.dtype, g.prompt_lookup_tokens
    out["variants"] = {name: {"first_token_ms_p50": round(statistics.median(v["first"]), 1),
                              "tokens_per_s_mean": round(statistics.fmean(v["rates"]), 1), "outputs": v["texts"]}
                       for name, v in stats.items()}
    print(json.dumps({k: {a: b for a, b in v.items() if a != "outputs"} for k, v in out["variants"].items()}))
    save("generation_speed_adapter", out)


if __name__ == "__main__":
    main()
