"""Read FAQ files (CSV, JSON, JSONL) and help documents (Markdown, HTML, text) into typed records.

Loading never writes anything: it returns entries, documents and the problems found (file, line or JSON
path, field), so that the caller can validate a whole file before touching the store.
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
import fnmatch
import io
import json
import re
from pathlib import Path
from typing import Any, Iterable

from pydantic import ValidationError

from knowledge.schema import Document, FAQEntry, InvalidRecord, Passage, slugify

FAQ_SUFFIXES = {".csv", ".json", ".jsonl", ".ndjson"}
DOC_SUFFIXES = {".md", ".markdown", ".html", ".htm", ".txt"}
DEFAULT_IGNORE = ("README*", "LICENSE*", "CHANGELOG*", ".*")
_ENTRY_FIELDS = ("id", "question", "questions", "answer", "category", "tags", "url", "language")


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


@dataclasses.dataclass
class LoadedFile:
    path: Path
    entries: list[FAQEntry] = dataclasses.field(default_factory=list)
    documents: list[Document] = dataclasses.field(default_factory=list)
    invalid: list[InvalidRecord] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


def read_text(path: Path) -> tuple[str, str | None]:
    """Decode a file: UTF-8 (BOM stripped), UTF-16 with a BOM, else Windows-1252 with a warning."""
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8", errors="replace"), None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), f"{path}: decoded as UTF-16"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as e:
        return (data.decode("cp1252", errors="replace"),
                f"{path}: not valid UTF-8 (byte {e.start}); decoded as Windows-1252")


def iter_files(paths: Iterable[str | Path], ignore: Iterable[str] = DEFAULT_IGNORE) -> list[Path]:
    """Expand files and directories (recursively) into the supported files, in a stable order."""
    patterns = tuple(ignore)
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in patterns):
                    continue
                if f.is_file() and f.suffix.lower() in FAQ_SUFFIXES | DOC_SUFFIXES:
                    out.append(f)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(str(p))
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


def _rows_to_entries(rows: list[tuple[str, dict[str, Any]]], mapping: ColumnMapping, file: str,
                     loaded: LoadedFile) -> None:
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


def load_csv(path: Path, text: str, mapping: ColumnMapping, loaded: LoadedFile) -> None:
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
    _rows_to_entries(rows, mapping, str(path), loaded)


def load_jsonl(path: Path, text: str, mapping: ColumnMapping, loaded: LoadedFile) -> None:
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
    _rows_to_entries(rows, mapping, str(path), loaded)


def load_json(path: Path, text: str, mapping: ColumnMapping, loaded: LoadedFile) -> None:
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
    _rows_to_entries(rows, mapping, str(path), loaded)


# --- documents ---------------------------------------------------------------------------------------------

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3")]


def _split_sections(sections: list[tuple[list[str], str]], doc_id: str, source: str,
                    chunk_size: int, chunk_overlap: int) -> list[Passage]:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    passages: list[Passage] = []
    for headings, body in sections:
        for chunk in splitter.split_text(body):
            if not chunk.strip():
                continue
            anchor = slugify(headings[-1]) if headings else ""
            passages.append(Passage(
                id=f"{doc_id}#{len(passages)}", entry_id=doc_id, title=" > ".join(headings) or doc_id,
                text=chunk.strip(), source=source, anchor=anchor))
    return passages


def _doc_id(path: Path, root: Path | None) -> str:
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else Path(path.name)
    return "doc-" + slugify(str(rel.with_suffix("")), 96)


def load_markdown(text: str) -> list[tuple[list[str], str]]:
    from langchain_text_splitters import MarkdownHeaderTextSplitter

    splitter = MarkdownHeaderTextSplitter(headers_to_split_on=_HEADERS, strip_headers=True)
    out = []
    for d in splitter.split_text(text):
        headings = [d.metadata[k] for _, k in _HEADERS if k in d.metadata]
        out.append((headings, d.page_content))
    return out


def load_html(text: str) -> list[tuple[list[str], str]]:
    """Sections of an HTML page by h1-h3, scripts and styles dropped (standard library parser)."""
    from html.parser import HTMLParser

    sections: list[tuple[list[str], str]] = []

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.headings: list[str] = []
            self.level_of: list[int] = []
            self.in_heading: int | None = None
            self.heading_text: list[str] = []
            self.body: list[str] = []
            self.skip = 0

        def flush(self) -> None:
            body = re.sub(r"[ \t]+", " ", "".join(self.body))
            body = re.sub(r"\n\s*\n+", "\n\n", body).strip()
            if body:
                sections.append((list(self.headings), body))
            self.body = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in ("script", "style", "nav", "footer"):
                self.skip += 1
            elif tag in ("h1", "h2", "h3"):
                self.flush()
                self.in_heading = int(tag[1])
                self.heading_text = []
            elif tag in ("p", "br", "li", "tr", "div", "h4", "h5", "h6"):
                self.body.append("\n")

        def handle_endtag(self, tag: str) -> None:
            if tag in ("script", "style", "nav", "footer"):
                self.skip = max(0, self.skip - 1)
            elif tag in ("h1", "h2", "h3") and self.in_heading is not None:
                level = self.in_heading
                while self.level_of and self.level_of[-1] >= level:
                    self.level_of.pop()
                    self.headings.pop()
                self.headings.append(" ".join("".join(self.heading_text).split()))
                self.level_of.append(level)
                self.in_heading = None

        def handle_data(self, data: str) -> None:
            if self.skip:
                return
            if self.in_heading is not None:
                self.heading_text.append(data)
            else:
                self.body.append(data)

    p = Parser()
    p.feed(text)
    p.close()
    p.flush()
    return sections


def load_document(path: Path, text: str, root: Path | None, loaded: LoadedFile,
                  chunk_size: int = 800, chunk_overlap: int = 100) -> None:
    suffix = path.suffix.lower()
    doc_id = _doc_id(path, root)
    if suffix in (".md", ".markdown"):
        sections = load_markdown(text)
    elif suffix in (".html", ".htm"):
        sections = load_html(text)
    else:
        title = path.stem.replace("-", " ").replace("_", " ").capitalize()
        sections = [([title], text)]
    passages = _split_sections(sections, doc_id, str(path), chunk_size, chunk_overlap)
    if not passages:
        loaded.invalid.append(InvalidRecord(file=str(path), location="file", field=None,
                                            message="document has no text"))
        return
    title = sections[0][0][0] if sections and sections[0][0] else path.stem
    loaded.documents.append(Document(id=doc_id, title=title, source=str(path), passages=passages))


def load_file(path: Path, mapping: ColumnMapping | None = None, root: Path | None = None) -> LoadedFile:
    """Load one file completely; problems are collected, nothing is raised for bad content."""
    mapping = mapping or ColumnMapping()
    loaded = LoadedFile(path=path)
    suffix = path.suffix.lower()
    if suffix not in FAQ_SUFFIXES | DOC_SUFFIXES:
        loaded.invalid.append(InvalidRecord(
            file=str(path), location="file", field=None,
            message=f"unsupported file type '{suffix}' (supported: "
                    f"{', '.join(sorted(FAQ_SUFFIXES | DOC_SUFFIXES))})"))
        return loaded
    try:
        text, warning = read_text(path)
    except OSError as e:
        loaded.invalid.append(InvalidRecord(file=str(path), location="file", field=None,
                                            message=f"cannot read: {e.strerror}"))
        return loaded
    if warning:
        loaded.warnings.append(warning)
    if not text.strip():
        loaded.invalid.append(InvalidRecord(file=str(path), location="file", field=None, message="file is empty"))
        return loaded
    if suffix == ".csv":
        load_csv(path, text, mapping, loaded)
    elif suffix in (".jsonl", ".ndjson"):
        load_jsonl(path, text, mapping, loaded)
    elif suffix == ".json":
        load_json(path, text, mapping, loaded)
    else:
        load_document(path, text, root, loaded)
    if suffix in FAQ_SUFFIXES and not loaded.entries and not loaded.invalid:
        loaded.invalid.append(InvalidRecord(file=str(path), location="file", field=None,
                                            message="no entries found"))
    return loaded
