"""Answers from documents on a held-out help centre: right with their facts, grounded, and silent without the passage.

    .venv/bin/python bench/documents.py [--set helpcentre|demo] [--limit N] [--adapter none] [--out NAME]

The knowledge base is the 12 bench articles of ``bench/data/helpcentre/articles/bench`` (GitHub Docs, CC BY 4.0;
the generator's adapter is trained on the other 24) ingested as documents; the questions are
``bench/data/helpcentre_questions.jsonl`` (customer wording, each with the section that answers it and the facts a
right answer contains). Every question goes through the real bot with the default generator (escalation off):

* right with facts: a generated reply citing the expected article whose text holds every expected fact;
* grounding rate: of the language model's answers (its outputs that are not ``NO_ANSWER``), the share released
  (at least its first sentence passed the checks);
* no answer without the passage: the same answerable questions with the expected section's passages removed from
  what retrieval returns - the share that gets no answer (fallback or a clarification, not a generated reply);
  and the unanswerable questions (no article answers them): the share that gets no answer;
* time to the first verified text (the first streamed chunk), p50 / p95.

``--set demo`` runs the same on the demo knowledge base (``examples/acme``, FAQ and articles) with the article
questions of the scripted set (``bench/data/acme_scripted.jsonl``, type ``article``); there the removed passages are
the expected document's passages that hold an expected fact.
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

from bench.common import REPO, RecordingGenerator, percentiles, save  # noqa: E402

ARTICLES = REPO / "bench" / "data" / "helpcentre" / "articles" / "bench"
QUESTIONS = REPO / "bench" / "data" / "helpcentre_questions.jsonl"


class Without:
    """A retriever that drops the gold passages: the expected document's passages under the expected heading or
    holding an expected fact."""

    def __init__(self, inner, doc: str, heading: str | None, facts: list[str]) -> None:
        self.inner, self.doc, self.heading, self.facts = inner, doc, heading, facts

    def gold(self, h) -> bool:
        return h.kind == "document" and h.entry_id == self.doc and (
            (self.heading is not None and h.title.split(" > ")[-1].strip() == self.heading)
            or any(f in h.text for f in self.facts))

    def run(self, message, previous=()):
        return [h for h in self.inner.run(message, previous) if not self.gold(h)]


def load_set(name: str) -> tuple[Path, list[dict], list[dict]]:
    """(what to ingest, answerable questions, unanswerable questions); each question has ``question``, ``doc`` (the
    expected document's entry id), ``heading`` and ``facts``."""
    if name == "demo":
        cases = [json.loads(line) for line in (REPO / "bench" / "data" / "acme_scripted.jsonl").read_text()
                 .splitlines() if line.strip()]
        rows = [{"id": c["id"], "question": c["turns"][-1], "doc": c["expect"], "heading": None, "facts": c["facts"]}
                for c in cases if c["type"] == "article"]
        return REPO / "examples" / "acme", rows, []
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines() if line.strip()]
    for r in rows:
        r["doc"] = "doc-" + Path(r["article"]).stem if r["article"] else None
    return ARTICLES, [r for r in rows if r["article"]], [r for r in rows if not r["article"]]


def ask(bot, question: str, session: str) -> tuple[object, float | None]:
    from bot.types import Reply

    start = time.perf_counter()
    first = None
    reply = None
    for item in bot.stream(question, session_id=session):
        if isinstance(item, Reply):
            reply = item
        elif first is None:
            first = (time.perf_counter() - start) * 1000
    return reply, first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["helpcentre", "demo"], default="helpcentre")
    ap.add_argument("--limit", type=int, default=0, help="first N answerable questions only (0: all)")
    ap.add_argument("--adapter", default=None, help="generator.adapter (default: the settings')")
    ap.add_argument("--out", default=None, help="results name (default: documents_<set>)")
    args = ap.parse_args()
    from bot.config import load_settings
    from bot.conversation.prompting import is_no_answer
    from bot.engine import Bot
    from knowledge import KnowledgeBase

    source, answerable, unanswerable = load_set(args.set)
    if args.limit:
        answerable = answerable[: args.limit]
    gen = {"adapter": args.adapter} if args.adapter else {}
    out: dict = {"set": args.set, "questions": len(answerable), "unanswerable_questions": len(unanswerable)}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"}, generator=gen,
                                 answer={"unanswered_log": Path(tmp) / "u.jsonl",
                                         "phrasings_log": Path(tmp) / "p.jsonl"},
                                 escalation={"enabled": False})
        kb = KnowledgeBase(settings=settings)
        kb.ingest(source)
        docs = {r.entry_id for r in kb.store().get() if r.metadata.get("kind") == "document"}
        for r in answerable:  # the document ids the ingest gave
            r["doc"] = next((d for d in docs if d == r["doc"] or d.endswith(r["doc"].removeprefix("doc-"))), r["doc"])
        bot = Bot(settings=settings).warm_up()
        bot.generator = recorder = RecordingGenerator(bot.generator)
        inner = bot.retriever
        results = []
        first_text: list[float] = []
        start = time.perf_counter()
        for i, r in enumerate(answerable):
            n = len(recorder.outputs)
            reply, first = ask(bot, r["question"], f"q{i}")
            if first is not None:
                first_text.append(first)
            cited = [s.entry_id for s in reply.sources]
            right_source = reply.mode in ("generated", "faq") and r["doc"] in cited
            facts = all(f in reply.text for f in r["facts"])
            outputs = recorder.outputs[n:]
            results.append({"id": r["id"], "mode": reply.mode, "extractive": reply.extractive, "cited": cited,
                            "right_source": right_source, "right_with_facts": right_source and facts,
                            "lm_answered": any(not is_no_answer(o["answer"]) for o in outputs),
                            "released": reply.mode == "generated" and not reply.extractive,
                            "first_text_ms": first, "text": reply.text[:300],
                            "lm": [o["answer"][:300] for o in outputs]})
            print(r["id"], reply.mode, "E" if reply.extractive else "", right_source, facts, "|",
                  reply.text[:100].replace("\n", " "), flush=True)
        bot.retriever = inner
        removed = []
        for i, r in enumerate(answerable):
            bot.retriever = Without(inner, r["doc"], r["heading"], r["facts"])
            reply, _ = ask(bot, r["question"], f"rm{i}")
            removed.append(reply.mode != "generated")
        bot.retriever = inner
        silent = []
        for i, r in enumerate(unanswerable):
            reply, _ = ask(bot, r["question"], f"un{i}")
            silent.append(reply.mode != "generated")
        seconds = time.perf_counter() - start
    lm = [x for x in results if x["lm_answered"]]
    out.update({
        "right_with_facts": round(sum(x["right_with_facts"] for x in results) / len(results), 3),
        "right_source": round(sum(x["right_source"] for x in results) / len(results), 3),
        "lm_answers": len(lm),
        "lm_grounding_rate": round(sum(x["released"] for x in lm) / len(lm), 3) if lm else None,
        "extractive": sum(x["extractive"] for x in results),
        "no_answer_without_passage": round(sum(removed) / len(removed), 3),
        "no_answer_unanswerable": round(sum(silent) / len(silent), 3) if silent else None,
        "first_verified_text_ms": percentiles(first_text) if first_text else None,
        "modes": {m: sum(x["mode"] == m for x in results) for m in ("generated", "clarify", "fallback", "faq")},
        "generator": bot.settings.generator.model_dump(include={"model", "adapter", "dtype", "prompt_lookup_tokens"}),
        "seconds": round(seconds, 1), "rows": results,
    })
    print({k: v for k, v in out.items() if k != "rows"})
    print("wrote", save(args.out or f"documents_{args.set}", out))


if __name__ == "__main__":
    main()
