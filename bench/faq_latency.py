"""End-to-end latency of ``faq`` replies on the demo knowledge base, with the matcher, sentiment and escalation
in every turn, and the matcher's own cost per candidate. Run it alone (nothing else on the CPU).

    .venv/bin/python bench/faq_latency.py [--rounds 5] [--profile 30]

Side by side in one run: the encoder models on torch fp32, torch bf16 (where the CPU has native bf16) and the
path ``knowledge.inference = auto`` chooses (docs/inference.md). Each path runs in its own process (as a deployment
does: one bot per process; several bots in one process share the cores through their thread pools), the paths
taking turns, ``--repeats`` times each.

Writes bench/results/faq_latency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import REPO, percentiles, save  # noqa: E402


PATHS = (("torch-fp32", "torch", "float32"), ("torch-bf16", "torch", "bfloat16"), ("auto", "auto", "auto"))


def main() -> int:
    from bot.config import load_settings
    from bot.engine import Bot
    from knowledge import KnowledgeBase

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2, help="processes per path, the paths taking turns")
    p.add_argument("--path", help=argparse.SUPPRESS)  # a child process: measure this one path, print JSON
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also profile the auto path's faq turns (cProfile) and print the N costliest functions")
    args = p.parse_args()
    if args.path is None:
        return parent(args)
    questions = [q for e in (json.loads(line) for line in (REPO / "examples" / "acme" / "faq.jsonl").read_text()
                             .splitlines() if line.strip()) for q in e["questions"][:1]]
    out: dict = {"paths": {}}
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings(knowledge={"path": Path(tmp) / "kb"},
                             answer={"unanswered_log": Path(tmp) / "u.jsonl", "phrasings_log": Path(tmp) / "p.jsonl"})
        KnowledgeBase(settings=base).ingest(REPO / "examples" / "acme")
        bots = {}
        for label, backend, dtype in PATHS:
            if label != args.path:
                continue
            settings = base.model_copy(deep=True)
            settings.knowledge.inference = backend
            settings.knowledge.embedding_dtype = dtype
            settings.sentiment.dtype = dtype
            bots[label] = Bot(settings=settings).warm_up(generator=False)
            for q in questions[:5]:
                bots[label].chat(q)
        faq: dict[str, list[float]] = {label: [] for label in bots}
        for r in range(args.rounds):  # the paths take turns, round by round: drift on the machine hits them alike
            for label, bot in bots.items():
                for i, q in enumerate(questions):
                    reply = bot.chat(q, f"{label}-r{r}-{i}")
                    if reply.mode == "faq":
                        faq[label].append(reply.latency_ms)
        for label, bot in bots.items():
            matcher_ms, pairs = [], 0
            hits = bot.knowledge.search(questions[0], k=bot.matcher.candidates)
            texts = [h.matched for h in hits if h.kind == "faq"]
            for q in questions:
                t0 = time.perf_counter()
                bot.matcher.score(q, texts)
                matcher_ms.append((time.perf_counter() - t0) * 1000)
                pairs += len(texts)
            out["paths"][label] = {"faq_replies": len(faq[label]), "faq_latency": percentiles(faq[label]),
                                   "matcher_per_message": percentiles(matcher_ms), "candidates": len(texts),
                                   "matcher_ms_per_candidate": round(sum(matcher_ms) / pairs, 2),
                                   "embedder_path": bot.knowledge.embedder.path}
        if args.profile:
            import cProfile
            import io
            import pstats

            profiler = cProfile.Profile()
            bot = bots[args.path]
            profiler.enable()
            for i, q in enumerate(questions * 2):
                bot.chat(q, f"profile-{i}")
            profiler.disable()
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(args.profile)
            out["profile_top"] = stream.getvalue()
    print(json.dumps(out))
    return 0


def parent(args: argparse.Namespace) -> int:
    import subprocess

    from knowledge.runtime.models import native_bf16

    labels = [label for label, _, _ in PATHS if label != "torch-bf16" or native_bf16()]
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    profile = ""
    for repeat in range(args.repeats):
        for label in labels:
            cmd = [sys.executable, __file__, "--path", label, "--rounds", str(args.rounds)]
            if args.profile and label == "auto" and repeat == args.repeats - 1:
                cmd += ["--profile", str(args.profile)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            profile = result.pop("profile_top", profile)
            runs[label].append(result["paths"][label])
            print(label, repeat, result["paths"][label]["faq_latency"], flush=True)
    out = {"runs": runs, "faq_p50_ms": {label: [r["faq_latency"]["p50_ms"] for r in rs] for label, rs in runs.items()},
           "matcher_p50_ms": {label: [r["matcher_per_message"]["p50_ms"] for r in rs] for label, rs in runs.items()}}
    if profile:
        out["profile_top"] = profile
        print(profile)
    print(json.dumps({k: out[k] for k in ("faq_p50_ms", "matcher_p50_ms")}))
    print(save("faq_latency", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
