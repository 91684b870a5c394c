"""The bot's embedders: the knowledge base's model for retrieval, and a general-purpose one for comparing texts.

Retrieval embeds with ``knowledge.embedding_model`` (by default the shipped ``bundled:embedder``, tuned so that
requests with one meaning sit together). The grounding check, the escalation rules and ``kb review``'s grouping
compare texts by cosine similarity against thresholds that were set with the untuned ``bundled:minilm``; they keep
that model (``answer.similarity_model``, ``escalation.embedding_model``) unless a setting says ``knowledge``. When
the two are the same model, the knowledge base's embedder (and its per-turn cache) is used for both.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from knowledge.embedder import Embedder

if TYPE_CHECKING:
    from knowledge import KnowledgeBase


def similarity_embedder(knowledge: KnowledgeBase, settings: Any, ref: str) -> Embedder:
    """The embedder for ``ref`` ('knowledge' or the knowledge base's own model: the knowledge base's embedder; else
    one per model and cache, shared by every bot of the process)."""
    ks = knowledge.settings.knowledge
    if ref in ("knowledge", knowledge.embedder.model_ref):
        return knowledge.embedder
    key = (ref, str(settings.cache), ks.embedding_dtype, ks.inference)
    with _SIMILARITY_LOCK:
        if key not in _SIMILARITY:
            _SIMILARITY[key] = Embedder(ref, settings.cache, dtype=ks.embedding_dtype, backend=ks.inference)
        return _SIMILARITY[key]


_SIMILARITY: dict[tuple[str, str, str, str], Embedder] = {}
_SIMILARITY_LOCK = threading.Lock()
