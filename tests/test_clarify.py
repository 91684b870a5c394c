"""The clarify band with the default settings and the shipped matcher, on the demo knowledge base: "did you mean
...?", answered by a number, an entry id or "none", and how it counts for the escalation rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.engine import Bot

VAGUE = "money back?"  # several refund entries are likely, none sure


def make_bot(demo_kb_path: Path, tmp_path: Path, **answer) -> Bot:
    settings = load_settings(knowledge={"path": demo_kb_path}, sentiment={"enabled": False},
                             answer={"unanswered_log": tmp_path / "u.jsonl", "phrasings_log": tmp_path / "p.jsonl",
                                     **answer})
    return Bot(settings=settings)


def test_a_vague_question_gets_choices_and_a_number_picks_one(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, answer_threshold=1.0)  # never sure: the choices
    reply = bot.chat(VAGUE, "c")
    assert reply.mode == "clarify" and 1 <= len(reply.suggestions) <= 3
    assert [s.score for s in reply.suggestions] == sorted((s.score for s in reply.suggestions), reverse=True)
    assert all(f"{i}. {s.question}" in reply.text for i, s in enumerate(reply.suggestions, 1))
    chosen = reply.suggestions[-1]
    answer = bot.chat(str(len(reply.suggestions)), "c")
    assert answer.mode == "faq" and answer.choice == chosen.entry_id
    assert [s.entry_id for s in answer.sources] == [chosen.entry_id]
    assert answer.text == bot.knowledge.entry(chosen.entry_id).text  # the curated answer, verbatim
    # the phrasing is kept for `supportbot kb review`
    (logged,) = bot.phrasings.read()
    assert logged["question"] == VAGUE and logged["entry_id"] == chosen.entry_id and logged["kind"] == "clarified"


def test_choose_by_entry_id_and_errors(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, answer_threshold=1.0)
    with pytest.raises(ValueError, match="no clarification"):
        bot.choose("e", 1)
    reply = bot.chat(VAGUE, "e")
    with pytest.raises(ValueError, match="not one of"):
        bot.choose("e", 9)
    first = reply.suggestions[0]
    assert bot.choose("e", first.entry_id).choice == first.entry_id
    with pytest.raises(ValueError):  # answered: nothing pending any more
        bot.choose("e", 1)


def test_a_new_question_after_choices_is_answered_as_one(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path)
    assert make_bot(demo_kb_path, tmp_path, answer_threshold=1.0).chat(VAGUE, "n").mode == "clarify"
    bot.chat(VAGUE, "n2")
    reply = bot.chat("How long do refunds take?", "n2")
    assert reply.mode == "faq" and reply.sources[0].entry_id == "refund-timing" and reply.choice is None


def test_a_clarification_is_no_failure_but_none_of_these_is(demo_kb_path, tmp_path):
    bot = make_bot(demo_kb_path, tmp_path, answer_threshold=1.0, clarify_threshold=0.0, suggestion_min=0.0)
    assert bot.chat(VAGUE, "f").mode == "clarify"
    assert bot.chat(VAGUE + " pls", "f").mode == "clarify"  # two clarifications in a row: no handoff
    none = bot.chat("none of these", "f")
    assert none.mode == "fallback" and none.choice == "none"
    assert bot.chat("money back??", "f").mode == "clarify"
    second = bot.chat("none", "f")  # the second failure in a row hands over (escalation.fallback_streak = 2)
    assert second.mode == "handoff" and second.escalation.reason == "repeated_failure" and second.choice == "none"
