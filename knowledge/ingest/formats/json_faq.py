"""FAQ entries from JSON: a list of objects, or an object holding one under ``entries`` / ``faq`` / ``faqs`` /
``items`` / ``data``."""

from __future__ import annotations

import json
from typing import Any

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.faq_rows import rows_to_entries
from knowledge.schema import InvalidRecord


def load_json(request: LoadRequest, loaded: LoadedFile) -> None:
    path, text, mapping = request.path, request.text, request.mapping
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        loaded.invalid.append(InvalidRecord(file=str(path), location=f"line {e.lineno}", field=None,
                                            message=f"not valid JSON: {e.msg} (column {e.colno})"))
        return
    prefix = "$"
    if isinstance(doc, dict):
        for key in ("entries", "faq", "faqs", "items", "data"):
            if isinstance(doc.get(key), list):
                doc, prefix = doc[key], f"$.{key}"
                break
    if not isinstance(doc, list):
        loaded.invalid.append(InvalidRecord(file=str(path), location="$", field=None,
                                            message="expected a list of entries (or {\"entries\": [...]})"))
        return
    rows: list[tuple[str, dict[str, Any]]] = []
    for i, obj in enumerate(doc):
        if not isinstance(obj, dict):
            loaded.invalid.append(InvalidRecord(file=str(path), location=f"{prefix}[{i}]", field=None,
                                                message="expected a JSON object"))
            continue
        rows.append((f"{prefix}[{i}]", obj))
    rows_to_entries(rows, mapping, str(path), loaded)


FORMAT = FileFormat(name="JSON", suffixes=(".json",), kind="faq", load=load_json)
