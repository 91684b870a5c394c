"""Fusing dense and BM25 results per entry, with a score in [0, 1] that thresholds can rely on.

Both signals are already absolute and bounded: the dense cosine similarity of the best variant or passage,
and the BM25 score normalised by the best achievable score for the query's terms. The reported score is
``dense_weight * cosine + (1 - dense_weight) * lexical`` whatever the ranking method, so that a threshold
means the same thing for every query; ``rrf`` (reciprocal rank fusion) only changes the order.

An FAQ entry with many question variants (at least ``2 * support``, e.g. an intent with dozens of logged
phrasings) also takes support from its other variants, like a k-nearest-neighbour vote:
``(1 - w) * best + w * mean(its best `support` similarities among the candidates)``, padded with the lowest, where
``w`` is ``knowledge.support_weight`` (0.5).
Entries with a handful of hand-written variants, and documents' passages, are scored by their best match
alone: averaging their deliberately different phrasings would only blur a clear match.

A document's passages are candidates of their own (an FAQ entry's variants are not): the section that answers a
question is often not the one closest to it, and the generator reads several passages. ``top_entries`` keeps the
ranking by entry - the best ``k`` entries, as for FAQ entries - and gives each document among them up to
``passages_per_document`` of its passages.

An FAQ entry's answer is a record too (a message may ask about what the answer says: "cost to send stuff to
canada" -> the entry whose answer lists countries and fees); its dense and BM25 scores are multiplied by
``knowledge.answer_weight`` (< 1) so that a long answer sharing words with the message does not outrank a precise
question match, and it never takes part in the variant support.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from knowledge.store import Record

FusionMethod = Literal["weighted", "rrf", "dense", "bm25"]


@dataclasses.dataclass
class Candidate:
    entry_id: str
    record: Record  # the best-matching variant or passage
    dense: float | None = None
    lexical: float = 0.0


def candidate_key(record: Record) -> str:
    """What one candidate is: an FAQ entry (all its variants and its answer), or one passage of a document."""
    return f"{record.entry_id}\x00{record.id}" if record.metadata.get("kind") == "document" else record.entry_id


def group_best(results: list[tuple[Record, float]], support: int = 1, support_weight: float = 0.5
               ) -> dict[str, tuple[Record, float]]:
    """Per candidate (``candidate_key``): its best record, and its score (with support from other FAQ variants if
    ``support`` > 1)."""
    best: dict[str, tuple[Record, float]] = {}
    scores: dict[str, list[float]] = {}
    for record, score in results:
        key = candidate_key(record)
        cur = best.get(key)
        if cur is None or score > cur[1]:
            best[key] = (record, score)
        if record.metadata.get("field") != "answer":
            scores.setdefault(key, []).append(score)
    if support > 1:
        for eid, (record, top) in best.items():
            if record.metadata.get("kind") != "faq" or int(record.metadata.get("variants", 1)) < 2 * support:
                continue
            values = sorted(scores.get(eid) or [top], reverse=True)[:support]
            values += [values[-1]] * (support - len(values))
            best[eid] = (record, (1.0 - support_weight) * top + support_weight * sum(values) / support)
    return best


def weigh_answers(results: list[tuple[Record, float]], answer_weight: float) -> list[tuple[Record, float]]:
    """Answer records' scores times ``answer_weight``; the others unchanged."""
    if answer_weight == 1.0:
        return results
    return [(r, s * answer_weight if r.metadata.get("field") == "answer" else s) for r, s in results]


def fuse(dense: list[tuple[Record, float]], lexical: list[tuple[Record, float]], method: FusionMethod,
         dense_weight: float, rrf_k: int = 60, support: int = 1, support_weight: float = 0.5,
         answer_weight: float = 1.0) -> list[tuple[Candidate, float]]:
    """Candidates (FAQ entries, document passages) ranked by ``method``, each with its calibrated score (best
    first)."""
    dense, lexical = weigh_answers(dense, answer_weight), weigh_answers(lexical, answer_weight)
    d_best, l_best = group_best(dense, support, support_weight), group_best(lexical)
    # An entry that only BM25 found has no variant among the dense candidates: each of its variants is at most
    # as similar as the last candidate. (Not the lowest *entry* score: when the candidates all belong to one or
    # two entries, as with an embedder fine-tuned on the FAQ, that is the best entry's own score, and every
    # BM25-only entry would tie with it and win on its words.)
    floor = min((s for _, s in dense), default=0.0)
    cands: dict[str, Candidate] = {}
    for key, (rec, s) in d_best.items():
        cands[key] = Candidate(rec.entry_id, rec, dense=s)
    for key, (rec, s) in l_best.items():
        c = cands.setdefault(key, Candidate(rec.entry_id, rec))
        c.lexical = s

    def score(c: Candidate) -> float:
        d = c.dense if c.dense is not None else floor
        if method == "dense":
            return max(0.0, min(1.0, d))
        if method == "bm25":
            return c.lexical
        return max(0.0, min(1.0, dense_weight * d + (1.0 - dense_weight) * c.lexical))

    scored = [(c, score(c)) for c in cands.values()]
    if method == "rrf":
        d_rank = {key: i for i, key in enumerate(sorted(d_best, key=lambda e: -d_best[e][1]))}
        l_rank = {key: i for i, key in enumerate(sorted(l_best, key=lambda e: -l_best[e][1]))}

        def rrf(c: Candidate) -> float:
            key, r = candidate_key(c.record), 0.0
            if key in d_rank:
                r += 1.0 / (rrf_k + 1 + d_rank[key])
            if key in l_rank:
                r += 1.0 / (rrf_k + 1 + l_rank[key])
            return r

        return sorted(scored, key=lambda cs: -rrf(cs[0]))
    if method == "bm25":
        scored = [cs for cs in scored if cs[0].lexical > 0]
    return sorted(scored, key=lambda cs: -cs[1])


def top_entries(ranked: list[tuple[Candidate, float]], k: int, passages_per_document: int = 1
                ) -> list[tuple[Candidate, float]]:
    """The candidates of the best ``k`` entries, in ``ranked``'s order: an FAQ entry once, a document with up to
    ``passages_per_document`` of its passages."""
    entries: dict[str, int] = {}
    out = []
    for c, s in ranked:
        n = entries.get(c.entry_id)
        if n is None:
            if len(entries) == k:
                continue
            n = 0
        if n >= (passages_per_document if c.record.metadata.get("kind") == "document" else 1):
            continue
        entries[c.entry_id] = n + 1
        out.append((c, s))
    return out


class Fusion:
    """The fusion step of a search as a component: ``run(dense, lexical, method)`` -> ranked candidates."""

    def __init__(self, dense_weight: float = 0.9, support: int = 3, support_weight: float = 0.5,
                 rrf_k: int = 60, answer_weight: float = 1.0) -> None:
        self.dense_weight = dense_weight
        self.answer_weight = answer_weight
        self.support = support
        self.support_weight = support_weight
        self.rrf_k = rrf_k

    def run(self, dense: list[tuple[Record, float]], lexical: list[tuple[Record, float]],
            method: FusionMethod = "weighted") -> list[tuple[Candidate, float]]:
        return fuse(dense, lexical, method, self.dense_weight, rrf_k=self.rrf_k, support=self.support,
                    support_weight=self.support_weight, answer_weight=self.answer_weight)
