"""Which passage sentence answers the question: the extractive answer's selector, offline (no language model).

    .venv/bin/python bench/extractive.py [--set dev|helpcentre] [--out NAME]

For every answerable question of the set (see ``bench/documents.py``), the passages the bot would write from (the
top ``generator.max_passages`` document hits) are retrieved as the bot does, and each selector picks the unit to
quote (``grounding.best_units``). Figures, over the questions whose expected article is among those passages:

* ``facts``: the quote is from the expected article and holds every expected fact;
* ``article``: the quote is from the expected article.

Selectors: ``similarity`` (the question's embedding against each unit's: the selector before the scorer) and
``scored`` (``grounding.unit_scores`` with the settings' ``answer.extractive_*_weight``: similarity plus the shares of the question's words in the unit and in its
heading path, and whether the unit holds the kind of fact the question asks for - an amount, a number, a duration).
``--grid`` also tries other weights for ``scored`` (dev only: the weights are chosen there).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import save  # noqa: E402
from bench.documents import load_set  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--set", choices=["dev", "helpcentre"], default="dev")
    ap.add_argument("--grid", action="store_true", help="also sweep the scorer's weights (dev only)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    if args.grid and args.set != "dev":
        sys.exit("--grid chooses weights: run it on --set dev only")
    from bot.config import load_settings
    from bot.conversation import grounding
    from bot.conversation.decision import Bands, decide
    from bot.engine import Bot
    from knowledge import KnowledgeBase

    source, answerable, _ = load_set(args.set)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(knowledge={"path": Path(tmp) / "kb"}, answer={"generate_threshold": 0.0},
                                 escalation={"enabled": False})
        kb = KnowledgeBase(settings=settings)
        kb.ingest(source)
        docs = {r.entry_id for r in kb.store().get() if r.metadata.get("kind") == "document"}
        bot = Bot(settings=settings)
        bot.retriever  # noqa: B018 - builds the retriever
        cache: dict[str, object] = {}

        def embed(texts):  # the bot's embedder, memoised: the grid re-scores the same units
            import numpy as np

            missing = [t for t in dict.fromkeys(texts) if t not in cache]
            if missing:
                cache.update(zip(missing, bot.similarity.embed(missing)))
            return np.stack([cache[t] for t in texts])
        cases = []
        for r in answerable:
            doc = next((d for d in docs if d == r["doc"] or d.endswith(r["doc"].removeprefix("doc-"))), r["doc"])
            plan = decide(bot.retrieve(r["question"]), Bands.from_settings(settings))
            used = list(plan.passages)
            if any(h.entry_id == doc for h in used):
                cases.append((r, doc, used))

        def evaluate(select) -> dict:
            facts = article = 0
            for r, doc, used in cases:
                best = select(r["question"], used)
                if best is None:
                    continue
                n, text, _ = best
                if used[n - 1].entry_id == doc:
                    article += 1
                    facts += all(f in text for f in r["facts"])
            return {"facts": round(facts / len(cases), 3), "article": round(article / len(cases), 3)}

        def similarity(q, used):
            return grounding.best_units(q, [h.text for h in used], embed, weights=grounding.SIMILARITY_ONLY)

        def scored(weights):
            return lambda q, used: grounding.best_units(q, [h.text for h in used], embed,
                                                        titles=[h.title for h in used], weights=weights)

        out = {"set": args.set, "questions": len(answerable), "gold_in_passages": len(cases),
               "similarity": evaluate(similarity), "scored": evaluate(scored(grounding.UnitWeights(
                   settings.answer.extractive_word_weight, settings.answer.extractive_heading_weight,
                   settings.answer.extractive_kind_weight)))}
        print(out, flush=True)
        if args.grid:
            grid = []
            for words, heading, kind in itertools.product([0.0, 0.1, 0.2, 0.3, 0.4, 0.6], [0.0, 0.1, 0.2, 0.3],
                                                          [0.0, 0.05, 0.1, 0.2, 0.3]):
                w = grounding.UnitWeights(words=words, heading=heading, kind=kind)
                grid.append({"words": words, "heading": heading, "kind": kind, **evaluate(scored(w))})
            grid.sort(key=lambda g: (-g["facts"], -g["article"]))
            out["grid_top"] = grid[:10]
            for g in grid[:10]:
                print(g)
    print("wrote", save(args.out or f"extractive_{args.set}", out))


if __name__ == "__main__":
    main()
