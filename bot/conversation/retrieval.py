"""Retrieval in the context of the conversation: the message alone, or joined with the previous customer turn
when it reads like a follow-up ("and how much does that cost?"), whichever the knowledge base answers better.
Each search's FAQ candidates are checked by the matcher (``knowledge.retrieval.matcher``): their scores are its
calibrated probabilities."""

from __future__ import annotations

from typing import Any, Sequence

from bot.conversation.condense import contextual_query
from knowledge.retrieval.matcher import Matcher
from knowledge.schema import Hit


def prefer_joint(direct: Sequence[Hit], joint: Sequence[Hit], margin: float) -> bool:
    """Whether the follow-up's joint query wins: it found something, and its best score is not worse than the
    message alone by more than ``margin`` (a tie goes to the context: a follow-up's words are few)."""
    return bool(joint) and (not direct or joint[0].score >= direct[0].score - margin)


class ContextualRetriever:
    """``run(message, previous)``: the hits for the message as the customer meant it in this conversation."""

    def __init__(self, knowledge: Any, matcher: Matcher | None = None, history_turns: int = 6,
                 answer_threshold: float = 0.8, followup_max_words: int = 12, followup_margin: float = 0.05) -> None:
        self.knowledge = knowledge
        self.matcher = matcher
        self.history_turns = history_turns
        self.answer_threshold = answer_threshold
        self.followup_max_words = followup_max_words
        self.followup_margin = followup_margin

    @classmethod
    def from_settings(cls, knowledge: Any, settings: Any, matcher: Matcher | None = None) -> "ContextualRetriever":
        a = settings.answer
        return cls(knowledge, matcher, settings.sessions.history_turns, a.answer_threshold, a.followup_max_words,
                   a.followup_margin)

    def search(self, query: str) -> list[Hit]:
        """One search, its FAQ candidates checked by the matcher (when there is one)."""
        if self.matcher is None:
            return self.knowledge.search(query)
        k = max(self.knowledge.settings.knowledge.top_k, self.matcher.candidates)
        return self.matcher.run(query, self.knowledge.search(query, k=k))

    def run(self, message: str, previous: Sequence[str] = ()) -> list[Hit]:
        hits = self.search(message)
        query = contextual_query(message, list(previous)[-self.history_turns:], self.followup_max_words) \
            if self.history_turns else None
        if query is None or (hits and hits[0].score >= self.answer_threshold):
            return hits
        joint = self.search(query)
        return joint if prefer_joint(hits, joint, self.followup_margin) else hits
