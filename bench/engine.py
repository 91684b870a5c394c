"""Conversation-engine benchmark (issue: conversation engine).

    .venv/bin/python bench/engine.py [--skip-demo]

1. BANKING77 + out-of-scope, decision level. The knowledge base is the BANKING77 80% split (one entry per
   intent, ~100 phrasings each); in-scope queries are the 20% dev split; out-of-scope queries are texts whose
   intent is not in the knowledge base: Bitext shop requests (orders, delivery, invoices, newsletter), TweetEval
   tweets and review sentences. Each query goes through search and the matcher (calibrated probability), then the
   decision bands: answered right (the faq band, right entry), clarified right (the clarify band, right entry
   among the choices), and for out-of-scope queries the share that falls back (neither answered nor offered
   choices). The curve (answered right / out-of-scope fallback as the answer threshold moves, the clarify band
   closed) is plotted in bench/results/threshold_tradeoff.png.
2. The demo knowledge base (examples/acme) and the scripted set bench/data/acme_scripted.jsonl, through the
   real bot with the default generator: share handled right per question type and per mode, facts found,
   and the grounding rate of the language model's answers.

Writes bench/results/engine.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import REPO, RESULTS, SHARED, banking77_entries, banking77_split, percentiles, require, save  # noqa: E402

OOS_BITEXT_INTENTS = {"place_order", "track_order", "change_order", "cancel_order", "delivery_options",
                      "delivery_period", "change_shipping_address", "set_up_shipping_address",
                      "newsletter_subscription", "get_invoice", "check_invoice"}


def out_of_scope(n_each: int = 300, seed: int = 3) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    bitext = []
    with require(SHARED / "bitext" / "customer_support_sample.csv").open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["intent"] in OOS_BITEXT_INTENTS:
                bitext.append(row["instruction"].strip())
    tweets = require(SHARED / "tweeteval" / "sentiment" / "val_text.txt").read_text(encoding="utf-8").splitlines()
    reviews = []
    for name in ("amazon_cells_labelled.txt", "yelp_labelled.txt", "imdb_labelled.txt"):
        for line in require(SHARED / "review_sentences" / name).read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                reviews.append(line.rsplit("\t", 1)[0].strip())
    out = []
    for source, texts in (("bitext-shop", bitext), ("tweeteval", tweets), ("reviews", reviews)):
        texts = [t for t in dict.fromkeys(texts) if t]
        out.extend((t, source) for t in rng.sample(texts, min(n_each, len(texts))))
    return out


def banking_tradeoff(answer_threshold: float, clarify_threshold: float) -> dict:
    from bot.conversation.decision import Bands, decide
    from knowledge import KnowledgeBase
    from knowledge.retrieval.matcher import Matcher

    train, dev = banking77_split()
    oos = out_of_scope()
    matcher = Matcher().warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        kb = KnowledgeBase(path=Path(tmp) / "kb")
        kb.add(banking77_entries(train), source="banking77")

        def top(text: str) -> list:
            hits = matcher.run(text, kb.search(text, k=matcher.candidates))
            return [h for h in hits if h.kind == "faq"]

        ins = [(top(text), intent) for text, intent in dev]
        outs = [(top(text), src) for text, src in oos]

    def plan(hits: list, answer: float, clarify: float):
        return decide(hits, Bands(answer=answer, clarify=clarify))

    def measure(answer: float, clarify: float) -> dict:
        right = clarified = 0
        for hits, intent in ins:
            p = plan(hits, answer, clarify)
            right += p.action == "faq" and p.top.entry_id == intent
            clarified += p.action == "clarify" and intent in [h.entry_id for h in p.suggestions]
        oos_fb = sum(plan(hits, answer, clarify).action == "fallback" for hits, _ in outs)
        return {"in_scope_answered_right": round(right / len(ins), 4),
                "in_scope_clarified_right": round(clarified / len(ins), 4),
                "in_scope_resolved": round((right + clarified) / len(ins), 4),
                "out_of_scope_fallback": round(oos_fb / len(outs), 4)}

    grid = [round(0.30 + 0.01 * i, 2) for i in range(66)]
    curve = [{"threshold": t, **measure(t, t)} for t in grid]
    at = measure(answer_threshold, clarify_threshold)
    by_source = {}
    for src in sorted({s for _, s in outs}):
        sub = [hits for hits, s in outs if s == src]
        by_source[src] = round(sum(plan(h, answer_threshold, clarify_threshold).action == "fallback"
                                   for h in sub) / len(sub), 4)
    answered = [(hits, intent) for hits, intent in ins if plan(hits, answer_threshold, clarify_threshold).action == "faq"]
    result = {"in_scope_queries": len(ins), "out_of_scope_queries": len(outs),
              "answer_threshold": answer_threshold, "clarify_threshold": clarify_threshold, **at,
              "out_of_scope_fallback_by_source": by_source,
              "in_scope_faq_mode_share": round(len(answered) / len(ins), 4),
              "faq_mode_precision": round(sum(h[0].entry_id == i for h, i in answered) / max(1, len(answered)), 4),
              "curve": curve}
    plot(curve, answer_threshold)
    return result


def plot(curve: list[dict], chosen: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [c["threshold"] for c in curve]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(t, [c["in_scope_answered_right"] for c in curve], label="in-scope answered with the right entry")
    ax.plot(t, [c["out_of_scope_fallback"] for c in curve], label="out-of-scope falling back")
    ax.axvline(chosen, color="grey", linestyle="--", label=f"default answer_threshold = {chosen}")
    ax.axhline(0.88, color="C0", linestyle=":", linewidth=0.8)
    ax.axhline(0.85, color="C1", linestyle=":", linewidth=0.8)
    ax.set_xlabel("answer threshold on the calibrated probability (clarify band closed)")
    ax.set_ylabel("share of queries")
    ax.set_title("BANKING77 knowledge base: answering vs abstaining")
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    fig.savefig(RESULTS / "threshold_tradeoff.png")


def demo_scripted(generator: dict | None = None) -> dict:
    from bot.config import load_settings
    from bot.conversation.prompting import is_no_answer
    from bot.engine import Bot
    from knowledge import KnowledgeBase

    cases = [json.loads(line) for line in (REPO / "bench" / "data" / "acme_scripted.jsonl").read_text().splitlines()
             if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        # Answering only: escalation off (a run of fallbacks would hand over); bench/escalation.py measures it,
        # and the latency of whole turns with sentiment and the policy in the path.
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"}, answer={"unanswered_log": Path(tmp) / "u.jsonl"},
                                 generator=generator or {}, escalation={"enabled": False})
        KnowledgeBase(settings=settings).ingest(REPO / "examples" / "acme")
        bot = Bot(settings=settings).warm_up()
        grounding_log: list[str] = []
        import logging

        class Capture(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.getMessage().startswith("generated answer rejected"):
                    grounding_log.append(record.getMessage())

        logging.getLogger("supportbot").addHandler(Capture())
        logging.getLogger("supportbot").setLevel(logging.INFO)
        from bench.common import RecordingGenerator

        bot.generator = recorder = RecordingGenerator(bot.generator)  # the LM's own texts, before the checks
        checks = recorder.outputs
        followup_retrieval = followups_with_and_without_context(bot, cases)
        rows = []
        for case in cases:
            sid = f"bench-{case['id']}"
            before = len(grounding_log)
            n_checks = len(checks)
            for turn in case["turns"]:
                reply = bot.chat(turn, session_id=sid)
            lm_called = len(checks) > n_checks
            clarified = reply.mode == "clarify" and case["expect"] in [s.entry_id for s in reply.suggestions]
            if case["expect"] == "fallback":
                right = reply.mode == "fallback"
            else:
                right = (reply.mode in ("faq", "generated") and case["expect"] in [s.entry_id for s in reply.sources]) \
                    or clarified
            facts = all(f.lower() in reply.text.lower() for f in case["facts"]) if right and not clarified else False
            for c in checks[n_checks:]:  # was the LM's own answer right (expected source's facts present)?
                c["case"], c["expect"] = case["id"], case["expect"]
                c["answer_right"] = case["expect"] != "fallback" and bool(case["facts"]) and \
                    all(f.lower() in c["answer"].lower() for f in case["facts"])
                c["no_answer"] = is_no_answer(c["answer"])
            rows.append({"id": case["id"], "type": case["type"], "expect": case["expect"], "mode": reply.mode,
                         "clarified": clarified, "suggestions": [s.entry_id for s in reply.suggestions],
                         "extractive": reply.extractive, "sources": [s.entry_id for s in reply.sources],
                         "right": right, "facts_found": facts, "lm_called": lm_called,
                         "lm_grounded": reply.mode == "generated" and not reply.extractive,
                         "latency_ms": round(reply.latency_ms, 1), "text": reply.text[:300]})
    by_type = {}
    for t in sorted({r["type"] for r in rows}):
        sub = [r for r in rows if r["type"] == t]
        by_type[t] = {"n": len(sub), "right": round(sum(r["right"] for r in sub) / len(sub), 3),
                      "answered_right": round(sum(r["right"] and not r["clarified"] for r in sub) / len(sub), 3),
                      "clarified_right": round(sum(r["clarified"] for r in sub) / len(sub), 3),
                      "facts": round(sum(r["facts_found"] for r in sub) / len(sub), 3)}
    by_mode = {}
    for m in ("faq", "clarify", "generated", "fallback"):
        sub = [r for r in rows if r["mode"] == m]
        if sub:
            by_mode[m] = {"n": len(sub), "right": round(sum(r["right"] for r in sub) / len(sub), 3)}
    lm = [r for r in rows if r["lm_called"]]
    answered_by_lm = [r for r in lm if not all(c["no_answer"] for c in checks if c["case"] == r["id"])]
    faq_latency = [r["latency_ms"] for r in rows if r["mode"] == "faq"]
    return {"cases": len(rows), "right": round(sum(r["right"] for r in rows) / len(rows), 3), "by_type": by_type,
            "by_mode": by_mode, "lm_calls": len(lm), "lm_answers": len(answered_by_lm),
            "lm_grounding_rate": round(sum(r["lm_grounded"] for r in answered_by_lm) / len(answered_by_lm), 3)
            if answered_by_lm else None,
            "extractive_answers": sum(r["extractive"] for r in rows),
            "faq_latency": percentiles(faq_latency) if faq_latency else None,
            "followup_retrieval": followup_retrieval, "lm_outputs": checks, "rows": rows}


def followups_with_and_without_context(bot, cases: list[dict]) -> dict:
    """Retrieval for the follow-up turns: expected entry at top-1 / in top-3, with and without condensation."""
    out = {}
    for label, use_context in (("with_context", True), ("message_alone", False)):
        top1 = top3 = n = 0
        for case in cases:
            if case["type"] != "followup":
                continue
            hits = bot.retrieve(case["turns"][-1], case["turns"][:-1] if use_context else [])
            ids = [h.entry_id for h in hits[:3]]
            n += 1
            top1 += bool(ids) and ids[0] == case["expect"]
            top3 += case["expect"] in ids
        out[label] = {"n": n, "top1": round(top1 / n, 3), "top3": round(top3 / n, 3)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-demo", action="store_true", help="only the BANKING77 decision benchmark")
    ap.add_argument("--skip-banking", action="store_true", help="only the demo scripted set")
    ap.add_argument("--generator-dtype", default=None, help="float32 or bfloat16 (default: the settings')")
    ap.add_argument("--prompt-lookup", type=int, default=None, help="prompt_lookup_tokens (default: the settings')")
    ap.add_argument("--out", default="engine", help="results name under bench/results/")
    args = ap.parse_args()
    from bot.config import load_settings

    a = load_settings().answer
    out: dict = {}
    if not args.skip_banking:
        b = out["banking77"] = banking_tradeoff(a.answer_threshold, a.clarify_threshold)
        print(f"BANKING77 @ answer_threshold {a.answer_threshold}, clarify_threshold {a.clarify_threshold}: "
              f"in-scope answered right {b['in_scope_answered_right']}, clarified right "
              f"{b['in_scope_clarified_right']}, resolved {b['in_scope_resolved']}, out-of-scope fallback "
              f"{b['out_of_scope_fallback']} {b['out_of_scope_fallback_by_source']}; faq mode "
              f"{b['in_scope_faq_mode_share']} (precision {b['faq_mode_precision']})", flush=True)
    if not args.skip_demo:
        gen = {}
        if args.generator_dtype:
            gen["dtype"] = args.generator_dtype
        if args.prompt_lookup is not None:
            gen["prompt_lookup_tokens"] = args.prompt_lookup
        out["generator"] = {**load_settings().generator.model_dump(include={"dtype", "prompt_lookup_tokens"}), **gen}
        out["demo"] = demo_scripted(gen)
        d = out["demo"]
        print(f"demo scripted: {d['right']} right of {d['cases']}; by type {d['by_type']}; by mode {d['by_mode']}; "
              f"LM answers {d['lm_answers']}, grounding rate {d['lm_grounding_rate']}, extractive "
              f"{d['extractive_answers']}; faq latency {d['faq_latency']}; follow-up retrieval "
              f"{d['followup_retrieval']}", flush=True)
    print(save(args.out, out))


if __name__ == "__main__":
    main()
