"""Verified streaming: a generated answer reaches the customer one checked sentence at a time.

    gate = SentenceGate(Verifier(question, passages, ...))
    for sentence in gate.run(generator.stream(prompt)):   # only sentences that passed the checks
        show(sentence)
    gate.released, gate.rejected                          # what was shown; why the rest was not

The model's text is buffered; each complete sentence (a short one, like "Yes.", is joined to the next so that its
"yes" is checked with what it affirms) is checked against the passages it cites before it is released:

1. it is not the prompt echoed back (a passage's heading line, with or without its number), and it cites only
   passages that exist;
2. enough of its content words are in the cited passages (``answer.grounding_min_overlap``);
3. the fact rules (``bot.conversation.facts``): its numbers, names and polarity agree with the passages;
4. unless it is a copy of passage text (``facts.copied``: the passage's words, nothing that changes a promise
   inserted or dropped), the consistency classifier (``bot.conversation.consistency``) finds a cited passage that
   supports it (without a classifier: the embedding similarity with the cited passages,
   ``answer.grounding_min_similarity``).

The first sentence that fails ends the answer: generation stops, nothing after it is shown, and what was released
before it stands (it passed). If no sentence passed, the caller answers extractively or falls back; a rejected
sentence never reaches the customer.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from bot.conversation import facts
from bot.conversation.grounding import _SCAFFOLD, content_tokens
from bot.conversation.prompting import NO_ANSWER, citations

Embed = Callable[[Sequence[str]], np.ndarray]
_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[^\s\[])|(?<=[.!?] \[\d\])\s+(?=\S)|(?<=[.!?]\[\d\])\s+(?=\S)|\n+")
_CITE = re.compile(r"\s*\[\d{1,2}\]")
_LEADING_CITATION = re.compile(r"^\W*\[\d{1,2}\]\s*\S")  # "[2] Delivery > Packstation": the prompt's heading line
_NO_ANSWER_START = re.compile(r"^\W*no[\s_]?answer\b", re.IGNORECASE)
_COMPLETE = re.compile(r"(?:[.!?:][*\"')\]]*|\[\d{1,2}\])\s*$")  # a last sentence that ended (or was cited)
MIN_CONTENT_WORDS = 3  # a shorter sentence ("Yes.") waits for the next one


@dataclasses.dataclass(frozen=True)
class Verdict:
    ok: bool
    cited: tuple[int, ...] = ()  # 1-based passages that support the sentence
    reason: str = ""


class Verifier:
    """Checks one sentence of an answer against the passages (the numbered ones of the prompt)."""

    def __init__(self, question: str, passages: Sequence[str], min_overlap: float = 0.6,
                 consistency: object | None = None, rules: bool = True, embed: Embed | None = None,
                 min_similarity: float = 0.5) -> None:
        self.question = question
        self.passages = list(passages)
        self.min_overlap = min_overlap
        self.consistency = consistency  # a ConsistencyChecker, or None
        self.rules = rules
        self.embed = embed
        self.min_similarity = min_similarity
        # each passage's first line (its heading path, when it has one) and the headings in it
        self.titles = {t.strip() for p in self.passages for line in p.splitlines()[:1]
                       if not line.rstrip().endswith((".", "!", "?")) and len(line.split()) <= 15
                       for t in [line, *line.split(" > ")] if t.strip()}

    def __call__(self, sentence: str) -> Verdict:
        if _SCAFFOLD.search(sentence) or _LEADING_CITATION.match(sentence):
            return Verdict(False, reason="echoes the prompt instead of answering")
        cited = citations(sentence)
        invalid = [n for n in cited if not 1 <= n <= len(self.passages)]
        if invalid:
            return Verdict(False, reason=f"cites passages that do not exist: {invalid}")
        body = _CITE.sub("", sentence).strip()
        tokens = content_tokens(body)
        if not tokens:
            return Verdict(False, reason="no content")
        if body.strip(" .*") in self.titles:
            return Verdict(False, reason="a passage's heading, not an answer")
        numbered = cited or list(range(1, len(self.passages) + 1))  # uncited: checked against every passage
        scored = []
        for n in numbered:
            vocab = set(content_tokens(self.passages[n - 1]))
            scored.append((sum(t in vocab for t in tokens) / len(tokens), n))
        best = max(scored)[1]
        together = set(content_tokens(" ".join(self.passages[n - 1] for n in numbered)))
        overlap = sum(t in together for t in tokens) / len(tokens)  # of the cited passages together
        if overlap < self.min_overlap:
            return Verdict(False, reason=f"only {overlap:.0%} of its words are in the passages")
        evidence = [self.passages[n - 1] for n in numbered]
        if self.rules:
            problems = facts.problems(body, evidence, self.question)
            if problems:
                return Verdict(False, reason=problems[0])
        support = tuple(cited) if cited else (best,)
        if self.consistency is not None and not facts.copied(body, evidence):
            scores = self.consistency.scores([body], evidence)  # type: ignore[attr-defined]
            if scores[0] < self.consistency.threshold:  # type: ignore[attr-defined]
                return Verdict(False, reason=f"the consistency check finds no passage supporting it "
                                             f"({scores[0]:.2f})")
        elif self.embed is not None:
            vectors = self.embed([body, *evidence])
            similarity = float(np.max(vectors[1:] @ vectors[0]))
            if similarity < self.min_similarity:
                return Verdict(False, reason=f"similarity {similarity:.2f} too low")
        return Verdict(True, support)


class SentenceGate:
    """Releases the sentences of a streamed text that pass ``verify``, up to the first that does not."""

    def __init__(self, verify: Callable[[str], Verdict]) -> None:
        self.verify = verify
        self.released: list[str] = []
        self.cited: list[int] = []
        self.rejected: str = ""  # the reason of the sentence that ended the answer
        self.no_answer = False
        self._separator = " "  # what separated the last released sentence from the next (a line break is kept)
        self._pieces: list[str] = []  # the released text, separators included

    def run(self, pieces: Iterable[str]) -> Iterator[str]:
        """Yield each verified sentence (after the first, with what separated it: a space or a line break); stops
        reading ``pieces`` at the first failure."""
        buffer = ""
        pieces = iter(pieces)
        try:
            for piece in pieces:
                buffer += piece
                if not self.released and NO_ANSWER in buffer.upper().replace(" ", "_"):
                    self.no_answer = True
                    return
                while (cut := self._boundary(buffer)) is not None:
                    piece_text = buffer[:cut]
                    sentence, buffer = piece_text.strip(), buffer[cut:]
                    out = self._release(sentence)
                    if out is None:
                        return
                    yield out
                    self._separator = "\n\n" if "\n\n" in piece_text[len(piece_text.rstrip()):] else \
                        "\n" if "\n" in piece_text[len(piece_text.rstrip()):] else " "
            tail = buffer.strip()
            if tail:
                if not self.released and _NO_ANSWER_START.match(tail):  # "NO_ANSWER", "no answer" (not "No account")
                    self.no_answer = True
                    return
                if not _COMPLETE.search(tail):  # cut off (the token budget ran out) before its end: never shown
                    self.rejected = "cut off before the end of the sentence"
                    return
                out = self._release(tail)
                if out is not None:
                    yield out
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()  # stops the generator's thread at its next token

    def _boundary(self, text: str) -> int | None:
        start = 0
        while (m := _BOUNDARY.search(text, start)) is not None:
            if len(content_tokens(_CITE.sub("", text[:m.start()]))) >= MIN_CONTENT_WORDS:
                return m.end()
            start = m.end()
        return None

    def _release(self, sentence: str) -> str | None:
        """The text to show for ``sentence`` if it passes; None ends the answer (failed, or a repeat: the model
        loops)."""
        if sentence in self.released:
            return None
        verdict = self.verify(sentence)
        if not verdict.ok:
            self.rejected = verdict.reason
            return None
        self.released.append(sentence)
        self.cited += [n for n in verdict.cited if n not in self.cited]
        out = sentence if len(self.released) == 1 else self._separator + sentence
        self._pieces.append(out)
        return out

    @property
    def text(self) -> str:
        """What was shown: the released sentences with their line breaks."""
        return "".join(self._pieces)


def verify_text(text: str, verify: Callable[[str], Verdict]) -> SentenceGate:
    """The gate run over a complete text (benchmarks, training evaluation): ``.text`` is what would be shown."""
    gate = SentenceGate(verify)
    for _ in gate.run([text]):
        pass
    return gate
