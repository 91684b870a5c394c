"""The terminal UI's parts: widgets, the slash-command table, the stylesheet. The app that wires them is
``tui.py`` at the top of the repository (``python tui.py`` or ``supportbot chat``)."""

from __future__ import annotations

from pathlib import Path

STYLESHEET = Path(__file__).with_name("supportbot.tcss")
"""The app's Textual CSS, located from this package so that it is found in an installed copy too."""
