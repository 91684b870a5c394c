"""The HTTP API: ``supportbot serve`` (FastAPI + uvicorn), for helpdesks, web chat widgets and chat platforms.

    POST /v1/chat                               {session_id?, message, metadata?} -> Reply
    POST /v1/chat/stream                        the same as server-sent events: "chunk" events, then "reply"
    GET  /v1/sessions/{id}                      the transcript (personal data masked, see [privacy])
    POST /v1/sessions/{id}/agent-message        a human agent's message, during a handoff
    POST /v1/sessions/{id}/resume               hand the conversation back to the bot
    POST /v1/feedback                           {session_id, rating: up|down, comment?} on the latest reply
    POST /v1/kb/ingest                          upload a FAQ / document file (admin key)
    GET  /v1/kb/search?q=...&k=5                what the bot would retrieve
    DELETE /v1/kb/entries/{id}                  remove an entry (admin key)
    GET  /healthz   /readyz   /metrics          liveness, models loaded, Prometheus

Every /v1 route needs ``Authorization: Bearer <key>``; knowledge writes need an admin key. Errors are JSON:
``{"error": {"code": "...", "message": "..."}}`` with the right status (400 malformed JSON, 401 missing or
wrong key, 403 not an admin key, 404 unknown session or entry, 409 nothing to rate yet, 413 body too large, 422
invalid field, 429 over the rate limit, 503 not ready). Logs carry routes, statuses, latencies and key ids, never
keys or messages.
"""


# No `from __future__ import annotations` here: FastAPI must resolve the route annotations that refer to names
# local to create_app (User, Admin, SessionId).
import gc
import logging
import re
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal

from fastapi import APIRouter, Depends, FastAPI, File, HTTPException, Path as PathParam, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.server.security import ApiKeys, Principal, RateLimiter
from bot.config import Settings
from bot.errors import SupportbotError
from bot.server.metrics import Metrics
from bot.types import Reply
from knowledge.schema import Hit, IngestReport

log = logging.getLogger("supportbot.server")
SESSION_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ENTRY_ID = r"^[^/\x00-\x1f]{1,256}$"


# --- request and response bodies ------------------------------------------------------------------------------
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


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class BodyLimit:
    """413 with a JSON error for bodies over the limit: by Content-Length before reading, and by counting the
    bytes of chunked bodies. Uploads (``upload_paths``) have their own, larger limit."""

    def __init__(self, app: Any, max_bytes: int, upload_bytes: int, upload_paths: set[str]) -> None:
        self.app, self.max_bytes, self.upload_bytes, self.upload_paths = app, max_bytes, upload_bytes, upload_paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_bytes if scope.get("path") in self.upload_paths else self.max_bytes
        too_large = _error(413, "too_large", f"request body larger than {limit} bytes")
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await too_large(scope, receive, send)
        seen = 0
        started = False

        async def counted() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def tracked(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)


class _TooLarge(Exception):
    pass


class Observe:
    """Counts, times and logs every request: route template, status, latency, key id (never the query string or
    a body). Plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per request."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500  # if the app fails before it answers

        async def sending(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            seconds = time.perf_counter() - start
            self.metrics.requests.labels(route=name, method=scope["method"], status=str(status)).inc()
            self.metrics.latency.labels(route=name).observe(seconds)
            log.info("%s %s %d %.1f ms key=%s", scope["method"], name, status, seconds * 1000,
                     (scope.get("state") or {}).get("key_id", "-"))


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict", 413: "too_large", 422: "invalid", 429: "rate_limited", 503: "not_ready"}


# --- the app --------------------------------------------------------------------------------------------------
def create_app(settings: Settings, bot: Any = None, warm_up: bool = True, freeze_gc: bool = False) -> FastAPI:
    """The API around ``bot`` (a ``Bot`` on ``settings`` by default, its models loading in the background).
    ``freeze_gc``: once they are loaded, exempt everything alive from garbage collection (``supportbot serve``)."""
    from bot.engine import Bot

    server = settings.server
    keys = ApiKeys.from_settings(server)
    limiter = RateLimiter(server.rate_limit_per_minute)
    metrics = Metrics()
    bot = bot if bot is not None else Bot(settings=settings)
    ready = threading.Event()

    def load_models() -> None:
        try:
            bot.warm_up()
            if freeze_gc:  # the models' long-lived objects out of the collector's way: a full collection would
                gc.collect()  # otherwise walk them all, pausing every request (tail latency under load)
                gc.freeze()
            ready.set()
        except Exception:  # noqa: BLE001 - readyz stays 503; the reason goes to the log
            log.exception("loading the models failed")

    app = FastAPI(title="supportbot", version="1", description=__doc__.split("\n\n")[0] if __doc__ else "")
    v1 = APIRouter(responses=ERRORS)  # the authenticated routes, with the errors they can answer
    app.state.bot, app.state.ready, app.state.metrics = bot, ready, metrics
    if warm_up:
        threading.Thread(target=load_models, name="supportbot-warm-up", daemon=True).start()
    else:
        ready.set()
    if server.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=server.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])

    app.add_middleware(Observe, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 413:
            message = "request body too large"
        return _error(exc.status_code, _CODES.get(exc.status_code, "error"), message,
                      getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return _error(400, "bad_request", "malformed JSON body")
        where = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
                          for e in errors[:5])
        return _error(422, "invalid", where or "invalid request")

    @app.exception_handler(SupportbotError)
    async def expected(request: Request, exc: SupportbotError) -> JSONResponse:
        return _error(422, "invalid", str(exc))

    bearer = HTTPBearer(auto_error=False, description="An API key from [server] api_keys or $SUPPORTBOT_API_KEYS")

    # async: a few microseconds of work, done on the event loop (a plain def would cost every request a trip
    # through the thread pool, which under load means queueing for a thread twice)
    async def authenticated(request: Request,
                            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                            ) -> Principal:
        principal = keys.check(credentials.credentials) if credentials is not None else None
        if principal is None:
            raise HTTPException(401, "missing or unknown API key (Authorization: Bearer <key>)",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.key_id = principal.key_id
        wait = limiter.take(principal.key_id)
        if wait > 0:
            raise HTTPException(429, f"rate limit of {limiter.per_minute} requests a minute exceeded",
                                headers={"Retry-After": str(max(1, round(wait)))})
        return principal

    async def admin(principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        if not principal.admin:
            raise HTTPException(403, "changing the knowledge base needs an admin key ([server] admin_keys)")
        return principal

    User = Annotated[Principal, Depends(authenticated)]
    Admin = Annotated[Principal, Depends(admin)]
    SessionId = Annotated[str, PathParam(pattern=SESSION_ID)]

    def checked_message(text: str) -> str:
        if len(text) > server.max_message_chars:
            raise HTTPException(422, f"message: longer than {server.max_message_chars} characters")
        return text

    def existing(session_id: str) -> str:
        if not bot.sessions.exists(session_id):
            raise HTTPException(404, f"no conversation {session_id!r}")
        return session_id

    # --- conversations ----------------------------------------------------------------------------------------
    @v1.post("/v1/chat", tags=["chat"], response_model=Reply)
    def chat(body: ChatRequest, _: User) -> Response:
        """Answer one customer message (a new conversation when ``session_id`` is omitted)."""
        reply = bot.chat(checked_message(body.message), body.session_id)
        metrics.observe_reply(reply)
        # serialised here: FastAPI would validate the Reply it was just given once more (the busiest route)
        return Response(reply.model_dump_json(), media_type="application/json")

    @v1.post("/v1/chat/stream", tags=["chat"], response_class=EventSourceResponse, responses=JSON_ERRORS)
    def chat_stream(body: ChatRequest, _: User) -> Iterator[ServerSentEvent]:
        """The answer as server-sent events: ``chunk`` events ``{"text": ...}`` as it is written, then one
        ``reply`` event with the final Reply (authoritative: a generated answer that fails the grounding check
        is replaced after it streamed)."""
        message = checked_message(body.message)
        for item in bot.stream(message, body.session_id):
            if isinstance(item, Reply):
                metrics.observe_reply(item)
                yield ServerSentEvent(event="reply", data=item.model_dump(mode="json"))
            else:
                yield ServerSentEvent(event="chunk", data={"text": item})

    NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "Unknown conversation"}}

    @v1.get("/v1/sessions/{session_id}", tags=["sessions"], responses=NOT_FOUND)
    def get_session(session_id: SessionId, _: User) -> Transcript:
        """The conversation's turns, personal data masked."""
        with bot.sessions.open(existing(session_id)) as session:
            turns = [TranscriptTurn(role=t.role, text=t.text, mode=t.mode, timestamp=t.timestamp, data=t.data)
                     for t in session.turns]
            return Transcript(session_id=session.id, state=session.state, turns=turns)

    @v1.post("/v1/sessions/{session_id}/agent-message", tags=["sessions"], responses=NOT_FOUND)
    def agent_message(session_id: SessionId, body: AgentMessage, _: User) -> AgentMessageResult:
        """Record a human agent's message (your tool shows it to the customer)."""
        bot.agent_message(existing(session_id), checked_message(body.text))
        return AgentMessageResult(session_id=session_id, turns=len(bot.sessions.get(session_id).turns))

    @v1.post("/v1/sessions/{session_id}/resume", tags=["sessions"], responses=NOT_FOUND)
    def resume(session_id: SessionId, _: User) -> ResumeResult:
        """Hand the conversation back to the bot after a handoff."""
        return ResumeResult(session_id=session_id, resumed=bot.resume(existing(session_id)))

    @v1.post("/v1/feedback", tags=["sessions"], responses={
        **NOT_FOUND, 409: {"model": ErrorBody, "description": "No reply to rate yet"}})
    def feedback(body: FeedbackRequest, _: User) -> FeedbackResult:
        """Rate the latest reply of a conversation."""
        try:
            turn = bot.feedback(existing(body.session_id), body.rating, body.comment)
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        return FeedbackResult(session_id=body.session_id, turn=turn)

    # --- knowledge ------------------------------------------------------------------------------------------
    @v1.get("/v1/kb/search", tags=["knowledge"])
    def search(_: User, q: Annotated[str, Query(min_length=1, max_length=2000)],
               k: Annotated[int, Query(ge=1, le=50)] = 5) -> SearchResult:
        """What the bot would retrieve for ``q``: entries, best first, with calibrated scores."""
        return SearchResult(query=q, hits=bot.knowledge.search(q, k=k))

    @v1.post("/v1/kb/ingest", tags=["knowledge"],
              responses={403: {"model": ErrorBody}, 422: {"model": IngestReport,
                                                          "description": "Invalid records; nothing written"}})
    async def ingest(_: Admin, file: Annotated[UploadFile, File(description="CSV, JSON, JSONL, Markdown, "
                                                                            "HTML, text or PDF")]) -> IngestReport:
        """Add or update the knowledge base from one file. A file with any invalid record is not written."""
        name = Path(file.filename or "").name
        if not re.fullmatch(r"[\w.\- ]{1,200}", name) or "." not in name:
            raise HTTPException(422, "file: needs a plain file name with an extension (e.g. faq.csv)")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            path.write_bytes(await file.read())
            report = await run_in_threadpool(bot.knowledge.ingest, path)
        report = report.model_copy(update={
            "files": [name], "invalid": [p.model_copy(update={"file": name}) for p in report.invalid]})
        if report.invalid:
            return JSONResponse(report.model_dump(mode="json"), status_code=422)  # type: ignore[return-value]
        return report

    @v1.delete("/v1/kb/entries/{entry_id}", tags=["knowledge"], responses={403: {"model": ErrorBody},
                                                                            404: {"model": ErrorBody}})
    def remove(entry_id: Annotated[str, PathParam(pattern=ENTRY_ID)], _: Admin) -> RemoveResult:
        """Remove an FAQ entry or document (all its variants or passages)."""
        removed = bot.knowledge.remove([entry_id])
        if not removed:
            raise HTTPException(404, f"no entry {entry_id!r}")
        return RemoveResult(entry_id=entry_id, removed=removed)

    app.include_router(v1)

    # --- operations -----------------------------------------------------------------------------------------
    @app.get("/healthz", tags=["operations"])
    def healthz() -> Health:
        """The process is up."""
        return Health(status="ok")

    @app.get("/readyz", tags=["operations"], responses={503: {"model": Health}})
    def readyz() -> Health:
        """The models are loaded (503 while they load)."""
        if ready.is_set():
            return Health(status="ok")
        return JSONResponse({"status": "loading"}, status_code=503)  # type: ignore[return-value]

    @app.get("/metrics", tags=["operations"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    def prometheus() -> Response:
        """Requests, latency, replies by mode, escalations by reason."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    app.add_middleware(BodyLimit, max_bytes=server.max_body_bytes, upload_bytes=server.max_upload_bytes,
                       upload_paths={"/v1/kb/ingest"})
    return app


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    """Run the API with uvicorn; refuses to start without API keys."""
    import os

    import uvicorn

    from bot.errors import ConfigError

    if not ApiKeys.from_settings(settings.server):
        raise ConfigError("no API keys: set [server] api_keys in supportbot.toml or $SUPPORTBOT_API_KEYS "
                          "(comma-separated), e.g. a key from: python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'")
    log_to_stderr()
    workers = workers or settings.server.workers
    if workers > 1:  # each worker builds its app from the same settings, found through the environment
        import shutil
        import tempfile

        os.environ["SUPPORTBOT_SETTINGS_JSON"] = settings.model_dump_json()
        # /metrics adds up every worker's counts (those of a worker that died and was replaced included)
        metrics_dir = None
        if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            metrics_dir = tempfile.mkdtemp(prefix="supportbot-metrics-")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        try:
            uvicorn.run("bot.server.app:app_from_environment", factory=True, host=host or settings.server.host,
                        port=port or settings.server.port, workers=workers, log_level="info", access_log=False)
        finally:
            if metrics_dir:
                shutil.rmtree(metrics_dir, ignore_errors=True)
    else:  # no access log: its lines carry query strings (customer text); the app logs route templates instead
        uvicorn.run(create_app(settings, freeze_gc=True), host=host or settings.server.host,
                    port=port or settings.server.port, log_level="info", access_log=False)


def log_to_stderr() -> None:
    """The request lines and the bot's warnings to stderr, beside uvicorn's own (``supportbot serve``)."""
    logger = logging.getLogger("supportbot")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def app_from_environment() -> FastAPI:
    """uvicorn's factory for worker processes (``serve(workers=N)``)."""
    import os

    log_to_stderr()
    return create_app(Settings.model_validate_json(os.environ["SUPPORTBOT_SETTINGS_JSON"]), freeze_gc=True)
