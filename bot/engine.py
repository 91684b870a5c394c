"""``Bot``: from a customer message to a reply the company can stand behind.

For each message: escalation check (hook) -> retrieval -> one of
``faq`` (top FAQ score >= answer_threshold: the curated answer verbatim, no LM call),
``generated`` (evidence >= generate_threshold: the LM writes from the top passages, then a grounding check),
``fallback`` (otherwise: say so plainly and offer a human).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

from bot import grounding
from bot.config import Settings, load_settings
from bot.generation import CausalLMGenerator, Generator
from bot.prompting import PromptPassage, build_messages, is_no_answer
from bot.sessions import InMemorySessions, Session, Turn
from bot.types import Escalation, Reply, Source
from knowledge import Hit, KnowledgeBase

log = logging.getLogger("supportbot")


def _source(hit: Hit) -> Source:
    return Source(entry_id=hit.entry_id, title=hit.title, text=hit.text, score=hit.score, url=hit.url,
                  kind=hit.kind)


def _passage(hit: Hit) -> PromptPassage:
    if hit.kind == "faq":
        return PromptPassage(title=hit.title, text=hit.text)
    return PromptPassage(title=hit.title, text=hit.text)


class Bot:
    """The support assistant. Heavy models load lazily (``warm_up()`` loads them now)."""

    def __init__(self, knowledge: KnowledgeBase | None = None, settings: Settings | None = None,
                 generator: Generator | None = None) -> None:
        self.settings = settings or (knowledge.settings if knowledge is not None else load_settings())
        self.knowledge = knowledge or KnowledgeBase(settings=self.settings)
        self.generator = generator or CausalLMGenerator(self.settings.generator.model, self.settings.cache,
                                                        self.settings.generator.max_new_tokens)
        self.sessions = InMemorySessions()

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> "Bot":
        return cls(settings=load_settings(path))

    def warm_up(self, generator: bool = True) -> "Bot":
        self.knowledge.warm_up()
        if generator:
            self.generator.warm_up()
        return self

    # --- public API ----------------------------------------------------------------------------------------
    def chat(self, message: str, session_id: str | None = None) -> Reply:
        reply = None
        for item in self.stream(message, session_id):
            if isinstance(item, Reply):
                reply = item
        assert reply is not None
        return reply

    def stream(self, message: str, session_id: str | None = None) -> Iterator[str | Reply]:
        """Yield text chunks as they are produced, then the final ``Reply`` (whose text is authoritative)."""
        session = self.sessions.get(session_id)
        with session.lock:
            yield from self._turn(session, message)

    def reset(self, session_id: str) -> None:
        self.sessions.reset(session_id)

    # --- one turn ------------------------------------------------------------------------------------------
    def _turn(self, session: Session, message: str) -> Iterator[str | Reply]:
        start = time.perf_counter()
        session.turns.append(Turn(role="customer", text=message))
        escalation = self._check_escalation(session, message)
        if escalation is not None:
            reply = self._reply(session, "handoff", escalation.detail, 1.0, [], start, escalation=escalation)
        else:
            reply = None
            hits = self.knowledge.search(message)
            top = hits[0] if hits else None
            a = self.settings.answer
            if top is not None and top.kind == "faq" and top.score >= a.answer_threshold:
                reply = self._reply(session, "faq", top.text, top.score, [_source(top)], start)
            elif top is not None and top.score >= a.generate_threshold:
                used = hits[: self.settings.generator.max_passages]
                pieces: list[str] = []
                for piece in self.generator.stream(build_messages(message, [_passage(h) for h in used])):
                    pieces.append(piece)
                    yield piece
                reply = self._grounded(session, "".join(pieces).strip(), used, start)
            if reply is None:
                reply = self._reply(session, "fallback", a.fallback_message, top.score if top else 0.0, [], start)
                log.info("unanswered question: %s", message)
        yield reply

    def _grounded(self, session: Session, text: str, used: list[Hit], start: float) -> Reply | None:
        if is_no_answer(text):
            return None
        check = grounding.check(text, [h.text for h in used])
        if not check.supported:
            return None
        cited = check.cited or [grounding.best_supporting(text, [h.text for h in used])]
        sources = [_source(used[n - 1]) for n in cited]
        confidence = max(s.score for s in sources)
        return self._reply(session, "generated", text, confidence, sources, start)

    def _check_escalation(self, session: Session, message: str) -> Escalation | None:
        """Escalation policy hook (filled in by the escalation issue): None = let the bot answer."""
        return None

    def _reply(self, session: Session, mode: str, text: str, confidence: float, sources: list[Source],
               start: float, escalation: Escalation | None = None) -> Reply:
        reply = Reply(text=text, mode=mode, confidence=max(0.0, min(1.0, confidence)), sources=sources,
                      escalation=escalation, session_id=session.id,
                      latency_ms=(time.perf_counter() - start) * 1000.0)
        session.turns.append(Turn(role="bot", text=text, mode=mode))
        return reply
