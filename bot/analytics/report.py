"""Support analytics from the transcript database: ``supportbot report``.

For a period: conversations, the automation (containment) rate = share of conversations resolved without a
handoff, replies by mode, the clarifications ("did you mean ...?") and how they ended, escalations by reason, the
most frequent unanswered questions, the feedback ratio, and the same per day for the trend chart (``--png``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from bot.errors import SupportbotError


class ReportError(SupportbotError):
    """A report that cannot be made (no database, bad period)."""


class Day(BaseModel):
    date: str
    conversations: int
    containment_rate: float | None
    replies: int
    fallback_rate: float | None


class Clarifications(BaseModel):
    """The ``clarify`` replies of the period and how each ended: the customer's next turn picked one of its
    suggestions, said none of them fits, or did neither (a new question, a handoff, or nothing more)."""

    asked: int = 0
    chosen: int = Field(0, description="Answered by picking one of the suggestions.")
    none: int = Field(0, description="Answered with \"none of these\".")
    abandoned: int = Field(0, description="Not answered: the customer asked something else, or left.")
    resolution_rate: float | None = Field(None, description="chosen / asked")


class Report(BaseModel):
    since: float
    until: float
    conversations: int
    handed_off: int
    containment_rate: float | None = Field(description="Share of conversations resolved without a handoff.")
    replies_by_mode: dict[str, int]
    clarifications: Clarifications = Field(default_factory=Clarifications)
    escalations_by_reason: dict[str, int]
    top_unanswered: list[tuple[str, int]]
    feedback_up: int
    feedback_down: int
    feedback_ratio: float | None = Field(description="up / (up + down)")
    days: list[Day]


_DURATION = re.compile(r"^(\d+)\s*([hdw])$")


def parse_time(text: str, now: float) -> float:
    """``7d``, ``24h``, ``2w`` (ago), or an ISO date / date-time (UTC when no zone is given)."""
    text = text.strip()
    m = _DURATION.match(text)
    if m:
        hours = {"h": 1, "d": 24, "w": 24 * 7}[m.group(2)] * int(m.group(1))
        return now - hours * 3600
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ReportError(f"period: {text!r} is neither a duration (7d, 24h, 2w) nor an ISO date") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def _normalise(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s\[\]]", " ", question.lower()).split())


def build_report(store: Any, since: float, until: float, top: int = 10) -> Report:
    """The report for ``since <= time < until`` from a ``bot.storage.transcripts.DatabaseSessions``."""
    from sqlalchemy import select

    t, u = store.t["turns"], store.t["unanswered"]
    period = (t.c.ts >= since, t.c.ts < until)
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.c.conversation_id, t.c.role, t.c.mode, t.c.ts, t.c.escalation_reason,
                                   t.c.feedback, t.c.seq).where(*period)).all()
        # the answers to clarifications: only these turns' JSON is read
        choices = conn.execute(select(t.c.conversation_id, t.c.seq, t.c.data)
                               .where(*period, t.c.role == "bot", t.c.data.contains('"choice"'))).all()
        unanswered = conn.execute(select(u.c.question).where(u.c.ts >= since, u.c.ts < until)).scalars().all()
    conversations: set[str] = set()
    handed: set[str] = set()
    modes: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    feedback: Counter[str] = Counter()
    per_day: dict[str, dict[str, Any]] = defaultdict(lambda: {"conv": set(), "handed": set(), "replies": 0,
                                                              "fallback": 0})
    for conversation, role, mode, ts, reason, rating, _ in rows:
        day = per_day[dt.datetime.fromtimestamp(ts, dt.timezone.utc).date().isoformat()]
        if role == "customer":
            conversations.add(conversation)
            day["conv"].add(conversation)
        elif role == "bot":
            modes[mode or "unknown"] += 1
            day["replies"] += 1
            day["fallback"] += mode == "fallback"
            if reason:
                reasons[reason] += 1
            if mode == "handoff":
                handed.add(conversation)
                day["handed"].add(conversation)
            if rating:
                feedback[rating] += 1
    clarifications = _clarifications(rows, choices)
    counted = Counter(_normalise(q) for q in unanswered)
    n, rated = len(conversations), feedback["up"] + feedback["down"]
    days = [Day(date=d, conversations=len(v["conv"]),
                containment_rate=round(1 - len(v["handed"] & v["conv"]) / len(v["conv"]), 4) if v["conv"] else None,
                replies=v["replies"], fallback_rate=round(v["fallback"] / v["replies"], 4) if v["replies"] else None)
            for d, v in sorted(per_day.items())]
    return Report(since=since, until=until, conversations=n, handed_off=len(handed & conversations),
                  containment_rate=round(1 - len(handed & conversations) / n, 4) if n else None,
                  replies_by_mode=dict(modes.most_common()), clarifications=clarifications,
                  escalations_by_reason=dict(reasons.most_common()),
                  top_unanswered=counted.most_common(top), feedback_up=feedback["up"],
                  feedback_down=feedback["down"], feedback_ratio=round(feedback["up"] / rated, 4) if rated else None,
                  days=days)


def _clarifications(rows: Any, choices: Any) -> Clarifications:
    """Each clarify reply is answered by the conversation's next bot turn if that turn carries the ``choice``
    (an entry id, or "none"); anything else after it, or nothing, leaves it abandoned."""
    chosen: dict[tuple[str, int], str] = {}
    for conversation, seq, data in choices:
        try:
            choice = json.loads(data).get("choice")
        except (ValueError, AttributeError):
            continue
        if isinstance(choice, str) and choice:
            chosen[(conversation, seq)] = choice
    replies: dict[str, list[tuple[int, str | None]]] = defaultdict(list)
    for conversation, role, mode, _, _, _, seq in rows:
        if role == "bot":
            replies[conversation].append((seq, mode))
    ends: Counter[str] = Counter()
    for conversation, turns in replies.items():
        turns.sort()
        for (seq, mode), following in zip(turns, [*turns[1:], None]):
            if mode != "clarify":
                continue
            choice = chosen.get((conversation, following[0])) if following is not None else None
            ends["abandoned" if choice is None else "none" if choice == "none" else "chosen"] += 1
    asked = sum(ends.values())
    return Clarifications(asked=asked, chosen=ends["chosen"], none=ends["none"], abandoned=ends["abandoned"],
                          resolution_rate=round(ends["chosen"] / asked, 4) if asked else None)


def draw(report: Report, path: Path) -> None:
    """Daily conversations (bars) with the containment rate, and replies by mode over the period."""
    try:
        import matplotlib
    except ImportError:
        raise ReportError("--png needs matplotlib: pip install 'supportbot[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (trend, mix) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    dates = [d.date[5:] for d in report.days]
    trend.bar(dates, [d.conversations for d in report.days], color="#9db4d6", label="conversations")
    trend.set_ylabel("conversations")
    rate = trend.twinx()
    rate.plot(dates, [d.containment_rate if d.containment_rate is not None else float("nan") for d in report.days],
              color="#1b5e20", marker="o", label="containment rate")
    rate.set_ylim(0, 1.05)
    rate.set_ylabel("containment rate")
    trend.set_title("Conversations and containment per day (UTC)")
    trend.tick_params(axis="x", rotation=45)
    modes = report.replies_by_mode
    palette = ["#4c78a8", "#72b7b2", "#e45756", "#f58518", "#b279a2", "#999"]
    mix.bar(list(modes), list(modes.values()), color=[palette[i % len(palette)] for i in range(len(modes))])
    mix.set_title("Replies by mode")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
