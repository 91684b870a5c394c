"""FAQ entries from CSV: a header row, one entry (or one question variant) per row; ``questions`` may hold
several variants separated by ``|``."""

from __future__ import annotations

import csv
import io
from typing import Any

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.faq_rows import rows_to_entries
from knowledge.schema import InvalidRecord


def load_csv(request: LoadRequest, loaded: LoadedFile) -> None:
    path, text, mapping = request.path, request.text, request.mapping
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        loaded.invalid.append(InvalidRecord(file=str(path), location="line 1", field=None, message="no header row"))
        return
    needed = [mapping.answer] + ([mapping.question] if mapping.questions not in reader.fieldnames else [])
    for col in needed:
        if col not in reader.fieldnames:
            loaded.invalid.append(InvalidRecord(
                file=str(path), location="line 1", field=col,
                message=f"column '{col}' not in header ({', '.join(reader.fieldnames)}); "
                        f"map it with --question-col / --answer-col"))
    if loaded.invalid:
        return
    rows: list[tuple[str, dict[str, Any]]] = []
    start = 2
    for row in reader:
        if None in row:  # more cells than header columns
            loaded.invalid.append(InvalidRecord(file=str(path), location=f"line {start}", field=None,
                                                message="row has more cells than the header"))
        else:
            if mapping.questions in row and isinstance(row[mapping.questions], str) and row[mapping.questions]:
                row[mapping.questions] = [q for q in row[mapping.questions].split("|") if q.strip()]
            rows.append((f"line {start}", row))
        start = reader.line_num + 1
    rows_to_entries(rows, mapping, str(path), loaded)


FORMAT = FileFormat(name="CSV", suffixes=(".csv",), kind="faq", load=load_csv)
