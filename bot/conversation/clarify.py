"""The "did you mean ...?" turn: how a clarification is written, and how the customer's answer to it is read.

A clarification lists its choices numbered; the customer answers with a number ("2", "#2", "the second one",
"option 2"), the choice's question or entry id (a click in a widget), or "none" ("none of these", "neither",
"no", "0"). Anything else is a new message and is answered as one.
"""

from __future__ import annotations

import re
from typing import Literal, Sequence

NONE: Literal["none"] = "none"
_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
             "fifth": 5, "5th": 5, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "last": -1}
_NUMBER = re.compile(r"^(?:(?:number|option|choice|no\.?|#)\s*)?(\d{1,2})[.)]?$")
_ORDINAL = re.compile(r"^(?:the\s+)?(\w+)(?:\s+(?:one|option|choice))?$")
_NONE = re.compile(r"^(?:0|none|none of (?:these|them|those|the above)|neither|no|nope|nah|not these|"
                   r"something else|other|none of these apply)$")


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[!?.,;:'\"]+$", "", text.strip().lower()).split())


def parse_choice(text: str, questions: Sequence[str], entry_ids: Sequence[str] = ()) -> int | Literal["none"] | None:
    """The 0-based index of the chosen suggestion, ``"none"``, or None when ``text`` is not an answer to the
    clarification (a new question)."""
    t = _normal(text)
    if not t:
        return None
    if _NONE.match(t):
        return NONE
    m = _NUMBER.match(t)
    if m:
        n = int(m.group(1))
        return n - 1 if 1 <= n <= len(questions) else None
    m = _ORDINAL.match(t)
    if m and m.group(1) in _ORDINALS and len(t.split()) <= 3:
        n = _ORDINALS[m.group(1)]
        n = len(questions) if n == -1 else n
        return n - 1 if 1 <= n <= len(questions) else None
    for i, q in enumerate(questions):
        if t == _normal(q):
            return i
    for i, e in enumerate(entry_ids):
        if text.strip() == e:
            return i
    return None


def clarify_text(message: str, hint: str, questions: Sequence[str]) -> str:
    """The clarification as plain text: the question, the numbered choices, the hint."""
    lines = [message, "", *(f"{i}. {q}" for i, q in enumerate(questions, 1))]
    if hint:
        lines += ["", hint]  # blank lines around the list: Markdown renderers keep the hint apart from the last choice
    return "\n".join(lines)
