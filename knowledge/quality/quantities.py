"""Quantities in support text - amounts, percentages, durations - with the words they are about, so that two
texts can be compared on a fact ("returns within 30 days" vs "returns within 14 days")."""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

_CURRENCY = {"€": "EUR", "eur": "EUR", "euro": "EUR", "euros": "EUR", "$": "USD", "usd": "USD", "dollars": "USD",
             "£": "GBP", "gbp": "GBP", "pounds": "GBP", "chf": "CHF", "fr.": "CHF"}
_DURATION = {"minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute", "hour": "hour",
             "hours": "hour", "hrs": "hour", "day": "day", "days": "day", "week": "week", "weeks": "week",
             "month": "month", "months": "month", "year": "year", "years": "year"}
_WORDS = {"one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
          "nine": "9", "ten": "10", "twelve": "12", "fourteen": "14", "thirty": "30"}
_NUM = r"(\d+(?:[.,]\d{1,2})?|" + "|".join(_WORDS) + r")"
_PATTERNS = [
    (re.compile(r"(€|\$|£)\s?" + _NUM, re.IGNORECASE), "currency-before"),
    (re.compile(_NUM + r"\s?(€|eur|euros?|usd|dollars|gbp|pounds|chf)\b", re.IGNORECASE), "currency-after"),
    (re.compile(r"\b(eur|usd|gbp|chf)\s?" + _NUM, re.IGNORECASE), "code-before"),
    (re.compile(_NUM + r"\s?(%|percent\b)", re.IGNORECASE), "percent"),
    (re.compile(r"\b" + _NUM + r"[\s-]?(?:working |business |calendar )?(minutes?|mins?|hours?|hrs|days?|weeks?|"
                r"months?|years?)\b", re.IGNORECASE), "duration"),
]
_STOP = frozenset("""a an the and or of to in on at by for with from as is are was were be been it its this that
you your we our us can will may must do does have has within up after before per than more less only also not
no yes please any all each every""".split())


@dataclasses.dataclass(frozen=True)
class Quantity:
    value: str  # canonical: "4.95", "30"
    unit: str  # "EUR", "%", "day", ...
    about: frozenset[str]  # stemmed content words of its sentence
    sentence: str

    def __str__(self) -> str:
        return f"{self.value} {self.unit}" + ("s" if self.unit in _DURATION.values() and self.value != "1" else "")


def _value(raw: str) -> str:
    raw = _WORDS.get(raw.lower(), raw).replace(",", ".")
    if "." in raw:
        whole, frac = raw.split(".", 1)
        frac = frac.rstrip("0")
        return f"{int(whole)}.{frac}" if frac else str(int(whole))
    return str(int(raw))


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


def about(sentence: str) -> frozenset[str]:
    import Stemmer

    words = [w for w in re.findall(r"[a-z]+", sentence.lower()) if w not in _STOP and len(w) > 2
             and w not in _DURATION and w not in _CURRENCY and w not in _WORDS]
    return frozenset(Stemmer.Stemmer("english").stemWords(words))


def quantities(text: str) -> list[Quantity]:
    """Every amount, percentage and duration of ``text``, each with its sentence's topic words."""
    out = []
    for sentence in sentences(text):
        topic = about(sentence)
        for pattern, kind in _PATTERNS:
            for m in pattern.finditer(sentence):
                if kind == "currency-before":
                    unit, raw = _CURRENCY[m.group(1).lower()], m.group(2)
                elif kind == "currency-after":
                    raw, unit = m.group(1), _CURRENCY[m.group(2).lower()]
                elif kind == "code-before":
                    unit, raw = _CURRENCY[m.group(1).lower()], m.group(2)
                elif kind == "percent":
                    raw, unit = m.group(1), "%"
                else:
                    raw, unit = m.group(1), _DURATION[m.group(2).lower()]
                out.append(Quantity(_value(raw), unit, topic, sentence))
    return list(dict.fromkeys(out))


def disagreements(a: str, b: str, min_shared: int = 2,
                  similar: Callable[[str, str], float] | None = None,
                  min_similarity: float = 0.0) -> list[tuple[Quantity, Quantity]]:
    """Pairs of quantities of the same unit whose values differ, in sentences about the same thing: at least
    ``min_shared`` topic words in common and (with ``similar``) sentences at least ``min_similarity`` alike. Two
    sentences that share any value of that unit are not a contradiction (a list of prices, a range, options), nor
    is a value that the other text states somewhere too."""
    qa, qb = quantities(a), quantities(b)
    values_a = {(q.unit, q.value) for q in qa}
    values_b = {(q.unit, q.value) for q in qb}
    out = []
    for x in qa:
        for y in qb:
            if x.unit != y.unit or x.value == y.value:
                continue
            if (y.unit, y.value) in values_a or (x.unit, x.value) in values_b:
                continue
            same_a = {q.value for q in qa if q.sentence == x.sentence and q.unit == x.unit}
            same_b = {q.value for q in qb if q.sentence == y.sentence and q.unit == y.unit}
            if same_a & same_b or len(x.about & y.about) < min_shared:
                continue
            if similar is not None and similar(x.sentence, y.sentence) < min_similarity:
                continue
            out.append((x, y))
    return out
