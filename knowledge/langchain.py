"""A langchain-core ``BaseRetriever`` over a :class:`~knowledge.base.KnowledgeBase`."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class KnowledgeBaseRetriever(BaseRetriever):
    """Yields one ``Document`` per entry: page_content is the answer or passage, metadata the rest."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    knowledge_base: Any
    k: int = 4
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        hits = self.knowledge_base.search(query, k=self.k, filters=self.filters)
        return [LCDocument(page_content=h.text, id=h.entry_id,
                           metadata={"entry_id": h.entry_id, "score": h.score, "kind": h.kind, "title": h.title,
                                     "matched": h.matched, "url": h.url, **h.metadata})
                for h in hits]
