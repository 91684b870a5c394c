"""Text as a check should read it: the tricks that hide a word from a pattern or a model undone.

``for_checks`` applies NFKC (full-width and styled letters, ligatures), removes invisible format characters
(zero-width spaces and joiners, the soft hyphen, the byte-order mark, bidi controls) and maps the Cyrillic and Greek
letters that look like Latin ones ("Dіsregard" with a Cyrillic і) to those, in words that mix them with Latin
letters. It is for detection only: what is stored
and shown is the text as written.
"""

from __future__ import annotations

import re
import unicodedata

_INVISIBLE = re.compile("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
# Cyrillic and Greek letters that render like Latin ones (the usual homoglyphs of spoofing)
_CONFUSABLES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ԛ": "q", "ԝ": "w",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T", "У": "Y",
    "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S",
    "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O", "Ρ": "P",
    "Τ": "T", "Υ": "Y", "Χ": "X",
})


_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")


def _unspoof(match: re.Match[str]) -> str:
    word = match.group()
    return word.translate(_CONFUSABLES) if _LATIN.search(word) else word


def for_checks(text: str) -> str:
    """``text`` normalised for pattern and model checks (see the module). Look-alike letters are mapped only in
    words that also hold Latin letters ("Dіsregard"): a word wholly in Cyrillic or Greek is a Russian or Greek
    word, left as it is."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    return _WORD.sub(_unspoof, text)
