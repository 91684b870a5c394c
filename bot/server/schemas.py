"""The HTTP API's request and response bodies, and the error responses the routes document.

They are the API's contract: the OpenAPI document (``/openapi.json``) is generated from them, and
tests/test_server_schemathesis.py checks every response against it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from knowledge.schema import Hit

SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
# a stored id (what the agents' side and handoff events use): the client's id under its key's namespace
STORED_SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,143}$"
ENTRY_ID = r"^[^/\x00-\x1f]{1,256}$"
CHOSEN_ID = r"^[^\x00-\x1f]{1,256}$"  # an entry id (or "none") in a body, where a slash is no path separator

# A clarification's choice: its number (a JSON integer from 1), an entry id of its suggestions, or "none".
Choice = Annotated[int, Field(strict=True, ge=1)] | Annotated[str, Field(strict=True, pattern=CHOSEN_ID)]


class ChatRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["message"]}, {"required": ["choice"]}]})

    session_id: str | None = Field(None, pattern=SESSION_ID, description="Omit to start a new conversation.")
    message: str = Field("", description="The customer's message; may be empty or omitted when `choice` is given.")
    choice: Choice | None = Field(None, description=(
        "Answers the conversation's pending clarification (the latest reply had mode `clarify`): the number of one "
        "of its `suggestions` (1 for the first), the `entry_id` of one, or `\"none\"` (none of these). Needs "
        "`session_id`; 409 when the conversation has no pending clarification or the choice is not one of it. "
        "(A plain `message` such as \"2\" or \"none\" after a clarification is read as a choice too.)"))
    metadata: dict[str, Any] = Field(default_factory=dict, description="Stored with nothing; for your logs.")

    @model_validator(mode="after")
    def _message_or_choice(self) -> "ChatRequest":
        if self.choice is None and not self.message.strip():
            raise PydanticCustomError("message_required",
                                      "message: blank (empty or only whitespace); text is needed, unless a "
                                      "choice is given")
        if self.choice is not None and self.session_id is None:
            raise PydanticCustomError("session_required",
                                      "choice: needs the session_id of the conversation that was asked to choose")
        return self


class TranscriptTurn(BaseModel):
    role: Literal["customer", "bot", "agent", "system"]
    text: str
    mode: str | None = None
    timestamp: float
    data: dict[str, Any] = Field(default_factory=dict, description=(
        "sentiment, sources, escalation, feedback; a clarification's suggestions (entry_id, question, score) and "
        "the question it asked about (asked); an answer to one, the choice (an entry id or \"none\")"))


class Transcript(BaseModel):
    session_id: str
    state: Literal["bot", "human"]
    turns: list[TranscriptTurn]


class AgentMessage(BaseModel):
    text: str = Field(min_length=1)


class AgentMessageResult(BaseModel):
    session_id: str
    turns: int


class ResumeRequest(BaseModel):
    entry_id: str | None = Field(None, pattern=CHOSEN_ID, description=(
        "The FAQ entry the human agent resolved the conversation with: the customer's unanswered questions before "
        "the handoff are kept as phrasings of it (the phrasing log, `answer.phrasings_log`). 422 if "
        "there is no such FAQ entry."))


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


class SyncRequest(BaseModel):
    sources: list[str] | None = Field(None, description="Names of the [[knowledge.sources]] to sync (default: all).")


class SyncStatus(BaseModel):
    """The last sync of the knowledge base (any process): ``running``, ``finished``, ``failed``, ``interrupted``
    (its process died), or ``never``; ``report`` is the SyncReport of a finished run (per source: added, updated,
    unchanged, removed, failed with the reason per page)."""

    status: Literal["never", "running", "finished", "failed", "interrupted"]
    running: bool
    id: int | None = None
    started_at: float | None = None
    finished_at: float | None = None
    sources: list[str] = Field(default_factory=list)
    report: dict[str, Any] | None = None
    error: str | None = None


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
# What a chat turn with a ``choice`` can answer besides.
CHOICE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "A choice for an unknown conversation"},
    409: {"model": ErrorBody, "description": "A choice, but the conversation has no pending clarification or the "
                                             "choice is not one of its suggestions"}}


def as_json(errors: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """``errors`` spelled out as JSON, for routes whose own response is not JSON (FastAPI would document the errors
    with the route's media type, e.g. text/event-stream)."""
    return {code: {"description": r["description"],
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
            for code, r in errors.items()}


JSON_ERRORS = as_json(ERRORS)
