"""``POST /v1/chat`` and ``POST /v1/chat/stream``: one customer message, answered whole or as server-sent
events."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from bot.server.deps import CurrentBot, CurrentMetrics, Server, User, checked_message
from bot.server.schemas import ERRORS, JSON_ERRORS, ChatRequest
from bot.types import Reply

router = APIRouter(tags=["chat"], responses=ERRORS)


@router.post("/v1/chat", response_model=Reply)
def chat(body: ChatRequest, _: User, bot: CurrentBot, metrics: CurrentMetrics, server: Server) -> Response:
    """Answer one customer message (a new conversation when ``session_id`` is omitted)."""
    reply = bot.chat(checked_message(body.message, server), body.session_id)
    metrics.observe_reply(reply)
    # serialised here: FastAPI would validate the Reply it was just given once more (the busiest route)
    return Response(reply.model_dump_json(), media_type="application/json")


@router.post("/v1/chat/stream", response_class=EventSourceResponse, responses=JSON_ERRORS)
def chat_stream(body: ChatRequest, _: User, bot: CurrentBot, metrics: CurrentMetrics,
                server: Server) -> Iterator[ServerSentEvent]:
    """The answer as server-sent events: ``chunk`` events ``{"text": ...}`` as it is written, then one
    ``reply`` event with the final Reply (authoritative: a generated answer that fails the grounding check
    is replaced after it streamed)."""
    message = checked_message(body.message, server)
    for item in bot.stream(message, body.session_id):
        if isinstance(item, Reply):
            metrics.observe_reply(item)
            yield ServerSentEvent(event="reply", data=item.model_dump(mode="json"))
        else:
            yield ServerSentEvent(event="chunk", data={"text": item})
