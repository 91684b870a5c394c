"""The reply decision: one pure function of the hits and the answer settings.

    faq        the top hit is an FAQ entry scoring >= answer.answer_threshold: its curated answer, verbatim;
    generate   the top hit scores >= answer.generate_threshold: the language model writes an answer from the top
               generator.max_passages hits, released only if it passes the grounding check;
    fallback   otherwise: an honest "I don't know" (or a handoff, if an escalation rule says so).

New bands (e.g. "did you mean ...?") are new actions here, decided from the same inputs, and a branch in the
engine that carries them out.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

from knowledge.schema import Hit

Action = Literal["faq", "generate", "fallback"]


@dataclasses.dataclass(frozen=True)
class ReplyPlan:
    action: Action
    top: Hit | None  # the best hit (None when retrieval found nothing)
    passages: tuple[Hit, ...] = ()  # what the generator writes from (action "generate")

    @property
    def score(self) -> float:
        return self.top.score if self.top is not None else 0.0


def decide(hits: Sequence[Hit], answer_threshold: float, generate_threshold: float, max_passages: int) -> ReplyPlan:
    """What to do with these hits (best first)."""
    top = hits[0] if hits else None
    if top is not None and top.kind == "faq" and top.score >= answer_threshold:
        return ReplyPlan("faq", top)
    if top is not None and top.score >= generate_threshold:
        return ReplyPlan("generate", top, tuple(hits[:max_passages]))
    return ReplyPlan("fallback", top)
