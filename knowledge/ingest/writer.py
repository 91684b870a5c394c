"""Writing records to the store, changing only what changed.

A record whose text is unchanged is not re-embedded (only its metadata is updated if that changed); records of
an entry that no longer has them are deleted; with sync sources, entries that came from those files before and
are gone now are removed. Counts are per entry (FAQ entry or document), as the ``IngestReport`` gives them.
"""

from __future__ import annotations

import dataclasses
import time
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


@dataclasses.dataclass
class WritePlan:
    """What a write will do: records to embed and upsert, to update in place, to delete; and its counts."""

    to_embed: list[Record]
    to_update: list[Record]
    stale: list[str]
    previous_metadata: dict[str, dict]
    result: WriteResult
    existing_ids: set[str]

    @property
    def touched(self) -> list[str]:
        """Existing records this write changes or deletes (what an undo must put back)."""
        return [r.id for r in self.to_embed if r.id in self.existing_ids] + [r.id for r in self.to_update] + \
            self.stale

    @property
    def created(self) -> list[str]:
        """Records this write adds (what an undo must delete)."""
        return [r.id for r in self.to_embed if r.id not in self.existing_ids]


class RecordWriter:
    """``diff(store, records, sync_sources)``: what must change; ``embed(plan)``, then ``apply(store, plan,
    vectors)``: the writes (callers wrap ``apply`` in a journal transaction, so it is all-or-nothing)."""

    LOOKUP_BATCH = 500  # entry ids per metadata lookup
    EMBED_BATCH = 512  # texts per progress step

    def __init__(self, embed: Embed) -> None:
        self.embed = embed

    def diff(self, store: ChromaStore, records: list[Record], sync_sources: set[str] | None = None) -> WritePlan:
        entry_ids = sorted({r.entry_id for r in records})
        existing = self._existing(store, entry_ids)
        new_ids = {r.id for r in records}
        to_embed = [r for r in records if r.id not in existing or existing[r.id].text_hash != r.text_hash]
        to_update = [r for r in records if r.id in existing and existing[r.id].text_hash == r.text_hash
                     and existing[r.id].hash != r.hash]
        stale = [rid for rid in existing if rid not in new_ids]
        removed_entries: set[str] = set()
        current = set(entry_ids)
        existing_ids = set(existing)
        for src in sync_sources or ():
            for r in store.get(where={"source": src}, with_text=False):
                if r.entry_id not in current:
                    stale.append(r.id)
                    removed_entries.add(r.entry_id)

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
        return WritePlan(to_embed=to_embed, to_update=to_update, stale=sorted(set(stale)),
                         previous_metadata={r.id: existing[r.id].metadata for r in to_update + to_embed
                                            if r.id in existing}, result=result,
                         existing_ids=existing_ids)

    def vectors(self, plan: WritePlan, progress: Progress | None = None) -> np.ndarray:
        """The vectors of the records the plan embeds (the slow part, done before anything is written)."""
        if not plan.to_embed:
            return np.zeros((0, 0), dtype=np.float32)
        return self._embed([r.text for r in plan.to_embed], progress)

    def apply(self, store: ChromaStore, plan: WritePlan, vectors: np.ndarray) -> None:
        now = int(time.time())  # when each written record last changed (`supportbot kb stats --stale`)
        for r in plan.to_embed + plan.to_update:
            r.metadata["changed_at"] = now
        if plan.to_embed:
            store.upsert(plan.to_embed, vectors, previous=plan.previous_metadata)
        if plan.to_update:
            store.update_metadata(plan.to_update, previous=plan.previous_metadata)
        if plan.stale:
            store.delete(plan.stale)

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
