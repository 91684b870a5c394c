"""The handoff event: what a human agent needs to take over, and its delivery to integrations.

``build_event`` turns the conversation and the policy's decision into an ``Escalation`` (reason, detail, a short
extractive summary, the transcript, a timestamp). ``Notifier`` hands it to Python callbacks (in the chat thread,
exceptions logged) and to a webhook (a background thread: JSON POST, retried with exponential backoff, never
blocking the chat).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import re
import threading
import time
from typing import Any, Callable, Sequence

from bot.escalation.rules import Decision
from bot.storage.sessions import Turn
from bot.types import Escalation

log = logging.getLogger("supportbot.handoff")

EscalationCallback = Callable[[Escalation], Any]
_WORD = re.compile(r"\w+")


def transcript(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """The turns for the agent and the webhook: role, text, time, mode, sentiment, sources; a clarification's
    ``suggestions`` (entry_id, question, score) and the ``choice`` that answered one (an entry id or "none")."""
    out = []
    for t in turns:
        item: dict[str, Any] = {"role": t.role, "text": t.text, "timestamp": t.timestamp}
        if t.mode:
            item["mode"] = t.mode
        if "sentiment" in t.data:
            item["sentiment"] = t.data["sentiment"]
        if t.data.get("sources"):
            item["sources"] = t.data["sources"]
        if t.data.get("suggestions"):
            item["suggestions"] = t.data["suggestions"]
        if t.data.get("choice"):
            item["choice"] = t.data["choice"]
        out.append(item)
    return out


def summarize(turns: Sequence[Turn], decision: Decision) -> str:
    """Extractive: what the customer wants, what the bot answered, the sentiment trend, why it was handed over.
    Only turns since the conversation was last handed back count (the transcript has them all)."""
    resumed = [i for i, t in enumerate(turns) if t.role == "system" and t.mode == "resume"]
    turns = turns[resumed[-1] + 1:] if resumed else turns
    customer = [t for t in turns if t.role == "customer"]
    substantive = [t.text for t in customer if len(_WORD.findall(t.text)) >= 3] or [t.text for t in customer]
    wants = substantive[0] if substantive else ""
    lines = [f"Customer wants: {_clip(wants)}"]
    if substantive and substantive[-1] != wants:
        lines.append(f"Latest message: {_clip(substantive[-1])}")
    answers = []
    for t in turns:
        if t.role != "bot" or t.mode == "handoff":
            continue
        cited = ", ".join(t.data.get("sources") or [])
        if t.mode == "clarify":  # "did you mean ...?": what it offered
            cited = "offered " + ", ".join(str(s.get("entry_id")) for s in t.data.get("suggestions") or [])
        elif t.data.get("choice") == "none":
            cited = "none of those offered"
        elif t.data.get("choice"):
            cited += ", chosen"
        answers.append(f"{t.mode}" + (f" ({cited})" if cited else ""))
    lines.append("Bot answered: " + ("; ".join(answers) if answers else "nothing yet"))
    trend = []
    for t in customer:
        s = t.data.get("sentiment")
        if isinstance(s, dict) and s.get("label"):
            mark = s["label"]
            if float(s.get("anger") or 0) >= 0.5:
                mark += f" (angry {float(s['anger']):.2f})"
            trend.append(mark)
    if trend:
        lines.append("Sentiment: " + " -> ".join(trend))
    lines.append(f"Handed over: {decision.reason}: {decision.detail}")
    return "\n".join(lines)


def _clip(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def build_event(session_id: str, turns: Sequence[Turn], decision: Decision, handed_off: bool) -> Escalation:
    return Escalation(reason=decision.reason, detail=decision.detail, summary=summarize(turns, decision),
                      transcript=transcript(turns), timestamp=time.time(), session_id=session_id,
                      handed_off=handed_off)


class Notifier:
    """Delivers escalation events: callbacks now, the webhook in the background."""

    def __init__(self, webhook_url: str | None = None, secret: str | None = None, retries: int = 4,
                 backoff_s: float = 0.5, timeout_s: float = 5.0) -> None:
        self.callbacks: list[EscalationCallback] = []
        self.webhook_url = webhook_url
        self.secret = secret
        self.retries = retries
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._queue: queue.Queue[bytes] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    @classmethod
    def from_settings(cls, s: Any) -> "Notifier":
        return cls(s.webhook_url, s.webhook_secret, s.webhook_retries, s.webhook_backoff_s, s.webhook_timeout_s)

    def notify(self, event: Escalation) -> None:
        for callback in list(self.callbacks):
            try:
                callback(event)
            except Exception:  # an integration's bug must not break the customer's turn
                log.exception("escalation callback %r failed", callback)
        if self.webhook_url:
            self._queue.put(json.dumps({"type": "escalation", "escalation": event.model_dump(mode="json")},
                                       ensure_ascii=False).encode("utf-8"))
            self._ensure_worker()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until queued webhook deliveries are done (delivered or given up); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="supportbot-webhook", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        import httpx

        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                body = self._queue.get()
                try:
                    self._deliver(client, body)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: Any, body: bytes) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "supportbot"}
        if self.secret:
            digest = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Supportbot-Signature"] = f"sha256={digest}"
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                response = client.post(self.webhook_url, content=body, headers=headers)
                if response.status_code < 300:
                    self.delivered += 1
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break  # the receiver rejects it: retrying will not help
            except Exception as e:  # noqa: BLE001 - network errors of every kind are retried
                problem = type(e).__name__
            if attempt < self.retries:
                log.warning("escalation webhook attempt %d failed (%s); retrying in %.1f s", attempt + 1, problem,
                            delay)
                time.sleep(delay)
                delay *= 2
        self.failed += 1
        log.error("escalation webhook gave up (%s) after %d attempt(s)", problem, attempt + 1)
