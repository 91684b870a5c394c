"""End-to-end latency of ``faq`` replies on the demo knowledge base, with the matcher, sentiment and escalation
in every turn, and the matcher's own cost per candidate. Run it alone (nothing else on the CPU).

    .venv/bin/python bench/faq_latency.py [--rounds 5]

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


def main() -> int:
    from bot.config import load_settings
    from bot.engine import Bot
    from knowledge import KnowledgeBase

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    questions = [q for e in (json.loads(line) for line in (REPO / "examples" / "acme" / "faq.jsonl").read_text()
                             .splitlines() if line.strip()) for q in e["questions"][:1]]
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"},
                                 answer={"unanswered_log": Path(tmp) / "u.jsonl", "phrasings_log": Path(tmp) / "p.jsonl"})
        KnowledgeBase(settings=settings).ingest(REPO / "examples" / "acme")
        bot = Bot(settings=settings).warm_up(generator=False)
        for q in questions[:5]:
            bot.chat(q)
        faq, matcher_ms, pairs = [], [], 0
        for r in range(args.rounds):
            for i, q in enumerate(questions):
                reply = bot.chat(q, f"r{r}-{i}")
                if reply.mode == "faq":
                    faq.append(reply.latency_ms)
        hits = bot.knowledge.search(questions[0], k=bot.matcher.candidates)
        texts = [h.matched for h in hits if h.kind == "faq"]
        for q in questions:
            t0 = time.perf_counter()
            bot.matcher.score(q, texts)
            matcher_ms.append((time.perf_counter() - t0) * 1000)
            pairs += len(texts)
    out = {"faq_replies": len(faq), "faq_latency": percentiles(faq), "matcher_per_message": percentiles(matcher_ms),
           "candidates": len(texts), "matcher_ms_per_candidate": round(sum(matcher_ms) / pairs, 2)}
    print(json.dumps(out))
    print(save("faq_latency", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
