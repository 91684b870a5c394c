"""Transcripts through SQLAlchemy (SQLite with WAL, and PostgreSQL): two stores on one database behave like two worker processes (shared
state, no lost or duplicated turns under concurrency), every turn's analytics columns are filled by the real bot,
and `supportbot report` computes containment, modes, escalations, unanswered questions and feedback."""

from __future__ import annotations

import json
import threading
import time

import pytest

from bot.analytics.report import build_report, parse_time
from bot.storage.sessions import Turn
from bot.storage.transcripts import DatabaseSessions, database_url
from tests.conftest import CLARIFIED, CLARIFYING
from tests.test_engine import Q_REFUND, Q_WEATHER, ScriptedGenerator, cite, demo_bot

DAY = 86400.0
T0 = (time.time() // DAY - 1) * DAY  # yesterday 00:00 UTC


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A SQLite file, and a PostgreSQL database (Debian's, started by tests/services.py; skipped if impossible)."""
    if request.param == "sqlite":
        return database_url(tmp_path / "t.sqlite3")
    return request.getfixturevalue("postgres_url")


def test_two_workers_share_conversations_and_handoff_state(database):
    a, b = DatabaseSessions(database), DatabaseSessions(database)
    with a.open("c1") as s:
        a.append(s, Turn("customer", "hello"))
        a.set_state(s, "human")
    assert b.exists("c1") and not b.exists("c2")
    seen = b.get("c1")
    assert seen.state == "human" and [t.text for t in seen.turns] == ["hello"]
    with b.open("c1") as s:
        b.set_state(s, "bot")
    with a.open("c1") as s:  # a reads the database, not a cache
        assert s.state == "bot"

    def write(store: DatabaseSessions, who: str) -> None:
        for i in range(15):
            with store.open("busy") as s:
                store.append(s, Turn("customer", f"{who}{i}"))

    threads = [threading.Thread(target=write, args=(store, name)) for store, name in ((a, "a"), (b, "b"), (a, "c"))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    texts = [t.text for t in a.get("busy").turns]
    assert len(texts) == 45 and len(set(texts)) == 45  # nothing lost or duplicated across the two "processes"
    a.reset("busy")
    assert b.get("busy").turns == []
    a.reset("c1")
    a.close()
    b.close()


def test_a_process_rereads_turns_only_when_another_one_changed_them(database):
    a, b = DatabaseSessions(database), DatabaseSessions(database)
    try:
        with a.open("c") as s:
            a.append(s, Turn("customer", "hello"))
            a.append(s, Turn("bot", "hi"))
        first = a.get("c").turns
        assert a.get("c").turns[0] is first[0]  # nothing changed: a's own copy, not decoded again
        with b.open("c") as s:  # another process: a new turn, a state change, feedback on a turn
            b.append(s, Turn("customer", "thanks"))
        assert [t.text for t in a.get("c").turns] == ["hello", "hi", "thanks"]
        with b.open("c") as s:
            b.set_state(s, "human")
        assert a.get("c").state == "human"
        with b.open("c") as s:
            b.update_turn(s, 1, {"feedback": {"rating": "up"}})
        assert a.get("c").turns[1].data["feedback"] == {"rating": "up"}
        b.reset("c")
        with b.open("c") as s:  # the same id again, from scratch, with as many turns as before
            for text in ("x", "y", "z"):
                b.append(s, Turn("customer", text))
        assert [t.text for t in a.get("c").turns] == ["x", "y", "z"]
    finally:
        a.reset("c")
        a.close()
        b.close()


def test_the_bot_stores_every_turn_with_its_analytics_columns(demo_kb_path, tmp_path):
    from sqlalchemy import select

    db = tmp_path / "t.sqlite3"
    # The clarify band closed: the off-topic question gets a fallback (and is logged as unanswered).
    bot = demo_bot(demo_kb_path, tmp_path, ScriptedGenerator(cite(1)), sessions={"backend": "sqlite", "path": db},
                   escalation={"enabled": True}, answer={"clarify_threshold": 1.0})
    bot.chat(Q_REFUND, "s")
    bot.feedback("s", "up")
    bot.chat(Q_WEATHER, "s")
    bot.chat("I want to talk to a human", "s")
    store = bot.sessions
    assert isinstance(store, DatabaseSessions)
    t = store.t["turns"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(t.c.seq, t.c.role, t.c.mode, t.c.latency_ms, t.c.confidence, t.c.sentiment,
                                   t.c.escalation_reason, t.c.feedback).order_by(t.c.seq)).all()
        unanswered = conn.execute(select(store.t["unanswered"].c.question)).scalars().all()
    assert [(r.seq, r.role, r.mode) for r in rows] == [(0, "customer", None), (1, "bot", "faq"),
                                                        (2, "customer", None), (3, "bot", "fallback"),
                                                        (4, "customer", None), (5, "bot", "handoff")]
    assert rows[0].sentiment in ("neutral", "negative", "positive") and rows[1].latency_ms > 0
    assert rows[1].confidence > 0.8 and rows[1].feedback == "up" and rows[5].escalation_reason == "customer_request"
    assert unanswered == [Q_WEATHER]


def _conversation(store: DatabaseSessions, sid: str, ts: float, modes: list[str], reason: str | None = None,
                  rating: str | None = None) -> None:
    with store.open(sid) as s:
        for i, mode in enumerate(modes):
            store.append(s, Turn("customer", "q", timestamp=ts + i))
            data = {"sources": []}
            if mode == "handoff":
                data["escalation"] = {"reason": reason}
            store.append(s, Turn("bot", "a", mode=mode, timestamp=ts + i + 0.5, data=data))
        if rating:
            store.update_turn(s, len(s.turns) - 1, {"feedback": {"rating": rating}})


@pytest.fixture()
def history(tmp_path) -> DatabaseSessions:
    store = DatabaseSessions(database_url(tmp_path / "t.sqlite3"))
    _conversation(store, "d1-a", T0 + 100, ["faq", "generated"], rating="up")
    _conversation(store, "d1-b", T0 + 200, ["fallback", "handoff"], reason="repeated_failure", rating="down")
    _conversation(store, "d2-a", T0 + DAY + 100, ["faq"], rating="up")
    _conversation(store, "d2-b", T0 + DAY + 200, ["handoff"], reason="customer_request")
    _conversation(store, "old", T0 - 10 * DAY, ["faq"])  # outside the period
    for q in ["Do you sell gift cards?", "do you sell gift cards", "Is there a store in Oslo?"]:
        store.log_unanswered("d1-b", q, None, None, ts=T0 + DAY + 300)  # on day 2, whenever the test runs
    return store


def test_report_counts_containment_modes_escalations_unanswered_and_feedback(history):
    report = build_report(history, T0, T0 + 2 * DAY)
    assert report.conversations == 4 and report.handed_off == 2 and report.containment_rate == 0.5
    assert report.replies_by_mode == {"faq": 2, "handoff": 2, "generated": 1, "fallback": 1}
    assert report.escalations_by_reason == {"repeated_failure": 1, "customer_request": 1}
    assert report.top_unanswered[0] == ("do you sell gift cards", 2)
    assert (report.feedback_up, report.feedback_down, report.feedback_ratio) == (2, 1, pytest.approx(0.6667, 1e-3))
    assert [(d.conversations, d.containment_rate) for d in report.days] == [(2, 0.5), (2, 0.5)]
    assert report.days[0].date == time.strftime("%Y-%m-%d", time.gmtime(T0))


def test_report_command_prints_json_and_draws_a_png(history, tmp_path, monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("SUPPORTBOT_SESSIONS__BACKEND", "database")
    monkeypatch.setenv("SUPPORTBOT_SESSIONS__URL", history.url)
    png = tmp_path / "trend.png"
    since, until = (time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (T0, T0 + 2 * DAY))
    assert main(["report", "--since", since, "--until", until, "--json", "--png", str(png)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["conversations"] == 4 and data["containment_rate"] == 0.5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["report", "--since", since, "--until", until]) == 0
    shown = capsys.readouterr().out
    assert "50.0%" in shown and "do you sell gift cards" in shown
    assert main(["report", "--since", "last tuesday"]) == 2
    assert "neither a duration" in capsys.readouterr().err


def test_report_needs_stored_conversations(monkeypatch, capsys):
    from bot.cli import main

    monkeypatch.setenv("SUPPORTBOT_SESSIONS__BACKEND", "memory")
    assert main(["report"]) == 2 and "backend" in capsys.readouterr().err


def test_periods():
    assert parse_time("7d", 1000 * DAY) == 993 * DAY
    assert parse_time("2025-11-24", 0) == 1_763_942_400.0  # 00:00 UTC
    assert parse_time("2025-11-24T01:00:00+01:00", 0) == 1_763_942_400.0


def test_report_counts_clarifications_and_how_they_ended(demo_kb_path, tmp_path, monkeypatch, capsys):
    """The real bot's clarifications ("did you mean ...?") in the database: one answered by a choice, one with
    "none of these", one left for a new question, one for a person; the report and the handoff transcript."""
    from bot.cli import main

    db = tmp_path / "t.sqlite3"
    bot = demo_bot(demo_kb_path, tmp_path, ScriptedGenerator(cite(1)), sessions={"backend": "sqlite", "path": db},
                   escalation={"enabled": True},
                   answer={**CLARIFYING, "phrasings_log": tmp_path / "phrasings.jsonl"})
    events = []
    bot.on_escalation(events.append)
    assert bot.chat(CLARIFIED, "chosen").mode == "clarify"
    assert bot.choose("chosen", 1).mode == "faq"
    bot.chat(CLARIFIED, "none")
    assert bot.chat("none of these", "none").mode == "fallback"
    bot.chat(CLARIFIED, "moved-on")
    bot.chat(Q_WEATHER, "moved-on")
    asked = bot.chat(CLARIFIED, "person")
    assert bot.chat("I want to talk to a human", "person").mode == "handoff"

    report = build_report(bot.sessions, time.time() - DAY, time.time() + 1)
    assert report.replies_by_mode["clarify"] >= 4
    c = report.clarifications
    assert (c.chosen, c.none) == (1, 1) and c.asked == c.chosen + c.none + c.abandoned >= 4
    assert c.resolution_rate == pytest.approx(c.chosen / c.asked, abs=1e-4)

    (event,) = events  # the handoff's transcript shows what was offered
    offered = [t for t in event.transcript if t.get("mode") == "clarify"]
    assert offered and offered[-1]["suggestions"] == [s.model_dump() for s in asked.suggestions]
    assert "Bot answered: clarify (offered " in event.summary

    monkeypatch.setenv("SUPPORTBOT_SESSIONS__BACKEND", "database")
    monkeypatch.setenv("SUPPORTBOT_SESSIONS__URL", bot.sessions.url)
    assert main(["report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clarifications"] == c.model_dump()
    assert main(["report"]) == 0
    shown = capsys.readouterr().out
    assert "clarifications" in shown and f"{c.asked}: 1 answered by a choice" in shown


def test_clarifications_are_read_from_the_turn_after_each(tmp_path):
    store = DatabaseSessions(database_url(tmp_path / "t.sqlite3"))
    offered = {"suggestions": [{"entry_id": "a", "question": "A?", "score": 0.5}], "asked": "q"}

    def conversation(sid: str, *turns: tuple[str, str | None, dict]) -> None:
        with store.open(sid) as s:
            for i, (role, mode, data) in enumerate(turns):
                store.append(s, Turn(role, "x", mode=mode, timestamp=T0 + i, data=data))

    ask, clarify = ("customer", None, {}), ("bot", "clarify", offered)
    conversation("chosen", ask, clarify, ask, ("bot", "faq", {"sources": ["a"], "choice": "a"}))
    conversation("none", ask, clarify, ask, ("bot", "fallback", {"choice": "none"}))
    conversation("twice", ask, clarify, ask, clarify, ask, ("bot", "faq", {"sources": ["a"], "choice": "a"}))
    conversation("new-question", ask, clarify, ask, ("bot", "faq", {"sources": ["b"]}))
    conversation("left", ask, clarify)
    c = build_report(store, T0, T0 + DAY).clarifications
    assert (c.asked, c.chosen, c.none, c.abandoned, c.resolution_rate) == (6, 2, 1, 3, pytest.approx(0.3333, 1e-3))
    assert build_report(store, T0 + DAY, T0 + 2 * DAY).clarifications.resolution_rate is None  # none asked
