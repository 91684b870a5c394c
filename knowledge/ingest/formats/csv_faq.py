"""FAQ entries from CSV: a header row, one entry (or one question variant) per row; ``questions`` may hold
several variants separated by ``|``."""

from __future__ import annotations

import csv
import io
from typing import Any

from knowledge.ingest.formats.base import FileFormat, LoadedFile, LoadRequest
from knowledge.ingest.formats.faq_rows import rows_to_entries
from knowledge.schema import MAX_FIELD_CHARS, InvalidRecord


def _reader_limit() -> None:
    """Let the csv module read a field up to twice the schema's limit (``MAX_FIELD_CHARS``), so that a long one is
    reported with its line and column name (``FAQEntry``'s check) rather than only its line (the csv limit is
    process-wide: only ever raised)."""
    want = max(2 * MAX_FIELD_CHARS, 131072)
    if csv.field_size_limit() < want:
        csv.field_size_limit(want)


def load_csv(request: LoadRequest, loaded: LoadedFile) -> None:
    path, text, mapping = request.path, request.text, request.mapping
    _reader_limit()
    # strict: a quote that is never closed (or a stray one) is an error, not rows silently merged into one field
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    at = [1]  # the line where the row being read began (a csv error is reported there)
    try:
        _rows(reader, request, loaded, at)
    except csv.Error as e:
        loaded.problem(f"line {at[0]}", _csv_message(str(e), reader.line_num or at[0], at[0]))


def _csv_message(error: str, line: int, started: int) -> str:
    if "unexpected end of data" in error or "EOF" in error:
        return "a quoted field is never closed (a \" opens it and no \" ends it before the end of the file)"
    if "field larger than field limit" in error:
        return (f"a field is longer than {csv.field_size_limit():,} characters (a question or answer may have "
                f"{MAX_FIELD_CHARS:,})")
    where = f" (read up to line {line})" if line != started else ""
    return f"malformed CSV: {error}{where}"


def _rows(reader: csv.DictReader, request: LoadRequest, loaded: LoadedFile, at: list[int]) -> None:
    path, mapping = request.path, request.mapping
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
    start = at[0] = 2
    for row in reader:
        if None in row:  # more cells than header columns
            loaded.invalid.append(InvalidRecord(file=str(path), location=f"line {start}", field=None,
                                                message="row has more cells than the header"))
        else:
            if mapping.questions in row and isinstance(row[mapping.questions], str) and row[mapping.questions]:
                row[mapping.questions] = [q for q in row[mapping.questions].split("|") if q.strip()]
            rows.append((f"line {start}", row))
        start = at[0] = reader.line_num + 1
    rows_to_entries(rows, mapping, str(path), loaded)


FORMAT = FileFormat(name="CSV", suffixes=(".csv",), kind="faq", load=load_csv)
