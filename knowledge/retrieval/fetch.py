"""Reading the records that made the final top k, the recently returned ones from memory.

A small knowledge base answers most questions from a few entries, and reading them from Chroma cost a third of a
search. The cache is tied to the store's revision: this process's writes forget it at once, other processes'
within the lexical index's freshness check.
"""

from __future__ import annotations

from knowledge.runtime.cache import RecentCache
from knowledge.store import ChromaStore, Record


class RecordFetcher:
    def __init__(self, max_records: int = 4096) -> None:
        self._recent: RecentCache[str, Record] = RecentCache(max_records)

    def run(self, store: ChromaStore, revision: str | None, ids: list[str]) -> dict[str, Record]:
        version = revision or ""
        found = self._recent.get_many(ids, version)
        missing = [i for i in ids if i not in found]
        if missing:
            read = store.get(ids=missing)
            found.update((r.id, r) for r in read)
            self._recent.put_many(((r.id, r) for r in read), version)
        return found
