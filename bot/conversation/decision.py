"""The reply decision: one pure function of the hits and the answer settings.

FAQ hits carry the matcher's calibrated probability that the entry answers the message (``knowledge.matcher``);
document passages carry their retrieval score. Best first:

    faq        the best FAQ entry's probability >= answer.answer_threshold: its curated answer, verbatim;
    generate   the best document passage scores >= answer.generate_threshold: the language model writes an answer
               from the top generator.max_passages passages (documents only; FAQ answers join them only with
               answer.combine_faq_with_passages), released only if it passes the grounding check;
    clarify    the best FAQ entry's *retrieval* score (fused dense + BM25, ``Hit.signals["retrieval"]``) >=
               answer.clarify_threshold: "did you mean ...?" with the most probable FAQ entries scoring >=
               answer.suggestion_min (at most answer.max_suggestions). (Gating on retrieval's score, not the
               calibrated probability, offers choices to fewer off-topic messages for as many right ones: the
               calibration's margin features run high for a lone, loosely similar entry.)
    fallback   otherwise: an honest "I don't know" (or a handoff, if an escalation rule says so).

A curated answer is never rewritten: it is given verbatim, offered as a choice, or not given. When a generated
answer fails the grounding check, the plan's suggestions (if any) are offered instead of the fallback.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

from knowledge.schema import Hit

Action = Literal["faq", "clarify", "generate", "fallback"]


@dataclasses.dataclass(frozen=True)
class Bands:
    """The decision's thresholds (``[answer]`` settings)."""

    answer: float = 0.86  # answer_threshold (calibrated probability)
    clarify: float = 0.44  # clarify_threshold (retrieval score)
    suggestion_min: float = 0.05
    max_suggestions: int = 3
    generate: float = 0.6  # generate_threshold (document passages' retrieval score)
    max_passages: int = 3
    combine_faq_with_passages: bool = False

    @classmethod
    def from_settings(cls, settings: object) -> "Bands":
        a = settings.answer  # type: ignore[attr-defined]
        return cls(a.answer_threshold, a.clarify_threshold, a.suggestion_min, a.max_suggestions,
                   a.generate_threshold, settings.generator.max_passages,  # type: ignore[attr-defined]
                   a.combine_faq_with_passages)


@dataclasses.dataclass(frozen=True)
class ReplyPlan:
    action: Action
    top: Hit | None  # the best hit of the action (None when retrieval found nothing)
    passages: tuple[Hit, ...] = ()  # what the generator writes from (action "generate")
    suggestions: tuple[Hit, ...] = ()  # the choices (action "clarify"; with "generate": if it is not grounded)

    @property
    def score(self) -> float:
        return self.top.score if self.top is not None else 0.0


def retrieval_score(hit: Hit) -> float:
    """The hit's retrieval score: kept in ``signals`` when the matcher rescored it, else its score."""
    return float(hit.signals.get("retrieval", hit.score))


def decide(hits: Sequence[Hit], bands: Bands) -> ReplyPlan:
    """What to do with these hits (any order)."""
    faq = sorted((h for h in hits if h.kind == "faq"), key=lambda h: -h.score)
    docs = sorted((h for h in hits if h.kind == "document"), key=lambda h: -h.score)
    best = faq[0] if faq else None
    if best is not None and best.score >= bands.answer:
        return ReplyPlan("faq", best)
    suggestions: tuple[Hit, ...] = ()
    if best is not None and max(retrieval_score(h) for h in faq) >= bands.clarify:
        suggestions = tuple(h for h in faq[:bands.max_suggestions] if h.score >= bands.suggestion_min)
    pool = docs
    if bands.combine_faq_with_passages:
        pool = sorted(docs + [h for h in faq if retrieval_score(h) >= bands.clarify], key=lambda h: -h.score)
    if pool and pool[0].score >= bands.generate:
        return ReplyPlan("generate", pool[0], tuple(pool[:bands.max_passages]), suggestions)
    if suggestions:
        return ReplyPlan("clarify", suggestions[0], suggestions=suggestions)
    top = max((h for h in (best, docs[0] if docs else None) if h is not None), key=lambda h: h.score, default=None)
    return ReplyPlan("fallback", top)
