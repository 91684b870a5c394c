"""Rules that catch an answer contradicting the passage it cites: its facts, its names, its "no".

A small language model that answers from passages goes wrong in a few typical ways (FactCC's taxonomy, Kryscinski
et al. 2020): it changes a number or moves it to the wrong thing, names something the passage does not, or says
"no" where the passage says yes. Each rule here looks at one claim (an answer sentence) against the passages it
cites and returns the reasons it is not supported (empty: no rule objects):

    numbers    every number, amount, percentage, duration and time in the claim appears in the passages
               (``€4.95`` = ``4.95 EUR``, ``five`` = ``5``, ``8:00`` = ``8.00``), and the words around it in the
               claim share something with the words around it in a passage sentence ("the membership fee is €4.95"
               is not supported by "standard shipping costs €4.95");
    names      every name in the claim (a capitalised word or phrase not at the start of a sentence, a word with
               digits, an all-caps word) appears in the passages or in the customer's question;
    polarity   a negated claim ("No, we do not take Apple Pay") whose topic the passage states without negation
               ("We accept ... Apple Pay"), and the reverse.

The rules are precise but narrow; the trained consistency classifier (``bot.conversation.consistency``) covers what
they do not. Both run on every sentence before it is shown (``bot.conversation.verified``).
"""

from __future__ import annotations

import re
from typing import Sequence

_NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "fifteen": 15,
                 "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "ninety": 90, "hundred": 100}
_AMBIGUOUS = frozenset({"one"})  # "the larger one": a number only where the passage has it as a number
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:[,.]\d{3})+|\d+(?:[.,:]\d+)?)(?![\w])|(?<![\w-])(" +
                     "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")(?![\w-])", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9]+", re.IGNORECASE)
_CITATION = re.compile(r"\s*\[\d{1,2}\]")
_SENTENCE = re.compile(r"(?<=[.!?;])\s+|(?<=:)\s+|\n+")
_NEGATION = re.compile(r"\b(no|not|never|none|neither|nor|cannot|can't|won't|don't|doesn't|isn't|aren't|didn't|"
                       r"wasn't|weren't|haven't|hasn't|shouldn't|couldn't|wouldn't|unable|nothing|without)\b"
                       r"|n't\b", re.IGNORECASE)
# Words that turn an affirmative statement into a "nothing to pay / not possible" one: "returns are free" answers
# "do you charge for returns?" with a "no" without a negation of its own.
_NEGATIVE_SENSE = re.compile(r"\b(free|waived|only|except|excluded|excludes|unavailable|impossible|expired?|"
                             r"cannot|lost|refused|rejected|closed)\b", re.IGNORECASE)
_STOP = frozenset("""a an the and or but if then of to in on at by for with from as is are was were be been being
it its this that these those you your we our us i me my they them their he she his her can could will would
should may might must do does did done have has had so than too very just also there here what which who whom how
when where why all any some each more most other such only own same into over under again about please thank
thanks yes no not up out get got per via within after before""".split())
_NAME_STOP = frozenset("""I I'm I've I'll Yes No Please Thanks Thank Hi Hello Sorry Note Sure Unfortunately However
Also Then Once If You We Our Your It This That These There Here When Where What How Which Who Why Until Unless After
Before Otherwise For With Within From To In On At By Each Every All Any Some OK Ok""".split())


def _value(text: str) -> str:
    """A number's canonical form: "1,000" -> "1000", "8:00" -> "8.00", "4,95" -> "4.95", "five" -> "5"."""
    word = _NUMBER_WORDS.get(text.lower())
    if word is not None:
        return str(word)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        return text.replace(",", "")
    text = text.replace(":", ".").replace(",", ".")
    if "." in text:
        whole, frac = text.split(".", 1)
        frac = frac.rstrip("0")
        return f"{int(whole)}.{frac}" if frac else str(int(whole))
    return str(int(text))


def numbers(text: str) -> list[tuple[str, int, int]]:
    """The numbers of ``text``: (canonical value, start, end)."""
    out = []
    for m in _NUMBER.finditer(text):
        raw = m.group(1) or m.group(2)
        out.append((_value(raw), m.start(), m.end()))
    return out


def content_words(text: str) -> set[str]:
    words = {w.lower() for w in _WORD.findall(text)}
    return {_stem(w) for w in words if w not in _STOP and not w.isdigit() and len(w) > 1}


def _stem(word: str) -> str:
    for suffix in ("ment", "ing", "ed", "es", "s"):
        if len(word) >= len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(text) if s and s.strip()]


def _window(sentence: str, start: int, end: int, width: int = 5) -> set[str]:
    before = _WORD.findall(sentence[:start])[-width:]
    after = _WORD.findall(sentence[end:])[:width]
    return content_words(" ".join(before + after))


def number_problems(claim: str, passages: Sequence[str]) -> list[str]:
    problems = []
    passage_sentences = [s for p in passages for s in split_sentences(p)]
    for value, start, end in numbers(claim):
        if claim[start:end].lower() in _AMBIGUOUS:
            continue
        holders = [s for s in passage_sentences if any(v == value for v, _, _ in numbers(s))]
        if not holders:
            problems.append(f"the number {claim[start:end]!r} is not in the passages")
            continue
        around = _window(claim, start, end)
        if not around:
            continue
        contexts = set()
        for s in holders:
            for v, a, b in numbers(s):
                if v == value:
                    contexts |= _window(s, a, b, width=8) | content_words(s)
        if not around & contexts:
            problems.append(f"{claim[start:end]!r} is said of something else in the passages")
    return problems


_CAPITALISED = re.compile(r"\b([A-Z][a-zA-Z0-9'&-]*(?:\s+[A-Z][a-zA-Z0-9'&-]*)*)")


def names(sentence: str) -> list[str]:
    """Names in ``sentence``: capitalised words and phrases not opening it, words with digits and letters, and
    all-caps words."""
    out = []
    words = list(re.finditer(r"\S+", sentence))
    opening = words[0].start() if words else 0
    for m in _CAPITALISED.finditer(sentence):
        phrase = re.sub(r"-[a-z][a-z-]*$", "", m.group(1).strip("'"))  # "VAT-free": the name is "VAT"
        if m.start() == opening or phrase in _NAME_STOP:
            parts = phrase.split()
            if m.start() == opening:
                parts = parts[1:]  # "Klarna lets you ..." opens with a name we cannot tell from a capital
            phrase = " ".join(p for p in parts if p not in _NAME_STOP)
        if phrase and len(phrase) > 1:
            out.append(phrase)
    return out


def name_problems(claim: str, passages: Sequence[str], question: str = "") -> list[str]:
    known = " ".join(passages).lower() + " " + question.lower()
    known_words = {w.lower() for w in _WORD.findall(known)}
    problems = []
    found = [n for s in re.split(r"(?<=[.!?;:])\s+", claim) for n in names(s)]
    for name in found:
        words = [w.lower() for w in _WORD.findall(name)]
        if words and not all(w in known_words for w in words):
            problems.append(f"{name!r} is not in the passages")
    return problems


def negated(sentence: str) -> bool:
    return bool(_NEGATION.search(sentence))


_CLAUSE = re.compile(r"[,;:()]|\s(?:but|while|whereas|although)\s|\s(?:and|or)\s(?=(?:can|cannot|can't|will|won't|"
                     r"is|are|isn't|aren't|must|may|do|does|don't|doesn't|not|never|we|you|it|they|there|i)\b)",
                     re.IGNORECASE)
_OPENING_NO = re.compile(r"^\W*no\b", re.IGNORECASE)


def clauses(sentence: str) -> list[tuple[str, bool]]:
    """The clauses of ``sentence`` with whether each is negated; a short list item ("We do not offer cash, cheques
    or invoices") inherits the negation of the clause before it."""
    out: list[tuple[str, bool]] = []
    for c in (c.strip() for c in _CLAUSE.split(sentence)):
        if not c:
            continue
        neg = negated(c)
        if not neg and out and len(c.split()) <= 4 and out[-1][1]:
            neg = True
        out.append((c, neg))
    return out


def passage_clauses_of(passage: str) -> list[tuple[str, bool]]:
    """The clauses of a passage with their polarity; the items of a list led in by a negated sentence ("We cannot
    deliver to: - the Canary Islands - ...") are negated too."""
    out: list[tuple[str, bool]] = []
    lead_negated = False
    for sentence in split_sentences(passage):
        parts = clauses(sentence)
        item = sentence.lstrip().startswith(("-", "*", "|")) or len(sentence.split()) <= 6
        if lead_negated and item:
            parts = [(c, True) for c, _ in parts]
        elif not item:
            lead_negated = False
        if sentence.rstrip().endswith(":") or re.search(r":\s*$", sentence):
            lead_negated = any(neg for _, neg in parts)
        out += parts
    return out


def polarity_problems(claim: str, passages: Sequence[str]) -> list[str]:
    """A clause of the claim whose polarity disagrees with every passage clause that says the same thing (shares
    at least half its content words, and nearly as many as the best)."""
    passage_clauses = [(c, neg, content_words(c)) for p in passages for c, neg in passage_clauses_of(p)]
    opening_no = bool(_OPENING_NO.match(claim))
    first = True
    for clause, clause_neg in clauses(claim):
        words = content_words(clause)
        if not words:
            continue
        claim_neg = clause_neg or (opening_no and first)  # "No, ..." answers with its first statement
        first = False
        scored = [(len(words & w) / len(words), c, neg) for c, neg, w in passage_clauses]
        best = max((x for x, _, _ in scored), default=0.0)
        if best < 0.5:
            continue  # no clause says the same thing: the classifier judges it
        close = [(c, neg) for x, c, neg in scored if x >= best - 0.15 and (len(words) > 1 or len(content_words(c)) <= 2)]
        if not close:
            continue
        negs = [neg or bool(_NEGATIVE_SENSE.search(c)) for c, neg in close]
        if claim_neg and not any(negs):
            return [f"says no where the passage says yes ({close[0][0][:60]!r})"]
        if not claim_neg and not _NEGATIVE_SENSE.search(clause) and all(neg for _, neg in close):
            return [f"says yes where the passage says no ({close[0][0][:60]!r})"]
    return []


# Words whose change changes what a sentence promises: a copy of a passage sentence that inserts or drops one of
# them is no longer a copy.
_CRITICAL = frozenset("""no not never none nor cannot can't won't don't doesn't isn't aren't without only if unless
except all every each some any always before after within over under more less least most maximum minimum max min
free paid must may might can could should will would first last up to until per each both either neither
also""".split())
_COPY_HARMLESS = (_STOP - _CRITICAL) | frozenset("""yes sure good question short answer simply note please yeah okay
ok here thats that's it's""".split())
_TOKENS = re.compile(r"[a-z0-9]+(?:['.,][a-z0-9]+)*", re.IGNORECASE)


def copied(claim: str, passages: Sequence[str], min_share: float = 0.8) -> bool:
    """Is ``claim`` a copy of passage text: at least ``min_share`` of its words in one aligned run of a passage, the
    rest harmless ("Yes, ...", "you can ..."), and no negation, number, name or condition word inserted, changed or
    dropped inside the copied span? Such a claim needs no classifier: it says what the passage says."""
    import difflib

    words = [w.lower() for w in _TOKENS.findall(_CITATION.sub("", claim))]
    if len(words) < 3:
        return False
    for passage in passages:
        source = [w.lower() for w in _TOKENS.findall(passage)]
        matcher = difflib.SequenceMatcher(a=words, b=source, autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        if not blocks:
            continue
        matched = sum(b.size for b in blocks)
        if matched / len(words) < min_share:
            continue
        ok = True
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            if tag == "equal":
                continue
            inserted = words[i1:i2]
            inside = blocks[0].b <= j1 and j2 <= blocks[-1].b + blocks[-1].size  # dropped from within the copy
            dropped = source[j1:j2] if inside else []
            if any(w not in _COPY_HARMLESS or w.isdigit() for w in inserted) or \
                    any(w in _CRITICAL or any(c.isdigit() for c in w) for w in dropped):
                ok = False
                break
        if ok:
            return True
    return False


def problems(claim: str, passages: Sequence[str], question: str = "") -> list[str]:
    """Why ``claim`` is not supported by ``passages`` by rule (empty: no rule objects)."""
    claim = _CITATION.sub("", claim)
    return [*number_problems(claim, passages), *name_problems(claim, passages, question),
            *polarity_problems(claim, passages)]
