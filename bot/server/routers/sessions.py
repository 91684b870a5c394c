"""A conversation after the fact and during a handoff: its transcript, a human agent's messages, handing it back
to the bot, and the customer's rating of the latest reply."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException

from bot.server.deps import Agent, CurrentBot, Server, SessionId, User, checked_message, existing
from bot.server.schemas import (ERRORS, AgentMessage, AgentMessageResult, ErrorBody, FeedbackRequest,
                                FeedbackResult, ResumeRequest, ResumeResult, Transcript, TranscriptTurn)

router = APIRouter(tags=["sessions"], responses=ERRORS)
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Unknown conversation"}}
AGENT_ONLY: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "Not an agent key"}}


@router.get("/v1/sessions/{session_id}", responses=NOT_FOUND)
def get_session(session_id: SessionId, principal: User, bot: CurrentBot) -> Transcript:
    """The conversation's turns, personal data masked. A key reads the conversations it started; an agent key
    reads any conversation, by its stored id (the one in handoff events)."""
    stored = session_id if principal.agent else principal.scoped(session_id)
    with bot.sessions.open(existing(bot, stored, session_id)) as session:
        turns = [TranscriptTurn(role=t.role, text=t.text, mode=t.mode, timestamp=t.timestamp, data=t.data)
                 for t in session.turns]
        return Transcript(session_id=session_id, state=session.state, turns=turns)


@router.post("/v1/sessions/{session_id}/agent-message", responses={**NOT_FOUND, **AGENT_ONLY})
def agent_message(session_id: SessionId, body: AgentMessage, _: Agent, bot: CurrentBot,
                  server: Server) -> AgentMessageResult:
    """Record a human agent's message (your tool shows it to the customer). Needs an agent key; the id is the
    conversation's stored id (from the handoff event)."""
    bot.agent_message(existing(bot, session_id), checked_message(body.text, server))
    return AgentMessageResult(session_id=session_id, turns=len(bot.sessions.get(session_id).turns))


@router.post("/v1/sessions/{session_id}/resume", responses={**NOT_FOUND, **AGENT_ONLY})
def resume(session_id: SessionId, _: Agent, bot: CurrentBot,
           body: Annotated[ResumeRequest | None, Body()] = None) -> ResumeResult:
    """Hand the conversation back to the bot after a handoff (an agent key; the stored id). The body is optional:
    ``{"entry_id": ...}`` names the FAQ entry the agent resolved the conversation with."""
    entry_id = body.entry_id if body is not None else None
    existing(bot, session_id)
    if entry_id and bot.knowledge.entry(entry_id) is None:
        raise HTTPException(422, f"entry_id: no FAQ entry {entry_id!r}")
    return ResumeResult(session_id=session_id, resumed=bot.resume(session_id, entry_id=entry_id))


@router.post("/v1/feedback", responses={
    **NOT_FOUND, 409: {"model": ErrorBody, "description": "No reply to rate yet"}})
def feedback(body: FeedbackRequest, principal: User, bot: CurrentBot) -> FeedbackResult:
    """Rate the latest reply of a conversation (one the key started)."""
    try:
        turn = bot.feedback(existing(bot, principal.scoped(body.session_id), body.session_id), body.rating,
                            body.comment)
    except ValueError as e:
        raise HTTPException(409, str(e)) from None
    return FeedbackResult(session_id=body.session_id, turn=turn)
