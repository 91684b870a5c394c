"""Which loaded entries and documents an ingest writes: a file with problems is not written at all (unless
``skip_invalid``: then its valid records are), and an id defined in two files is a problem in the second."""

from __future__ import annotations

import dataclasses

from knowledge.ingest.formats import LoadedFile
from knowledge.ingest.records import document_records, entry_records
from knowledge.schema import Document, FAQEntry, InvalidRecord
from knowledge.store import Record


@dataclasses.dataclass
class IngestPlan:
    entries: list[tuple[FAQEntry, str]] = dataclasses.field(default_factory=list)  # (entry, source file)
    documents: list[Document] = dataclasses.field(default_factory=list)
    invalid: list[InvalidRecord] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    # Files whose earlier entries a sync may remove: written, and with records. A file that failed to load as a
    # whole (bad JSON, missing column) must not make its earlier entries disappear.
    sync_sources: set[str] = dataclasses.field(default_factory=set)

    def records(self, index_answers: bool = True) -> list[Record]:
        out = [r for e, src in self.entries for r in entry_records(e, src, index_answers)]
        return out + [r for d in self.documents for r in document_records(d)]


def plan_ingest(loaded: list[LoadedFile], skip_invalid: bool) -> IngestPlan:
    plan = IngestPlan()
    seen: dict[str, str] = {}  # id -> the file that defined it first
    for lf in loaded:
        source = lf.source
        plan.warnings.extend(lf.warnings)
        ids = [e.id for e in lf.entries] + [d.id for d in lf.documents]
        clashes = {i for i in ids if i in seen and seen[i] != source}
        problems = list(lf.invalid) + [
            InvalidRecord(file=source, location="file", field="id", message=f"id '{i}' is also defined in {seen[i]}")
            for i in sorted(clashes)]
        plan.invalid.extend(problems)
        if problems and not skip_invalid:
            continue
        for e in lf.entries:
            if e.id not in clashes:
                plan.entries.append((e, source))
                seen[e.id] = source
        for d in lf.documents:
            if d.id not in clashes:
                plan.documents.append(d)
                seen[d.id] = source
        if lf.entries or lf.documents:
            plan.sync_sources.add(source)
    return plan

