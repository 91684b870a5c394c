"""A generated answer is released only if the passages it cites support it; otherwise the passage sentence closest
to the question is quoted (extractive), if it is close enough; otherwise nothing (the caller falls back)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Sequence

from bot.conversation import grounding
from bot.conversation.grounding import Embed
from bot.conversation.prompting import is_no_answer
from bot.types import Source
from knowledge.schema import Hit

log = logging.getLogger("supportbot")


def source_of(hit: Hit) -> Source:
    return Source(entry_id=hit.entry_id, title=hit.title, text=hit.text, score=hit.score, url=hit.url,
                  kind=hit.kind)


@dataclasses.dataclass(frozen=True)
class GroundedAnswer:
    text: str
    sources: list[Source]
    confidence: float
    extractive: bool = False


def ground(question: str, text: str, used: Sequence[Hit], min_overlap: float, min_similarity: float,
           extractive_min_similarity: float, embed: Embed, extractive_min_words: int = 4) -> GroundedAnswer | None:
    """The generated ``text`` if grounded in ``used``; else the closest passage sentence; else None."""
    texts = [h.text for h in used]
    if not is_no_answer(text):
        check = grounding.check(text, texts, min_overlap, min_similarity, embed)
        if check.supported:
            cited = check.cited or [grounding.best_supporting(text, texts)]
            sources = [source_of(used[n - 1]).model_copy(update={"citation": n}) for n in cited]
            return GroundedAnswer(text, sources, max(s.score for s in sources))
        log.info("generated answer rejected (%s)", check.reason)
    best = grounding.best_sentence(question, texts, embed, extractive_min_words)
    if best is not None and best[2] >= extractive_min_similarity:
        n, sentence, similarity = best
        source = source_of(used[n - 1]).model_copy(update={"citation": 1})
        return GroundedAnswer(f"{sentence} [1]", [source], min(source.score, similarity), extractive=True)
    return None
