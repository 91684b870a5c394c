"""The boundary types of the conversation engine; all JSON-serialisable (pydantic)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, Field

Mode = Literal["faq", "generated", "fallback", "handoff"]


class Source(BaseModel):
    """A knowledge-base entry or passage that a reply used."""

    entry_id: str
    title: str  # the FAQ question or the passage's heading path
    text: str  # the curated answer or the passage text
    score: float = Field(ge=0.0, le=1.0)
    url: str | None = None
    kind: Literal["faq", "document"] = "faq"
    citation: int | None = None  # generated replies: the [n] that cites this source in the text


class Sentiment(BaseModel):
    label: Literal["negative", "neutral", "positive"]
    score: float = Field(ge=0.0, le=1.0)
    scores: dict[str, float] = Field(default_factory=dict)
    anger: float = Field(0.0, ge=0.0, le=1.0)


class Escalation(BaseModel):
    """A handoff to a human: why, and what the agent needs to take over."""

    reason: str  # customer_request, negative_sentiment, repeated_failure, sensitive_topic or low_confidence
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
