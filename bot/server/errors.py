"""Every error the HTTP API answers is JSON: ``{"error": {"code": "...", "message": "..."}}``.

``error_response`` builds one (the middleware uses it too, for bodies over the limit); ``install_error_handlers``
turns FastAPI's and Starlette's own errors, and the bot's expected ones, into it.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.errors import SupportbotError

# The machine-readable ``code`` of each status the API answers (clients branch on it, not on the message).
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 422: "invalid", 429: "rate_limited", 503: "not_ready"}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """HTTPException from a route or dependency, and Starlette's own 404/405."""
    message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 413:
        message = "request body too large"
    return error_response(exc.status_code, CODES.get(exc.status_code, "error"), message,
                          getattr(exc, "headers", None))


async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON at all, else 422 naming the first few fields that are wrong."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "bad_request", "malformed JSON body")
    where = "; ".join(_located(e) for e in errors[:5])
    return error_response(422, "invalid", where or "invalid request")


def _located(error: dict) -> str:
    """"field: what is wrong"; a check of the whole body (e.g. "a message or a choice") names its field itself."""
    field = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
    return f"{field}: {error.get('msg')}" if field else str(error.get("msg"))


async def expected(request: Request, exc: SupportbotError) -> JSONResponse:
    """The bot's user-facing errors (e.g. a file it cannot read) are the caller's to fix: 422."""
    return error_response(422, "invalid", str(exc))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid)  # type: ignore[arg-type]
    app.add_exception_handler(SupportbotError, expected)  # type: ignore[arg-type]
