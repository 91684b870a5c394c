"""supportbot: an offline-capable customer-service bot.

Nothing heavy is imported here: ``from bot import Bot`` loads the engine on first access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Bot", "Reply", "Source", "Sentiment", "Escalation", "Settings", "load_settings", "SupportbotError"]

if TYPE_CHECKING:  # pragma: no cover
    from bot.config import Settings, load_settings
    from bot.engine import Bot
    from bot.errors import SupportbotError
    from bot.types import Escalation, Reply, Sentiment, Source

_LAZY = {
    "Bot": "bot.engine",
    "Reply": "bot.types",
    "Source": "bot.types",
    "Sentiment": "bot.types",
    "Escalation": "bot.types",
    "Settings": "bot.config",
    "load_settings": "bot.config",
    "SupportbotError": "bot.errors",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
