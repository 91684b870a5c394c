"""Writing records to the store, changing only what changed.

A record whose text is unchanged is not re-embedded (only its metadata is updated if that changed); records of
an entry that no longer has them are deleted; with sync sources, entries that came from those files before and
are gone now are removed. Counts are per entry (FAQ entry or document), as the ``IngestReport`` gives them.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from knowledge.store import ChromaStore, Record

Progress = Callable[[int, int], None]  # (done, total) records embedded
Embed = Callable[[Sequence[str]], np.ndarray]


@dataclasses.dataclass
class WriteResult:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    records_embedded: int = 0
    changed: bool = False  # the store was written (derived indexes must be rebuilt)


class RecordWriter:
    """``run(store, records, sync_sources)``: the diff against the store, then the writes."""

    LOOKUP_BATCH = 500  # entry ids per metadata lookup
    EMBED_BATCH = 512  # texts per progress step

    def __init__(self, embed: Embed) -> None:
        self.embed = embed

    def run(self, store: ChromaStore, records: list[Record], sync_sources: set[str] | None = None,
            progress: Progress | None = None) -> WriteResult:
        entry_ids = sorted({r.entry_id for r in records})
        existing = self._existing(store, entry_ids)
        new_ids = {r.id for r in records}
        to_embed = [r for r in records if r.id not in existing or existing[r.id].text_hash != r.text_hash]
        to_update = [r for r in records if r.id in existing and existing[r.id].text_hash == r.text_hash
                     and existing[r.id].hash != r.hash]
        stale = [rid for rid in existing if rid not in new_ids]
        removed_entries: set[str] = set()
        current = set(entry_ids)
        for src in sync_sources or ():
            for r in store.get(where={"source": src}, with_text=False):
                if r.entry_id not in current:
                    stale.append(r.id)
                    removed_entries.add(r.entry_id)

        if to_embed:
            store.upsert(to_embed, self._embed([r.text for r in to_embed], progress))
        if to_update:
            store.update_metadata(to_update, previous={r.id: existing[r.id].metadata for r in to_update})
        if stale:
            store.delete(sorted(set(stale)))

        result = WriteResult(removed=len(removed_entries), records_embedded=len(to_embed),
                             changed=bool(to_embed or to_update or stale))
        changed = {r.entry_id for r in to_embed} | {r.entry_id for r in to_update} | \
            {existing[rid].entry_id for rid in stale if rid in existing}
        had = {r.entry_id for r in existing.values()}
        for eid in entry_ids:
            if eid not in had:
                result.added += 1
            elif eid in changed:
                result.updated += 1
            else:
                result.unchanged += 1
        return result

    def _existing(self, store: ChromaStore, entry_ids: list[str]) -> dict[str, Record]:
        existing: dict[str, Record] = {}
        for start in range(0, len(entry_ids), self.LOOKUP_BATCH):
            chunk = entry_ids[start:start + self.LOOKUP_BATCH]
            existing.update((r.id, r) for r in store.get(where={"entry_id": {"$in": chunk}}, with_text=False))
        return existing

    def _embed(self, texts: list[str], progress: Progress | None) -> np.ndarray:
        if progress is None:
            return self.embed(texts)
        chunks = []
        for start in range(0, len(texts), self.EMBED_BATCH):
            chunks.append(self.embed(texts[start:start + self.EMBED_BATCH]))
            progress(min(start + self.EMBED_BATCH, len(texts)), len(texts))
        return np.concatenate(chunks)
