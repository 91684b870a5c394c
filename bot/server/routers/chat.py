"""``POST /v1/chat`` and ``POST /v1/chat/stream``: one customer message, answered whole or as server-sent
events; or, with ``choice``, the answer to the conversation's pending clarification ("did you mean ...?")."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from bot.server.deps import CurrentBot, CurrentMetrics, Server, User, checked_message, existing
from bot.server.schemas import CHOICE_ERRORS, ERRORS, JSON_ERRORS, ChatRequest, as_json
from bot.server.security import Principal
from bot.types import Reply

router = APIRouter(tags=["chat"], responses=ERRORS)


def _no_choice(error: ValueError) -> HTTPException:
    """The bot's refusal of a choice (no pending clarification, or not one of its suggestions): 409."""
    return HTTPException(409, str(error))


def _ids(body: ChatRequest, principal: Principal) -> str:
    """The stored id of the conversation: the client's own (or, for a new conversation, a fresh one made here),
    namespaced by the caller's key (``Principal.scoped``): a key reaches only the conversations it started."""
    return principal.scoped(body.session_id or uuid.uuid4().hex)


def _as_seen_by(reply: Reply, principal: Principal) -> Reply:
    return reply.model_copy(update={"session_id": principal.unscoped(reply.session_id)})


@router.post("/v1/chat", response_model=Reply, responses=CHOICE_ERRORS)
def chat(body: ChatRequest, principal: User, bot: CurrentBot, metrics: CurrentMetrics, server: Server) -> Response:
    """Answer one customer message (a new conversation when ``session_id`` is omitted), or, with ``choice``, the
    conversation's pending clarification: a reply with mode ``clarify`` lists its ``suggestions``; the choice (a
    number from 1, an entry id, or ``"none"``) gets the chosen entry's answer (mode ``faq``) or the fallback.
    A conversation belongs to the key that started it: another key's ``session_id`` is a conversation of its own."""
    message = checked_message(body.message, server)
    sid = _ids(body, principal)
    if body.choice is None:
        reply = bot.chat(message, sid)
    else:
        try:
            reply = bot.chat(message, existing(bot, sid, body.session_id), choice=body.choice)
        except ValueError as e:
            raise _no_choice(e) from None
    metrics.observe_reply(reply)
    # serialised here: FastAPI would validate the Reply it was just given once more (the busiest route)
    return Response(_as_seen_by(reply, principal).model_dump_json(), media_type="application/json")


def turn(body: ChatRequest, principal: User, bot: CurrentBot, server: Server) -> Iterator[str | Reply]:
    """The turn's items (text chunks, then the Reply), for the stream. With a choice its first item is made here,
    before the response starts, so that a choice the bot refuses is a 409 (a JSON error), not a broken stream; a
    chosen answer is never streamed in chunks, so nothing is held back."""
    message = checked_message(body.message, server)
    sid = _ids(body, principal)
    if body.choice is None:
        items = bot.stream(message, sid)
    else:
        items = bot.stream(message, existing(bot, sid, body.session_id), choice=body.choice)
        try:
            first = next(items)
        except ValueError as e:
            raise _no_choice(e) from None
        items = itertools.chain([first], items)
    return (_as_seen_by(i, principal) if isinstance(i, Reply) else i for i in items)


@router.post("/v1/chat/stream", response_class=EventSourceResponse,
             responses={**JSON_ERRORS, **as_json(CHOICE_ERRORS)})
def chat_stream(_: User, items: Annotated[Iterator[str | Reply], Depends(turn)],
                metrics: CurrentMetrics) -> Iterator[ServerSentEvent]:
    """The answer as server-sent events: a ``chunk`` event ``{"text": ...}`` for each sentence of a generated
    answer once it passed the grounding check (nothing unverified is sent), then one ``reply`` event with the
    final Reply (a clarification's ``suggestions`` are in it). Takes ``choice`` as ``/v1/chat`` does."""
    for item in items:
        if isinstance(item, Reply):
            metrics.observe_reply(item)
            yield ServerSentEvent(event="reply", data=item.model_dump(mode="json"))
        else:
            yield ServerSentEvent(event="chunk", data={"text": item})
