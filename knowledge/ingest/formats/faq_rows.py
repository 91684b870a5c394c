"""FAQ files are rows (CSV lines, JSON objects): which column holds which field, and rows -> validated entries.

Rows that share an id are one entry with several question variants (their answers must agree).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from knowledge.schema import FAQEntry, InvalidRecord

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.ingest.formats.base import LoadedFile

_ENTRY_FIELDS = ("id", "question", "questions", "answer", "category", "tags", "url", "language", "review_by")


@dataclasses.dataclass
class ColumnMapping:
    """Which column (CSV) or key (JSON) holds each FAQ field. ``None`` = not present."""

    id: str | None = "id"
    question: str = "question"
    questions: str = "questions"
    answer: str = "answer"
    category: str | None = "category"
    tags: str | None = "tags"
    url: str | None = "url"
    language: str | None = "language"
    review_by: str | None = "review_by"

    def extract(self, row: dict[str, Any]) -> dict[str, Any]:
        """Map a raw row to FAQEntry fields; unmapped non-empty keys go to ``metadata``."""
        out: dict[str, Any] = {}
        used: set[str] = set()
        for field in _ENTRY_FIELDS:
            col = getattr(self, field)
            if col is not None and col in row and row[col] not in (None, ""):
                out[field] = row[col]
                used.add(col)
        if "metadata" in row and isinstance(row["metadata"], dict):
            out["metadata"] = dict(row["metadata"])
            used.add("metadata")
        extra = {k: v for k, v in row.items() if k not in used and k is not None and v not in (None, "")}
        if extra:
            out.setdefault("metadata", {}).update(extra)
        return out


def _validation_problems(file: str, location: str, err: ValidationError, prefix: str = "") -> list[InvalidRecord]:
    problems = []
    for e in err.errors():
        loc = [str(x) for x in e.get("loc", ()) if x != "__root__"]
        field = loc[0] if loc else None
        msg = e.get("msg", "invalid").removeprefix("Value error, ")
        if e.get("type") == "missing":
            msg = "is required"
        problems.append(InvalidRecord(file=file, location=location + prefix, field=field, message=msg))
    return problems


def rows_to_entries(rows: list[tuple[str, dict[str, Any]]], mapping: ColumnMapping, file: str,
                     loaded: "LoadedFile") -> None:
    """Validate rows and merge those that share an id into one entry with question variants."""
    merged: dict[str, FAQEntry] = {}
    for location, row in rows:
        data = mapping.extract(row)
        try:
            entry = FAQEntry.model_validate(data)
        except ValidationError as e:
            loaded.invalid.extend(_validation_problems(file, location, e))
            continue
        prev = merged.get(entry.id)
        if prev is None:
            merged[entry.id] = entry
        elif prev.answer != entry.answer:
            loaded.invalid.append(InvalidRecord(
                file=file, location=location, field="answer",
                message=f"id '{entry.id}' appears earlier with a different answer"))
        else:
            prev.questions.extend(q for q in entry.questions if q not in prev.questions)
            prev.tags.extend(t for t in entry.tags if t not in prev.tags)
    loaded.entries.extend(merged.values())


