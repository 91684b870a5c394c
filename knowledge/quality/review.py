"""``stale(kb)`` and ``conflicts(kb)``: what a person should look at (``supportbot kb stats --stale``,
``supportbot kb conflicts``). Both read the store; neither changes it.

stale       an FAQ entry past its ``review_by`` date; an entry or page whose records have not changed for longer
            than ``knowledge.stale_after_days`` (each write stamps ``changed_at``; a sync that finds a page
            unchanged does not).
conflicts   FAQ entries whose questions are near-duplicates (cosine >= ``knowledge.conflict_similarity``) and
            whose answers state different numbers for the same thing, or one says yes and the other no; and
            document passages close to an FAQ answer that state another number for the same thing.
"""

from __future__ import annotations

import datetime
import re
import time
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field

from knowledge.quality.quantities import disagreements

if TYPE_CHECKING:
    from knowledge.base import KnowledgeBase


class StaleEntry(BaseModel):
    entry_id: str
    kind: Literal["faq", "document"]
    title: str
    source: str | None = None
    reason: str
    review_by: str | None = None
    changed_at: float | None = None


class Conflict(BaseModel):
    kind: Literal["faq-faq", "page-faq"]
    entry_ids: list[str]
    titles: list[str]
    detail: str  # "30 days vs 14 days", "yes vs no"
    texts: list[str] = Field(default_factory=list)  # the sentences that disagree
    urls: list[str | None] = Field(default_factory=list)


def _entries(kb: "KnowledgeBase") -> dict[str, list]:
    out: dict[str, list] = {}
    for r in kb.store().iter_all():
        out.setdefault(r.entry_id, []).append(r)
    return out


def stale(kb: "KnowledgeBase", today: datetime.date | None = None, max_age_days: int | None = None,
          now: float | None = None) -> tuple[list[StaleEntry], int]:
    """(stale entries, most overdue first; how many entries carry no change date: written before dates were kept)."""
    today = today or datetime.date.today()
    now = time.time() if now is None else now
    max_age = (max_age_days or kb.settings.knowledge.stale_after_days) * 86400
    out: list[StaleEntry] = []
    undated = 0
    for eid, records in _entries(kb).items():
        meta = records[0].metadata
        kind = "faq" if meta.get("kind") == "faq" else "document"
        title = str(meta.get("doc_title") or meta.get("title") or eid) if kind == "document" else str(meta.get("title"))
        changed = [float(r.metadata["changed_at"]) for r in records if r.metadata.get("changed_at") is not None]
        last = max(changed) if changed else None
        review_by = meta.get("review_by")
        if review_by and datetime.date.fromisoformat(review_by) < today:
            out.append(StaleEntry(entry_id=eid, kind=kind, title=title, source=meta.get("source"), review_by=review_by,
                                  changed_at=last, reason=f"review_by {review_by} has passed"))
        elif last is None:
            undated += 1
        elif now - last > max_age:
            days = int((now - last) // 86400)
            since = datetime.date.fromtimestamp(last).isoformat()
            out.append(StaleEntry(entry_id=eid, kind=kind, title=title, source=meta.get("source"), changed_at=last,
                                  review_by=review_by, reason=f"not changed for {days} days (since {since})"))
    out.sort(key=lambda s: (s.review_by or "9999", s.changed_at or 0.0))
    return out, undated


_YES = re.compile(r"^\s*(yes|yep|sure|of course|absolutely)\b", re.IGNORECASE)
_NO = re.compile(r"^\s*(no|nope|unfortunately not|sorry, no)\b", re.IGNORECASE)


def _polarity(answer: str) -> str | None:
    return "yes" if _YES.match(answer) else ("no" if _NO.match(answer) else None)


SENTENCE_MODEL = "bundled:minilm"  # the grounding check's similarity scale: it separates "same fact" sharply


def conflicts(kb: "KnowledgeBase", similarity: float | None = None, passages_per_entry: int = 5,
              passage_similarity: float = 0.5, sentence_similarity: float | None = None) -> list[Conflict]:
    """Disagreements for a person to resolve (see the module doc), FAQ pairs first. A page sentence and an FAQ
    sentence are compared only when they are at least ``knowledge.conflict_sentence_similarity`` alike (cosine,
    untuned MiniLM)."""
    from knowledge.embedder import Embedder

    ks = kb.settings.knowledge
    similarity = ks.conflict_similarity if similarity is None else similarity
    sentence_similarity = ks.conflict_sentence_similarity if sentence_similarity is None else sentence_similarity
    sentence_model = Embedder(SENTENCE_MODEL, kb.settings.cache, backend=ks.inference)
    memo: dict[tuple[str, str], float] = {}

    def alike(x: str, y: str) -> float:
        if (x, y) not in memo:
            v = np.asarray(sentence_model.embed([x, y]), dtype=np.float32)
            memo[(x, y)] = float(v[0] @ v[1])
        return memo[(x, y)]

    entries = _entries(kb)
    faq = {eid: recs for eid, recs in entries.items() if recs[0].metadata.get("kind") == "faq"}
    out: list[Conflict] = []
    if not faq:
        return out
    ids = list(faq)
    answers = {eid: str(faq[eid][0].metadata.get("answer", "")) for eid in ids}
    titles = {eid: str(faq[eid][0].metadata.get("title", eid)) for eid in ids}
    urls = {eid: faq[eid][0].metadata.get("url") for eid in ids}
    questions = [(eid, r.text) for eid in ids for r in faq[eid] if r.metadata.get("field") != "answer"]
    vectors = np.asarray(kb.embedder.embed([q for _, q in questions]), dtype=np.float32)
    owner = np.array([ids.index(eid) for eid, _ in questions])
    sims = vectors @ vectors.T
    best: dict[tuple[int, int], float] = {}
    for i, j in zip(*np.nonzero(sims >= similarity)):
        a, b = int(owner[i]), int(owner[j])
        if a < b:
            best[(a, b)] = max(best.get((a, b), 0.0), float(sims[i, j]))
    for (a, b), _ in sorted(best.items(), key=lambda kv: -kv[1]):
        ea, eb = ids[a], ids[b]
        pairs = disagreements(answers[ea], answers[eb], min_shared=1)
        pa, pb = _polarity(answers[ea]), _polarity(answers[eb])
        if pairs:
            x, y = pairs[0]
            out.append(Conflict(kind="faq-faq", entry_ids=[ea, eb], titles=[titles[ea], titles[eb]],
                                detail=f"{x} vs {y}", texts=[x.sentence, y.sentence], urls=[urls[ea], urls[eb]]))
        elif pa and pb and pa != pb:
            out.append(Conflict(kind="faq-faq", entry_ids=[ea, eb], titles=[titles[ea], titles[eb]],
                                detail=f"{pa} vs {pb}", texts=[answers[ea], answers[eb]], urls=[urls[ea], urls[eb]]))

    docs = {eid: recs for eid, recs in entries.items() if recs[0].metadata.get("kind") == "document"}
    if docs:
        store = kb.store()
        answer_vectors = np.asarray(kb.embedder.embed([answers[eid] for eid in ids]), dtype=np.float32)
        by_id = {r.id: r for recs in docs.values() for r in recs}
        seen: set[tuple[str, str]] = set()
        for eid, vector in zip(ids, answer_vectors):
            for rid, score in store.query_ids(vector, passages_per_entry, where={"kind": "document"}):
                passage = by_id.get(rid)
                if passage is None or score < passage_similarity or (eid, passage.entry_id) in seen:
                    continue
                pairs = disagreements(answers[eid], passage.text, min_shared=1, similar=alike,
                                      min_similarity=sentence_similarity)
                if pairs:
                    seen.add((eid, passage.entry_id))
                    x, y = pairs[0]
                    out.append(Conflict(kind="page-faq", entry_ids=[eid, passage.entry_id],
                                        titles=[titles[eid], str(passage.metadata.get("title", passage.entry_id))],
                                        detail=f"{x} vs {y}", texts=[x.sentence, y.sentence],
                                        urls=[urls[eid], passage.metadata.get("url") or passage.metadata.get("source")]))
    return out
