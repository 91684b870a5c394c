"""Keeping libraries' progress bars and advisory warnings off a terminal that supportbot draws on (the CLI, the TUI)."""

from __future__ import annotations

import os


def quiet_libraries() -> None:
    """Keep library progress bars and advisory warnings off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
