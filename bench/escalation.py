"""Escalation benchmark (issue: sentiment and escalation).

    .venv/bin/python bench/escalation.py [--skip-scripted]

1. Bitext, single messages. The test split of ``finetune.escalation_examples.bitext_split`` (30% per intent,
   never used for the shipped examples or for tuning thresholds) goes through the bot's own sentiment
   classifier and escalation policy as the first message of a conversation (where only the before-answer
   rules can fire). Share escalated: ``contact_human_agent`` (target >= 0.95) and every intent that is neither
   ``contact_human_agent``, ``contact_customer_service`` nor ``complaint`` (target <= 0.03), by rule and by
   intent; the two in-between intents are reported for information, as is the effect of switching on the
   ``account_closure`` topic.
2. BANKING77, single messages: the held-out 20% of ``finetune._common.banking77_split`` (the built-in fraud
   topic's examples and counter-examples come from the other 80%), each message as the first of a conversation.
   Share escalated for the fraud intents (``finetune.escalation_examples.FRAUD_INTENTS``), the borderline ones
   and all others, by rule; the same for the demo FAQ's question variants; each with the shipped policy and
   with the fraud topic as a plain similarity rule over its hand-written examples (the policy before the
   classifier). ``--tune`` instead chooses the classifier's ``C`` and probability threshold on a tuning split
   of the 80% (20% of it held out, seed 99): the highest fraud recall with <= 1% of the other intents escalated.
3. Scripted conversations (bench/data/escalation_scripted.jsonl): calm FAQ, growing frustration, explicit
   requests, repeated failure, sensitive topics, through the real bot (default models) on the demo knowledge
   base; each must escalate at the expected turn with the expected reason (or never), and the bot must stay
   silent for the rest of the conversation once it has handed over.

Writes bench/results/escalation.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import REPO, SHARED, percentiles, require, save  # noqa: E402

HUMAN = "contact_human_agent"
BETWEEN = {"contact_customer_service", "complaint"}


def single_messages(bot, test: list[dict]) -> dict:
    by_intent: dict[str, list[str | None]] = defaultdict(list)
    times = []
    missed, false = [], []
    for row in test:
        t = time.perf_counter()
        sentiment = bot.sentiment.predict_one(row["instruction"]) if bot.sentiment else None
        decision = bot.policy.before_answer(row["instruction"], sentiment, [])
        times.append((time.perf_counter() - t) * 1000)
        by_intent[row["intent"]].append(decision.reason if decision else None)
        if row["intent"] == HUMAN and decision is None:
            missed.append(row["instruction"])
        elif row["intent"] != HUMAN and row["intent"] not in BETWEEN and decision is not None:
            false.append({"text": row["instruction"], "intent": row["intent"], "reason": decision.reason,
                          "detail": decision.detail})

    def share(reasons: list[str | None]) -> float:
        return round(sum(r is not None for r in reasons) / len(reasons), 4)

    other = [r for intent, rs in by_intent.items() if intent != HUMAN and intent not in BETWEEN for r in rs]
    out = {
        "contact_human_agent": {"n": len(by_intent[HUMAN]), "escalated": share(by_intent[HUMAN]),
                                "by_reason": dict(Counter(r for r in by_intent[HUMAN] if r))},
        "other_intents": {"n": len(other), "escalated": share(other),
                          "by_reason": dict(Counter(r for r in other if r)),
                          "by_intent": {i: share(rs) for i, rs in sorted(by_intent.items())
                                        if i != HUMAN and i not in BETWEEN and share(rs) > 0}},
        "in_between": {i: {"n": len(by_intent[i]), "escalated": share(by_intent[i]),
                           "by_reason": dict(Counter(r for r in by_intent[i] if r))} for i in sorted(BETWEEN)},
        "policy_latency": percentiles(times),
        "errors": {"missed_requests": missed, "false_escalations": false[:40]},  # examples, for reading
    }
    return out


def _rates(bot, texts: list[str], groups: list[str]) -> dict:
    """Share of first messages escalated per group, by reason (a sensitive topic as ``sensitive_topic:NAME``)."""
    by_group: dict[str, list[str | None]] = defaultdict(list)
    for text, group in zip(texts, groups):
        sentiment = bot.sentiment.predict_one(text) if bot.sentiment else None
        decision = bot.policy.before_answer(text, sentiment, [])
        reason = decision.reason if decision else None
        if reason == "sensitive_topic":
            reason += ":" + decision.detail.split(" ")[0]
        by_group[group].append(reason)
    return {g: {"n": len(rs), "escalated": round(sum(r is not None for r in rs) / len(rs), 4),
                "by_reason": dict(Counter(r for r in rs if r))} for g, rs in sorted(by_group.items())}


def fraud_groups(intents: list[str]) -> list[str]:
    from finetune.escalation_examples import FRAUD_BORDERLINE, FRAUD_INTENTS

    return ["fraud" if i in FRAUD_INTENTS else "borderline" if i in FRAUD_BORDERLINE else "other" for i in intents]


def banking77_fraud(bots: dict) -> dict:
    from finetune._common import banking77_split

    _, dev = banking77_split(require(SHARED / "banking77" / "train.csv"))
    texts, groups = [t for t, _ in dev], fraud_groups([i for _, i in dev])
    demo = [q for line in (REPO / "examples/acme/faq.jsonl").read_text().splitlines() if line.strip()
            for q in json.loads(line)["questions"]]
    out = {}
    for name, bot in bots.items():
        demo_reasons = []
        for q in demo:
            decision = bot.policy.before_answer(q, bot.sentiment.predict_one(q) if bot.sentiment else None, [])
            if decision and decision.reason == "sensitive_topic":
                demo_reasons.append(f"{q} -> {decision.detail}")
        out[name] = {"banking77_dev": _rates(bot, texts, groups),
                     "demo_faq": {"n": len(demo), "sensitive_topic": demo_reasons}}
        r = out[name]["banking77_dev"]
        print(f"BANKING77 dev, {name}: " + "; ".join(f"{g} {v['escalated']:.3f} (n={v['n']}) {v['by_reason']}"
                                                     for g, v in r.items())
              + f"; demo FAQ questions read as a sensitive topic: {len(demo_reasons)}/{len(demo)}")
    return out


def tune_fraud(embedder, cache_dir: Path) -> dict:
    """C and threshold of the fraud classifier, on 20% of BANKING77's 80% split; the dev split is not read."""
    import numpy as np

    from bot.escalation.examples import BUILTIN_TOPICS, DATA_DIR, ExampleSet, TopicClassifier, message_vectors, read_examples
    from finetune._common import banking77_split, stratified_split
    from finetune.escalation_examples import FRAUD_BORDERLINE, FRAUD_INTENTS

    train, _ = banking77_split(require(SHARED / "banking77" / "train.csv"))
    rows = [(t, i) for i, ts in train.items() for t in ts]
    fit_rows, held = stratified_split(rows, 0.2, 99, key=lambda row: row[1])
    examples = ExampleSet(BUILTIN_TOPICS["fraud"] + [t for t, i in fit_rows if i in FRAUD_INTENTS], embedder,
                          cache_dir)
    counter = [ExampleSet(read_examples(DATA_DIR / "ordinary_request.txt"), embedder, cache_dir),
               ExampleSet([t for t, i in fit_rows if i not in FRAUD_INTENTS + FRAUD_BORDERLINE], embedder, cache_dir)]
    groups = fraud_groups([i for _, i in held])
    vectors = [message_vectors(embedder, t) for t, _ in held]
    grid = []
    for c in (1.0, 4.0, 16.0):
        classifier = TopicClassifier(examples, counter, cache_dir, C=c)
        p = np.array([classifier.probability(v) for v in vectors])
        for threshold in (0.5, 0.7, 0.8, 0.9, 0.95):
            row = {"C": c, "threshold": threshold}
            for g in ("fraud", "borderline", "other"):
                row[g] = round(float(np.mean([x >= threshold for x, gg in zip(p, groups) if gg == g])), 4)
            grid.append(row)
            print(f"  C={c:<4} threshold {threshold:.2f}: fraud {row['fraud']:.3f}  borderline "
                  f"{row['borderline']:.3f}  other {row['other']:.4f}")
    best = max((r for r in grid if r["other"] <= 0.01), key=lambda r: (r["fraud"], -r["other"]))
    print(f"chosen (highest fraud recall with other <= 1%): C={best['C']} threshold {best['threshold']}")
    return {"tuning_split": f"BANKING77 80% split less 20% of it (seed 99): {len(held)} messages",
            "grid": grid, "chosen": best}


def scripted(bot) -> dict:
    cases = [json.loads(line) for line in (REPO / "bench/data/escalation_scripted.jsonl").read_text().splitlines()
             if line.strip()]
    results = []
    latencies: dict[str, list[float]] = {}
    for case in cases:
        sid = f"bench-{case['id']}"
        got_turn, got_reason, detail, silent_after = None, None, "", True
        modes = []
        for n, message in enumerate(case["turns"], 1):
            reply = bot.chat(message, sid)
            modes.append(reply.mode)
            latencies.setdefault(reply.mode, []).append(reply.latency_ms)
            if got_turn is None and reply.mode == "handoff":
                got_turn, got_reason = n, reply.escalation.reason
                detail = reply.escalation.detail
            elif got_turn is not None and (reply.mode != "handoff" or reply.text):
                silent_after = False
        ok = got_turn == case["expect_turn"] and got_reason == case["expect_reason"] and silent_after
        results.append({"id": case["id"], "kind": case["kind"], "ok": ok, "expected": [case["expect_turn"],
                        case["expect_reason"]], "got": [got_turn, got_reason], "detail": detail, "modes": modes})
        print(f"  {'PASS' if ok else 'FAIL'} {case['id']:24s} expected {case['expect_turn']} "
              f"{case['expect_reason']}, got {got_turn} {got_reason}  {detail}")
    kinds = defaultdict(list)
    for r in results:
        kinds[r["kind"]].append(r["ok"])
    return {"passed": sum(r["ok"] for r in results), "total": len(results),
            "by_kind": {k: f"{sum(v)}/{len(v)}" for k, v in kinds.items()}, "cases": results,
            # whole turns with sentiment and the policy in the path (first turn of each mode includes warm-up)
            "turn_latency_by_mode": {m: percentiles(v) | {"n": len(v)} for m, v in latencies.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--skip-scripted", action="store_true")
    p.add_argument("--tune", action="store_true", help="choose the fraud classifier's C and threshold (only)")
    args = p.parse_args()
    require(SHARED / "bitext")
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    from bot import Bot, load_settings
    from bot.escalation.examples import BUILTIN_TOPICS
    from finetune.escalation_examples import bitext_split
    from knowledge import KnowledgeBase

    if args.tune:
        from knowledge.embedder import Embedder

        with tempfile.TemporaryDirectory() as tmp:
            print("wrote", save("escalation_fraud_tuning", tune_fraud(Embedder().warm_up(), Path(tmp))))
        return

    _, test = bitext_split()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, knowledge={"path": Path(tmp) / "kb"}, answer={"unanswered_log": Path(tmp) / "u.jsonl"})
        kb = KnowledgeBase(settings=settings)
        bot = Bot(knowledge=kb, settings=settings)  # single messages: no knowledge base needed
        bot.sentiment.warm_up()
        bot.policy.warm_up()
        result: dict = {"bitext_test": single_messages(bot, test)}
        result["errors"] = result["bitext_test"].pop("errors")
        closure = load_settings(None, knowledge={"path": Path(tmp) / "kb"},
                                escalation={"sensitive_topics": ["legal_threat", "fraud", "account_closure"]})
        bot_closure = Bot(knowledge=kb, settings=closure, sentiment=bot.sentiment)
        with_closure = single_messages(bot_closure, test)
        result["with_account_closure_topic"] = {"other_intents": with_closure["other_intents"]["escalated"],
                                                "by_intent": with_closure["other_intents"]["by_intent"]}
        b = result["bitext_test"]
        print(f"Bitext test: contact_human_agent escalated {b['contact_human_agent']['escalated']:.3f} "
              f"(n={b['contact_human_agent']['n']}); other intents {b['other_intents']['escalated']:.4f} "
              f"(n={b['other_intents']['n']}) {b['other_intents']['by_reason']}; in between "
              f"{ {k: v['escalated'] for k, v in b['in_between'].items()} }")
        print(f"  with account_closure: other intents {result['with_account_closure_topic']['other_intents']:.4f}")
        similarity = load_settings(None, knowledge={"path": Path(tmp) / "kb"}, escalation={
            "sensitive_topics": ["legal_threat", "fraud_similarity"],
            "topics": {"fraud_similarity": BUILTIN_TOPICS["fraud"]}})
        result["fraud"] = banking77_fraud({
            "shipped": bot, "similarity rule": Bot(knowledge=kb, settings=similarity, sentiment=bot.sentiment)})
        if not args.skip_scripted:
            demo = load_settings(None, knowledge={"path": Path(tmp) / "demo"},
                                 answer={"unanswered_log": Path(tmp) / "u.jsonl"})
            demo_kb = KnowledgeBase(settings=demo)
            demo_kb.ingest([REPO / "examples" / "acme"])
            demo_bot = Bot(knowledge=demo_kb, settings=demo, sentiment=bot.sentiment).warm_up()
            print("Scripted conversations:")
            result["scripted"] = scripted(demo_bot)
            s = result["scripted"]
            print(f"  {s['passed']}/{s['total']} passed {s['by_kind']}")
            print(f"  turn latency by mode: {s['turn_latency_by_mode']}")
    print("wrote", save("escalation", result))


if __name__ == "__main__":
    main()
