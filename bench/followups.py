"""Follow-ups and changes of topic in two-turn conversations on a knowledge base built from public data.

    .venv/bin/python bench/followups.py

The knowledge base is Bitext's 27 intents, 3 phrasings each from the train part of ``finetune.intents`` and a real
agent response as the answer (as in ``bench/matcher.py``). ``bench/data/followups_bitext.jsonl`` holds 46
conversations written for this benchmark: 34 whose second message only makes sense after the first ("is there a
fee for that?" after "I want to cancel my order") and 12 whose second message changes the topic (which must not
be dragged back). Each conversation goes through the real bot (escalation off: this measures answering); the
second reply is right when it answers with the expected entry, or is a clarification whose choices hold it
(reported separately). Also: retrieval of the second message with and without the conversation's context.

Writes bench/results/followups.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import REPO, SHARED, require, save  # noqa: E402
from bench.matcher import build_entries  # noqa: E402


def main() -> int:
    from bot.config import load_settings
    from bot.engine import Bot
    from finetune.intents import load
    from knowledge import KnowledgeBase

    require(SHARED / "bitext")
    cases = [json.loads(line) for line in (REPO / "bench" / "data" / "followups_bitext.jsonl").read_text().splitlines()
             if line.strip()]
    entries, _ = build_entries("bitext", load("bitext", SHARED), 3, 13)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"}, escalation={"enabled": False},
                                 answer={"unanswered_log": Path(tmp) / "u.jsonl",
                                         "phrasings_log": Path(tmp) / "p.jsonl"})
        KnowledgeBase(settings=settings).add(entries, source="bitext")
        bot = Bot(settings=settings).warm_up(generator=False)
        for case in cases:
            first, second = case["turns"]
            sid = f"bench-{case['id']}"
            bot.chat(first, sid)
            reply = bot.chat(second, sid)
            answered = reply.mode == "faq" and [s.entry_id for s in reply.sources] == [case["expect"]]
            clarified = reply.mode == "clarify" and case["expect"] in [s.entry_id for s in reply.suggestions]
            with_context = bot.retrieve(second, [first])
            alone = bot.retrieve(second, [])
            rows.append({"id": case["id"], "type": case["type"], "mode": reply.mode,
                         "answered_right": answered, "clarified_right": clarified,
                         "wrong": reply.mode == "faq" and not answered,
                         "top1_with_context": bool(with_context) and with_context[0].entry_id == case["expect"],
                         "top1_alone": bool(alone) and alone[0].entry_id == case["expect"],
                         "got": [s.entry_id for s in reply.sources] or [s.entry_id for s in reply.suggestions]})
    out = {}
    for t in ("followup", "topic_change"):
        sub = [r for r in rows if r["type"] == t]
        n = len(sub)
        out[t] = {"n": n, **{k: round(sum(r[k] for r in sub) / n, 3) for k in
                             ("answered_right", "clarified_right", "wrong", "top1_with_context", "top1_alone")}}
        out[t]["right"] = round(out[t]["answered_right"] + out[t]["clarified_right"], 3)
        print(t, out[t])
    out["rows"] = rows
    print(save("followups", out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
