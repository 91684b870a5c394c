"""The boundary types of the conversation engine; all JSON-serialisable (pydantic)."""

from __future__ import annotations

import time
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Mode = Literal["faq", "clarify", "generated", "fallback", "handoff"]


class Source(BaseModel):
    """A knowledge-base entry or passage that a reply used."""

    entry_id: str
    title: str  # the FAQ question or the passage's heading path
    text: str  # the curated answer or the passage text
    score: float = Field(ge=0.0, le=1.0)
    url: str | None = None
    kind: Literal["faq", "document"] = "faq"
    citation: int | None = None  # generated replies: the [n] that cites this source in the text


class Suggestion(BaseModel):
    """One choice of a ``clarify`` reply ("did you mean ...?"): an FAQ entry the message may be asking about."""

    entry_id: str
    question: str  # the entry's question, as the customer is shown it
    score: float = Field(ge=0.0, le=1.0)  # the matcher's probability that this entry answers the message


class Sentiment(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(ge=0.0, le=1.0)
    scores: dict[str, float] = Field(default_factory=dict)
    anger: float = Field(0.0, ge=0.0, le=1.0)


class EscalationReason(str, Enum):
    """Why a conversation went to a human: the name of the escalation rule that decided it."""

    CUSTOMER_REQUEST = "customer_request"  # the customer asked for a person
    SENSITIVE_TOPIC = "sensitive_topic"  # a topic the company wants a person for (legal threat, fraud, ...)
    NEGATIVE_SENTIMENT = "negative_sentiment"  # very negative or angry, or negative for several turns
    REPEATED_FAILURE = "repeated_failure"  # the same question again, or fallbacks in a row
    LOW_CONFIDENCE = "low_confidence"  # (off by default) a person instead of any fallback

    def __str__(self) -> str:
        return self.value


class Escalation(BaseModel):
    """A handoff to a human: why, and what the agent needs to take over."""

    model_config = ConfigDict(use_enum_values=True)  # ``reason`` is stored and compared as its plain string

    reason: EscalationReason
    detail: str = ""  # what triggered the rule
    summary: str = ""  # for the agent: what the customer wants, what the bot answered, the sentiment trend
    transcript: list[dict[str, Any]] = Field(default_factory=list)
    timestamp: float = Field(default_factory=time.time)
    session_id: str = ""
    handed_off: bool = True  # False: no human is available (escalation.human_available = false)


class Reply(BaseModel):
    text: str
    mode: Mode
    confidence: float = Field(ge=0.0, le=1.0)
    sources: list[Source] = Field(default_factory=list)
    sentiment: Sentiment | None = None
    escalation: Escalation | None = None
    session_id: str
    latency_ms: float = 0.0
    extractive: bool = False  # generated mode: a passage sentence quoted because the LM's answer failed the check
    suggestions: list[Suggestion] = Field(default_factory=list)  # clarify mode: the choices, best first
    choice: str | None = None  # this reply answered a clarification: the chosen entry id, or "none"
