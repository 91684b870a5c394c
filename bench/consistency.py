"""The contradiction check on the demo knowledge base: how many contradicting claims are rejected, how many faithful
ones are let through.

    .venv/bin/python bench/consistency.py            # bench/results/consistency.json

The set: the hand-written claims of ``bench/data/consistency_handwritten.jsonl`` (contradictions and faithful
rewordings of the demo FAQ's answers and the demo articles' sections), plus claims made by FactCC's rule-based
transformations (``finetune.consistency``: negation, number swap, name swap, condition flip) of sentences of the same
texts, with the unchanged sentences as faithful claims. The demo knowledge base is never used in training.

Each claim goes through the same sentence checks as a streamed answer (``bot.conversation.verified.Verifier``:
content-word overlap, the fact rules, the shipped consistency classifier), with its passage as passage [1]; reported
per layer (rules only, classifier only, all) and per kind.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import REPO, save  # noqa: E402

DEMO = REPO / "examples" / "acme"


def demo_passages() -> list[tuple[str, str]]:
    out = [(f"faq:{e['id']}", e["answer"]) for e in map(json.loads, (DEMO / "faq.jsonl").read_text().splitlines())
           if e]
    for path in sorted((DEMO / "articles").glob("*.md")):
        heading, lines = None, []
        for line in path.read_text(encoding="utf-8").splitlines() + ["# end"]:
            if line.startswith("#"):
                text = "\n".join(lines).strip()
                if heading and len(text.split()) >= 8:
                    out.append((f"article:{path.name}#{heading}", text))
                heading, lines = line.lstrip("# ").strip(), []
            else:
                lines.append(line)
    return out


def generated_claims(seed: int = 7) -> list[dict]:
    from finetune.consistency import flip_condition, negate, sentences, swap_name, swap_number

    rng = random.Random(seed)
    out = []
    for source, passage in demo_passages():
        for s in sentences(passage)[:2]:
            out.append({"source": source, "passage": passage, "claim": s, "label": "faithful", "kind": "verbatim"})
            for kind, fn in (("negation", lambda: negate(s, rng)), ("number", lambda: swap_number(s, passage, rng)),
                             ("name", lambda: swap_name(s, passage, rng)), ("condition", lambda: flip_condition(s, rng))):
                new = fn()
                if new and new.strip() != s.strip():
                    out.append({"source": source, "passage": passage, "claim": new, "label": "contradiction",
                                "kind": kind})
    return out


def main() -> None:
    from bot.conversation.consistency import ConsistencyChecker
    from bot.conversation.verified import Verifier

    hand = [json.loads(line) for line in (REPO / "bench" / "data" / "consistency_handwritten.jsonl").read_text()
            .splitlines() if line.strip()]
    for r in hand:
        r["set"] = "hand-written"
    gen = generated_claims()
    for r in gen:
        r["set"] = "transformed"
    rows = hand + gen
    checker = ConsistencyChecker().warm_up()
    layers = {"rules": dict(consistency=None, rules=True), "classifier": dict(consistency=checker, rules=False),
              "all": dict(consistency=checker, rules=True)}
    start = time.perf_counter()
    verdicts: dict[str, list[bool]] = {}
    for name, kw in layers.items():
        verdicts[name] = []
        for r in rows:
            title = r["source"].split("#", 1)[1] if "#" in r["source"] else ""
            evidence = f"{title}\n{r['passage']}" if title else r["passage"]
            v = Verifier("", [evidence], min_overlap=0.6 if name != "classifier" else 0.0, **kw)
            verdicts[name].append(not v(re.sub(r"\s*\[\d+\]", "", r["claim"])).ok)
    seconds = time.perf_counter() - start

    def rates(idx: list[int], layer: str) -> dict:
        bad = [i for i in idx if rows[i]["label"] == "contradiction"]
        good = [i for i in idx if rows[i]["label"] == "faithful"]
        return {"contradictions": len(bad), "contradictions_rejected": round(sum(verdicts[layer][i] for i in bad)
                                                                             / max(1, len(bad)), 3),
                "faithful": len(good), "faithful_rejected": round(sum(verdicts[layer][i] for i in good)
                                                                  / max(1, len(good)), 3)}

    everything = list(range(len(rows)))
    result = {"pairs": len(rows), "threshold": checker.threshold, "seconds": round(seconds, 1),
              "layers": {layer: {"all": rates(everything, layer),
                                 **{s: rates([i for i in everything if rows[i]["set"] == s], layer)
                                    for s in ("hand-written", "transformed")}} for layer in layers},
              "by_kind": {}}
    for kind in sorted({r["kind"] for r in rows}):
        idx = [i for i in everything if rows[i]["kind"] == kind]
        result["by_kind"][kind] = {"n": len(idx), "rejected": round(sum(verdicts["all"][i] for i in idx) / len(idx), 3)}
    quoted = ["No, we do not take Apple Pay.", "No, there is no discount code for your first purchase."]
    result["quoted_rejected"] = {r["claim"]: verdicts["all"][i] for i, r in enumerate(rows) if r["claim"] in quoted
                                 or r["claim"].startswith("The membership fee is")}
    result["faithful_rejected_examples"] = [rows[i]["claim"] for i in everything if rows[i]["label"] == "faithful"
                                            and verdicts["all"][i]][:25]
    result["missed_examples"] = [rows[i]["claim"] for i in everything if rows[i]["label"] == "contradiction"
                                 and not verdicts["all"][i]][:25]
    for layer in layers:
        print(layer, result["layers"][layer]["all"], "| hand", result["layers"][layer]["hand-written"])
    print("by kind", result["by_kind"])
    print("wrote", save("consistency", result))


if __name__ == "__main__":
    main()
