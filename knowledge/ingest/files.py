"""Files -> loaded files: expanding directories, decoding text, and handing each file to its format's loader.

Loading never writes anything: it returns entries, documents and the problems found (file, line or JSON path,
field), so that the caller can validate a whole file before touching the store.
"""

from __future__ import annotations

import codecs
import fnmatch
from pathlib import Path
from typing import Iterable

from knowledge.ingest.formats import LoadedFile, LoadRequest, format_for, supported_suffixes
from knowledge.ingest.formats.faq_rows import ColumnMapping

DEFAULT_IGNORE = ("README*", "LICENSE*", "CHANGELOG*", ".*")


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
                if f.is_file() and format_for(f) is not None:
                    out.append(f)
        elif p.is_file():
            out.append(p)
        else:
            raise FileNotFoundError(str(p))
    return out


def not_text(text: str) -> tuple[str, str] | None:
    """(location, why) when decoded ``text`` is not a text file, or holds a NUL byte that a store must not keep;
    sniffed from the content, whatever the file's suffix."""
    sample = text[:8192]
    controls = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\f") + sample.count("\ufffd")
    nul = text.find("\x00")
    if controls >= 16 and controls / len(sample) > 0.02:
        first = next((i for i, ch in enumerate(text) if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd"),
                     0)
        return (f"line {text.count(chr(10), 0, first) + 1}",
                "binary content, not text (control bytes); is it the right file?")
    if nul >= 0:
        return f"line {text.count(chr(10), 0, nul) + 1}", "a NUL byte (\\x00) in the text; remove it"
    return None


def load_file(path: Path, mapping: ColumnMapping | None = None, root: Path | None = None, chunk_size: int = 800,
              chunk_overlap: int = 100) -> LoadedFile:
    """Load one file completely; problems are collected, nothing is raised for bad content."""
    loaded = LoadedFile(path=path)
    fmt = format_for(path)
    if fmt is None:
        loaded.problem("file", f"unsupported file type '{path.suffix.lower()}' (supported: "
                               f"{', '.join(supported_suffixes())})")
        return loaded
    if fmt.binary:
        try:
            data = path.read_bytes()
        except OSError as e:
            loaded.problem("file", f"cannot read: {e.strerror}")
            return loaded
        if not data:
            loaded.problem("file", "file is empty")
            return loaded
        fmt.load(LoadRequest(path=path, text="", data=data, mapping=mapping or ColumnMapping(), root=root,
                             chunk_size=chunk_size, chunk_overlap=chunk_overlap), loaded)
        return loaded
    try:
        text, warning = read_text(path)
    except OSError as e:
        loaded.problem("file", f"cannot read: {e.strerror}")
        return loaded
    problem = not_text(text)
    if problem is not None:
        loaded.problem(*problem)
        return loaded
    if warning:
        loaded.warnings.append(warning)
    if not text.strip():
        loaded.problem("file", "file is empty")
        return loaded
    fmt.load(LoadRequest(path=path, text=text, mapping=mapping or ColumnMapping(), root=root, chunk_size=chunk_size,
                         chunk_overlap=chunk_overlap), loaded)
    if fmt.kind == "faq" and not loaded.entries and not loaded.invalid:
        loaded.problem("file", "no entries found")
    return loaded
