"""The reply decision and the retrieval-in-context choice are pure functions: tested here on their own, with
hand-made hits (the engine tests check them with real retrieval)."""

from __future__ import annotations

import pytest

from bot.config import load_settings
from bot.conversation.decision import decide
from bot.conversation.retrieval import prefer_joint
from bot.escalation.rules import RULES, FallbackStreakRule, TurnFacts, build_rules
from bot.storage.sessions import Turn
from bot.types import Escalation, EscalationReason
from knowledge.schema import Hit


def hit(entry: str, score: float, kind: str = "faq") -> Hit:
    return Hit(entry_id=entry, score=score, kind=kind, title=entry, text=f"answer of {entry}", matched=entry)


@pytest.mark.parametrize("hits, action", [
    ([], "fallback"),
    ([hit("a", 0.80)], "faq"),  # at the answer threshold: the curated answer
    ([hit("a", 0.79)], "generate"),  # under it but over the generate threshold: written from passages
    ([hit("doc", 0.95, "document")], "generate"),  # a document passage is never quoted as a curated answer
    ([hit("a", 0.59)], "fallback"),
])
def test_the_action_follows_the_thresholds(hits, action):
    assert decide(hits, answer_threshold=0.8, generate_threshold=0.6, max_passages=3).action == action


def test_generation_gets_the_top_passages_only():
    hits = [hit(f"e{i}", 0.7 - i / 100) for i in range(6)]
    plan = decide(hits, 0.8, 0.6, max_passages=3)
    assert [h.entry_id for h in plan.passages] == ["e0", "e1", "e2"] and plan.top is hits[0]
    assert plan.score == pytest.approx(0.7)


def test_a_fallback_keeps_the_best_hit_for_the_unanswered_log():
    plan = decide([hit("near", 0.4)], 0.8, 0.6, 3)
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
