"""Strict reading of users' data files (evaluation sets, training CSVs, conversation logs).

Unlike knowledge ingestion, which falls back to Windows-1252 for legacy help pages, these files must be
UTF-8: a mis-decoded label or id would silently train or score the wrong thing. Every problem is reported as
``file:line: field: what is wrong`` through the caller's error class, before anything is trained or run.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterator, Sequence

from bot.errors import SupportbotError


def read_utf8(path: str | Path, error: type[SupportbotError]) -> str:
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, expected a file") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def jsonl_objects(path: str | Path, error: type[SupportbotError], expected: str = "an object"
                  ) -> Iterator[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL file."""
    path = Path(path)
    for n, line in enumerate(read_utf8(path, error).split("\n"), 1):  # not splitlines: U+2028 may be in text
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise error(f"{path}:{n}: expected {expected}")
        yield n, row


def csv_rows(path: str | Path, error: type[SupportbotError], required: Sequence[str]
             ) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with lower-cased column names) for every row of a CSV file with a header."""
    path = Path(path)
    reader = csv.DictReader(read_utf8(path, error).splitlines())
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    for needed in required:
        if needed not in fields:
            raise error(f"{path}:1: header: missing column '{needed}' (have: {', '.join(fields)})")
    for row in reader:
        yield reader.line_num, {k.strip().lower(): (v or "") for k, v in row.items() if k}
