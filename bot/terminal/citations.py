"""Citation markers ``[n]`` in a reply become Markdown links (``source:n``) that the side panel answers to.

The pattern is the one the prompt and the grounding check use (``bot.conversation.prompting.CITATION``), so
what the UI links is exactly what the bot counts as a citation.
"""

from __future__ import annotations

import re

from bot.conversation.prompting import CITATION

_OPEN_CITATION = re.compile(r"\[\d{0,2}\Z")  # the end of a chunk that may be the first half of a citation


def link_citations(text: str) -> str:
    """``[2]`` -> ``[\\[2\\]](source:2)``."""
    return CITATION.sub(lambda m: f"[\\[{m.group(1)}\\]](source:{m.group(1)})", text)


class CitationLinker:
    """Links citations in streamed text, chunk by chunk.

    A chunk may end half-way through a marker (``"... days [1"`` then ``"]."``): that tail is held back until the
    next chunk says whether it is a citation, so the linked chunks join up to ``link_citations`` of the whole.
    """

    def __init__(self) -> None:
        self._held = ""

    def feed(self, chunk: str) -> str:
        """The linked Markdown that ``chunk`` (after whatever was held back) makes certain."""
        text = self._held + chunk
        tail = _OPEN_CITATION.search(text)
        cut = tail.start() if tail else len(text)
        self._held = text[cut:]
        return link_citations(text[:cut])
