"""The HTTP API (FastAPI): ``create_app(settings)`` builds it, ``serve(settings)`` runs it with uvicorn."""

from bot.server.app import app_from_environment, create_app, serve

__all__ = ["app_from_environment", "create_app", "serve"]
