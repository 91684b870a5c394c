"""A generated answer is released only sentence by sentence, each supported by the passages it cites
(``bot.conversation.verified``); when no sentence passes, the passage sentences that answer the question are quoted
(extractive), if they are close enough; otherwise nothing (the caller clarifies or falls back)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Iterable, Iterator, Sequence

from bot.conversation import grounding
from bot.conversation.grounding import Embed
from bot.conversation.verified import SentenceGate, Verifier
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


def evidence(hit: Hit) -> str:
    """What a passage vouches for: its heading path and its text ("Delivery within Germany" is part of what the
    section says)."""
    return f"{hit.title}\n{hit.text}" if hit.title else hit.text


def verifier(question: str, used: Sequence[Hit], settings: Any, consistency: Any, embed: Embed | None) -> Verifier:
    a = settings.answer
    return Verifier(question, [evidence(h) for h in used], a.grounding_min_overlap, consistency, a.fact_rules,
                    embed, a.grounding_min_similarity)


class GroundedStream:
    """Streams the verified sentences of a generated answer; ``result()`` is the answer to give afterwards."""

    def __init__(self, question: str, used: Sequence[Hit], settings: Any, consistency: Any, embed: Embed) -> None:
        self.question = question
        self.used = list(used)
        self.settings = settings
        self.embed = embed
        self.gate = SentenceGate(verifier(question, used, settings, consistency,
                                          embed if consistency is None else None))
        self._ranked: list[tuple[int, int, str, float, float]] | None = None
        self.quoted: list[int] = []  # the 1-based passages holding the last quotes() (in passage order)

    def weights(self) -> grounding.UnitWeights:
        a = self.settings.answer
        return grounding.UnitWeights(a.extractive_word_weight, a.extractive_heading_weight, a.extractive_kind_weight)

    def ranked(self) -> list[tuple[int, int, str, float, float]]:
        """The passages' units, best answer first (computed once: the quotes and the extractive answer share it)."""
        if self._ranked is None:
            self._ranked = grounding.ranked_units(self.question, [h.text for h in self.used], self.embed,
                                                  self.settings.answer.extractive_min_words,
                                                  [h.title for h in self.used], self.weights())
        return self._ranked

    def quotes(self, k: int, margin: float) -> list[str] | None:
        """What a quote-only generator may copy: the units that best answer the question, at most ``k``, scoring
        within ``margin`` of the best, each with the unit that follows it in its passage (the model may stop after
        the first or go on: an answer often takes two sentences). None when the best is a table row: a row is quoted
        with its header, by the extractive answer, not copied by the model."""
        ranked = self.ranked()
        if not ranked or "|" in ranked[0][2]:
            return None
        units = {(n, j): u for n, j, u, _, _ in ranked}
        out: list[str] = []
        for n, j, unit, score, _ in ranked:
            if len(out) == k or score < ranked[0][3] - margin:
                break
            if "|" in unit:
                continue
            nxt = units.get((n, j + 1))
            out.append(f"{unit} {nxt}" if nxt and "|" not in nxt else unit)
            if n not in self.quoted:
                self.quoted = sorted([*self.quoted, n])
        return out

    def run(self, pieces: Iterable[str]) -> Iterator[str]:
        yield from self.gate.run(pieces)
        if self.gate.rejected:
            log.info("generated answer rejected (%s)", self.gate.rejected)

    def result(self) -> GroundedAnswer | None:
        if self.gate.released:
            cited = self.gate.cited or [1]
            sources = [source_of(self.used[n - 1]).model_copy(update={"citation": n}) for n in cited]
            return GroundedAnswer(self.gate.text, sources, max(s.score for s in sources))
        a = self.settings.answer
        return extractive(self.question, self.used, a.extractive_min_similarity, self.embed, a.extractive_min_words,
                          self.weights(), self.ranked())


def extractive(question: str, used: Sequence[Hit], min_similarity: float, embed: Embed, min_words: int = 4,
               weights: grounding.UnitWeights = grounding.UnitWeights(),
               ranked: list[tuple[int, int, str, float, float]] | None = None) -> GroundedAnswer | None:
    """The passage sentence that best answers the question (``grounding.best_units``), quoted with its citation (the
    next sentence joined when it continues the same point; a table row with its header), or None when it is not
    close enough to the question."""
    texts = [h.text for h in used]
    best = grounding.best_units(question, texts, embed, min_words, titles=[h.title for h in used], weights=weights,
                                ranked=ranked)
    if best is None or best[2] < min_similarity:
        return None
    n, sentence, similarity = best
    source = source_of(used[n - 1]).model_copy(update={"citation": 1})
    text = f"{sentence}\n\n[1]" if sentence.lstrip().startswith("|") else f"{sentence} [1]"
    return GroundedAnswer(text, [source], min(source.score, similarity), extractive=True)


def ground(question: str, text: str, used: Sequence[Hit], settings: Any, consistency: Any, embed: Embed
           ) -> GroundedAnswer | None:
    """A complete generated ``text`` through the same checks as a stream (benchmarks, training evaluation)."""
    stream = GroundedStream(question, used, settings, consistency, embed)
    for _ in stream.run([text]):
        pass
    return stream.result()
