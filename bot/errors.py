"""User-facing errors of the bot layer.

The error types themselves belong to the lowest layer (``knowledge.errors``), which raises them too; they are
re-exported here so that ``from bot.errors import ConfigError`` reads naturally in the bot's own code.
"""

from knowledge.errors import ConfigError, KnowledgeBaseError, ModelNotAvailableError, SupportbotError

__all__ = ["ConfigError", "KnowledgeBaseError", "MessageError", "ModelNotAvailableError", "SupportbotError"]


class MessageError(SupportbotError, ValueError):
    """A customer message the bot does not take (blank: empty or only whitespace); nothing is stored."""
