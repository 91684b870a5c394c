"""The reply decision and the retrieval-in-context choice are pure functions: tested here on their own, with
hand-made hits (the engine tests check them with real retrieval)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.config import load_settings
from bot.conversation.clarify import parse_choice
from bot.conversation.decision import Bands, decide
from bot.conversation.retrieval import prefer_joint
from bot.escalation.rules import RULES, FallbackStreakRule, TurnFacts, build_rules
from bot.storage.sessions import Turn
from bot.types import Escalation, EscalationReason
from knowledge.schema import Hit


def hit(entry: str, score: float, kind: str = "faq") -> Hit:
    return Hit(entry_id=entry, score=score, kind=kind, title=entry, text=f"answer of {entry}", matched=entry)


BANDS = Bands(answer=0.8, clarify=0.3, suggestion_min=0.05, max_suggestions=3, generate=0.6, max_passages=3)


@pytest.mark.parametrize("hits, action", [
    ([], "fallback"),
    ([hit("a", 0.80)], "faq"),  # at the answer threshold: the curated answer
    ([hit("a", 0.79)], "clarify"),  # under it: offered as a choice, never rewritten by the language model
    ([hit("a", 0.30)], "clarify"),
    ([hit("a", 0.29)], "fallback"),
    ([hit("doc", 0.95, "document")], "generate"),  # a document passage is never quoted as a curated answer
    ([hit("doc", 0.59, "document")], "fallback"),
    ([hit("a", 0.5), hit("doc", 0.7, "document")], "generate"),  # the passages first, the choices as a backup
])
def test_the_action_follows_the_bands(hits, action):
    assert decide(hits, BANDS).action == action


def test_generation_gets_the_top_document_passages_only():
    hits = [hit(f"d{i}", 0.7 - i / 100, "document") for i in range(6)] + [hit("faq", 0.75)]
    plan = decide(hits, BANDS)
    assert [h.entry_id for h in plan.passages] == ["d0", "d1", "d2"] and plan.top.entry_id == "d0"
    assert plan.score == pytest.approx(0.7)
    assert [h.entry_id for h in plan.suggestions] == ["faq"]  # offered if the written answer is not grounded


def test_curated_answers_join_the_passages_only_when_asked():
    hits = [hit("doc", 0.65, "document"), hit("faq", 0.7)]
    assert [h.entry_id for h in decide(hits, BANDS).passages] == ["doc"]
    combined = dataclasses.replace(BANDS, combine_faq_with_passages=True)
    assert [h.entry_id for h in decide(hits, combined).passages] == ["faq", "doc"]


def test_a_clarification_offers_the_likely_entries_best_first():
    hits = [hit("b", 0.2), hit("a", 0.6), hit("c", 0.04), hit("d", 0.1), hit("e", 0.09)]
    plan = decide(hits, BANDS)
    assert plan.action == "clarify" and [h.entry_id for h in plan.suggestions] == ["a", "b", "d"]
    assert [h.entry_id for h in decide(hits, dataclasses.replace(BANDS, max_suggestions=2)).suggestions] == ["a", "b"]


def test_a_fallback_keeps_the_best_hit_for_the_unanswered_log():
    plan = decide([hit("near", 0.2)], BANDS)
    assert plan.action == "fallback" and plan.top.entry_id == "near" and plan.passages == ()


@pytest.mark.parametrize("direct, joint, wins", [
    ([hit("a", 0.7)], [hit("b", 0.66)], True),  # within the margin: the context wins
    ([hit("a", 0.7)], [hit("b", 0.64)], False),
    ([], [hit("b", 0.1)], True),
    ([hit("a", 0.7)], [], False),
])
def test_the_joint_follow_up_query_wins_within_the_margin(direct, joint, wins):
    assert prefer_joint(direct, joint, margin=0.05) is wins


def test_rules_are_built_from_settings_in_order_and_switch_off():
    names = [type(r).__name__ for r in build_rules(load_settings().escalation, embedder=None, cache_dir="/unused")]
    assert names == ["CustomerRequestRule", "SensitiveTopicRule", "NegativeSentimentRule", "RepeatedQuestionRule",
                     "FallbackStreakRule"]  # low_confidence is off by default
    off = load_settings(escalation={"customer_request": False, "negative_sentiment": False,
                                    "low_confidence": True}).escalation
    names = [type(r).__name__ for r in build_rules(off, embedder=None, cache_dir="/unused")]
    assert names == ["SensitiveTopicRule", "RepeatedQuestionRule", "LowConfidenceRule", "FallbackStreakRule"]
    assert {cls.name for _, cls in RULES} == set(EscalationReason)


def test_a_rule_is_a_check_on_facts():
    rule = FallbackStreakRule(FallbackStreakRule.Settings(streak=2))
    history = [Turn("customer", "a"), Turn("bot", "sorry", mode="fallback"), Turn("customer", "b")]
    decision = rule.check(TurnFacts("b", None, history, embedder=None))
    assert decision is not None and decision.reason == EscalationReason.REPEATED_FAILURE
    assert rule.check(TurnFacts("b", None, history[-1:], embedder=None)) is None


def test_reason_codes_are_an_enumerated_type_that_serialises_as_its_string():
    event = Escalation(reason="customer_request")
    assert event.reason == "customer_request" and event.model_dump(mode="json")["reason"] == "customer_request"
    with pytest.raises(ValueError):
        Escalation(reason="because")


def test_a_clarification_is_not_a_failure_but_none_of_these_is():
    rule = FallbackStreakRule(FallbackStreakRule.Settings(streak=2))

    def facts(*modes):
        history = [Turn(role="bot", text="", mode=m) for m in modes]
        return TurnFacts(message="", sentiment=None, history=history, embedder=None)

    assert rule.check(facts("faq", "clarify")) is None  # this fallback follows a clarification: the first failure
    assert rule.check(facts("fallback", "clarify")) is not None  # "none of these" after a failure: the second


@pytest.mark.parametrize("text, expected", [
    ("2", 1), ("#1", 0), ("option 3", 2), ("the second one", 1), ("3.", 2), ("last", 2),
    ("none", "none"), ("None of these!", "none"), ("neither", "none"), ("0", "none"),
    ("4", None), ("how do I return a jacket?", None), ("Do you ship to Canada?", 0), ("", None),
])
def test_the_answer_to_a_clarification_is_read_from_the_message(text, expected):
    questions = ["Do you ship to Canada?", "What does shipping cost?", "How long does delivery take?"]
    assert parse_choice(text, questions) == expected
