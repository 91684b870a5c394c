"""FAQ entries from JSON Lines: one JSON object per line."""

from __future__ import annotations

import json
from typing import Any

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.faq_rows import rows_to_entries
from knowledge.schema import InvalidRecord


def load_jsonl(request: LoadRequest, loaded: LoadedFile) -> None:
    path, text, mapping = request.path, request.text, request.mapping
    rows: list[tuple[str, dict[str, Any]]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            loaded.invalid.append(InvalidRecord(file=str(path), location=f"line {n}", field=None,
                                                message=f"not valid JSON: {e.msg} (column {e.colno})"))
            continue
        if not isinstance(obj, dict):
            loaded.invalid.append(InvalidRecord(file=str(path), location=f"line {n}", field=None,
                                                message="expected a JSON object"))
            continue
        rows.append((f"line {n}", obj))
    rows_to_entries(rows, mapping, str(path), loaded)


FORMAT = FileFormat(name="JSONL", suffixes=(".jsonl", ".ndjson"), kind="faq", load=load_jsonl)
