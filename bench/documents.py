"""Answers from documents on a held-out help centre: right with their facts, grounded, and silent without the passage.

    .venv/bin/python bench/documents.py [--set helpcentre|dev|demo] [--limit N] [--adapter none]
                                        [--quote-only on|off] [--quote-prompt all|quoted]
                                        [--passages-per-document N]
                                        [--generate-threshold T] [--out NAME]

The knowledge base is the 12 bench articles of ``bench/data/helpcentre/articles/bench`` (GitHub Docs, CC BY 4.0;
the generator's adapter is trained on the other 24) ingested as documents; the questions are
``bench/data/helpcentre_questions.jsonl`` (customer wording, each with the section that answers it and the facts a
right answer contains). Every question goes through the real bot with the default generator (escalation off):

* right with facts: a generated reply citing the expected article whose text holds every expected fact;
* grounding rate: of the language model's answers (its outputs that are not ``NO_ANSWER``), the share released
  (at least its first sentence passed the checks);
* no answer without the passage: the same answerable questions with the expected section's passages removed from
  the knowledge base as search sees it (the document's other passages take their places) - the share that gets no
  answer (fallback or a clarification, not a generated reply);
  and the unanswerable questions (no article answers them): the share that gets no answer;
* time to the first verified text (the first streamed chunk), p50 / p95.

``--set dev`` is the development set: the 24 training articles (``articles/train``) with their own customer questions
(``bench/data/helpcentre_dev_questions.jsonl``); settings are chosen there, never on ``helpcentre``. On the
document-only sets each question's best passage score is recorded, so that one run with ``--generate-threshold 0``
gives the three figures for every threshold (``sweep``: below the threshold a question gets no answer, at or above
it gets what the run gave it).

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

HELPCENTRE = REPO / "bench" / "data" / "helpcentre" / "articles"
SETS = {"helpcentre": (HELPCENTRE / "bench", REPO / "bench" / "data" / "helpcentre_questions.jsonl"),
        "dev": (HELPCENTRE / "train", REPO / "bench" / "data" / "helpcentre_dev_questions.jsonl")}
SWEEP = [round(0.30 + 0.02 * i, 2) for i in range(21)]  # generate_threshold values of the offline sweep


class Without:
    """The knowledge base without the gold passages (the expected document's passages under the expected heading or
    holding an expected fact), as a search sees it: the same entries, and a document's other passages take the
    removed ones' places (``knowledge.passages_per_document``)."""

    def __init__(self, inner, doc: str, heading: str | None, facts: list[str]) -> None:
        self.inner, self.doc, self.heading, self.facts = inner, doc, heading, facts
        self.settings = inner.settings

    def gold(self, h) -> bool:
        return h.kind == "document" and h.entry_id == self.doc and (
            (self.heading is not None and h.title.split(" > ")[-1].strip() == self.heading)
            or any(f in h.text for f in self.facts))

    def search(self, query, k=None, filters=None, method=None, passages_per_document=None):
        cap = passages_per_document or self.settings.knowledge.passages_per_document
        hits = [h for h in self.inner.search(query, k, filters, method, cap + 50) if not self.gold(h)]
        kept: dict[str, int] = {}
        out = []
        for h in hits:
            n = kept.get(h.entry_id, 0)
            if n < (cap if h.kind == "document" else 1):
                kept[h.entry_id] = n + 1
                out.append(h)
        return out


def load_set(name: str) -> tuple[Path, list[dict], list[dict]]:
    """(what to ingest, answerable questions, unanswerable questions); each question has ``question``, ``doc`` (the
    expected document's entry id), ``heading`` and ``facts``."""
    if name == "demo":
        cases = [json.loads(line) for line in (REPO / "bench" / "data" / "acme_scripted.jsonl").read_text()
                 .splitlines() if line.strip()]
        rows = [{"id": c["id"], "question": c["turns"][-1], "doc": c["expect"], "heading": None, "facts": c["facts"]}
                for c in cases if c["type"] == "article"]
        return REPO / "examples" / "acme", rows, []
    articles, questions = SETS[name]
    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    for r in rows:
        r["doc"] = "doc-" + Path(r["article"]).stem if r["article"] else None
    return articles, [r for r in rows if r["article"]], [r for r in rows if not r["article"]]


def ask(bot, question: str, session: str) -> tuple[object, float | None]:
    """(the Reply, ms until the first text of a generated answer: its first verified sentence, or the whole
    extractive answer; None for other replies)."""
    from bot.types import Reply

    start = time.perf_counter()
    first = None
    reply = None
    for item in bot.stream(question, session_id=session):
        if isinstance(item, Reply):
            reply = item
            if first is None and reply.mode == "generated":  # an extractive answer comes whole, with the Reply
                first = (time.perf_counter() - start) * 1000
        elif first is None:
            first = (time.perf_counter() - start) * 1000
    return reply, first


def sweep(results: list[dict], removed: list[tuple[bool, float]], silent: list[tuple[bool, float]], ran_at: float
          ) -> list[dict]:
    """The three figures at each generate_threshold from ``ran_at`` up, from the run at ``ran_at``."""
    rows = []
    for t in (t for t in SWEEP if t >= ran_at):
        rows.append({
            "generate_threshold": t,
            "right_with_facts": round(sum(x["right_with_facts"] and x["top_score"] >= t for x in results)
                                      / len(results), 3),
            "no_answer_without_passage": round(sum(q or s < t for q, s in removed) / len(removed), 3),
            "no_answer_unanswerable": round(sum(q or s < t for q, s in silent) / len(silent), 3) if silent else None,
        })
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["helpcentre", "dev", "demo"], default="helpcentre")
    ap.add_argument("--generate-threshold", type=float, default=None,
                    help="answer.generate_threshold (default: the settings'); 0 with --set dev for the sweep")
    ap.add_argument("--limit", type=int, default=0, help="first N answerable questions only (0: all)")
    ap.add_argument("--adapter", default=None, help="generator.adapter (default: the settings')")
    ap.add_argument("--quote-only", choices=["on", "off"], default=None,
                    help="generator.quote_only (default: the settings')")
    ap.add_argument("--quote-prompt", choices=["all", "quoted"], default=None,
                    help="generator.quote_prompt (default: the settings')")
    ap.add_argument("--passages-per-document", type=int, default=None,
                    help="knowledge.passages_per_document (default: the settings')")
    ap.add_argument("--out", default=None, help="results name (default: documents_<set>)")
    args = ap.parse_args()
    from bot.config import load_settings
    from bot.conversation.prompting import is_no_answer
    from bot.conversation.retrieval import ContextualRetriever
    from bot.engine import Bot
    from knowledge import KnowledgeBase

    source, answerable, unanswerable = load_set(args.set)
    if args.limit:
        answerable = answerable[: args.limit]
    gen = {"adapter": args.adapter} if args.adapter else {}
    if args.quote_only:
        gen["quote_only"] = args.quote_only == "on"
    if args.quote_prompt:
        gen["quote_prompt"] = args.quote_prompt
    out: dict = {"set": args.set, "questions": len(answerable), "unanswerable_questions": len(unanswerable)}
    with tempfile.TemporaryDirectory() as tmp:
        ppd = {} if args.passages_per_document is None else {"passages_per_document": args.passages_per_document}
        settings = load_settings(knowledge={"path": Path(tmp) / "kb", **ppd}, generator=gen,
                                 answer={"unanswered_log": Path(tmp) / "u.jsonl",
                                         "phrasings_log": Path(tmp) / "p.jsonl",
                                         **({} if args.generate_threshold is None
                                            else {"generate_threshold": args.generate_threshold})},
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
        def top_score(retriever, question: str) -> float:
            docs = [h.score for h in retriever.run(question) if h.kind == "document"]
            return round(max(docs), 4) if docs else 0.0

        for i, r in enumerate(answerable):
            n = len(recorder.outputs)
            score = top_score(inner, r["question"])
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
                            "first_text_ms": first, "top_score": score, "text": reply.text[:300],
                            "lm": [o["answer"][:300] for o in outputs]})
            print(r["id"], reply.mode, "E" if reply.extractive else "", right_source, facts, "|",
                  reply.text[:100].replace("\n", " "), flush=True)
        bot.retriever = inner
        removed, said_no, said_no_un = [], [], []
        for i, r in enumerate(answerable):
            bot.retriever = ContextualRetriever.from_settings(Without(kb, r["doc"], r["heading"], r["facts"]),
                                                              settings, inner.matcher)
            score = top_score(bot.retriever, r["question"])
            n = len(recorder.outputs)
            reply, _ = ask(bot, r["question"], f"rm{i}")
            removed.append((reply.mode != "generated", score))
            said_no.append(any(is_no_answer(o["answer"]) for o in recorder.outputs[n:]))
        bot.retriever = inner
        silent = []
        for i, r in enumerate(unanswerable):
            score = top_score(inner, r["question"])
            n = len(recorder.outputs)
            reply, _ = ask(bot, r["question"], f"un{i}")
            silent.append((reply.mode != "generated", score))
            said_no_un.append(any(is_no_answer(o["answer"]) for o in recorder.outputs[n:]))
        seconds = time.perf_counter() - start
    lm = [x for x in results if x["lm_answered"]]
    out.update({
        "right_with_facts": round(sum(x["right_with_facts"] for x in results) / len(results), 3),
        "right_source": round(sum(x["right_source"] for x in results) / len(results), 3),
        "lm_answers": len(lm),
        "lm_grounding_rate": round(sum(x["released"] for x in lm) / len(lm), 3) if lm else None,
        "extractive": sum(x["extractive"] for x in results),
        "lm_no_answer": {"answerable": sum(not x["lm_answered"] and bool(x["lm"]) for x in results),
                         "without_passage": sum(said_no), "unanswerable": sum(said_no_un)},
        "no_answer_without_passage": round(sum(q for q, _ in removed) / len(removed), 3),
        "no_answer_unanswerable": round(sum(q for q, _ in silent) / len(silent), 3) if silent else None,
        "first_verified_text_ms": percentiles(first_text) if first_text else None,
        "modes": {m: sum(x["mode"] == m for x in results) for m in ("generated", "clarify", "fallback", "faq")},
        "generator": bot.settings.generator.model_dump(include={"model", "adapter", "dtype", "prompt_lookup_tokens",
                                                                "quote_only", "quote_candidates", "quote_margin",
                                                                "quote_prompt"}),
        "settings": {"passages_per_document": bot.settings.knowledge.passages_per_document,
                     **bot.settings.answer.model_dump(include={"generate_threshold", "extractive_min_similarity",
                                                               "extractive_word_weight", "extractive_heading_weight",
                                                               "extractive_kind_weight"})},
        "seconds": round(seconds, 1),
    })
    if args.set != "demo":  # documents only: the decision depends on the best passage's score alone
        out["sweep"] = sweep(results, removed, silent, bot.settings.answer.generate_threshold)
    out["rows"] = results
    print({k: v for k, v in out.items() if k != "rows"})
    print("wrote", save(args.out or f"documents_{args.set}", out))


if __name__ == "__main__":
    main()
