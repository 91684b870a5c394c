"""Checks that a generated answer is supported by the passages it cites (no NLI model needed).

Three entailment-free checks: the citations point at passages that exist; enough of the answer's content
words appear in the cited passages; and the answer is close in meaning to its best cited passage (the
knowledge base's own sentence embeddings). When a check fails, ``best_sentence`` gives the extractive
alternative: the passage sentence closest to the question.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Sequence

import numpy as np

from bot.conversation.prompting import citations

Embed = Callable[[Sequence[str]], np.ndarray]  # texts -> L2-normalised vectors

_WORD = re.compile(r"[a-z0-9€$£%]+(?:[.,:][0-9]+)*", re.IGNORECASE)
_STOP = frozenset("""a an the and or but if then of to in on at by for with from as is are was were be been being
it its this that these those you your we our us i me my they them their he she his her can could will would
should may might must do does did done have has had not no yes so than too very just also there here what which
who whom how when where why all any some each more most other such only own same into over under again about
please thank thanks""".split())
# The prompt's own delimiters in an answer mean the model copied its input rather than answering.
_SCAFFOLD = re.compile(r"</?(passages|passage|question)>|^\s*\[\d+\][^\n]*\n", re.IGNORECASE | re.MULTILINE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def content_tokens(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in _STOP and len(w) > 1]


@dataclasses.dataclass(frozen=True)
class Grounding:
    supported: bool
    overlap: float  # share of the answer's content tokens found in the cited passages
    similarity: float | None  # embedding similarity with the best cited passage (None: not computed)
    cited: list[int]  # valid 1-based passage numbers cited
    invalid_citations: list[int]
    reason: str = ""


def check(answer: str, passages: list[str], min_overlap: float = 0.6, min_similarity: float = 0.5,
          embed: Embed | None = None) -> Grounding:
    """Is ``answer`` supported by the passages it cites?

    With no citation at all, the answer is checked against every passage (weak models often forget to
    cite); the caller then reports the passages that support it best.
    """
    if _SCAFFOLD.search(answer):
        return Grounding(False, 0.0, None, [], [], "echoes the prompt instead of answering")
    cited_all = citations(answer)
    valid = [n for n in cited_all if 1 <= n <= len(passages)]
    invalid = [n for n in cited_all if n not in valid]
    body = re.sub(r"\[\d+\]", " ", answer)
    tokens = content_tokens(body)
    if invalid:
        return Grounding(False, 0.0, None, valid, invalid, f"cites passages that do not exist: {invalid}")
    if not tokens:
        return Grounding(False, 0.0, None, valid, invalid, "no content")
    evidence = [passages[n - 1] for n in valid] if valid else passages
    vocab = set(content_tokens(" ".join(evidence)))
    overlap = sum(t in vocab for t in tokens) / len(tokens)
    if overlap < min_overlap:
        return Grounding(False, overlap, None, valid, invalid, f"only {overlap:.0%} of its words are in the passages")
    similarity = None
    if embed is not None:
        vectors = embed([body, *evidence])
        similarity = float(np.max(vectors[1:] @ vectors[0]))
        if similarity < min_similarity:
            return Grounding(False, overlap, similarity, valid, invalid, f"similarity {similarity:.2f} too low")
    return Grounding(True, overlap, similarity, valid, invalid)


def best_supporting(answer: str, passages: list[str]) -> int:
    """1-based index of the passage sharing the most content tokens with ``answer``."""
    tokens = set(content_tokens(answer))
    scores = [len(tokens & set(content_tokens(p))) for p in passages]
    return 1 + max(range(len(passages)), key=lambda i: scores[i]) if passages else 0


def sentences(text: str, min_words: int = 4) -> list[str]:
    """The sentences (and list items) of ``text`` with at least ``min_words`` words."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=[-*|#])", text):
        block = " ".join(block.split()).strip(" -*|#")
        out.extend(s.strip() for s in _SENTENCE.split(block) if len(s.split()) >= min_words)
    return out


def best_sentence(question: str, passages: list[str], embed: Embed, min_words: int = 4
                  ) -> tuple[int, str, float] | None:
    """(1-based passage, sentence, similarity) of the passage sentence closest to ``question``."""
    candidates = [(i + 1, s) for i, p in enumerate(passages) for s in sentences(p, min_words)]
    if not candidates:
        return None
    vectors = embed([question, *(s for _, s in candidates)])
    sims = vectors[1:] @ vectors[0]
    best = int(np.argmax(sims))
    return candidates[best][0], candidates[best][1], float(sims[best])


_UNIT_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(*`])")
_TABLE_RULE = re.compile(r"\|[\s:|-]+\|?")


def answer_units(passage: str, min_words: int = 4) -> list[str]:
    """What a passage can be quoted by: its sentences and list items, and each table row as a small Markdown table
    with its header (so that a quoted row stays readable), in passage order."""
    out: list[str] = []
    header = None
    for line in passage.splitlines():
        s = line.strip()
        if s.startswith("|"):
            if _TABLE_RULE.fullmatch(s):
                continue
            if header is None:
                header = s
                continue
            out.append(f"{header}\n|{'---|' * max(1, header.count('|') - 1)}\n{s}")
            continue
        header = None
        s = re.sub(r"^(?:[-*]|\d+\.)\s+", "", s).strip()
        if s and not s.startswith("#"):
            out += [x for x in _UNIT_SENTENCE.split(s) if len(x.split()) >= min_words]
    return out


@dataclasses.dataclass(frozen=True)
class UnitWeights:
    """How the extractive answer's units are scored (``unit_scores``): the question's embedding similarity with the
    unit, plus ``words`` x the share of the question's content words in the unit, ``heading`` x their share in the
    passage's heading path, and ``kind`` when the question asks for an amount, a count or a duration and the unit
    holds one. Chosen on the development questions (``bench/extractive.py --set dev --grid``)."""

    words: float = 0.3
    heading: float = 0.2
    kind: float = 0.2


SIMILARITY_ONLY = UnitWeights(0.0, 0.0, 0.0)

_ASKS_AMOUNT = re.compile(r"\b(how much|cost|costs|price|prices|pricing|fee|fees|charge|charged|pay|paid|rate)\b",
                          re.IGNORECASE)
_ASKS_COUNT = re.compile(r"\b(how (many|big|large|often|much)|max|maximum|minimum|limit|limits|cap|size|number of|"
                         r"quota|allowance|included|includes?)\b", re.IGNORECASE)
_ASKS_TIME = re.compile(r"\b(how long|how soon|when|until|expire|expires|expiry|days?|hours?|minutes?|weeks?|"
                        r"months?|years?|time ?out|deadline)\b", re.IGNORECASE)
_AMOUNT = re.compile(r"[$€£]\s?\d|\d\s?(usd|eur|gbp|dollars?|euros?|cents?)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|twelve|hundred|thousand)\b",
                     re.IGNORECASE)
_DURATION = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve|thirty|sixty|ninety)"
                       r"[\s-]*(seconds?|minutes?|hours?|days?|weeks?|months?|years?)\b|\b\d{1,2}:\d{2}\b",
                       re.IGNORECASE)


def asks_for(question: str, unit: str) -> bool:
    """Whether ``unit`` holds the kind of fact ``question`` asks for (an amount, a count or size, a duration)."""
    if _ASKS_AMOUNT.search(question) and _AMOUNT.search(unit):
        return True
    if _ASKS_TIME.search(question) and _DURATION.search(unit):
        return True
    return bool(_ASKS_COUNT.search(question) and _NUMBER.search(unit))


def unit_scores(question: str, units: Sequence[str], headings: Sequence[str], similarities: np.ndarray,
                weights: UnitWeights) -> np.ndarray:
    """Each unit's score as the extractive answer to ``question`` (``headings[i]``: the unit's heading path)."""
    words = set(content_tokens(question))
    out = np.asarray(similarities, dtype=float).copy()
    if not words or weights == SIMILARITY_ONLY:
        return out
    for i, (unit, heading) in enumerate(zip(units, headings)):
        out[i] += weights.words * len(words & set(content_tokens(unit))) / len(words)
        out[i] += weights.heading * len(words & set(content_tokens(heading))) / len(words)
        out[i] += weights.kind * asks_for(question, unit)
    return out


def ranked_units(question: str, passages: list[str], embed: Embed, min_words: int = 4,
                 titles: Sequence[str] | None = None, weights: UnitWeights = UnitWeights()
                 ) -> list[tuple[int, int, str, float, float]]:
    """Every unit of the passages (``answer_units``) as (1-based passage, index in it, unit, score, similarity),
    best answer to ``question`` first (``unit_scores``; the passages' heading paths are ``titles``)."""
    candidates = [(i + 1, j, u) for i, p in enumerate(passages) for j, u in enumerate(answer_units(p, min_words))]
    if not candidates:
        return []
    vectors = embed([question, *(u for _, _, u in candidates)])
    sims = vectors[1:] @ vectors[0]
    heads = [(titles[n - 1] if titles else "") or "" for n, _, _ in candidates]
    scores = unit_scores(question, [u for _, _, u in candidates], heads, sims, weights)
    ranked = [(n, j, u, float(scores[k]), float(sims[k])) for k, (n, j, u) in enumerate(candidates)]
    return sorted(ranked, key=lambda r: -r[3])


def best_units(question: str, passages: list[str], embed: Embed, min_words: int = 4, join_within: float = 0.05,
               titles: Sequence[str] | None = None, weights: UnitWeights = UnitWeights(),
               ranked: list[tuple[int, int, str, float, float]] | None = None) -> tuple[int, str, float] | None:
    """(1-based passage, quote, similarity): the passage unit that best answers ``question`` (``ranked_units``, or
    ``ranked`` when already computed), joined with the next unit of the same passage when that one scores nearly as
    well (it continues the point); a table row comes with its header. The similarity returned is the chosen unit's
    embedding similarity with the question (what ``answer.extractive_min_similarity`` is about)."""
    if ranked is None:
        ranked = ranked_units(question, passages, embed, min_words, titles, weights)
    if not ranked:
        return None
    n, j, unit, score, similarity = ranked[0]
    nxt = next((r for r in ranked if r[0] == n and r[1] == j + 1), None)
    if nxt is not None and nxt[3] >= score - join_within and "|" not in unit + nxt[2]:
        unit = f"{unit} {nxt[2]}"
    return n, unit, similarity
