"""Checks that a generated answer is supported by the passages it cites (no NLI model needed)."""

from __future__ import annotations

import dataclasses
import re

from bot.prompting import citations

_WORD = re.compile(r"[a-z0-9€$£%]+(?:[.,:][0-9]+)*", re.IGNORECASE)
_STOP = frozenset("""a an the and or but if then of to in on at by for with from as is are was were be been being
it its this that these those you your we our us i me my they them their he she his her can could will would
should may might must do does did done have has had not no yes so than too very just also there here what which
who whom how when where why all any some each more most other such only own same into over under again about
please thank thanks""".split())


def content_tokens(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1]


@dataclasses.dataclass(frozen=True)
class Grounding:
    supported: bool
    overlap: float  # share of the answer's content tokens found in the cited passages
    cited: list[int]  # valid 1-based passage numbers cited
    invalid_citations: list[int]


def check(answer: str, passages: list[str], min_overlap: float = 0.6) -> Grounding:
    """Valid citations, and enough of the answer's content words present in the cited passages.

    With no citation at all, the answer is checked against every passage (weak models often forget to
    cite); the caller then reports the passages that support it best.
    """
    cited_all = citations(answer)
    valid = [n for n in cited_all if 1 <= n <= len(passages)]
    invalid = [n for n in cited_all if n not in valid]
    tokens = content_tokens(re.sub(r"\[\d+\]", " ", answer))
    if not tokens:
        return Grounding(False, 0.0, valid, invalid)
    evidence = [passages[n - 1] for n in valid] if valid else passages
    vocab = set(content_tokens(" ".join(evidence)))
    overlap = sum(t in vocab for t in tokens) / len(tokens)
    return Grounding(supported=overlap >= min_overlap and not invalid, overlap=overlap, cited=valid,
                     invalid_citations=invalid)


def best_supporting(answer: str, passages: list[str]) -> int:
    """1-based index of the passage sharing the most content tokens with ``answer``."""
    tokens = set(content_tokens(answer))
    scores = [len(tokens & set(content_tokens(p))) for p in passages]
    return 1 + max(range(len(passages)), key=lambda i: scores[i]) if passages else 0
