"""User-facing errors.

Every error a user can cause (bad config, missing knowledge base, missing model package, bad input file)
is a :class:`SupportbotError`: the CLI prints its message on one line and exits with code 2, no traceback.
"""

from __future__ import annotations


class SupportbotError(Exception):
    """An expected error with a message that says what is wrong and what to do."""

    exit_code = 2


class ConfigError(SupportbotError):
    """The configuration file or environment holds an unknown key or a wrong value."""


class ModelNotAvailableError(SupportbotError):
    """A model reference cannot be resolved or loaded (package missing, path absent, hub offline)."""


class KnowledgeBaseError(SupportbotError):
    """The knowledge base is missing, empty, or was built with another embedding model."""
