"""What the routes depend on: the caller's key (``User``, ``Admin``), the app's bot, metrics and limits, and two
checks the handlers share.

Everything is read from ``request.app.state``, which ``create_app`` fills (``bot``, ``settings``, ``keys``,
``limiter``, ``metrics``, ``ready``): a route module holds no state of its own, so several apps in one process (as
in the tests) do not share anything.

The dependencies are ``async def`` on purpose: a few microseconds of work, done on the event loop (a plain ``def``
would cost every request a trip through the thread pool, which under load means queueing for a thread twice).
The checks that may touch storage (``existing``) are plain functions called inside the (threaded) handlers.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path as PathParam, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.config import ServerSettings
from bot.server.metrics import Metrics
from bot.server.schemas import ENTRY_ID, STORED_SESSION_ID
from bot.server.security import Principal

bearer = HTTPBearer(auto_error=False, description="An API key from [server] api_keys or $SUPPORTBOT_API_KEYS")


async def authenticated(request: Request,
                        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The caller's key (401 without a known one), counted against its rate limit (429 over it)."""
    state = request.app.state
    principal = state.keys.check(credentials.credentials) if credentials is not None else None
    if principal is None:  # failed attempts are limited per client address (guessing keys), not for the others
        client = request.client.host if request.client else "unknown"
        wait = state.auth_failures.take(client)
        if wait > 0:
            raise HTTPException(429, f"too many failed authentications from this address; retry in "
                                     f"{max(1, round(wait))} s", headers={"Retry-After": str(max(1, round(wait)))})
        raise HTTPException(401, "missing or unknown API key (Authorization: Bearer <key>)",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.key_id = principal.key_id  # for the request log (middleware.Observe)
    wait = state.limiter.take(principal.key_id)
    if wait > 0:
        raise HTTPException(429, f"rate limit of {state.limiter.per_minute} requests a minute exceeded",
                            headers={"Retry-After": str(max(1, round(wait)))})
    return principal


async def admin(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """An admin key (403 for an ordinary one): changing the knowledge base."""
    if not principal.admin:
        raise HTTPException(403, "changing the knowledge base needs an admin key ([server] admin_keys)")
    return principal


async def agent(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
    """An agent key (403 for any other): what only the human agents' side may do."""
    if not principal.agent:
        raise HTTPException(403, "this is for human agents: it needs an agent key ([server] agent_keys)")
    return principal


async def current_bot(request: Request) -> Any:
    return request.app.state.bot


async def current_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


async def server_settings(request: Request) -> ServerSettings:
    return request.app.state.settings.server


async def readiness(request: Request) -> threading.Event:
    return request.app.state.ready


User = Annotated[Principal, Depends(authenticated)]
Admin = Annotated[Principal, Depends(admin)]
Agent = Annotated[Principal, Depends(agent)]
CurrentBot = Annotated[Any, Depends(current_bot)]  # a bot.engine.Bot, or the stand-in given to create_app
CurrentMetrics = Annotated[Metrics, Depends(current_metrics)]
Server = Annotated[ServerSettings, Depends(server_settings)]
Ready = Annotated[threading.Event, Depends(readiness)]
SessionId = Annotated[str, PathParam(pattern=STORED_SESSION_ID)]
EntryId = Annotated[str, PathParam(pattern=ENTRY_ID)]


def checked_message(text: str, server: ServerSettings) -> str:
    """``text`` if it is within ``[server] max_message_chars``, else 422."""
    if len(text) > server.max_message_chars:
        raise HTTPException(422, f"message: longer than {server.max_message_chars} characters")
    return text


def existing(bot: Any, session_id: str, shown: str | None = None) -> str:
    """``session_id`` (a stored id) if the bot has that conversation, else 404 naming it as the caller knows it
    (``shown``)."""
    if not bot.sessions.exists(session_id):
        name = shown if shown is not None else session_id
        raise HTTPException(404, f"no conversation {name!r}")
    return session_id
