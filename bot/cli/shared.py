"""What every command of the ``supportbot`` CLI shares: the two consoles, the ``--config`` given to the root
command, the settings it selects, and quieting the libraries' progress bars.

It sits below the command modules (``knowledge``, ``models``, ``conversation``, ``finetune``) and the root app
that mounts them, so that each of them can use it without an import circle."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from bot.quiet import quiet_libraries  # noqa: F401 - the commands import it from here

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _State:
    config: Optional[Path] = None


state = _State()  # set by the root command's --config / SUPPORTBOT_CONFIG


def cli_settings() -> Any:
    """The effective settings for the ``--config`` given (defaults < file < SUPPORTBOT_* environment)."""
    from bot.config import load_settings

    return load_settings(state.config)
