"""``Bot``: from a customer message to a reply the company can stand behind.

For each message: sentiment -> if a human has the conversation, record it for them and stay silent ->
escalation policy (``bot/escalation/rules.py``: customer request, sensitive topic, negative sentiment, repeated
question: hand over) -> retrieval with a query that accounts for the conversation
(``bot/conversation/retrieval.py``) -> the reply decision (``bot/conversation/decision.py``):
``faq`` (the best FAQ entry's calibrated probability, ``knowledge/retrieval/matcher.py``, >= answer_threshold:
the curated answer verbatim, no LM call),
``clarify`` ("did you mean ...?": the likely FAQ entries as numbered choices; the customer's next message picks one,
``bot/conversation/clarify.py``, or ``Bot.choose``), ``generated`` (a document passage scores >= generate_threshold:
the LM writes from the top passages, then a grounding check, ``bot/conversation/grounded.py``; if it fails, the
passage sentence closest to the question, the clarification, or else fallback), or ``fallback`` (say so plainly,
offer a human, log the question as unanswered; or hand over, when it is the
K-th fallback in a row or the deployment prefers a human to any fallback).
A handoff is a structured event (``Reply.escalation``) delivered to callbacks and the webhook; the session
belongs to a human until ``resume()``.
Personal data (``[privacy]``) is masked in what is stored (the customer's and agent's messages, feedback
comments, the unanswered-questions log, and so handoff summaries) and in the question the LM sees; retrieval,
sentiment and the escalation rules read the message as written.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from bot.config import Settings, load_settings
from bot.conversation.clarify import NONE, clarify_text, parse_choice
from bot.conversation.decision import Bands, decide
from bot.conversation.consistency import ConsistencyChecker
from bot.conversation.grounded import GroundedStream, source_of
from bot.conversation.prompting import PromptPassage, build_messages, strip_instructions
from bot.conversation.retrieval import ContextualRetriever
from bot.embedders import similarity_embedder
from bot.errors import MessageError
from knowledge.safety.injection import InstructionDetector
from bot.escalation.handoff import EscalationCallback, Notifier, build_event, transcript
from bot.escalation.policy import EscalationPolicy
from bot.escalation.rules import Decision
from bot.escalation.sentiment import SentimentClassifier
from bot.generation import Generator, make_generator
from bot.learning.log import PhrasingLog
from bot.storage.factory import make_sessions
from bot.storage.redaction import Redactor
from bot.storage.sessions import Session, SessionStore, Turn
from bot.types import Escalation, EscalationReason, Mode, Reply, Sentiment, Source, Suggestion
from knowledge import Hit, KnowledgeBase
from knowledge.retrieval.matcher import Matcher

log = logging.getLogger("supportbot")


def _settings_for(knowledge: KnowledgeBase | None) -> Settings:
    """The bot's settings when only a knowledge base is given: its own, if it was built from the bot's settings;
    otherwise the configured ones with the knowledge base's store and cache."""
    if knowledge is None:
        return load_settings()
    if isinstance(knowledge.settings, Settings):
        return knowledge.settings
    return load_settings().model_copy(update={"knowledge": knowledge.settings.knowledge,
                                              "cache": knowledge.settings.cache})


class Bot:
    """The support assistant. Heavy models load lazily (``warm_up()`` loads them now)."""

    def __init__(self, knowledge: KnowledgeBase | None = None, settings: Settings | None = None,
                 generator: Generator | None = None, sessions: SessionStore | None = None,
                 sentiment: SentimentClassifier | None = None, matcher: Matcher | None = None) -> None:
        self.settings = settings or _settings_for(knowledge)
        self.knowledge = knowledge or KnowledgeBase(settings=self.settings)
        self.matcher = matcher or Matcher.from_settings(self.settings)
        self.retriever = ContextualRetriever.from_settings(self.knowledge, self.settings, self.matcher)
        self.generator = generator or make_generator(self.settings)
        self.sessions = sessions or make_sessions(self.settings)
        self.sentiment = sentiment or (SentimentClassifier.from_settings(self.settings)
                                       if self.settings.sentiment.enabled else None)
        # Retrieval embeds with the knowledge base's (tuned) model; the grounding check and the escalation rules
        # compare texts with the general-purpose model their thresholds were set with (the same object if equal).
        self.similarity = similarity_embedder(self.knowledge, self.settings, self.settings.answer.similarity_model)
        self.consistency = ConsistencyChecker.from_settings(self.settings)  # checks each generated sentence
        # instruction-like sentences in document passages (the classifier; the patterns apply to every text)
        self.instructions = InstructionDetector(cache_dir=self.settings.cache,
                                                threshold=self.settings.answer.injection_threshold,
                                                languages=self.settings.knowledge.injection_languages,
                                                backend=self.settings.knowledge.inference) \
            if self.settings.answer.injection_threshold != 1.0 else None
        self.policy = EscalationPolicy(self.settings.escalation,
                                       similarity_embedder(self.knowledge, self.settings,
                                                           self.settings.escalation.embedding_model),
                                       self.settings.cache)
        self.notifier = Notifier.from_settings(self.settings.escalation)
        self.redactor = Redactor.from_settings(self.settings.privacy)
        self.phrasings = PhrasingLog.from_settings(self.settings)
        self._log_lock = threading.Lock()

    @classmethod
    def from_config(cls, path: str | Path | None = None) -> "Bot":
        return cls(settings=load_settings(path))

    def warm_up(self, generator: bool = True) -> "Bot":
        self.knowledge.warm_up()
        if self.matcher is not None:
            self.matcher.warm_up()
        if self.sentiment is not None:
            self.sentiment.warm_up()
        if self.settings.escalation.enabled:
            self.policy.warm_up()
        self.similarity.warm_up()
        if self.instructions is not None:
            self.instructions.warm_up()
        if generator:
            self.generator.warm_up()
            if self.consistency is not None:
                self.consistency.warm_up()
        return self

    # --- public API ----------------------------------------------------------------------------------------
    def chat(self, message: str, session_id: str | None = None, choice: int | str | None = None) -> Reply:
        """Answer a customer message. After a ``clarify`` reply, the message may pick one of its suggestions
        ("2", the question's text, "none"); ``choice`` picks one explicitly (see :meth:`choose`)."""
        reply = None
        for item in self.stream(message, session_id, choice):
            if isinstance(item, Reply):
                reply = item
        assert reply is not None
        return reply

    def choose(self, session_id: str, choice: int | str) -> Reply:
        """Answer the conversation's pending clarification: ``choice`` is the suggestion's number (1-based), its
        entry id, or ``"none"`` (none of these: counted as a failed answer). ValueError if the conversation's last
        reply was not a clarification or the choice is not one of its suggestions."""
        return self.chat("", session_id, choice=choice)

    async def achat(self, message: str, session_id: str | None = None, choice: int | str | None = None) -> Reply:
        return await asyncio.to_thread(self.chat, message, session_id, choice)

    def stream(self, message: str, session_id: str | None = None,
               choice: int | str | None = None) -> Iterator[str | Reply]:
        """Yield text chunks as they are produced, then the final ``Reply``.

        A generated answer streams one verified sentence at a time: a sentence is yielded only after it passed the
        grounding check, and the first that fails ends the answer (``bot.conversation.verified``). The final
        reply's text is authoritative: when no sentence passed, it is an extractive answer, a clarification or the
        fallback, and nothing was streamed.
        """
        if choice is None and not message.strip():  # before the conversation is opened: nothing is stored
            raise MessageError("message: blank (empty or only whitespace); write what you need help with")
        with self.sessions.open(session_id) as session:
            picked = self._explicit_choice(session, choice) if choice is not None else None
            yield from self._turn(session, message, picked)

    def reset(self, session_id: str) -> None:
        self.sessions.reset(session_id)

    def feedback(self, session_id: str, rating: str, comment: str | None = None) -> int:
        """Store the customer's (or tester's) rating, ``up`` or ``down``, with the latest bot reply of the
        conversation; returns that turn's index. ValueError if there is no reply yet or the rating is unknown."""
        if rating not in ("up", "down"):
            raise ValueError(f"feedback is 'up' or 'down', not {rating!r}")
        with self.sessions.open(session_id) as session:
            index = next((i for i in range(len(session.turns) - 1, -1, -1) if session.turns[i].role == "bot"), None)
            if index is None:
                raise ValueError("there is no reply to rate in this conversation yet")
            data: dict[str, Any] = {"rating": rating, "timestamp": time.time()}
            if comment:
                data["comment"] = self._mask(comment)
            self.sessions.update_turn(session, index, {"feedback": data})
            return index

    # --- the human side of a handoff -----------------------------------------------------------------------
    def on_escalation(self, callback: EscalationCallback) -> EscalationCallback:
        """Call ``callback(escalation)`` for every escalation event (usable as a decorator). Callbacks run in
        the chat thread: keep them quick; exceptions are logged, never raised into the conversation."""
        self.notifier.callbacks.append(callback)
        return callback

    def is_with_human(self, session_id: str) -> bool:
        return self.sessions.get(session_id).state == "human"

    def agent_message(self, session_id: str, text: str) -> None:
        """Record a human agent's message in the conversation (the integration shows it to the customer)."""
        with self.sessions.open(session_id) as session:
            self.sessions.append(session, Turn(role="agent", text=self._mask(text)))

    def resume(self, session_id: str, entry_id: str | None = None) -> bool:
        """Give the conversation back to the bot after a handoff; False if it was not with a human. The
        escalation rules then count only turns from here on. ``entry_id``: the FAQ entry the agent resolved it
        with; the customer's unanswered questions before the handoff are kept as phrasings of it (for
        ``supportbot kb review``)."""
        with self.sessions.open(session_id) as session:
            if session.state != "human":
                return False
            if entry_id:
                for question in _unanswered_questions(session.turns_since_resume()):
                    self.phrasings.record("agent", session.id, question, entry_id)
            self.sessions.set_state(session, "bot")
            self.sessions.append(session, Turn(role="system", text="resumed", mode="resume"))
            return True

    def as_langchain_runnable(self, output: str = "text") -> Any:
        """A langchain-core Runnable: input a message (str) or {"message", "session_id", "choice"} (``choice``
        answers a pending clarification, see :meth:`choose`); output the reply
        text (``output="text"``) or the ``Reply`` (``output="reply"``); ``stream`` yields text chunks."""
        from bot.langchain import BotRunnable

        return BotRunnable(bot=self, output=output)

    # --- one turn ------------------------------------------------------------------------------------------
    def retrieve(self, message: str, previous: list[str] | tuple[str, ...] = ()) -> list[Hit]:
        """Search with the message, or with the message in context (the customer's ``previous`` turns) when
        it reads like a follow-up."""
        return self.retriever.run(message, previous)

    def _turn(self, session: Session, message: str,
              picked: tuple[int | str, dict[str, Any]] | None = None) -> Iterator[str | Reply]:
        start = time.perf_counter()
        pending = self._pending_clarification(session) if picked is None and session.state == "bot" else None
        if pending is not None:  # an answer to "did you mean ...?" ("2", "none"), or a new message
            index = parse_choice(message, [s["question"] for s in pending["suggestions"]],
                                 [s["entry_id"] for s in pending["suggestions"]])
            picked = (index, pending) if index is not None else None
        if picked is not None and not message.strip():
            index, pending = picked
            message = "none of these" if index == NONE else pending["suggestions"][int(index)]["question"]
        self.knowledge.embedder.prefetch(message)  # embedded for retrieval while the sentiment is classified
        if self.settings.escalation.enabled and self.policy.embedder is not self.knowledge.embedder:
            self.policy.embedder.prefetch(message)  # ... and for the escalation rules
        sentiment = self.sentiment.predict_one(message) if self.sentiment is not None else None
        since = session.turns_since_resume()
        previous = session.customer_turns()
        data = {"sentiment": sentiment.model_dump(include={"label", "score", "anger"})} if sentiment else {}
        masked = self._mask(message)  # what is stored and what the LM sees; the rest reads the message as written
        self.sessions.append(session, Turn(role="customer", text=masked, data=data))
        if session.state == "human":  # the agent answers; the bot stays silent
            yield self._with_human(session, sentiment, start)
            return
        decision = self.policy.before_answer(message, sentiment, since)
        if decision is not None:
            yield self._handoff(session, decision, sentiment, start)
            return
        if picked is not None:
            yield self._chosen(session, picked[0], picked[1], sentiment, since, start)
            return
        for item in self._answer(session, message, masked, previous, since, start):
            if isinstance(item, Reply):
                item.sentiment = sentiment
            yield item

    def _answer(self, session: Session, message: str, masked: str, previous: list[str], since: list[Turn],
                start: float) -> Iterator[str | Reply]:
        a = self.settings.answer
        hits = [h.model_copy(update={"text": self._clean(h)}) for h in self.retrieve(message, previous)]
        hits = [h for h in hits if h.text.strip()]  # an entry that was only an instruction is no answer at all
        plan = decide(hits, Bands.from_settings(self.settings))
        reply = None
        if plan.action == "faq":
            assert plan.top is not None
            reply = self._reply(session, "faq", plan.top.text, plan.score, [source_of(plan.top)], start)
        elif plan.action == "generate":  # only sentences that passed the grounding check are streamed
            prompt = build_messages(masked, [PromptPassage(h.title, h.text) for h in plan.passages])
            grounded = GroundedStream(message, plan.passages, self.settings, self.consistency, self.similarity.embed)
            g = self.settings.generator  # a quote-only generator copies the best sentences (bot/generation/quoting.py)
            quotes = grounded.quotes(g.quote_candidates, g.quote_margin) \
                if getattr(self.generator, "quote_only", False) else []
            if quotes and g.quote_prompt == "quoted":  # the model reads only the passages it may quote
                prompt = build_messages(masked, [PromptPassage(h.title, h.text)
                                                 for h in (plan.passages[n - 1] for n in grounded.quoted)])
            if quotes is not None:  # None: the answer is a table row, quoted with its header (extractive)
                yield from grounded.run(self.generator.stream(prompt, **({"quotes": quotes} if quotes else {})))
            answer = grounded.result()
            if answer is not None:
                reply = self._reply(session, "generated", answer.text, answer.confidence, answer.sources, start,
                                    extractive=answer.extractive)
        if reply is None and plan.suggestions:  # "did you mean ...?" (also when a generated answer was not grounded)
            reply = self._clarify(session, masked, plan.suggestions, start)
        if reply is None:  # fallback: the plan's, or a generated answer that was not grounded
            self._log_unanswered(session, masked, plan.top)
            decision = self.policy.on_fallback(since, plan.score)
            if decision is not None:
                yield self._handoff(session, decision, None, start)
                return
            reply = self._reply(session, "fallback", a.fallback_message, plan.score, [], start)
        yield reply

    # --- clarification ---------------------------------------------------------------------------------------
    @staticmethod
    def _pending_clarification(session: Session) -> dict[str, Any] | None:
        """The data of the conversation's last bot turn if it was a clarification (its suggestions and the
        question it asked about), else None."""
        for t in reversed(session.turns):
            if t.role == "bot":
                return t.data if t.mode == "clarify" and t.data.get("suggestions") else None
            if t.role != "customer":
                return None
        return None

    def _explicit_choice(self, session: Session, choice: int | str) -> tuple[int | str, dict[str, Any]]:
        pending = self._pending_clarification(session) if session.state == "bot" else None
        if pending is None:
            raise ValueError("there is no clarification to choose from in this conversation")
        suggestions = pending["suggestions"]
        if isinstance(choice, str) and choice.strip().lower() == NONE:
            return NONE, pending
        if isinstance(choice, int) and not isinstance(choice, bool):
            if 1 <= choice <= len(suggestions):
                return choice - 1, pending
        elif isinstance(choice, str):
            for i, s in enumerate(suggestions):
                if choice == s["entry_id"]:
                    return i, pending
        raise ValueError(f"choice {choice!r} is not one of the {len(suggestions)} suggestions (a number from 1, "
                         "an entry id, or 'none')")

    def _clarify(self, session: Session, asked: str, hits: tuple[Hit, ...], start: float) -> Reply:
        a = self.settings.answer
        suggestions = [Suggestion(entry_id=h.entry_id, question=h.title, score=max(0.0, min(1.0, h.score)))
                       for h in hits]
        text = clarify_text(a.clarify_message, a.clarify_hint, [s.question for s in suggestions])
        return self._reply(session, "clarify", text, suggestions[0].score, [], start, suggestions=suggestions,
                           extra={"asked": asked})

    def _chosen(self, session: Session, index: int | str, pending: dict[str, Any], sentiment: Sentiment | None,
                since: list[Turn], start: float) -> Reply:
        """The customer's choice after a clarification: the chosen entry's curated answer, or (none of these) the
        fallback, which counts as a failed answer."""
        asked = str(pending.get("asked") or "")
        if index != NONE:
            chosen = pending["suggestions"][int(index)]
            hit = self.knowledge.entry(chosen["entry_id"])
            if hit is not None:
                if asked:
                    self.phrasings.record("clarified", session.id, asked, hit.entry_id)
                source = source_of(hit.model_copy(update={"score": float(chosen.get("score", 1.0))}))
                reply = self._reply(session, "faq", strip_instructions(hit.text), float(chosen.get("score", 1.0)),
                                    [source], start, extra={"choice": hit.entry_id})
                reply.sentiment = sentiment
                reply.choice = hit.entry_id
                return reply
        self._log_unanswered(session, asked or "none of these", None)
        decision = self.policy.on_fallback(since, 0.0)
        if decision is not None:
            reply = self._handoff(session, decision, sentiment, start, extra={"choice": NONE})
            reply.choice = NONE
            return reply
        reply = self._reply(session, "fallback", self.settings.answer.fallback_message, 0.0, [], start,
                            extra={"choice": NONE})
        reply.choice = NONE
        reply.sentiment = sentiment
        return reply

    def _handoff(self, session: Session, decision: Decision, sentiment: Sentiment | None, start: float,
                 extra: dict[str, Any] | None = None) -> Reply:
        """Hand the conversation to a human (or, with none available, say so honestly) and notify integrations."""
        e = self.settings.escalation
        event = build_event(session.id, session.turns, decision, handed_off=e.human_available)
        if e.human_available:
            self.sessions.set_state(session, "human")
            mode: Mode = "handoff"
            text = e.handoff_message
        else:
            mode, text = "fallback", e.no_human_message
        reply = self._reply(session, mode, text, 1.0, [], start, escalation=event, extra=extra)
        reply.sentiment = sentiment
        self.notifier.notify(event)
        return reply

    def _with_human(self, session: Session, sentiment: Sentiment | None, start: float) -> Reply:
        """A message while a human has the conversation: recorded for the agent, no bot answer."""
        opened = next((t.data["escalation"] for t in reversed(session.turns)
                       if t.role == "bot" and t.mode == "handoff" and "escalation" in t.data), None)
        escalation = Escalation(**opened, transcript=transcript(session.turns), session_id=session.id) \
            if opened else None
        return Reply(text="", mode="handoff", confidence=1.0, sentiment=sentiment, escalation=escalation,
                     session_id=session.id, latency_ms=(time.perf_counter() - start) * 1000.0)

    def _log_unanswered(self, session: Session, message: str, top: Hit | None) -> None:
        path = self.settings.answer.unanswered_log or self.settings.knowledge.path / "unanswered.jsonl"
        record = {"ts": time.time(), "session_id": session.id, "question": message,
                  "best_entry": top.entry_id if top else None, "best_score": round(top.score, 4) if top else None}
        log.info("unanswered question in session %s", session.id)  # no customer text in logs
        store_log = getattr(self.sessions, "log_unanswered", None)
        if store_log is not None:  # the database, for `supportbot report`
            try:
                store_log(session.id, message, record["best_entry"], record["best_score"])
            except Exception as e:  # noqa: BLE001 - never fail a customer's turn over the log
                log.warning("could not store the unanswered question: %s", type(e).__name__)
        try:
            with self._log_lock:
                path.parent.mkdir(parents=True, exist_ok=True)
                with path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as e:  # never fail a customer's turn over the log
            log.warning("could not log unanswered question to %s: %s", path, e)

    def _clean(self, hit: Hit) -> str:
        """The hit's text without the sentences that address the assistant: by the patterns for every text, and by
        the trained classifier for document passages (a curated FAQ answer is given verbatim or not at all)."""
        text = strip_instructions(hit.text)
        if hit.kind == "document" and self.instructions is not None and text.strip():
            text = self.instructions.strip(text)
        return text

    def _mask(self, text: str) -> str:
        return self.redactor.redact(text).text if self.redactor is not None else text

    def _reply(self, session: Session, mode: Mode, text: str, confidence: float, sources: list[Source],
               start: float, escalation: Escalation | None = None, extractive: bool = False,
               suggestions: list[Suggestion] | None = None, extra: dict[str, Any] | None = None) -> Reply:
        reply = Reply(text=text, mode=mode, confidence=max(0.0, min(1.0, confidence)), sources=sources,
                      escalation=escalation, session_id=session.id, extractive=extractive,
                      suggestions=suggestions or [], latency_ms=(time.perf_counter() - start) * 1000.0)
        data: dict[str, Any] = {"sources": [s.entry_id for s in sources], "latency_ms": round(reply.latency_ms, 1),
                                "confidence": round(reply.confidence, 4), **(extra or {})}
        if suggestions:
            data["suggestions"] = [s.model_dump() for s in suggestions]
        if escalation is not None:
            data["escalation"] = escalation.model_dump(include={"reason", "detail", "summary", "timestamp",
                                                                "handed_off"})
        self.sessions.append(session, Turn(role="bot", text=text, mode=mode, data=data))
        return reply


def _unanswered_questions(turns: list[Turn]) -> list[str]:
    """The customer questions that the bot did not answer: a fallback or a clarification followed, or a handoff
    because no answer was found (not one the customer asked for: "let me talk to a person" is no phrasing)."""
    unanswered = {EscalationReason.REPEATED_FAILURE.value, EscalationReason.LOW_CONFIDENCE.value}
    out = []
    for prev, turn in zip(turns, turns[1:]):
        if prev.role != "customer" or turn.role != "bot" or "choice" in turn.data or not prev.text.strip():
            continue
        if turn.mode in ("fallback", "clarify") or (
                turn.mode == "handoff" and turn.data.get("escalation", {}).get("reason") in unanswered):
            out.append(prev.text)
    return out
