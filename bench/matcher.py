"""The matcher and the calibrated decision on knowledge bases of several shapes (issue: understand customers).

    .venv/bin/python bench/matcher.py --calibrate            # fit the shipped matcher's calibration and choose the
                                                             # decision defaults, on the calibration parts only
    .venv/bin/python bench/matcher.py                        # report on the dev parts (side by side: bi-encoder)
    .venv/bin/python bench/matcher.py --perturbed            # ... with the dev messages typed casually

Knowledge bases: for each of BANKING77, HWU64 and Bitext (``finetune.intents``: train / calib / dev parts) and
each shape (1, 3 and 10 phrasings per entry), one FAQ entry per intent whose questions are that many phrasings
sampled from the train part. Bitext entries carry a real agent response as their answer (indexed, as a company
FAQ's would be); BANKING77 and HWU64 have none (their answers are not indexed). In-scope messages are the part's
texts; out-of-scope messages are the same part's texts of the *other* sets (minus intents the knowledge base
could rightly answer, ``finetune.intents.OVERLAPS``).

Each message goes through the product's path: ``KnowledgeBase.search`` (dense + BM25), the matcher's logits for the
top ``knowledge.matcher_candidates`` FAQ candidates, the calibration, the decision bands. Reported per knowledge
base: answered right / answered with a wrong entry / clarification holding the right entry ("resolved" = answered
right + such clarifications) / fallback, and for out-of-scope messages: answered / offered choices. Side by side:
the bi-encoder alone (the fused retrieval score as the probability, bands chosen by the same rule).

Calibration (``--calibrate``) also holds 20% of each knowledge base's intents out of it: their messages are
near-domain out-of-scope messages (a banking question the bank's FAQ does not answer). The calibration is fitted on
them too (as negatives), and their figures are reported (``calib_near_domain``), but the rule below reads the other
sets' messages (far out of scope, as the issue defines out of scope), as many as the near ones. (Counting the near
ones in the rule was tried first: it chose answer_threshold 0.99, which answers 4% of in-scope messages directly -
near-domain questions look like confident matches to their neighbours; they get "did you mean ...?" instead.)

The rule that chooses the defaults (written before any figure was seen; applied to the calibration parts only):
``answer_threshold`` is the smallest t (0.01 steps) at which every knowledge base answers at most 2% of its
in-scope messages with a wrong entry and at most 2% of its out-of-scope messages; ``clarify_threshold`` is the
smallest t at which every knowledge base offers choices to at most 25% of its out-of-scope messages.
``suggestion_min`` (0.05) and ``max_suggestions`` (3) are fixed, not tuned. The clarify band is gated on the best
*retrieval* score (as ``bot.conversation.decision`` does; the choices are still ranked by probability): on the
calibration parts this resolved as many in-scope messages as gating on the probability, or more, while offering
choices to fewer out-of-scope ones (BANKING77 x3: resolved 0.921 vs 0.910, out-of-scope choices 0.174 vs 0.238).

Writes bench/results/matcher[_perturbed].json (and, with --calibrate, the calibration into the matcher's
matcher.json and bench/results/matcher_calibration.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bench.common import RESULTS, SHARED, percentiles, require, save  # noqa: E402

SHAPES = (1, 3, 10)
GRID = [round(0.05 + 0.01 * i, 2) for i in range(95)]
MAX_WRONG, MAX_OOS_ANSWERED, MAX_OOS_CHOICES = 0.02, 0.02, 0.25
SUGGESTION_MIN, MAX_SUGGESTIONS = 0.05, 3
HOLDOUT = 0.2  # calibration: intents held out of each knowledge base, their messages near-domain out of scope


@dataclasses.dataclass
class Scored:
    """One message's FAQ candidates: entry ids, retrieval scores, matcher logits (retrieval order)."""

    gold: str | None  # the right entry, None out of scope
    ids: list[str]
    retrieval: list[float]
    logits: list[float]


def build_entries(name: str, data: Any, shape: int, seed: int) -> tuple[list[dict], bool]:
    from finetune.intents import bitext_responses

    rng = random.Random(f"{name}-{shape}-{seed}")
    responses = bitext_responses(SHARED) if name == "bitext" else {}
    train_texts = {t for ts in data.train.values() for t in ts}
    entries = []
    for intent in sorted(data.train):
        texts = data.train[intent]
        questions = rng.sample(texts, min(shape, len(texts)))
        if name == "bitext":
            rows = [r for t, r in responses[intent] if t in train_texts and t not in questions] or \
                [r for _, r in responses[intent]]
            answer = rng.choice(rows)
        else:
            answer = f"(answer {len(entries) + 1})"
        entries.append({"id": intent, "questions": questions, "answer": answer})
    return entries, name == "bitext"


def messages(sets: dict, name: str, part: str, n: int, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    """(in-scope (text, intent) pairs, out-of-scope texts) of one part for a knowledge base of set ``name``."""
    from finetune.intents import in_scope_for

    rng = random.Random(f"{name}-{part}-{seed}")
    ins = sets[name].pairs(part)
    oos = [t for other in sets if other != name for t, i in sets[other].pairs(part)
           if not in_scope_for(other, i, name)]
    ins = rng.sample(ins, min(n, len(ins))) if n else ins
    oos = rng.sample(oos, min(n or len(sets[name].pairs(part)), len(oos)))
    return ins, oos


def score_messages(kb: Any, matcher: Any, k: int, items: list[tuple[str, str | None]]) -> tuple[list[Scored], list]:
    out, times = [], []
    for text, gold in items:
        t0 = time.perf_counter()
        hits = [h for h in kb.search(text, k=k) if h.kind == "faq"][:k]
        t1 = time.perf_counter()
        logits = matcher.score(text, [h.title if h.matched_field == "answer" else h.matched for h in hits]) \
            if matcher is not None and hits else [0.0] * len(hits)
        times.append((t1 - t0, time.perf_counter() - t1, len(hits)))
        out.append(Scored(gold, [h.entry_id for h in hits], [h.score for h in hits], logits))
    return out, times


def probabilities(s: Scored, calibration: Any | None) -> list[tuple[str, float]]:
    """(entry, probability) best first; ``calibration`` None = the bi-encoder alone (retrieval scores)."""
    probs = calibration.probabilities(s.logits, s.retrieval) if calibration is not None else s.retrieval
    return sorted(zip(s.ids, probs), key=lambda x: -x[1])


def outcome(ranked: list[tuple[str, float]], gold: str | None, answer: float, clarify: float,
            retrieval: float) -> str:
    """As ``bot.conversation.decision.decide``: answer on the probability, clarify on the best retrieval score."""
    if not ranked:
        return "fallback"
    if ranked[0][1] >= answer:
        return "right" if ranked[0][0] == gold else "wrong"
    if retrieval < clarify:
        return "fallback"
    offered = [e for e, p in ranked[:MAX_SUGGESTIONS] if p >= SUGGESTION_MIN]
    return "clarify_right" if gold in offered else "clarify_wrong"


_RANKED: dict[tuple[int, int], list] = {}


def ranked_all(items: list[Scored], calibration: Any | None) -> list[tuple[list[tuple[str, float]], str | None]]:
    key = (id(items), id(calibration))
    if key not in _RANKED:
        _RANKED[key] = [(probabilities(s, calibration), s.gold, max(s.retrieval, default=0.0)) for s in items]
    return _RANKED[key]


def summarise(ins: list[Scored], oos: list[Scored], calibration: Any | None, answer: float, clarify: float) -> dict:
    def shares(items: list[Scored]) -> dict[str, float]:
        counts: dict[str, int] = {}
        for ranked, gold, retrieval in ranked_all(items, calibration):
            o = outcome(ranked, gold, answer, clarify, retrieval)
            counts[o] = counts.get(o, 0) + 1
        return {k: round(counts.get(k, 0) / max(1, len(items)), 4)
                for k in ("right", "wrong", "clarify_right", "clarify_wrong", "fallback")}

    i, o = shares(ins), shares(oos)
    rk = ranked_all(ins, calibration)
    top1 = sum(bool(r) and r[0][0] == g for r, g, _ in rk) / max(1, len(ins))
    in_top3 = sum(g in [e for e, _ in r[:3]] for r, g, _ in rk) / max(1, len(ins))
    return {"n_in_scope": len(ins), "n_out_of_scope": len(oos), "top1": round(top1, 4), "in_top3": round(in_top3, 4),
            "answered_right": i["right"], "answered_wrong": i["wrong"], "clarified_right": i["clarify_right"],
            "clarified_wrong": i["clarify_wrong"], "fallback": i["fallback"],
            "resolved": round(i["right"] + i["clarify_right"], 4),
            "oos_answered": round(o["right"] + o["wrong"], 4),
            "oos_offered_choices": round(o["clarify_right"] + o["clarify_wrong"], 4), "oos_fallback": o["fallback"]}


def choose_bands(runs: dict[str, tuple[list[Scored], list[Scored]]], calibration: Any | None) -> dict[str, float]:
    """The rule of the module doc, applied to ``runs`` (the calibration parts)."""
    def ok_answer(t: float) -> bool:
        for i, o in runs.values():
            s = summarise(i, o, calibration, t, t)
            if s["answered_wrong"] > MAX_WRONG or s["oos_answered"] > MAX_OOS_ANSWERED:
                return False
        return True

    answer = next((t for t in GRID if ok_answer(t)), GRID[-1])
    clarify = next((t for t in GRID if all(
        summarise(i, o, calibration, answer, t)["oos_offered_choices"] <= MAX_OOS_CHOICES
        for i, o in runs.values())), answer)
    return {"answer_threshold": answer, "clarify_threshold": clarify}


def fit_calibration(runs: dict[str, tuple[list[Scored], list[Scored]]],
                    near: dict[str, list[Scored]] | None = None) -> Any:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from knowledge.retrieval.calibration import Calibration, feature_rows

    x, y = [], []
    for key, (ins, oos) in runs.items():
        for s in ins + oos + (near or {}).get(key, []):
            for row, eid in zip(feature_rows(s.logits, s.retrieval), s.ids):
                x.append(row)
                y.append(int(eid == s.gold))
    model = LogisticRegression(C=1.0, max_iter=1000).fit(np.array(x), np.array(y))
    return Calibration(tuple(float(w) for w in model.coef_[0]), float(model.intercept_[0])), len(x)


def hold_out(entries: list[dict], ins: list[tuple[str, str]], share: float, key: str
             ) -> tuple[list[dict], list[tuple[str, str]], list[str]]:
    """Drop ``share`` of the intents from a knowledge base (seeded by ``key``): (the entries left, the in-scope
    messages left, the held-out intents' messages - near-domain out-of-scope messages)."""
    if share <= 0:
        return entries, ins, []
    rng = random.Random(f"holdout-{key}")
    held = set(rng.sample([e["id"] for e in entries], round(share * len(entries))))
    return ([e for e in entries if e["id"] not in held], [(t, i) for t, i in ins if i not in held],
            [t for t, i in ins if i in held])


def collect(part: str, n: int, model: str, perturbed: bool, seed: int = 13, answers: bool = True,
            holdout: float = 0.0) -> dict[str, Any]:
    from finetune.intents import load_all
    from finetune.perturb import perturb
    from knowledge import KnowledgeBase
    from knowledge.retrieval.matcher import Matcher
    from knowledge.settings import load_knowledge_settings

    require(SHARED / "hwu64" / "hwu64.csv")
    sets = load_all(SHARED, seed)
    backend = load_knowledge_settings().knowledge.inference  # SUPPORTBOT_KNOWLEDGE__INFERENCE=torch: the fp32 path
    matcher = Matcher(model, backend=backend).warm_up() if model != "none" else None
    k = 6 if matcher is None else matcher.candidates
    runs, timing, near_runs = {}, [], {}
    noise = random.Random(seed + 7)
    with tempfile.TemporaryDirectory() as tmp:
        for name in sets:
            ins, oos = messages(sets, name, part, n, seed)
            if perturbed:
                ins = [(perturb(t, noise), i) for t, i in ins]
                oos = [perturb(t, noise) for t in oos]
            for shape in SHAPES:
                entries, with_answers = build_entries(name, sets[name], shape, seed)
                entries, ins_kept, near = hold_out(entries, ins, holdout, f"{name}-{shape}-{seed}")
                far = random.Random(f"far-{name}-{shape}").sample(oos, min(len(oos), len(near))) if near else oos
                settings = load_knowledge_settings().model_copy(deep=True)
                settings.knowledge.index_answers = with_answers and answers
                kb = KnowledgeBase(path=Path(tmp) / f"{name}-{shape}", settings=settings)
                kb.add(entries, source=name)
                scored_in, t_in = score_messages(kb, matcher, k, [(t, i) for t, i in ins_kept])
                scored_oos, t_oos = score_messages(kb, matcher, k, [(t, None) for t in far])
                scored_near, t_near = score_messages(kb, matcher, k, [(t, None) for t in near])
                runs[f"{name}/{shape}"] = (scored_in, scored_oos)
                near_runs[f"{name}/{shape}"] = scored_near
                timing += t_near
                timing += t_in + t_oos
                print(f"{name} x{shape}: {len(ins_kept)} in scope, {len(far)} out of scope (other sets)"
                      + (f", {len(near)} of held-out intents (near)" if near else ""),
                      flush=True)
    return {"runs": runs, "near": near_runs, "timing": timing, "matcher": matcher}


def scores(path: Path | None, collect_now: Any) -> dict[str, Any]:
    """The collected runs, from ``path`` if it exists (written by an earlier run), else collected (and saved)."""
    import pickle

    if path is not None and path.exists():
        return {**pickle.loads(path.read_bytes()), "timing": []}
    data = collect_now()
    if path is not None:
        path.write_bytes(pickle.dumps({"runs": data["runs"], "near": data["near"]}))
    return data


def report(runs: dict, calibration: Any, bands: dict[str, float], baseline_bands: dict[str, float]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (ins, oos) in runs.items():
        out[key] = {"matcher": summarise(ins, oos, calibration, bands["answer_threshold"],
                                         bands["clarify_threshold"]),
                    "bi_encoder_alone": summarise(ins, oos, None, baseline_bands["answer_threshold"],
                                                  baseline_bands["clarify_threshold"])}
    return out


def curves(runs: dict, calibration: Any, clarify: float) -> dict[str, list[dict[str, float]]]:
    """Per knowledge base: answered right / wrong / resolved / OOS answered as the answer threshold moves."""
    out = {}
    for key, (ins, oos) in runs.items():
        rows = []
        for t in GRID[::5]:
            s = summarise(ins, oos, calibration, t, clarify)
            rows.append({"answer_threshold": t, **{k: s[k] for k in ("answered_right", "answered_wrong",
                                                                      "resolved", "oos_answered",
                                                                      "oos_offered_choices")}})
        out[key] = rows
    return out


def main() -> int:
    from knowledge.retrieval.calibration import Calibration
    from knowledge.retrieval.matcher import MATCHER_DIR, MATCHER_FILE, matcher_dir

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="bundled:matcher", help="the matcher (bundled:matcher or a directory)")
    p.add_argument("--calibrate", action="store_true", help="fit the calibration on the calibration parts")
    p.add_argument("--perturbed", action="store_true", help="dev messages typed casually (finetune.perturb)")
    p.add_argument("--no-answers", action="store_true", help="do not index the Bitext answers (their effect)")
    p.add_argument("--n", type=int, default=0, help="messages per set (0 = all; calibration default 500)")
    p.add_argument("--scores", type=Path, help="calibration: reuse the scored candidates in this file if it "
                                                "exists (else collect and write them there)")
    p.add_argument("--out", help="dev results file name in bench/results (default: matcher[_perturbed])")
    p.add_argument("--holdout", type=float, default=HOLDOUT,
                   help="calibration: share of each knowledge base's intents held out (near-domain out-of-scope)")
    args = p.parse_args()
    own = matcher_dir(args.model) or MATCHER_DIR
    meta_path = own / MATCHER_FILE
    if args.calibrate:
        data = scores(args.scores, lambda: collect("calib", args.n or 500, args.model, False, holdout=args.holdout))
        calibration, n_rows = fit_calibration(data["runs"], data["near"])
        bands = choose_bands(data["runs"], calibration)
        baseline = choose_bands(data["runs"], None)
        near = {key: {"n": len(items), **{k: v for k, v in summarise(data["runs"][key][0], items, calibration,
                                                                      bands["answer_threshold"],
                                                                      bands["clarify_threshold"]).items()
                                          if k.startswith("oos_")}}
                for key, items in data["near"].items()}
        meta = json.loads(meta_path.read_text())
        meta["calibration"] = calibration.to_meta(n=n_rows, shapes=list(SHAPES), part="calib",
                                                  holdout=args.holdout, command="python bench/matcher.py --calibrate")
        meta["chosen_bands"] = bands
        meta_path.write_text(json.dumps(meta, indent=2) + "\n")
        result = {"bands": bands, "bi_encoder_bands": baseline, "calibration": meta["calibration"],
                  "calib": report(data["runs"], calibration, bands, baseline), "calib_near_domain": near}
        print(json.dumps({"bands": bands, "bi_encoder_bands": baseline}, indent=1))
        print(f"-> {save('matcher_calibration', result)} and {meta_path}")
        return 0
    meta = json.loads(meta_path.read_text())
    calibration = Calibration.from_meta(meta.get("calibration"))
    from bot.config import load_settings

    a = load_settings().answer
    bands = {"answer_threshold": a.answer_threshold, "clarify_threshold": a.clarify_threshold}
    chosen = json.loads((RESULTS / "matcher_calibration.json").read_text())
    baseline = chosen["bi_encoder_bands"]
    data = collect("dev", args.n, args.model, args.perturbed, answers=not args.no_answers)
    runs = data["runs"]
    retrieval_ms = [t[0] * 1000 for t in data["timing"]]
    matcher_ms = [t[1] * 1000 for t in data["timing"] if t[2]]
    pairs = sum(t[2] for t in data["timing"] if t[2])
    result = {"bands": bands, "bi_encoder_bands": baseline, "dev": report(runs, calibration, bands, baseline),
              "curves": curves(runs, calibration, bands["clarify_threshold"]),
              "latency": {"retrieval": percentiles(retrieval_ms), "matcher": percentiles(matcher_ms),
                          "matcher_ms_per_candidate": round(sum(matcher_ms) / max(1, pairs), 3)}}
    for key, r in result["dev"].items():
        m, b = r["matcher"], r["bi_encoder_alone"]
        print(f"{key:12s} matcher: right {m['answered_right']:.3f} wrong {m['answered_wrong']:.3f} resolved "
              f"{m['resolved']:.3f} oos-answered {m['oos_answered']:.3f} oos-choices {m['oos_offered_choices']:.3f}"
              f" | bi-encoder: right {b['answered_right']:.3f} wrong {b['answered_wrong']:.3f} resolved "
              f"{b['resolved']:.3f} oos-answered {b['oos_answered']:.3f}")
    print(json.dumps(result["latency"]))
    name = args.out or "matcher" + ("_perturbed" if args.perturbed else "") + ("_no_answers" if args.no_answers else "")
    result["inference"] = {"setting": load_settings().knowledge.inference,
                           "matcher_path": getattr(data["matcher"]._loaded.model, "backend", "torch")
                           if data["matcher"] is not None else None}
    print(f"-> {save(name, result)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
