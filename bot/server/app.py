"""The HTTP API: ``supportbot serve`` (FastAPI + uvicorn), for helpdesks, web chat widgets and chat platforms.

    POST /v1/chat                               {session_id?, message, choice?, metadata?} -> Reply (a
                                                "clarify" reply's suggestions are answered with choice)
    POST /v1/chat/stream                        the same as server-sent events: "chunk" events, then "reply"
    GET  /v1/sessions/{id}                      the transcript (personal data masked, see [privacy])
    POST /v1/sessions/{id}/agent-message        a human agent's message, during a handoff
    POST /v1/sessions/{id}/resume               hand the conversation back to the bot ({entry_id?})
    POST /v1/feedback                           {session_id, rating: up|down, comment?} on the latest reply
    POST /v1/kb/ingest                          upload a FAQ / document file (admin key)
    GET  /v1/kb/search?q=...&k=5                what the bot would retrieve
    DELETE /v1/kb/entries/{id}                  remove an entry (admin key)
    POST /v1/kb/sync   GET /v1/kb/sync          start a sync of [[knowledge.sources]], its status (admin key)
    GET  /healthz   /readyz   /metrics          liveness, models loaded, Prometheus

Every /v1 route needs ``Authorization: Bearer <key>``; knowledge writes need an admin key. Errors are JSON:
``{"error": {"code": "...", "message": "..."}}`` with the right status (400 malformed JSON, 401 missing or
wrong key, 403 not an admin key, 404 unknown session or entry, 409 nothing to rate yet or no clarification to
choose from, 413 body too large, 422 invalid field, 429 over the rate limit, 503 not ready). Logs carry routes,
statuses, latencies and key ids, never keys or messages.

Where things are: ``schemas`` (bodies), ``errors`` (the JSON errors), ``middleware`` (body limit, request log and
metrics), ``deps`` (keys, rate limit, the app's state), ``routers/`` (one module per area); this module only puts
them together (``create_app``) and runs the result (``serve``).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from typing import Any

from fastapi import FastAPI

from bot.config import Settings
from bot.errors import ConfigError
from bot.server.errors import install_error_handlers
from bot.server.metrics import Metrics
from bot.server.middleware import BodyLimit, Observe
from bot.server.routers import chat, knowledge, operations, sessions
from bot.server.security import ApiKeys, RateLimiter

log = logging.getLogger("supportbot.server")


def create_app(settings: Settings, bot: Any = None, warm_up: bool = True, freeze_gc: bool = False) -> FastAPI:
    """The API around ``bot`` (a ``Bot`` on ``settings`` by default, its models loading in the background).
    ``freeze_gc``: once they are loaded, exempt everything alive from garbage collection (``supportbot serve``)."""
    from bot.engine import Bot

    server = settings.server
    app = FastAPI(title="supportbot", version="1", description=__doc__.split("\n\n")[0] if __doc__ else "")
    state = app.state  # what the routes read (bot/server/deps.py)
    state.settings, state.keys = settings, ApiKeys.from_settings(server)
    state.limiter, state.metrics = RateLimiter(server.rate_limit_per_minute), Metrics()
    state.auth_failures = RateLimiter(server.auth_failures_per_minute)  # per client address
    state.bot = bot if bot is not None else Bot(settings=settings)
    state.ready = threading.Event()
    if warm_up:
        threading.Thread(target=_load_models, args=(state.bot, state.ready, freeze_gc), name="supportbot-warm-up",
                         daemon=True).start()
    else:
        state.ready.set()
    # middleware: the last added runs first (BodyLimit, then Observe, then CORS)
    if server.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=server.cors_origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"])
    app.add_middleware(Observe, metrics=state.metrics)
    install_error_handlers(app)
    for area in (chat, sessions, knowledge, operations):
        app.include_router(area.router)
    app.add_middleware(BodyLimit, max_bytes=server.max_body_bytes, upload_bytes=server.max_upload_bytes,
                       upload_paths={knowledge.INGEST_PATH})
    return app


def _load_models(bot: Any, ready: threading.Event, freeze_gc: bool) -> None:
    """The warm-up thread: ``/readyz`` answers 200 once it is done."""
    try:
        bot.warm_up()
        if freeze_gc:  # the models' long-lived objects out of the collector's way: a full collection would
            gc.collect()  # otherwise walk them all, pausing every request (tail latency under load)
            gc.freeze()
        ready.set()
    except Exception:  # noqa: BLE001 - readyz stays 503; the reason goes to the log
        log.exception("loading the models failed")


def serve(settings: Settings, host: str | None = None, port: int | None = None, workers: int | None = None) -> None:
    """Run the API with uvicorn; refuses to start without API keys."""
    import uvicorn

    if not ApiKeys.from_settings(settings.server):
        raise ConfigError("no API keys: set [server] api_keys in supportbot.toml or $SUPPORTBOT_API_KEYS "
                          "(comma-separated), e.g. a key from: python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'")
    log_to_stderr()
    host, port = host or settings.server.host, port or settings.server.port
    workers = workers or settings.server.workers
    if workers > 1:
        _serve_workers(settings, host, port, workers)
    else:  # no access log: its lines carry query strings (customer text); the app logs route templates instead
        uvicorn.run(create_app(settings, freeze_gc=True), host=host, port=port, log_level="info", access_log=False)


def _serve_workers(settings: Settings, host: str, port: int, workers: int) -> None:
    """``workers`` uvicorn processes; each builds its app from the same settings, found through the environment
    (``app_from_environment``)."""
    import shutil
    import tempfile

    import uvicorn

    os.environ["SUPPORTBOT_SETTINGS_JSON"] = settings.model_dump_json()
    # /metrics adds up every worker's counts (those of a worker that died and was replaced included)
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="supportbot-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run("bot.server.app:app_from_environment", factory=True, host=host, port=port,
                    workers=workers, log_level="info", access_log=False)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


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
    log_to_stderr()
    return create_app(Settings.model_validate_json(os.environ["SUPPORTBOT_SETTINGS_JSON"]), freeze_gc=True)
