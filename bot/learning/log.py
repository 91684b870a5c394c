"""The phrasing log: what a customer asked and which FAQ entry it turned out to mean.

One JSON object per line (``answer.phrasings_log``, default ``phrasings.jsonl`` beside the store), masked as
transcripts are:

    {"ts": ..., "session_id": ..., "kind": "clarified", "question": "do u ship 2 canada", "entry_id": "shipping"}

``kind`` is ``clarified`` (the customer picked the entry from a "did you mean ...?") or ``agent`` (a human agent
resolved the conversation with the entry after a handoff). Questions nobody answered are in the unanswered log
(``answer.unanswered_log``). Nothing here changes the knowledge base: ``supportbot kb review`` shows both logs
grouped, and a person accepts what becomes a variant.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("supportbot")

Kind = Literal["clarified", "agent"]


class PhrasingLog:
    """Appends phrasing records to a JSONL file; never fails a customer's turn."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any) -> "PhrasingLog":
        return cls(settings.answer.phrasings_log or settings.knowledge.path / "phrasings.jsonl")

    def record(self, kind: Kind, session_id: str, question: str, entry_id: str) -> None:
        item = {"ts": time.time(), "session_id": session_id, "kind": kind, "question": question,
                "entry_id": entry_id}
        try:
            with self._lock:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(item, ensure_ascii=False) + "\n")
        except OSError as e:
            log.warning("could not log a phrasing to %s: %s", self.path, e)

    def read(self) -> list[dict[str, Any]]:
        """Every record (a damaged line is skipped)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(item, dict) and item.get("question") and item.get("entry_id"):
                out.append(item)
        return out
