"""Personal data redaction: what customers type is masked before it is stored or reaches the language model.

Each kind has a detector that validates what it finds, so that an order number is not taken for a card:

* ``email``: addresses (``name+tag@sub.example.org``);
* ``card``: 13 to 19 digits, grouped by spaces, dashes or dots, with a card issuer's prefix, that pass the Luhn check
  (python-stdnum);
* ``iban``: IBANs of any country, spaced or not, with a valid check sum (python-stdnum);
* ``phone``: numbers Google's libphonenumber (``phonenumbers``) considers valid, international ones anywhere and
  national ones for ``phone_regions``;
* ``ssn``: US social security numbers written ``123-45-6789`` (never-issued ranges excluded);
* ``ip``: IPv4 addresses;
* any named regular expression of the configuration (``extra_patterns``, e.g. customer numbers).

Found spans are replaced by ``[EMAIL]``, ``[CARD]``, ... (the ``placeholder`` format); overlaps go to the kind
listed first. Retrieval still sees the original message, so an answer about "my card 4111 ..." is found the same.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from typing import Callable, Iterator, Mapping, Sequence

KINDS = ("email", "card", "iban", "ssn", "ip", "phone")
DEFAULT_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL")

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits, grouped by spaces, dashes or dots (4111 1111 ..., 4111-1111-..., 4111.1111....), not part of a
# longer number
_CARD = re.compile(r"(?<!\d)(?<!\d[.-])\d(?:[ .-]?\d){12,18}(?!\d)(?![.-]\d)")
# Issuer prefixes: Visa 4, Mastercard 51-55 / 22-27, Amex 34 / 37, Diners 30 / 36 / 38, JCB 35, Discover and
# UnionPay 6: a Luhn-valid order number (1 in 10 are) is not a card.
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[0-8]|6")
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}")
_IBAN_CHUNK = re.compile(r" ?[A-Za-z0-9]{1,4}")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\d-])")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")

Span = tuple[int, int]


@dataclasses.dataclass(frozen=True)
class Redaction:
    text: str
    found: dict[str, int]  # kind -> how many were masked

    @property
    def changed(self) -> bool:
        return bool(self.found)


def _emails(text: str) -> Iterator[Span]:
    for m in _EMAIL.finditer(text):
        yield m.span()


def _cards(text: str) -> Iterator[Span]:
    from stdnum import luhn

    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn.is_valid(digits):
            yield m.span()


def _ibans(text: str) -> Iterator[Span]:
    from stdnum import iban

    for m in _IBAN_START.finditer(text):
        ends, pos = [], m.end()
        while len(ends) < 9:  # at most 34 characters: the check digits and up to 8 groups of 4
            chunk = _IBAN_CHUNK.match(text, pos)
            if chunk is None:
                break
            pos = chunk.end()
            ends.append(pos)
        for end in reversed(ends):  # the longest valid one ("... 3000 thanks" is not part of it)
            if end < len(text) and text[end].isalnum():
                continue
            if iban.is_valid(text[m.start():end]):
                yield m.start(), end
                break


def _ssns(text: str) -> Iterator[Span]:
    for m in _SSN.finditer(text):
        yield m.span()


def _ips(text: str) -> Iterator[Span]:
    for m in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(m.group(0))
        except ValueError:
            continue
        yield m.span()


class Redactor:
    """``Redactor().redact(text)`` -> ``Redaction(text with [EMAIL], [CARD], ..., found)``."""

    def __init__(self, kinds: Sequence[str] = KINDS, phone_regions: Sequence[str] = DEFAULT_PHONE_REGIONS,
                 extra_patterns: Mapping[str, str] | None = None, placeholder: str = "[{kind}]") -> None:
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {unknown}: expected some of {', '.join(KINDS)}")
        self.kinds = list(kinds)
        self.phone_regions = [r.upper() for r in phone_regions]
        self.extra = {name: re.compile(pattern) for name, pattern in (extra_patterns or {}).items()}
        self.placeholder = placeholder
        self._detectors: dict[str, Callable[[str], Iterator[Span]]] = {
            "email": _emails, "card": _cards, "iban": _ibans, "ssn": _ssns, "ip": _ips, "phone": self._phones}

    @classmethod
    def from_settings(cls, privacy: object) -> "Redactor | None":
        """None when redaction is switched off (``[privacy] redact = []``)."""
        kinds = list(getattr(privacy, "redact", KINDS))
        extra = dict(getattr(privacy, "extra_patterns", {}) or {})
        if not kinds and not extra:
            return None
        return cls(kinds, getattr(privacy, "phone_regions", DEFAULT_PHONE_REGIONS), extra,
                   getattr(privacy, "placeholder", "[{kind}]"))

    def _phones(self, text: str) -> Iterator[Span]:
        import phonenumbers

        if not any(c.isdigit() for c in text):
            return
        for region in self.phone_regions or ["ZZ"]:  # ZZ: international numbers (+...) only
            for m in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
                yield m.start, m.end

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, kind) of everything to mask, without overlaps, in text order."""
        taken: list[tuple[int, int, str]] = []
        candidates = [(kind, self._detectors[kind]) for kind in self.kinds]
        candidates += [(name, lambda t, p=pattern: (m.span() for m in p.finditer(t) if m.end() > m.start()))
                       for name, pattern in self.extra.items()]
        for kind, detect in candidates:
            for start, end in detect(text):
                if all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, kind))
        return sorted(taken)

    def redact(self, text: str) -> Redaction:
        if not text:
            return Redaction(text, {})
        found: dict[str, int] = {}
        out, pos = [], 0
        for start, end, kind in self.spans(text):
            out += [text[pos:start], self.placeholder.format(kind=kind.upper())]
            found[kind] = found.get(kind, 0) + 1
            pos = end
        out.append(text[pos:])
        return Redaction("".join(out), found)
