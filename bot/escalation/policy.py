"""The escalation policy: when a conversation should go to a human, as a reason code and a detail.

The policy runs a list of rule objects (``bot/escalation/rules.py``), built from ``[escalation]``, each switchable
there, checked in this order:

* ``customer_request``  - the message is closer to an example request for a person (shipped examples from
  Bitext's ``contact_human_agent`` plus hand-written ones, and any in ``request_examples``) than to any example
  of an ordinary request, and similar enough to it (``request_min_similarity``);
* ``sensitive_topic``   - the message is on a configured topic (legal threat, fraud, ...): close to one of its
  examples, or, for a topic with counter-examples (the built-in ``fraud``: BANKING77's fraud intents against
  its other intents and Bitext's ordinary requests), judged on the topic by a classifier fitted on the two. A
  topic is the company's deliberate choice, so it wins even over an ordinary request it resembles (with
  ``account_closure`` on, "delete my account" goes to a person);
* ``negative_sentiment`` - very negative or angry now, or negative in N of the last M customer turns;
* ``repeated_failure``  - the customer repeats an earlier question, or (after answering) the bot would give
  its K-th fallback in a row;
* ``low_confidence``    - (off by default) any fallback goes to a human instead.

Only turns since the last handoff was resumed count, so a resumed conversation starts with a clean slate.
Without a human (``human_available = false``) only ``customer_request`` is checked: it gets an honest answer.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Sequence

from bot.escalation.examples import ExampleSet, TopicClassifier
from bot.escalation.rules import Decision, Rule, TurnFacts, build_rules
from bot.storage.sessions import Turn
from bot.types import Sentiment

__all__ = ["Decision", "EscalationPolicy"]


class EscalationPolicy:
    """Decides, turn by turn, whether to hand the conversation to a human: the first rule that fires wins."""

    def __init__(self, settings: Any, embedder: Any, cache_dir: Path) -> None:
        self.settings = settings  # EscalationSettings
        self.embedder = embedder
        self.rules: list[Rule] = build_rules(settings, embedder, cache_dir)
        self._lock = threading.Lock()
        self._ready = False

    def warm_up(self) -> "EscalationPolicy":
        with self._lock:
            if not self._ready:
                self.embedder.warm_up()
                for rule in self.rules:
                    rule.warm_up()
                self._ready = True
        return self

    # --- what the rules hold (for the CLI's preparation, benchmarks and tests) ------------------------------------
    @property
    def requests(self) -> ExampleSet:
        return next(r.requests for r in self.rules if hasattr(r, "requests"))  # type: ignore[attr-defined]

    @property
    def classifiers(self) -> dict[str, TopicClassifier]:
        return next((r.classifiers for r in self.rules if hasattr(r, "classifiers")), {})  # type: ignore

    # --- the two stages ------------------------------------------------------------------------------------------
    def before_answer(self, message: str, sentiment: Sentiment | None, history: Sequence[Turn]) -> Decision | None:
        """Rules that apply to the message itself. ``history``: the turns since the last resume, without it."""
        if not self.settings.enabled:
            return None
        self.warm_up()
        facts = TurnFacts(message, sentiment, history, self.embedder,
                          clause_min_words=self.settings.clause_min_words)
        return self._first(facts, "before_answer")

    def on_fallback(self, history: Sequence[Turn], best_score: float) -> Decision | None:
        """Rules that apply when the bot has no answer. ``history`` ends with the current customer turn."""
        s = self.settings
        if not s.enabled or not s.human_available:
            return None
        last = next((t.text for t in reversed(history) if t.role == "customer"), "")
        return self._first(TurnFacts(last, None, history, self.embedder, best_score), "on_fallback")

    def _first(self, facts: TurnFacts, stage: str) -> Decision | None:
        for rule in self.rules:
            if rule.stage != stage or not (self.settings.human_available or rule.without_human):
                continue
            decision = rule.check(facts)
            if decision is not None:
                return decision
        return None
