"""Retrieval queries that account for the conversation (query condensation without a language model).

A follow-up such as "and how much does that cost?" or "what about international orders?" means little
alone; joined with the previous customer turn it retrieves the right entry. A message that stands on its
own (a clear match, or no follow-up cues) is searched as it is, so a change of topic is not dragged back.
"""

from __future__ import annotations

import re

_CUES = re.compile(
    r"^\s*(and|but|also|so|then|ok(ay)?|what about|how about|what if|same for|and if)\b"
    r"|\b(it|its|that|this|those|these|they|them|there|one|ones|such|same)\b",
    re.IGNORECASE,
)


def looks_like_followup(message: str, max_words: int = 12) -> bool:
    """Short messages (``answer.followup_max_words``) with a follow-up cue (a leading 'and/what about', or a
    pronoun such as 'that')."""
    return len(message.split()) <= max_words and bool(_CUES.search(message))


def contextual_query(message: str, previous_customer_turns: list[str], max_words: int = 12) -> str | None:
    """The message joined with the previous customer turn, or None when there is nothing to join."""
    if not previous_customer_turns or not looks_like_followup(message, max_words):
        return None
    return f"{previous_customer_turns[-1]} {message}"
