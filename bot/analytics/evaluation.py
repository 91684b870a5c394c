"""Evaluate the bot on a company's own labelled questions: ``supportbot eval --data FILE``.

A case is a question, the entry that should answer it (its id, or ``none`` when the knowledge base should not
answer), and optionally the escalation expected (a reason code, or ``none``). Files: CSV with a header
(``question``, ``expected``, optional ``escalation``) or JSONL with the same keys. The report gives retrieval
top-1 / recall@3, replies by mode, answers with the right source, fallbacks on ``none`` questions,
escalations and latency. The fine-tuning scripts measure before and after with ``retrieval_metrics``.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from bot.errors import SupportbotError


class EvalDataError(SupportbotError):
    """An evaluation file that cannot be used: names the file, line and field."""


@dataclasses.dataclass(frozen=True)
class EvalCase:
    question: str
    expected: str | None  # entry id; None = the knowledge base should not answer
    escalation: str | None = None  # expected reason code, "none" = must not escalate, None = not checked
    line: int = 0


def _case(path: Path, line: int, row: dict[str, Any]) -> EvalCase:
    question = str(row.get("question") or "").strip()
    if not question:
        raise EvalDataError(f"{path}:{line}: question: empty or missing")
    expected = row.get("expected")
    if expected is None or not str(expected).strip():
        raise EvalDataError(f"{path}:{line}: expected: missing (an entry id, or 'none')")
    expected = str(expected).strip()
    escalation = row.get("escalation")
    escalation = str(escalation).strip() or None if escalation is not None else None
    return EvalCase(question, None if expected.lower() == "none" else expected,
                    escalation.lower() if escalation and escalation.lower() == "none" else escalation, line)


def read_cases(path: str | Path) -> list[EvalCase]:
    from bot.datafiles import csv_rows, jsonl_objects

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        rows = jsonl_objects(path, EvalDataError, "an object with question and expected")
    elif suffix == ".csv":
        rows = csv_rows(path, EvalDataError, required=("question", "expected"))
    else:
        raise EvalDataError(f"{path}: expected a .csv or .jsonl file")
    cases = [_case(path, n, row) for n, row in rows]
    if not cases:
        raise EvalDataError(f"{path}: no questions")
    return cases


def retrieval_metrics(knowledge: Any, cases: Sequence[EvalCase], method: str | None = None) -> dict[str, Any]:
    """Top-1 and recall@3 of the expected entry over the cases that have one (the bot's search, or ``method``:
    e.g. ``dense`` for the embedding model alone)."""
    answerable = [c for c in cases if c.expected]
    top1 = top3 = 0
    for c in answerable:
        hits = [h.entry_id for h in knowledge.search(c.question, k=3, method=method)]
        top1 += bool(hits) and hits[0] == c.expected
        top3 += c.expected in hits
    n = max(1, len(answerable))
    return {"questions": len(answerable), "top1": round(top1 / n, 4), "recall_at_3": round(top3 / n, 4)}


def evaluate(bot: Any, cases: Sequence[EvalCase]) -> dict[str, Any]:
    """Every case as the first message of its own conversation, through ``bot.chat``."""
    modes: Counter[str] = Counter()
    right = answered = none_fallback = none_total = clarified = clarified_right = none_clarified = 0
    escalation_checked = escalation_ok = 0
    reasons: Counter[str] = Counter()
    latencies = []
    misses = []
    for i, c in enumerate(cases):
        session = f"eval-{i}"
        start = time.perf_counter()
        reply = bot.chat(c.question, session)
        latencies.append((time.perf_counter() - start) * 1000)
        bot.reset(session)
        modes[reply.mode] += 1
        if reply.escalation:
            reasons[reply.escalation.reason] += 1
        if c.expected is None:
            none_total += 1
            none_fallback += reply.mode in ("fallback", "handoff")
            none_clarified += reply.mode == "clarify"
        elif reply.mode == "clarify":  # "did you mean ...?": right if the expected entry is among the choices
            clarified += 1
            clarified_right += c.expected in [s.entry_id for s in reply.suggestions]
        elif reply.mode in ("faq", "generated"):
            answered += 1
            ok = c.expected in [s.entry_id for s in reply.sources]
            right += ok
            if not ok:
                misses.append({"line": c.line, "question": c.question, "expected": c.expected,
                               "got": [s.entry_id for s in reply.sources], "mode": reply.mode})
        if c.escalation is not None:
            escalation_checked += 1
            got = reply.escalation.reason if reply.escalation else "none"
            escalation_ok += got == c.escalation
    answerable = sum(1 for c in cases if c.expected)
    s = sorted(latencies)
    return {
        "questions": len(cases),
        "retrieval": retrieval_metrics(bot.knowledge, cases),
        "modes": dict(modes),
        "answerable": {"n": answerable, "answered": answered, "answered_right": right,
                       "right_share": round(right / answerable, 4) if answerable else None,
                       "clarified": clarified, "clarified_right": clarified_right,
                       "resolved_share": round((right + clarified_right) / answerable, 4) if answerable else None},
        "no_answer_questions": {"n": none_total, "fell_back": none_fallback, "offered_choices": none_clarified,
                                "share": round(none_fallback / none_total, 4) if none_total else None},
        "escalations": {"by_reason": dict(reasons), "checked": escalation_checked, "as_expected": escalation_ok},
        "latency_ms": {"p50": round(statistics.median(s), 1), "p95": round(s[int(0.95 * (len(s) - 1))], 1)},
        "wrong_answers": misses[:20],
    }
