"""Typed records at the knowledge layer's boundaries."""

from __future__ import annotations

import datetime
import hashlib
import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_FIELD_CHARS = 20_000  # a question or answer longer than this is rejected as a "huge field"


def slugify(text: str, max_len: int = 64) -> str:
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", norm).strip("-").lower()
    return slug[:max_len].strip("-") or "entry"


def derive_id(question: str) -> str:
    """A stable id for an entry without one: a slug of the question plus a short hash of it."""
    digest = hashlib.sha1(question.strip().lower().encode()).hexdigest()[:8]
    return f"{slugify(question, 48)}-{digest}"


def content_hash(*parts: Any) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:16]


class FAQEntry(BaseModel):
    """A curated question/answer pair with its question variants."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    questions: list[str] = Field(min_length=1)
    answer: str
    category: str | None = None
    tags: list[str] = Field(default_factory=list)
    url: str | None = None
    language: str | None = None
    review_by: datetime.date | None = None  # `supportbot kb stats --stale` lists the entry after this date
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _question_alias(cls, data: Any) -> Any:
        if isinstance(data, dict) and "question" in data:
            data = dict(data)
            q = data.pop("question")
            qs = data.get("questions") or []
            if isinstance(qs, str):
                qs = [qs]
            data["questions"] = ([q] if isinstance(q, str) else list(q or [])) + list(qs)
        if isinstance(data, dict) and isinstance(data.get("questions"), str):
            data = {**data, "questions": [data["questions"]]}
        if isinstance(data, dict) and isinstance(data.get("tags"), str):
            data = {**data, "tags": [t.strip() for t in re.split(r"[;,|]", data["tags"]) if t.strip()]}
        return data

    @field_validator("questions")
    @classmethod
    def _clean_questions(cls, v: list[str]) -> list[str]:
        out: list[str] = []
        for q in v:
            q = " ".join(str(q).split())
            if not q:
                raise ValueError("empty question")
            if len(q) > MAX_FIELD_CHARS:
                raise ValueError(f"question is {len(q)} characters (limit {MAX_FIELD_CHARS})")
            if q not in out:
                out.append(q)
        return out

    @field_validator("answer")
    @classmethod
    def _clean_answer(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("empty answer")
        if len(v) > MAX_FIELD_CHARS:
            raise ValueError(f"answer is {len(v)} characters (limit {MAX_FIELD_CHARS})")
        return v

    @model_validator(mode="after")
    def _default_id(self) -> "FAQEntry":
        self.id = self.id.strip() if self.id else derive_id(self.questions[0])
        return self


class Passage(BaseModel):
    """A piece of a help document, small enough to put in a prompt."""

    id: str
    entry_id: str  # the document's id
    title: str  # heading path, e.g. "Shipping guide > International"
    text: str
    source: str
    anchor: str = ""
    url: str | None = None


class Document(BaseModel):
    """A help document split into passages."""

    id: str
    title: str
    source: str
    passages: list[Passage]
    category: str | None = None
    language: str | None = None


class Hit(BaseModel):
    """One search result, grouped per entry: the best-matching variant or passage wins."""

    entry_id: str
    score: float = Field(ge=0.0, le=1.0)
    kind: Literal["faq", "document"]
    title: str  # the entry's question, or the passage's heading path
    text: str  # the curated answer, or the passage text
    matched: str  # the variant or passage text that matched
    matched_field: Literal["question", "answer", "passage"] = "question"  # what ``matched`` is
    url: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    signals: dict[str, float] = Field(default_factory=dict)  # e.g. retrieval and matcher scores behind ``score``


class InvalidRecord(BaseModel):
    file: str
    location: str  # "line 12" or "$[3].answer"
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}, {self.location}" + (f", field '{self.field}'" if self.field else "")
        return f"{where}: {self.message}"


class IngestReport(BaseModel):
    """What an ingest did, counted per entry (FAQ entry or document)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    invalid: list[InvalidRecord] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    records_embedded: int = 0
    files: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0  # of ``seconds``, the time spent embedding

    def summary(self) -> str:
        return (f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
                f"{self.removed} removed, {len(self.invalid)} invalid")
