"""The escalation rules, as data: each rule is an object with a name (its reason code), the stage it runs at, its
own typed settings section, and a ``check`` that returns a :class:`Decision` or nothing.

``build_rules(settings, embedder, cache_dir)`` makes the list the policy runs, in order. The keys stay flat in
``[escalation]`` (as they always were); each rule reads its section from them in ``from_settings``.

To add a rule: write a class here with ``name``, ``stage``, ``Settings``, ``from_settings`` and ``check``; add its
keys (with descriptions) to ``EscalationSettings`` in ``bot/config.py`` and its reason to ``EscalationReason`` in
``bot/types.py``; and add it to ``build_rules``. Rules run in list order; the first decision wins.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal, Protocol, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict

from bot.errors import ConfigError
from bot.escalation.examples import (_WORD, BUILTIN_TOPICS, DATA_DIR, ExampleSet, Topic, TopicClassifier,
                                     message_vectors, read_examples)
from bot.storage.sessions import Turn
from bot.types import EscalationReason, Sentiment

Stage = Literal["before_answer", "on_fallback"]


@dataclasses.dataclass(frozen=True)
class Decision:
    """A rule that fired: its reason code and what exactly triggered it."""

    reason: EscalationReason
    detail: str


class TurnFacts:
    """What the rules look at for one customer message; the message's vectors are embedded once, when a rule
    first needs them. ``history``: the turns since the last resume (before answering: without this message;
    on a fallback: ending with it)."""

    def __init__(self, message: str, sentiment: Sentiment | None, history: Sequence[Turn], embedder: Any,
                 best_score: float = 0.0, clause_min_words: int = 2) -> None:
        self.message = message
        self.sentiment = sentiment
        self.history = history
        self.best_score = best_score
        self.embedder = embedder
        self.clause_min_words = clause_min_words
        self._vectors: list[np.ndarray] | None = None

    @property
    def vectors(self) -> list[np.ndarray]:
        """The message's embedding, then its clauses' (see ``message_vectors``)."""
        if self._vectors is None:
            self._vectors = message_vectors(self.embedder, self.message, self.clause_min_words)
        return self._vectors


class Rule(Protocol):
    name: ClassVar[EscalationReason]
    stage: ClassVar[Stage]
    without_human: ClassVar[bool]  # also checked when no human is available (the customer gets an honest answer)

    def warm_up(self) -> None: ...

    def check(self, facts: TurnFacts) -> Decision | None: ...


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True)


class _RuleBase:
    without_human: ClassVar[bool] = False

    def warm_up(self) -> None:
        """Prepare heavy state now (embed examples, fit a classifier); by default there is none."""


# --- before the bot answers --------------------------------------------------------------------------------------
class CustomerRequestRule(_RuleBase):
    """The customer asks for a person: a message (or one of its clauses) closer to an example request for a person
    than to any ordinary request, and similar enough to it."""

    name = EscalationReason.CUSTOMER_REQUEST
    stage: ClassVar[Stage] = "before_answer"
    without_human = True

    class Settings(_Section):
        min_similarity: float = 0.55  # escalation.request_min_similarity
        examples: tuple[str, ...] = ()  # escalation.request_examples, added to the shipped ones

    def __init__(self, settings: Settings, requests: ExampleSet, ordinary: ExampleSet) -> None:
        self.settings = settings
        self.requests = requests
        self.ordinary = ordinary

    @classmethod
    def from_settings(cls, s: Any, sets: "ExampleSets") -> "CustomerRequestRule":
        section = cls.Settings(min_similarity=s.request_min_similarity, examples=tuple(s.request_examples))
        requests = sets.new(read_examples(DATA_DIR / "customer_request.txt") + list(section.examples))
        return cls(section, requests, sets.shipped("ordinary_request.txt"))

    def warm_up(self) -> None:
        self.requests.vectors  # noqa: B018 - embeds (or loads from cache) now
        self.ordinary.vectors  # noqa: B018

    def check(self, facts: TurnFacts) -> Decision | None:
        for v in facts.vectors:
            score, example = self.requests.best(v)
            if score >= self.settings.min_similarity and score > self.ordinary.best(v)[0]:
                return Decision(self.name, f"asked for a person (similarity {score:.2f} to \"{example}\")")
        return None


class SensitiveTopicRule(_RuleBase):
    """The message is on a configured topic: close to one of its examples or, for a topic with counter-examples
    (the built-in fraud), judged on the topic by a classifier. A topic is the company's deliberate choice, so it
    wins even over an ordinary request it resembles."""

    name = EscalationReason.SENSITIVE_TOPIC
    stage: ClassVar[Stage] = "before_answer"

    class Settings(_Section):
        topics: tuple[str, ...] = ("legal_threat", "fraud")  # escalation.sensitive_topics
        min_similarity: float = 0.6  # escalation.topic_min_similarity
        min_probability: float = 0.9  # escalation.topic_min_probability
        classifier_c: float = 16.0  # escalation.topic_classifier_c

    def __init__(self, settings: Settings, topics: dict[str, ExampleSet],
                 classifiers: dict[str, TopicClassifier]) -> None:
        self.settings = settings
        self.topics = topics
        self.classifiers = classifiers

    @classmethod
    def from_settings(cls, s: Any, sets: "ExampleSets") -> "SensitiveTopicRule":
        section = cls.Settings(topics=tuple(s.sensitive_topics), min_similarity=s.topic_min_similarity,
                               min_probability=s.topic_min_probability, classifier_c=s.topic_classifier_c)
        defined = {**{name: Topic.builtin(name) for name in BUILTIN_TOPICS if name in section.topics},
                   **{name: Topic(tuple(examples)) for name, examples in s.topics.items()}}
        unknown = [t for t in section.topics if t not in defined]
        if unknown:
            raise ConfigError(f"escalation.sensitive_topics: unknown topic(s) {', '.join(unknown)}; built in: "
                              f"{', '.join(BUILTIN_TOPICS)}; define others in [escalation.topics]")
        topics = {name: sets.new(defined[name].examples) for name in section.topics}
        classifiers = {name: TopicClassifier(topics[name], [sets.shipped(f) for f in defined[name].counter_files],
                                             sets.cache_dir, C=section.classifier_c)
                       for name in section.topics if defined[name].counter_files}
        return cls(section, topics, classifiers)

    def warm_up(self) -> None:
        for examples in self.topics.values():
            examples.vectors  # noqa: B018 - embeds (or loads from cache) now
        for classifier in self.classifiers.values():
            classifier.weights  # noqa: B018 - fits (or loads from cache) now

    def check(self, facts: TurnFacts) -> Decision | None:
        for name, examples in self.topics.items():
            score, example = max((examples.best(v) for v in facts.vectors), key=lambda pair: pair[0])
            classifier = self.classifiers.get(name)
            if classifier is None:
                if score >= self.settings.min_similarity:
                    return Decision(self.name, f"{name} (similarity {score:.2f} to \"{example}\")")
            else:
                p = classifier.probability(facts.vectors)
                if p >= self.settings.min_probability:
                    return Decision(self.name, f"{name} (probability {p:.2f}; closest example \"{example}\", "
                                               f"similarity {score:.2f})")
        return None


class NegativeSentimentRule(_RuleBase):
    """Very negative or angry now, or negative in N of the last M customer turns."""

    name = EscalationReason.NEGATIVE_SENTIMENT
    stage: ClassVar[Stage] = "before_answer"

    class Settings(_Section):
        very_negative: float = 0.999  # escalation.very_negative
        anger: float = 0.9  # escalation.anger
        negative_turns: int = 3  # escalation.negative_turns
        negative_window: int = 4  # escalation.negative_window

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, s: Any, sets: "ExampleSets") -> "NegativeSentimentRule":
        return cls(cls.Settings(very_negative=s.very_negative, anger=s.anger, negative_turns=s.negative_turns,
                                negative_window=s.negative_window))

    def check(self, facts: TurnFacts) -> Decision | None:
        sentiment, s = facts.sentiment, self.settings
        if sentiment is None:
            return None
        negative = sentiment.scores.get("negative", 1.0 if sentiment.label == "negative" else 0.0)
        if negative >= s.very_negative:
            return Decision(self.name, f"very negative message (p={negative:.2f})")
        if sentiment.anger >= s.anger:
            return Decision(self.name, f"angry message (anger p={sentiment.anger:.2f})")
        labels = [_turn_sentiment(t) for t in facts.history if t.role == "customer"] + [sentiment.label]
        window = labels[-s.negative_window:]
        if window.count("negative") >= s.negative_turns:
            return Decision(self.name, f"negative in {window.count('negative')} of the last {len(window)} "
                                       f"customer messages")
        return None


class RepeatedQuestionRule(_RuleBase):
    """The customer asks an earlier question of this conversation again (the bot did not help the first time)."""

    name = EscalationReason.REPEATED_FAILURE
    stage: ClassVar[Stage] = "before_answer"

    class Settings(_Section):
        similarity: float = 0.9  # escalation.repeat_similarity
        min_words: int = 3  # escalation.repeat_min_words

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, s: Any, sets: "ExampleSets") -> "RepeatedQuestionRule":
        return cls(cls.Settings(similarity=s.repeat_similarity, min_words=s.repeat_min_words))

    def check(self, facts: TurnFacts) -> Decision | None:
        earlier = [t.text for t in facts.history if t.role == "customer"]
        if not earlier or len(_WORD.findall(facts.message)) < self.settings.min_words:
            return None
        sims = np.stack([facts.embedder.embed_query(t) for t in earlier]) @ facts.vectors[0]
        i = int(np.argmax(sims))
        if sims[i] >= self.settings.similarity:
            return Decision(self.name, f"asked the same question again (similarity {float(sims[i]):.2f} to "
                                       f"\"{earlier[i]}\")")
        return None


# --- when the bot would give a fallback ------------------------------------------------------------------------
class LowConfidenceRule(_RuleBase):
    """(Off by default) any fallback goes to a person instead."""

    name = EscalationReason.LOW_CONFIDENCE
    stage: ClassVar[Stage] = "on_fallback"

    class Settings(_Section):
        pass

    @classmethod
    def from_settings(cls, s: Any, sets: "ExampleSets") -> "LowConfidenceRule":
        return cls()

    def check(self, facts: TurnFacts) -> Decision | None:
        return Decision(self.name, f"no confident answer (best evidence {facts.best_score:.2f})")


class FallbackStreakRule(_RuleBase):
    """The bot would give its K-th fallback in a row."""

    name = EscalationReason.REPEATED_FAILURE
    stage: ClassVar[Stage] = "on_fallback"

    class Settings(_Section):
        streak: int = 2  # escalation.fallback_streak

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, s: Any, sets: "ExampleSets") -> "FallbackStreakRule":
        return cls(cls.Settings(streak=s.fallback_streak))

    def check(self, facts: TurnFacts) -> Decision | None:
        streak = 1
        for t in reversed([t for t in facts.history if t.role == "bot"]):
            if t.mode == "clarify":  # "did you mean ...?" is not a failure (its "none of these" is a fallback)
                continue
            if t.mode != "fallback":
                break
            streak += 1
        if streak >= self.settings.streak:
            return Decision(self.name, f"{streak} answers in a row without an answer (fallback)")
        return None


# --- building the list -------------------------------------------------------------------------------------------
class ExampleSets:
    """Makes the rules' example sets, each shipped file embedded once whichever rules use it."""

    def __init__(self, embedder: Any, cache_dir: Any) -> None:
        self.embedder = embedder
        self.cache_dir = cache_dir
        self._shipped: dict[str, ExampleSet] = {}

    def new(self, texts: Sequence[str]) -> ExampleSet:
        return ExampleSet(texts, self.embedder, self.cache_dir)

    def shipped(self, name: str) -> ExampleSet:
        if name not in self._shipped:
            self._shipped[name] = self.new(read_examples(DATA_DIR / name))
        return self._shipped[name]


# (switch in [escalation], rule class), in the order they are checked
RULES: tuple[tuple[str, Any], ...] = (
    ("customer_request", CustomerRequestRule),
    ("sensitive_topic", SensitiveTopicRule),  # always built: an unknown topic is a configuration error
    ("negative_sentiment", NegativeSentimentRule),
    ("repeated_failure", RepeatedQuestionRule),
    ("low_confidence", LowConfidenceRule),
    ("repeated_failure", FallbackStreakRule),
)


def build_rules(settings: Any, embedder: Any, cache_dir: Any) -> list[Rule]:
    """The rules that ``settings`` (``EscalationSettings``) switch on, in order."""
    sets = ExampleSets(embedder, cache_dir)
    rules: list[Rule] = []
    for switch, cls in RULES:
        if switch == "sensitive_topic" or getattr(settings, switch):
            rules.append(cls.from_settings(settings, sets))
    return rules


def _turn_sentiment(turn: Turn) -> str | None:
    data = turn.data.get("sentiment")
    return data.get("label") if isinstance(data, dict) else None
