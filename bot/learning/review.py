"""Reviewing what customers asked: the phrasing log and the unanswered log, grouped for a person to accept as
FAQ question variants, reject, or export for the company's own FAQ files (``supportbot kb review``).

Nothing here changes the knowledge base on its own: :meth:`Review.accept` is the only write, and it is called
with the groups a person named.

How the groups are made (:func:`build_groups`):

* every logged question is an *observation* with a target: the entry a clarification choice (``clarified``) or an
  agent (``agent``) resolved it with, or none (``unanswered``; an unanswered question that the same conversation
  later got resolved is left to the phrasing log's record of it);
* a phrasing is compared case- and space-insensitively (:func:`normalise`); one conversation counts once per
  phrasing and target; phrasings already among the target entry's questions, and phrasings already reviewed
  (accepted or rejected, kept in the review state file), are dropped;
* per target, the phrasings are clustered greedily in the order they were first seen: each joins the group whose
  first phrasing (its *representative*) it is most similar to, if the cosine similarity of their embeddings (the
  knowledge base's embedder) is at least ``answer.review_similarity``; otherwise it starts a group. As the logs only
  grow, a group keeps its representative, and so its id (a hash of target and representative), while new
  phrasings arrive;
* groups are ordered most frequent first (then oldest first).

The review state (``review.json`` beside the phrasing log) records each reviewed phrasing with its target and the
decision; it is written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from bot.errors import SupportbotError
from bot.learning.log import PhrasingLog
from knowledge.runtime.atomic import atomic_write
from knowledge.schema import FAQEntry

if TYPE_CHECKING:  # pragma: no cover
    from knowledge.base import KnowledgeBase

STATE_VERSION = 1
# What the engine logs as the unanswered question when a customer picks "none of these" after a clarification
# whose question it does not have: not a customer's phrasing.
_NONE_PLACEHOLDER = "none of these"


class ReviewError(SupportbotError):
    """A review action names an unknown group or entry, or the review state file is damaged."""


def normalise(question: str) -> str:
    """The form two phrasings are compared in: case- and space-insensitive."""
    return " ".join(str(question).split()).casefold()


def _clean(question: str) -> str:
    return " ".join(str(question).split())


# --- the logs ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class LogPaths:
    phrasings: Path
    unanswered: Path
    state: Path

    @classmethod
    def from_settings(cls, settings: Any) -> "LogPaths":
        phrasings = PhrasingLog.from_settings(settings).path
        unanswered = Path(settings.answer.unanswered_log or settings.knowledge.path / "unanswered.jsonl")
        return cls(phrasings=phrasings, unanswered=unanswered, state=phrasings.parent / "review.json")


@dataclasses.dataclass(frozen=True)
class Observation:
    """One logged question: what was asked, and the entry it ended at (None: unanswered)."""

    ts: float
    session_id: str
    kind: str  # clarified | agent | unanswered
    question: str
    entry_id: str | None
    nearest: str | None = None  # unanswered: the entry retrieval found closest, if any


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a log (a damaged or half-written line is skipped)."""
    if not path.exists():
        return []
    items = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(item, dict):
            items.append(item)
    return items


def read_observations(paths: LogPaths) -> list[Observation]:
    """Both logs as observations, oldest first."""
    out: list[Observation] = []
    resolved: set[tuple[str, str]] = set()  # (conversation, phrasing) the phrasing log has an entry for
    for item in PhrasingLog(paths.phrasings).read():
        question = _clean(item.get("question") or "")
        if not question:
            continue
        session = str(item.get("session_id") or "")
        out.append(Observation(ts=_float(item.get("ts")), session_id=session,
                               kind=str(item.get("kind") or "clarified"), question=question,
                               entry_id=str(item["entry_id"])))
        resolved.add((session, normalise(question)))
    for item in read_jsonl(paths.unanswered):
        question = _clean(item.get("question") or "")
        session = str(item.get("session_id") or "")
        if not question or normalise(question) == _NONE_PLACEHOLDER or (session, normalise(question)) in resolved:
            continue
        best = item.get("best_entry")
        out.append(Observation(ts=_float(item.get("ts")), session_id=session, kind="unanswered",
                               question=question, entry_id=None, nearest=str(best) if best else None))
    out.sort(key=lambda o: o.ts)  # stable: equal times keep the logs' order
    return out


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


# --- the review state ----------------------------------------------------------------------------------------
class ReviewState:
    """The phrasings a person has reviewed: ``{"version": 1, "reviewed": [{"target", "question", "decision",
    "entry_id", "group", "ts"}, ...]}`` (``target`` is the entry the log gave, null for unanswered; ``entry_id`` the
    entry an accepted phrasing was added to)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.items: list[dict[str, Any]] = []
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                items = data["reviewed"]
                if not isinstance(items, list):
                    raise TypeError
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                raise ReviewError(f"{self.path} is not a review state file (expected JSON with a 'reviewed' "
                                  "list): fix or remove it") from None
            self.items = [i for i in items if isinstance(i, dict) and i.get("question")]
        self._keys = {(i.get("target") or "", normalise(i["question"])) for i in self.items}

    def reviewed(self, target: str | None, question: str) -> bool:
        return (target or "", normalise(question)) in self._keys

    def mark(self, group: "Group", decision: str, entry_id: str | None) -> None:
        now = time.time()
        for p in group.phrasings:
            key = (group.entry_id or "", normalise(p.question))
            if key in self._keys:
                continue
            self._keys.add(key)
            self.items.append({"target": group.entry_id, "question": p.question, "decision": decision,
                               "entry_id": entry_id, "group": group.id, "ts": now})

    def save(self) -> None:
        data = json.dumps({"version": STATE_VERSION, "reviewed": self.items}, ensure_ascii=False, indent=1)
        try:
            atomic_write(self.path, data + "\n")
        except OSError as e:
            raise ReviewError(f"cannot write the review state {self.path}: {e.strerror or e}") from None


# --- the groups ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Phrasing:
    question: str  # as first written
    count: int  # conversations it was seen in


@dataclasses.dataclass
class Group:
    """Similar phrasings with one target: what a person accepts, rejects or exports as a whole."""

    id: str
    entry_id: str | None  # the entry they ended at; None: unanswered
    representative: str  # the first phrasing of the group
    count: int  # conversations, all phrasings together
    phrasings: list[Phrasing]  # deduplicated, most frequent first
    kinds: list[str]  # clarified / agent / unanswered
    nearest: str | None = None  # unanswered: the entry retrieval most often found closest
    first_ts: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def group_id(entry_id: str | None, representative: str) -> str:
    return hashlib.sha1(f"{entry_id or ''}\x1f{normalise(representative)}".encode()).hexdigest()[:8]


def build_groups(observations: Iterable[Observation], known: Mapping[str, Iterable[str]], state: ReviewState,
                 embed: Any, similarity: float) -> list[Group]:
    """Group the observations (see the module's docstring). ``known``: entry id -> its current questions;
    ``embed(texts)``: L2-normalised vectors; called once, and not at all when no target has two phrasings."""
    known_norm = {eid: {normalise(q) for q in qs} for eid, qs in known.items()}
    # per (target, phrasing): first spelling, first time, conversations, kinds, nearest entries
    seen: dict[tuple[str | None, str], dict[str, Any]] = {}
    for o in observations:
        norm = normalise(o.question)
        if o.entry_id is not None and norm in known_norm.get(o.entry_id, ()):
            continue
        if state.reviewed(o.entry_id, o.question):
            continue
        slot = seen.setdefault((o.entry_id, norm), {"question": o.question, "ts": o.ts, "sessions": set(),
                                                    "anonymous": 0, "kinds": set(), "nearest": Counter()})
        if o.session_id:
            slot["sessions"].add(o.session_id)
        else:
            slot["anonymous"] += 1
        slot["kinds"].add(o.kind)
        if o.nearest:
            slot["nearest"][o.nearest] += 1
    if not seen:
        return []
    keys = list(seen)  # first-seen order (the observations are oldest first)
    per_target = Counter(k[0] for k in keys)
    alone = all(n == 1 for n in per_target.values())  # nothing to compare: no model to load
    vectors = np.zeros((len(keys), 1), np.float32) if alone else \
        np.asarray(embed([seen[k]["question"] for k in keys]), dtype=np.float32)
    row = {k: i for i, k in enumerate(keys)}

    clusters: dict[str | None, list[list[tuple[str | None, str]]]] = {}
    for key in keys:
        target = key[0]
        mine = clusters.setdefault(target, [])
        v = vectors[row[key]]
        best, best_sim = None, -1.0
        for cluster in mine:
            sim = float(vectors[row[cluster[0]]] @ v)
            if sim > best_sim:
                best, best_sim = cluster, sim
        if best is not None and best_sim >= similarity:
            best.append(key)
        else:
            mine.append([key])

    groups = []
    for target, target_clusters in clusters.items():
        for cluster in target_clusters:
            slots = [seen[k] for k in cluster]
            counts = [len(s["sessions"]) + s["anonymous"] for s in slots]
            order = sorted(range(len(slots)), key=lambda i: -counts[i])  # stable: first seen first among equals
            nearest: Counter[str] = Counter()
            for s in slots:
                nearest.update(s["nearest"])
            rep = slots[0]["question"]
            groups.append(Group(
                id=group_id(target, rep), entry_id=target, representative=rep, count=sum(counts),
                phrasings=[Phrasing(slots[i]["question"], counts[i]) for i in order],
                kinds=sorted(set().union(*(s["kinds"] for s in slots))),
                nearest=nearest.most_common(1)[0][0] if nearest else None, first_ts=slots[0]["ts"]))
    groups.sort(key=lambda g: (-g.count, g.first_ts))
    return groups


# --- entries as stored ---------------------------------------------------------------------------------------
def stored_entry(kb: "KnowledgeBase", entry_id: str) -> tuple[FAQEntry, str] | None:
    """An FAQ entry as the store holds it (questions in order, answer, category, tags, url, language, metadata)
    and the source it came from; None if there is no FAQ entry with that id."""
    records = [r for r in kb.store().get(where={"entry_id": entry_id}) if r.metadata.get("kind") == "faq"]
    if not records:
        return None
    questions = [r.text for r in sorted((r for r in records if r.metadata.get("field") != "answer"),
                                        key=lambda r: int(r.metadata.get("variant", 0)))]
    m = records[0].metadata
    tags = m.get("tags") or []
    if isinstance(tags, str):
        try:
            tags = json.loads(tags)
        except json.JSONDecodeError:
            tags = [tags]
    extra: dict[str, Any] = {}
    if m.get("extra"):
        try:
            extra = json.loads(m["extra"])
        except (TypeError, json.JSONDecodeError):
            extra = {}
    entry = FAQEntry(id=entry_id, questions=questions or [str(m.get("title") or entry_id)],
                     answer=str(m.get("answer") or ""), category=m.get("category"), tags=list(tags),
                     url=m.get("url"), language=m.get("language"), metadata=extra if isinstance(extra, dict) else {})
    return entry, str(m.get("source") or "api")


def with_phrasings(entry: FAQEntry, phrasings: Iterable[str]) -> FAQEntry:
    """The entry with the phrasings appended as question variants (those it has, case-insensitively, skipped)."""
    questions = list(entry.questions)
    have = {normalise(q) for q in questions}
    for p in phrasings:
        if normalise(p) not in have:
            have.add(normalise(p))
            questions.append(_clean(p))
    return entry.model_copy(update={"questions": questions})


# --- the facade ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Accepted:
    group: Group
    entry_id: str
    added: list[str]  # the phrasings that became question variants


class Review:
    """``Review(kb, settings).groups()``; ``accept({group_id: entry_id or None})``, ``reject([group_id])``."""

    def __init__(self, kb: "KnowledgeBase", settings: Any) -> None:
        self.kb = kb
        self.settings = settings
        self.paths = LogPaths.from_settings(settings)
        self.similarity = float(settings.answer.review_similarity)
        self.state = ReviewState(self.paths.state)
        self._groups: list[Group] | None = None

    def groups(self, min_count: int = 1) -> list[Group]:
        """The groups not reviewed yet, most frequent first, of at least ``min_count`` conversations."""
        if self._groups is None:
            observations = read_observations(self.paths)
            targets = sorted({o.entry_id for o in observations if o.entry_id is not None})
            known = {eid: self.kb.questions(eid) for eid in targets} if targets else {}
            from bot.embedders import similarity_embedder

            embed = similarity_embedder(self.kb, self.settings, self.settings.answer.similarity_model).embed
            self._groups = build_groups(observations, known, self.state, embed, self.similarity)
        return [g for g in self._groups if g.count >= min_count]

    def find(self, ids: Iterable[str]) -> dict[str, Group]:
        """The groups by id; :class:`ReviewError` naming the unknown ones."""
        by_id = {g.id: g for g in self.groups()}
        ids = list(ids)
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ReviewError(f"unknown review group{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                              "(run `supportbot kb review` for the current ones)")
        return {i: by_id[i] for i in ids}

    def check(self, accept: Mapping[str, str | None], reject: Iterable[str] = ()) -> list[tuple[Group, str]]:
        """Validate the actions without changing anything: every id known, no id both accepted and rejected,
        every accepted group with an entry that exists. Returns the accepted groups with the entry each goes to."""
        reject = list(reject)
        both = sorted(set(accept) & set(reject))
        if both:
            raise ReviewError(f"both accepted and rejected: {', '.join(both)}")
        groups = self.find([*accept, *reject])
        plan: list[tuple[Group, str]] = []
        for gid, entry in accept.items():
            g = groups[gid]
            target = entry or g.entry_id
            if target is None:
                hint = f" (retrieval's nearest: {g.nearest})" if g.nearest else ""
                raise ReviewError(f"group {gid} is unanswered questions: say which entry they belong to with "
                                  f"--accept {gid}=ENTRY_ID{hint}")
            plan.append((g, target))
        missing = sorted({t for _, t in plan if self.kb.entry(t) is None})
        if missing:
            raise ReviewError(f"no FAQ entry {', '.join(repr(m) for m in missing)} in the knowledge base at "
                              f"{self.kb.location}")
        return plan

    def apply(self, accept: Mapping[str, str | None], reject: Iterable[str] = ()) -> list[Accepted]:
        """Accept and reject groups (all validated first: on an error nothing changes). Accepted phrasings are
        added to their entries as question variants through ``KnowledgeBase.add``, keeping each entry's answer,
        category, tags, url, language, metadata and source as stored; then the review state is saved."""
        reject = list(reject)
        plan = self.check(accept, reject)
        rejected = [self.find([gid])[gid] for gid in reject]
        per_entry: dict[str, list[Group]] = {}
        for g, target in plan:
            per_entry.setdefault(target, []).append(g)
        done: list[Accepted] = []
        by_source: dict[str, list[FAQEntry]] = {}
        for target, groups in per_entry.items():
            stored = stored_entry(self.kb, target)
            assert stored is not None  # checked above
            entry, source = stored
            updated = entry
            for g in groups:
                before = len(updated.questions)
                updated = with_phrasings(updated, [p.question for p in g.phrasings])
                done.append(Accepted(g, target, updated.questions[before:]))
            if updated.questions != entry.questions:
                by_source.setdefault(source, []).append(updated)
        for source, entries in by_source.items():
            self.kb.add(entries, source=source)
        for a in done:
            self.state.mark(a.group, "accepted", a.entry_id)
        for g in rejected:
            self.state.mark(g, "rejected", None)
        if done or rejected:
            self.state.save()
        self._groups = None
        return done

    def export(self, path: Path, groups: Iterable[tuple[Group, str]] | None = None) -> tuple[int, int]:
        """Write FAQ JSONL, one line per entry: the entry as stored (id, questions, answer, category, tags, url,
        language, metadata) with the groups' phrasings appended to its questions. Each line is a valid FAQ row:
        it can replace the company's own row of the entry, or be appended to a JSONL FAQ file (rows that share
        an id merge into one entry), and ingesting the file on its own keeps the entries' other questions.
        ``groups``: (group, entry id) pairs; default: every pending group that has an entry. Returns (entries
        written, phrasings in them from the groups)."""
        if groups is None:
            groups = [(g, g.entry_id) for g in self.groups() if g.entry_id is not None]
        per: dict[str, list[Group]] = {}
        for g, entry_id in groups:
            per.setdefault(entry_id, []).append(g)
        lines, phrasings = [], 0
        for entry_id, gs in per.items():
            stored = stored_entry(self.kb, entry_id)
            if stored is None:  # the entry was removed since it was logged
                continue
            mine = {normalise(p.question) for g in gs for p in g.phrasings}
            phrasings += len(mine)
            row = with_phrasings(stored[0], [p.question for g in gs for p in g.phrasings]).model_dump(
                exclude_defaults=True)
            row = {"id": row.pop("id"), "questions": row.pop("questions"), "answer": row.pop("answer"), **row}
            lines.append(json.dumps(row, ensure_ascii=False))
        try:
            atomic_write(Path(path), "".join(line + "\n" for line in lines))
        except OSError as e:
            raise ReviewError(f"cannot write {path}: {e.strerror or e}") from None
        return len(lines), phrasings
