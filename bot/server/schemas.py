"""The HTTP API's request and response bodies, and the error responses the routes document.

They are the API's contract: the OpenAPI document (``/openapi.json``) is generated from them, and
tests/test_server_schemathesis.py checks every response against it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from knowledge.schema import Hit

SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ENTRY_ID = r"^[^/\x00-\x1f]{1,256}$"


class ChatRequest(BaseModel):
    session_id: str | None = Field(None, pattern=SESSION_ID, description="Omit to start a new conversation.")
    message: str = Field(min_length=1, description="The customer's message.")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored with nothing; for your logs.")


class TranscriptTurn(BaseModel):
    role: Literal["customer", "bot", "agent", "system"]
    text: str
    mode: str | None = None
    timestamp: float
    data: dict[str, Any] = Field(default_factory=dict, description="sentiment, sources, escalation, feedback")


class Transcript(BaseModel):
    session_id: str
    state: Literal["bot", "human"]
    turns: list[TranscriptTurn]


class AgentMessage(BaseModel):
    text: str = Field(min_length=1)


class AgentMessageResult(BaseModel):
    session_id: str
    turns: int


class ResumeResult(BaseModel):
    session_id: str
    resumed: bool = Field(description="False if the conversation was not with a human.")


class FeedbackRequest(BaseModel):
    session_id: str = Field(pattern=SESSION_ID)
    rating: Literal["up", "down"]
    comment: str | None = Field(None, max_length=2000)


class FeedbackResult(BaseModel):
    session_id: str
    turn: int = Field(description="Index of the rated reply in the transcript.")


class SearchResult(BaseModel):
    query: str
    hits: list[Hit]


class RemoveResult(BaseModel):
    entry_id: str
    removed: int


class Health(BaseModel):
    status: Literal["ok", "loading"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


# The errors every authenticated (/v1) route can answer, documented on each of them.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        400: "Malformed JSON", 401: "Missing or unknown API key", 413: "Body too large",
        422: "Invalid field", 429: "Rate limit exceeded (see Retry-After)"}.items()}
# The same, spelled out as JSON for routes whose own response is not JSON (FastAPI would document the errors
# with the route's media type, e.g. text/event-stream).
JSON_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": r["description"],
           "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
    for code, r in ERRORS.items()}
