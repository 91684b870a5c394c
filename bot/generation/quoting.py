"""Quote-only decoding: the language model may only copy chosen passage sentences (or say ``NO_ANSWER``).

With ``generator.quote_only`` the local causal LM still reads the question and the passages and decides what to
say, but each token it may choose continues a copy. The engine gives it the quotes to choose from
(``GroundedStream.quotes``: the sentences the extractive scorer ranks best, each with the sentence after it); a quote
is copied from its start, may end at any sentence end inside it, and may be followed by another quote. Without
chosen quotes (a direct call), any sentence of the prompt's passages may start a copy. The model cannot invent a
number, flip a "no" or write a sentence the passages do not hold, so what it writes passes the grounding check as a
copy (``facts.copied``); its part is choosing. Prompt-lookup drafting (``generator.prompt_lookup_tokens``) drafts
from the prompt, where the copied text is, so copies are fast.

``QuoteConstraint`` is the state machine over token ids. ``quote_decode`` (what ``CausalLMGenerator`` uses) asks the
model only where the constraint leaves a choice and yields the forced rest of a quote at once;
``QuoteLogitsProcessor`` applies the same constraint inside ``generate`` (same greedy output, token by token). The
state is recomputed from the generated ids at every call, so it holds for drafted (prompt-lookup) tokens too.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

from bot.conversation.prompting import NO_ANSWER

# Where a quote may start: the start of a passage, of a line that is not a heading or a table line, or of a
# sentence (after . ! ? and a space).
_SENTENCE_START = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')*]))[ \t]+(?=\S)|^(?=[^#|\s])", re.MULTILINE)
_LIST_MARK = re.compile(r"(?:[-*]|\d+\.)[ \t]+")
# A sentence's end: final punctuation (and closing marks) before whitespace or the end - not the point inside
# "€4.95", nor the one of "e.g." or "incl.".
_SENTENCE_END = re.compile(r"[.!?][*\"')\]]*(?=\s|$)")
_ABBREVIATION = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]|excl|incl|approx|etc|vs|no|nr|min|max|mr|mrs|ms|dr|st|ca|cf",
                           re.IGNORECASE)
_COMPLETE = re.compile(r"[.!?:][*\"')\]]*\s*$")  # a line or text that ends a sentence (or a lead-in)


def _sentence_ends(text: str, offsets: Sequence[tuple[int, int]]) -> list[int]:
    """Token indices at which a copy of ``text`` may stop: after a sentence's final punctuation, and before the line
    break that closes a list item or a line ending in punctuation (never inside a number or after an abbreviation,
    never at a hard-wrapped line inside a sentence)."""
    chars = []
    for m in _SENTENCE_END.finditer(text):
        words = text[:m.start()].split()
        if m.group(0).startswith(".") and words and _ABBREVIATION.fullmatch(words[-1].strip("*\"'(")):
            continue
        chars.append(m.end())
    line_start = 0
    for m in re.finditer(r"\n", text):
        line = text[line_start:m.start()].strip()
        if line and (_COMPLETE.search(line) or _LIST_MARK.match(line)):
            chars.append(m.start())
        line_start = m.end()
    out = []
    for c in chars:  # the first token that starts at or after the character
        index = next((k for k, (a, _) in enumerate(offsets) if a >= c), len(offsets))
        out.append(index)
    return out


class QuoteConstraint:
    """Which token ids may come next, given the ids generated so far, when only passage sentences may be copied.

    ``segments`` are the token ids of each passage (and of ``NO_ANSWER``); ``starts`` the (segment, index) pairs
    where a quote may begin. A position is a boundary (where the quote may end or jump to another start) when it is
    a start, a segment's end, after a sentence's final punctuation or before a line break."""

    def __init__(self, segments: Sequence[Sequence[int]], starts: Iterable[tuple[int, int]], end_ids: Iterable[int],
                 other: dict[int, int] | None = None, ends: Iterable[tuple[int, int]] = (),
                 opening_only: Iterable[int] = ()) -> None:
        self.end_ids = set(end_ids)
        self.segments = [list(s) for s in segments]
        self.starts = sorted({(s, i) for s, i in starts if 0 <= i < len(self.segments[s])})
        self.start_set = set(self.starts)
        # where a quote may end (``ends``: after a sentence's final punctuation, before a line that ends an item,
        # a segment's end when it is one) and where another may start
        self.boundaries = self.start_set | set(ends)
        self.later_starts = [(s, i) for s, i in self.starts if s not in set(opening_only)]  # NO_ANSWER opens only
        # a start token's other form: without its leading space (the answer's first token: "It" for " It"), or with
        # one (a passage's first word when another sentence precedes it in the answer: " We" for "We")
        self.other = other or {}
        self._first = {self.segments[s][i] for s, i in self.starts}
        self._first_any = self._first | {self.other[t] for t in self._first if t in self.other}
        later = {self.segments[s][i] for s, i in self.later_starts}
        self._later_any = later | {self.other[t] for t in later if t in self.other}

    @classmethod
    def from_passages(cls, tokenizer: Any, passages: Sequence[str], end_ids: Iterable[int],
                      every_sentence: bool = True) -> "QuoteConstraint":
        """The constraint for copying ``passages``: from any of their sentences, or (``every_sentence`` false: each
        passage is one chosen quote) from their starts only."""
        segments: list[list[int]] = []
        starts: list[tuple[int, int]] = []
        ends: list[tuple[int, int]] = []
        for text in [*passages, NO_ANSWER]:
            enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
            s = len(segments)
            segments.append(ids)
            if text == NO_ANSWER or not every_sentence:
                if ids:
                    starts.append((s, 0))
            else:
                for m in _SENTENCE_START.finditer(text):
                    words = text[:m.start()].split()
                    if words and words[-1].endswith(".") and m.start() > 0 and text[m.start() - 1] != "\n" \
                            and _ABBREVIATION.fullmatch(words[-1].rstrip(".").strip("*\"'(")):
                        continue  # "e.g. yearly": not a new sentence
                    at = m.end()
                    mark = _LIST_MARK.match(text, at)  # "- item", "1. step": quote the item, not its mark
                    if mark:
                        at = mark.end()
                    # the token that holds the character at ``at`` (its leading space may be part of it)
                    index = next((k for k, (a, b) in enumerate(offsets) if b > at), None)
                    if index is not None:
                        starts.append((s, index))
            ends += [(s, i) for i in _sentence_ends(text, offsets)]
            if text == NO_ANSWER or not every_sentence or _COMPLETE.search(text):
                ends.append((s, len(ids)))  # a chosen quote is whole; a passage cut mid-sentence is not
        other = {}
        for s, i in starts:
            token = segments[s][i]
            piece = tokenizer.convert_ids_to_tokens(token)
            if not isinstance(piece, str):
                continue
            alt = tokenizer.convert_tokens_to_ids(piece[1:] if piece.startswith("Ġ") else "Ġ" + piece)
            if isinstance(alt, int) and alt != getattr(tokenizer, "unk_token_id", None):
                other[token] = alt
        return cls(segments, starts, end_ids, other, ends, opening_only=[len(segments) - 1])

    def _after(self, positions: set[tuple[int, int]], token: int, first: bool) -> set[tuple[int, int]]:
        nxt = {(s, i + 1) for s, i in positions if i < len(self.segments[s]) and self.segments[s][i] == token}
        if first or self._boundary(positions):
            nxt |= {(s, i + 1) for s, i in (self.starts if first else self.later_starts)
                    if token in (self.segments[s][i], self.other.get(self.segments[s][i]))}
        return nxt

    def _boundary(self, positions: set[tuple[int, int]]) -> bool:
        return any(p in self.boundaries for p in positions)

    def allowed(self, generated: Sequence[int]) -> set[int]:
        """The ids that may follow ``generated`` (the answer's ids so far)."""
        if not generated:
            return self._first_any
        positions: set[tuple[int, int]] = set()
        for k, token in enumerate(generated):
            if token in self.end_ids:
                return set(self.end_ids)
            positions = self._after(positions, token, first=k == 0)
            if not positions:  # off every passage (cannot happen under the constraint): stop
                return set(self.end_ids)
        out = {self.segments[s][i] for s, i in positions if i < len(self.segments[s])}
        if self._boundary(positions):
            out |= self._later_any | self.end_ids
        return out


class QuoteLogitsProcessor:
    """A transformers logits processor: every token the constraint does not allow gets -inf."""

    def __init__(self, constraint: QuoteConstraint, prompt_length: int) -> None:
        self.constraint = constraint
        self.prompt_length = prompt_length

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            allowed = sorted(self.constraint.allowed(input_ids[row, self.prompt_length:].tolist()))
            mask[row, allowed] = 0.0
        return scores + mask


def cache_keyword(model: Any) -> str:
    """The forward argument that takes the key/value cache: ``cache`` (transformers 5.2x), else the older
    ``past_key_values`` (a user's own model class may still use it)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def fast_forward(constraint: QuoteConstraint, generated: list[int], limit: int) -> list[int]:
    """The tokens that must follow ``generated`` (exactly one is allowed at each step, and it is no end): the rest
    of a quote up to its next boundary, known without asking the model."""
    forced: list[int] = []
    while len(generated) + len(forced) < limit:
        allowed = constraint.allowed(generated + forced)
        if len(allowed) != 1 or allowed & constraint.end_ids:
            break
        forced.append(next(iter(allowed)))
    return forced


def quote_decode(model: Any, tokenizer: Any, input_ids: Any, constraint: QuoteConstraint, max_new_tokens: int,
                 past: Any = None, prefix_length: int = 0) -> Iterable[str]:
    """Greedy quote-only decoding, yielding text as soon as it is known: the model is asked only where the quote
    constraint leaves a choice (which quote, whether to go on after a sentence); the forced rest of a quote is
    yielded at once and fed to the model in one forward pass. Same output as greedy ``generate`` with
    ``QuoteLogitsProcessor``, with far fewer model calls. ``past``: a key/value cache holding the first
    ``prefix_length`` prompt tokens (e.g. the system prompt's), which are then not computed again."""
    import torch
    from transformers import DynamicCache

    if past is None or prefix_length <= 0:
        past, prefix_length = DynamicCache(), 0
    key = cache_keyword(model)
    generated: list[int] = []
    shown = ""
    with torch.inference_mode():
        logits = model(input_ids=input_ids[:, prefix_length:], **{key: past}, use_cache=True,
                       logits_to_keep=1).logits[0, -1]
        while len(generated) < max_new_tokens:
            ids = sorted(constraint.allowed(generated))
            token = ids[int(torch.argmax(logits[ids]))] if ids else None
            if token is None or token in constraint.end_ids:
                break
            new = [token, *fast_forward(constraint, generated + [token], max_new_tokens)]
            generated += new
            text = tokenizer.decode(generated, skip_special_tokens=True)
            if not text.endswith("\ufffd") and len(text) > len(shown):  # never half a multi-byte character
                yield text[len(shown):]
                shown = text
            if len(generated) >= max_new_tokens or constraint.allowed(generated) <= constraint.end_ids:
                break  # nothing left to choose: no model call
            logits = model(input_ids=torch.tensor([new], dtype=input_ids.dtype), **{key: past}, use_cache=True,
                           logits_to_keep=1).logits[0, -1]
    text = tokenizer.decode(generated, skip_special_tokens=True)
    if len(text) > len(shown):
        yield text[len(shown):]
