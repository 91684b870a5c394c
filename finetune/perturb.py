"""Casual writing: typos and chat spelling applied to a text, the way customers type.

    perturb("Where is my package? I haven't received it", random.Random(1))
    -> "where is my pakage i havent recieved it"

Used to measure that such writing does not change the bot's decision (``bench/perturb.py`` perturbs a dev split)
and, with another seed, to augment the matcher's training queries.
"""

from __future__ import annotations

import random
import re

# Common misspellings and chat forms (lower case; matched on whole words).
CHAT = {
    "you": "u", "your": "ur", "you're": "ur", "are": "r", "please": "pls", "thanks": "thx", "thank you": "ty",
    "because": "cuz", "what": "wat", "okay": "ok", "tomorrow": "tmrw", "to": "2", "for": "4", "why": "y",
    "receive": "recieve", "received": "recieved", "address": "adress", "definitely": "definately",
    "separate": "seperate", "necessary": "neccessary", "account": "acount", "payment": "payement",
    "transfer": "tranfer", "delivery": "delivry", "cancel": "cancle", "refund": "refud", "card": "crad",
    "i'm": "im", "don't": "dont", "can't": "cant", "haven't": "havent", "didn't": "didnt",
    "doesn't": "doesnt", "isn't": "isnt", "won't": "wont", "it's": "its", "what's": "whats",
}
KEYBOARD_NEIGHBOURS = {
    "a": "qs", "b": "vn", "c": "xv", "d": "sf", "e": "wr", "f": "dg", "g": "fh", "h": "gj", "i": "uo", "j": "hk",
    "k": "jl", "l": "k", "m": "n", "n": "bm", "o": "ip", "p": "o", "q": "w", "r": "et", "s": "ad", "t": "ry",
    "u": "yi", "v": "cb", "w": "qe", "x": "zc", "y": "tu", "z": "x",
}
_WORD = re.compile(r"[A-Za-z']+")


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "double", "neighbour"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    near = KEYBOARD_NEIGHBOURS.get(word[i].lower())
    return word[:i] + rng.choice(near) + word[i + 1:] if near else word


def perturb(text: str, rng: random.Random, typo_rate: float = 0.12, chat_rate: float = 0.6) -> str:
    """``text`` as a hurried customer might type it: chat forms and misspellings (``chat_rate`` of the words that
    have one), keyboard typos (``typo_rate`` of the other words of 4+ letters), and one of: lower case without
    punctuation, ALL CAPS, or unchanged case."""

    def word(m: re.Match[str]) -> str:
        w = m.group(0)
        low = w.lower()
        if low in CHAT and rng.random() < chat_rate:
            return CHAT[low]
        if rng.random() < typo_rate:
            return _typo(w, rng)
        return w

    out = _WORD.sub(word, text)
    style = rng.random()
    if style < 0.5:
        out = re.sub(r"[?!.,;:]+", "", out.lower())
    elif style < 0.65:
        out = out.upper()
    return " ".join(out.split()) or text
