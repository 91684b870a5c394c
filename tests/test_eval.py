"""`supportbot eval`: labelled questions through the real bot on the demo knowledge base."""

from __future__ import annotations

import json

import pytest

from bot import Bot, load_settings
from bot.analytics.evaluation import EvalDataError, evaluate, read_cases
from tests.test_engine import ForbiddenGenerator

CSV = """question,expected,escalation
how long do refunds take?,refund-timing,none
Where is my order?,track-order,
What's the weather in Paris tomorrow?,none,
I want to talk to a real person,none,customer_request
"""


def test_reading_cases_and_their_errors(tmp_path):
    good = tmp_path / "cases.csv"
    good.write_text(CSV)
    cases = read_cases(good)
    assert [c.expected for c in cases] == ["refund-timing", "track-order", None, None]
    assert [c.escalation for c in cases] == ["none", None, None, "customer_request"]
    assert [c.line for c in cases] == [2, 3, 4, 5]

    jsonl = tmp_path / "cases.jsonl"
    jsonl.write_text('{"question": "hi", "expected": "none"}\n\n{"question": "x", "expected": "a"}\n')
    assert [c.line for c in read_cases(jsonl)] == [1, 3]

    for name, text, message in [
        ("a.csv", "question,answer\nhi,none\n", r"a\.csv:1: header: missing column 'expected'"),
        ("b.csv", "question,expected\nhi,\n", r"b\.csv:2: expected: missing"),
        ("c.jsonl", '{"question": "", "expected": "x"}\n', r"c\.jsonl:1: question: empty"),
        ("d.jsonl", '{"question": "a", "expected": "x"}\n{oops\n', r"d\.jsonl:2: not valid JSON"),
        ("e.txt", "question\n", r"e\.txt: expected a \.csv or \.jsonl file"),
    ]:
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(EvalDataError, match=message):
            read_cases(path)


def test_evaluate_reports_retrieval_modes_fallbacks_and_escalations(demo_kb_path, tmp_path):
    path = tmp_path / "cases.csv"
    path.write_text(CSV)
    # The clarify band closed, so that the off-topic question falls back: this test is about the counting.
    settings = load_settings(knowledge={"path": demo_kb_path},
                             answer={"unanswered_log": tmp_path / "u.jsonl", "clarify_threshold": 1.0})
    report = evaluate(Bot(settings=settings, generator=ForbiddenGenerator()), read_cases(path))
    assert report["questions"] == 4
    assert report["retrieval"] == {"questions": 2, "top1": 1.0, "recall_at_3": 1.0}
    assert report["modes"] == {"faq": 2, "fallback": 1, "handoff": 1}
    assert report["answerable"] == {"n": 2, "answered": 2, "answered_right": 2, "right_share": 1.0, "clarified": 0,
                                    "clarified_right": 0, "resolved_share": 1.0}
    assert report["no_answer_questions"] == {"n": 2, "fell_back": 2, "offered_choices": 0, "share": 1.0}
    assert report["escalations"] == {"by_reason": {"customer_request": 1}, "checked": 2, "as_expected": 2}
    assert report["latency_ms"]["p50"] > 0 and report["wrong_answers"] == []


def test_eval_command_json(demo_kb_path, tmp_path, capsys, monkeypatch):
    from bot.cli import main

    path = tmp_path / "cases.csv"
    path.write_text(CSV)
    monkeypatch.setenv("SUPPORTBOT_KNOWLEDGE__PATH", str(demo_kb_path))
    monkeypatch.setenv("SUPPORTBOT_ANSWER__UNANSWERED_LOG", str(tmp_path / "u.jsonl"))
    assert main(["eval", "--data", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["retrieval"]["top1"] == 1.0 and report["modes"]["faq"] == 2


def test_eval_command_bad_file_is_one_line(tmp_path, capsys):
    from bot.cli import main

    path = tmp_path / "bad.csv"
    path.write_text("question\nhi\n")
    assert main(["eval", "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:1: header: missing column 'expected'" in err and "Traceback" not in err
