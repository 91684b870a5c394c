"""Escalation benchmark (issue: sentiment and escalation).

    .venv/bin/python bench/escalation.py [--skip-scripted]

1. Bitext, single messages. The test split of ``finetune.escalation_examples.bitext_split`` (30% per intent,
   never used for the shipped examples or for tuning thresholds) goes through the bot's own sentiment
   classifier and escalation policy as the first message of a conversation (where only the before-answer
   rules can fire). Share escalated: ``contact_human_agent`` (target >= 0.95) and every intent that is neither
   ``contact_human_agent``, ``contact_customer_service`` nor ``complaint`` (target <= 0.03), by rule and by
   intent; the two in-between intents are reported for information, as is the effect of switching on the
   ``account_closure`` topic.
2. Scripted conversations (bench/data/escalation_scripted.jsonl): calm FAQ, growing frustration, explicit
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
    args = p.parse_args()
    require(SHARED / "bitext")
    import torch

    torch.set_num_threads(os.cpu_count() or 2)
    from bot import Bot, load_settings
    from finetune.escalation_examples import bitext_split
    from knowledge import KnowledgeBase

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
