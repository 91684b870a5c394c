"""Past support conversations as fine-tuning data (``--conversations FILE`` of the generator and embedder).

A log is a JSONL file with one exchange or one conversation per line:

    {"question": "how long do refunds take?", "answer": "Refunds take 5 days.", "entry_id": "refund-time"}
    {"turns": [{"role": "customer", "text": "hi, my card is stuck"}, {"role": "agent", "text": "..."}]}

``entry_id`` is optional; in ``turns``, the roles are customer / user / human and agent / assistant / bot /
support (``content`` may stand for ``text``); every customer message (consecutive ones joined) with the reply
that follows it is one exchange.

An exchange belongs to an FAQ entry when it names the entry, or when its reply is that entry's curated answer
(sentence-embedding similarity of at least ``match_threshold``, so an agent's light edits still count). Its
question is then one more variant of the entry, in a real customer's words: the embedder learns it, and the
generator learns to answer it with the curated answer. An exchange that matches no entry is used by the
generator only where its reply is grounded in the passages the knowledge base retrieves for the question (the
engine's own grounding check); a reply the knowledge base cannot support would teach the model to invent.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from finetune._common import TrainingDataError

if TYPE_CHECKING:
    from knowledge.schema import FAQEntry

CUSTOMER_ROLES = frozenset({"customer", "user", "human", "client"})
AGENT_ROLES = frozenset({"agent", "assistant", "bot", "support", "ai"})


@dataclasses.dataclass(frozen=True)
class Exchange:
    question: str
    answer: str
    entry_id: str | None
    where: str  # "file:line", for messages


@dataclasses.dataclass
class Matched:
    """Exchanges sorted out against the FAQ."""

    variants: dict[str, list[str]]  # entry id -> new questions (not already among its variants)
    unmatched: list[Exchange]
    by_id: int = 0
    by_answer: int = 0


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _from_turns(turns: Any, where: str) -> list[Exchange]:
    if not isinstance(turns, list) or not turns:
        raise TrainingDataError(f"{where}: turns: expected a non-empty list of {{role, text}} objects")
    out, pending = [], []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise TrainingDataError(f"{where}: turns[{i}]: expected an object with role and text")
        role = _text(turn.get("role")).lower()
        text = _text(turn.get("text", turn.get("content")))
        if role not in CUSTOMER_ROLES | AGENT_ROLES:
            raise TrainingDataError(f"{where}: turns[{i}].role: {turn.get('role')!r} is neither a customer role "
                                    f"({', '.join(sorted(CUSTOMER_ROLES))}) nor an agent role "
                                    f"({', '.join(sorted(AGENT_ROLES))})")
        if not text:
            raise TrainingDataError(f"{where}: turns[{i}].text: empty or missing")
        if role in CUSTOMER_ROLES:
            pending.append(text)
        elif pending:
            out.append(Exchange(" ".join(pending), text, None, where))
            pending = []
    return out


def read_conversations(paths: Sequence[Path]) -> list[Exchange]:
    """Every exchange of the logs; the first invalid record stops here, before any training."""
    from bot.datafiles import jsonl_objects

    exchanges: list[Exchange] = []
    for path in paths:
        path = Path(path)
        if path.suffix.lower() not in (".jsonl", ".ndjson"):
            raise TrainingDataError(f"{path}: conversation logs are JSONL files (one exchange or conversation "
                                    "per line)")
        for n, row in jsonl_objects(path, TrainingDataError, "an object with question and answer, or turns"):
            where = f"{path}:{n}"
            if "turns" in row:
                exchanges.extend(_from_turns(row["turns"], where))
                continue
            question, answer = _text(row.get("question")), _text(row.get("answer"))
            if not question:
                raise TrainingDataError(f"{where}: question: empty or missing (or give turns)")
            if not answer:
                raise TrainingDataError(f"{where}: answer: empty or missing")
            entry_id = row.get("entry_id")
            if entry_id is not None and not isinstance(entry_id, str):
                raise TrainingDataError(f"{where}: entry_id: expected a string")
            exchanges.append(Exchange(question, answer, (entry_id or "").strip() or None, where))
    if paths and not exchanges:
        raise TrainingDataError(f"no exchanges in {', '.join(str(p) for p in paths)}")
    return exchanges


def match_entries(exchanges: Sequence[Exchange], entries: Sequence[FAQEntry], embed: Any,
                  match_threshold: float = 0.9) -> Matched:
    """Sort exchanges into new question variants of their entries and unmatched ones.

    ``embed``: texts -> L2-normalised vectors (the knowledge base's embedder). An ``entry_id`` that is not in the
    FAQ is an error (a typo would otherwise silently drop data)."""
    import numpy as np

    ids = {e.id for e in entries}
    known = {e.id: {q.casefold() for q in e.questions} for e in entries}
    for ex in exchanges:
        if ex.entry_id is not None and ex.entry_id not in ids:
            raise TrainingDataError(f"{ex.where}: entry_id: {ex.entry_id!r} is not an entry of the FAQ")
    result = Matched({}, [])
    free = [ex for ex in exchanges if ex.entry_id is None]
    owner: dict[int, str] = {}
    if free and entries:
        answers = embed([e.answer for e in entries])
        replies = embed([ex.answer for ex in free])
        sims = replies @ answers.T
        for i, row in enumerate(sims):
            best = int(np.argmax(row))
            if row[best] >= match_threshold:
                owner[i] = entries[best].id
    free_index = {id(ex): i for i, ex in enumerate(free)}
    for ex in exchanges:
        entry_id = ex.entry_id or owner.get(free_index.get(id(ex), -1))
        if entry_id is None:
            result.unmatched.append(ex)
            continue
        if ex.entry_id is not None:
            result.by_id += 1
        else:
            result.by_answer += 1
        if ex.question.casefold() not in known[entry_id]:
            known[entry_id].add(ex.question.casefold())
            result.variants.setdefault(entry_id, []).append(ex.question)
    return result


def with_variants(entries: Sequence[FAQEntry], variants: dict[str, list[str]]) -> list[FAQEntry]:
    """The entries with the logged questions added as variants."""
    return [e.model_copy(update={"questions": [*e.questions, *variants[e.id]]}) if e.id in variants else e
            for e in entries]
