"""The HTTP API's two middlewares, plain ASGI: Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per
request, which the busiest routes would pay on every call.

``BodyLimit`` refuses bodies over the limit before a route reads them; ``Observe`` counts, times and logs every
request.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import HTTPException

from bot.server.errors import error_response
from bot.server.metrics import Metrics

log = logging.getLogger("supportbot.server")


class _TooLarge(HTTPException):
    """Raised from ``receive`` when a chunked body passes the limit. An HTTPException, so that FastAPI's body
    parsing lets it through as what it is (413) instead of wrapping it as a 400 "error parsing the body"."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """413 with a JSON error for bodies over the limit: by Content-Length before reading, and by counting the
    bytes of chunked bodies. Uploads (``upload_paths``) have their own, larger limit."""

    def __init__(self, app: Any, max_bytes: int, upload_bytes: int, upload_paths: set[str]) -> None:
        self.app, self.max_bytes, self.upload_bytes, self.upload_paths = app, max_bytes, upload_bytes, upload_paths

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.upload_bytes if scope.get("path") in self.upload_paths else self.max_bytes
        too_large = error_response(413, "too_large", f"request body larger than {limit} bytes")
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
                    raise _TooLarge(limit)
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


class Observe:
    """Counts, times and logs every request: route template, status, latency, key id (never the query string or
    a body)."""

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
