"""Text from the knowledge base, customers and agents, made safe to show in a terminal.

Rich markup is never interpreted in such text (it goes into ``rich.Text`` or is printed with ``markup=False``), and
the characters that a terminal would act on instead of showing are replaced by visible stand-ins: ESC and the other
C0 controls (their Unicode control pictures, e.g. ``␛``), DEL (``␡``), the C1 controls and the bidirectional
overrides that reorder what is shown (``<U+009B>``, ``<U+202E>``). Line breaks and tabs stay; a carriage return
(which lets text overwrite the line it is on) is dropped.
"""

from __future__ import annotations

import re

from rich.text import Text

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(ch: str) -> str:
    code = ord(ch)
    if ch == "\r":
        return ""
    if code < 0x20:
        return chr(0x2400 + code)  # control pictures: ␀ ... ␛ ...
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on replaced by a visible stand-in (see the module)."""
    return _UNSAFE.sub(lambda m: _visible(m.group()), text) if _UNSAFE.search(text) else text


def literal(text: str, style: str = "") -> Text:
    """``text`` as a ``rich.Text``: shown as written (no markup), terminal controls made visible."""
    return Text(printable(text), style=style)
