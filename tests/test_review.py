"""``supportbot kb review``: the phrasing and unanswered logs grouped for a person, and what accepting, rejecting
and exporting a group does, on a real knowledge base (a small FAQ, the bundled MiniLM, Chroma in a temp dir).

The log lines are written directly (in the engine's format), so that these tests do not depend on what the
matcher would clarify; one test makes the lines with a real ``Bot`` handoff and ``resume``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from bot import Bot, load_settings
from bot.cli import main
from bot.learning.review import Review, stored_entry
from knowledge import KnowledgeBase

FAQ = [
    {"id": "track-order", "questions": ["Where is my order?", "How do I track my parcel?"],
     "answer": "Follow your order under Account > Orders or with the tracking link in your dispatch email.",
     "category": "orders", "tags": ["tracking", "delivery"], "url": "https://help.example/track",
     "metadata": {"owner": "logistics"}},
    {"id": "international-shipping", "questions": ["Do you ship internationally?", "Which countries do you ship to?"],
     "answer": "We ship to the EU, the UK, Canada and the US.", "category": "shipping", "tags": ["international"]},
    {"id": "payment-methods", "questions": ["Which payment methods do you accept?"],
     "answer": "Visa, Mastercard, American Express and PayPal.", "category": "payments"},
    {"id": "stores", "questions": ["Do you have physical stores?"],
     "answer": "We are online only: there are no shops.", "category": "company"},
    {"id": "refund-timing", "questions": ["How long do refunds take?"],
     "answer": "Refunds are issued within 5 business days of your return arriving.", "category": "returns"},
]
WALKABOUT = "parcel gone walkabout, any news on it"


@pytest.fixture()
def kb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A knowledge base of FAQ, ingested through the CLI; the CLI's settings point at it."""
    path = tmp_path / "kb"
    monkeypatch.setenv("SUPPORTBOT_KNOWLEDGE__PATH", str(path))
    faq = tmp_path / "faq.jsonl"
    faq.write_text("".join(json.dumps(e) + "\n" for e in FAQ), encoding="utf-8")
    assert main(["ingest", str(faq)]) == 0
    return path


_clock = itertools.count(1_700_000_000)


def log(path: Path, *records: dict) -> None:
    """Append records to a log as the engine does, each a second after the one before."""
    with path.open("a", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"ts": float(next(_clock)), **r}) + "\n")


def phrasing(session: str, question: str, entry: str, kind: str = "clarified") -> dict:
    return {"session_id": session, "kind": kind, "question": question, "entry_id": entry}


def unanswered(session: str, question: str, best: str | None = None) -> dict:
    return {"session_id": session, "question": question, "best_entry": best, "best_score": 0.2 if best else None}


def groups_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict]:
    capsys.readouterr()
    assert main(["kb", "review", "--json", *args]) == 0
    return json.loads(capsys.readouterr().out)


def snapshot(kb_dir: Path) -> dict:
    kb = KnowledgeBase(path=kb_dir)
    return {e["id"]: kb.questions(e["id"]) for e in FAQ}


# --------------------------------------------------------------------------------------------------------
# accepting


def test_accepted_clarified_phrasing_is_found_as_a_variant_of_its_entry(kb_dir, capsys):
    kb = KnowledgeBase(path=kb_dir)
    before_entry, before_source = stored_entry(kb, "track-order")
    assert WALKABOUT not in [h.matched for h in kb.search(WALKABOUT)]
    log(kb_dir / "phrasings.jsonl", phrasing("s1", WALKABOUT, "track-order"))

    [group] = groups_json(capsys)
    assert group["entry_id"] == "track-order" and group["entry_question"] == "Where is my order?"
    assert group["representative"] == WALKABOUT and group["count"] == 1 and group["kinds"] == ["clarified"]
    assert snapshot(kb_dir)["track-order"] == before_entry.questions  # listing added nothing

    assert main(["kb", "review", "--accept", group["id"]]) == 0
    assert f"accepted {group['id']}: 1 phrasing added to track-order" in capsys.readouterr().out

    kb = KnowledgeBase(path=kb_dir)
    top = kb.search(WALKABOUT)[0]
    assert top.entry_id == "track-order" and top.matched == WALKABOUT and top.matched_field == "question"
    after_entry, after_source = stored_entry(kb, "track-order")
    assert after_entry.questions == [*before_entry.questions, WALKABOUT]
    assert after_entry.model_dump(exclude={"questions"}) == before_entry.model_dump(exclude={"questions"})
    assert after_source == before_source and after_source.endswith("faq.jsonl")
    assert top.metadata["owner"] == "logistics" and top.url == "https://help.example/track"
    # reviewed: not offered again, and the decision is on file
    assert groups_json(capsys) == []
    state = json.loads((kb_dir / "review.json").read_text())
    assert state["reviewed"][0]["decision"] == "accepted" and state["reviewed"][0]["entry_id"] == "track-order"


def test_unanswered_group_is_accepted_only_with_its_entry(kb_dir, capsys):
    log(kb_dir / "unanswered.jsonl", unanswered("s1", "got any shops in london", best="stores"),
        unanswered("s2", "got any shops in london?", best="stores"))
    [group] = groups_json(capsys)
    assert group["entry_id"] is None and group["kinds"] == ["unanswered"] and group["nearest"] == "stores"
    assert group["count"] == 2 and len(group["phrasings"]) == 2

    assert main(["kb", "review", "--accept", group["id"]]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: group") and f"--accept {group['id']}=ENTRY_ID" in err and "\n" not in err
    assert main(["kb", "review", "--accept", f"{group['id']}=no-such-entry"]) == 2
    assert "no FAQ entry 'no-such-entry'" in capsys.readouterr().err
    assert not (kb_dir / "review.json").exists()

    assert main(["kb", "review", "--accept", f"{group['id']}=stores"]) == 0
    assert "2 phrasings added to stores" in capsys.readouterr().out
    questions = KnowledgeBase(path=kb_dir).questions("stores")
    assert questions == ["Do you have physical stores?", "got any shops in london", "got any shops in london?"]


def test_unknown_id_is_one_line_exit_2_and_changes_nothing(kb_dir, capsys):
    log(kb_dir / "phrasings.jsonl", phrasing("s1", WALKABOUT, "track-order"))
    [group] = groups_json(capsys)
    before = snapshot(kb_dir)
    for args in (["--accept", group["id"], "--accept", "deadbeef"], ["--reject", "deadbeef"],
                 ["--accept", group["id"], "--reject", group["id"]]):
        assert main(["kb", "review", *args]) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert "deadbeef" in err or "both accepted and rejected" in err
    assert snapshot(kb_dir) == before and not (kb_dir / "review.json").exists()
    assert [g["id"] for g in groups_json(capsys)] == [group["id"]]


def test_rejected_group_is_hidden_and_nothing_is_added(kb_dir, capsys):
    log(kb_dir / "phrasings.jsonl", phrasing("s1", "talk to someone about my delivery", "track-order", "agent"))
    [group] = groups_json(capsys)
    before = snapshot(kb_dir)
    assert main(["kb", "review", "--reject", group["id"]]) == 0
    assert f"rejected {group['id']}" in capsys.readouterr().out
    assert snapshot(kb_dir) == before
    assert groups_json(capsys) == []
    # the same words again stay rejected; a new phrasing is offered
    log(kb_dir / "phrasings.jsonl", phrasing("s2", "Talk to someone about my  delivery", "track-order", "agent"),
        phrasing("s3", "my parcel never came", "track-order", "agent"))
    assert [g["representative"] for g in groups_json(capsys)] == ["my parcel never came"]


# --------------------------------------------------------------------------------------------------------
# grouping


def test_similar_phrasings_are_grouped_most_frequent_first(kb_dir, capsys):
    log(kb_dir / "phrasings.jsonl",
        phrasing("a1", "what's your phone number", "international-shipping"),
        phrasing("c1", "do u ship 2 canada", "international-shipping"),
        phrasing("c1", "do u ship 2 canada", "international-shipping"),  # one conversation counts once
        phrasing("c2", "do you ship to canada?", "international-shipping", "agent"),
        phrasing("c3", "Do you ship to Canada?", "international-shipping"),
        phrasing("c4", "shipping to canada??", "international-shipping"),
        phrasing("k1", "which countries do you SHIP to?", "international-shipping"),  # already a question
        phrasing("p1", "do u ship 2 canada", "payment-methods"))  # another entry: another group
    log(kb_dir / "unanswered.jsonl",
        unanswered("l1", "do you have a store in london"), unanswered("l2", "do you have a store in london"),
        unanswered("l3", "do you have a shop in london?"),
        unanswered("x1", "none of these"),  # the engine's placeholder, not a phrasing
        unanswered("c2", "do you ship to canada?"))  # the same conversation got it resolved by an agent
    groups = groups_json(capsys)
    summary = [(g["entry_id"], g["count"], [p["question"] for p in g["phrasings"]]) for g in groups]
    assert summary == [
        ("international-shipping", 4, ["do you ship to canada?", "do u ship 2 canada", "shipping to canada??"]),
        (None, 3, ["do you have a store in london", "do you have a shop in london?"]),
        ("international-shipping", 1, ["what's your phone number"]),
        ("payment-methods", 1, ["do u ship 2 canada"]),
    ]
    canada = groups[0]
    assert canada["representative"] == "do u ship 2 canada"  # the group's first phrasing
    assert canada["phrasings"][0]["count"] == 2 and canada["kinds"] == ["agent", "clarified"]
    assert len({g["id"] for g in groups}) == 4 and all(len(g["id"]) == 8 for g in groups)
    assert [g["count"] for g in groups_json(capsys, "--min-count", "3")] == [4, 3]

    # ids are stable while the logs grow
    log(kb_dir / "phrasings.jsonl", phrasing("c9", "can you ship to canada", "international-shipping"))
    again = groups_json(capsys)
    assert again[0]["id"] == canada["id"] and again[0]["count"] == 5


def test_the_table_lists_ids_counts_entries_and_phrasings(kb_dir, capsys):
    log(kb_dir / "phrasings.jsonl", phrasing("s1", "[b]where[/b] is it", "track-order"))
    capsys.readouterr()
    assert main(["kb", "review"]) == 0
    out = capsys.readouterr().out
    group = Review(KnowledgeBase(path=kb_dir), load_settings(knowledge={"path": kb_dir})).groups()[0]
    assert group.id in out and "track-order" in out and "Where is my order?" in out
    assert "1x [b]where[/b] is it" in out  # customer text printed as written, never as markup
    assert main(["kb", "review", "--min-count", "2"]) == 0
    assert "nothing to review" in capsys.readouterr().out


def test_no_logs_nothing_to_review(kb_dir, capsys):
    assert groups_json(capsys) == []


# --------------------------------------------------------------------------------------------------------
# exporting


def test_export_writes_faq_jsonl_that_ingest_accepts(kb_dir, tmp_path, capsys):
    log(kb_dir / "phrasings.jsonl", phrasing("s1", WALKABOUT, "track-order"),
        phrasing("s2", "refund how long", "refund-timing"), phrasing("s3", "refunds how long??", "refund-timing"))
    log(kb_dir / "unanswered.jsonl", unanswered("u1", "do you sell gift cards"))
    before = snapshot(kb_dir)
    target = tmp_path / "out" / "variants.jsonl"
    capsys.readouterr()
    assert main(["kb", "review", "--export", str(target)]) == 0
    assert "wrote 2 entries (3 phrasings)" in capsys.readouterr().out
    rows = {r["id"]: r for r in map(json.loads, target.read_text().splitlines())}
    assert set(rows) == {"track-order", "refund-timing"}  # the unanswered group has no entry
    assert rows["track-order"]["questions"] == [*FAQ[0]["questions"], WALKABOUT]
    assert rows["track-order"]["answer"] == FAQ[0]["answer"] and rows["track-order"]["tags"] == FAQ[0]["tags"]
    assert rows["track-order"]["metadata"] == {"owner": "logistics"}
    assert rows["refund-timing"]["questions"] == ["How long do refunds take?", "refund how long",
                                                  "refunds how long??"]
    # exporting neither adds nor marks anything
    assert snapshot(kb_dir) == before and not (kb_dir / "review.json").exists()
    assert len(groups_json(capsys)) == 3

    other = KnowledgeBase(path=tmp_path / "other")
    report = other.ingest(target)
    assert not report.invalid and report.added == 2
    hit = other.search(WALKABOUT)[0]
    assert hit.entry_id == "track-order" and hit.matched == WALKABOUT and hit.metadata["owner"] == "logistics"


def test_export_with_accept_writes_the_accepted_groups(kb_dir, tmp_path, capsys):
    log(kb_dir / "phrasings.jsonl", phrasing("s1", WALKABOUT, "track-order"),
        phrasing("s2", "refund how long", "refund-timing"))
    groups = {g["entry_id"]: g["id"] for g in groups_json(capsys)}
    target = tmp_path / "accepted.jsonl"
    assert main(["kb", "review", "--accept", groups["refund-timing"], "--export", str(target)]) == 0
    assert "wrote 1 entry (1 phrasings)" in capsys.readouterr().out
    [row] = map(json.loads, target.read_text().splitlines())
    assert row["id"] == "refund-timing" and row["questions"] == ["How long do refunds take?", "refund how long"]
    assert KnowledgeBase(path=tmp_path / "again").ingest(target).invalid == []


# --------------------------------------------------------------------------------------------------------
# the loop with a real Bot


def test_phrasings_from_a_handoff_resumed_with_an_entry(kb_dir, tmp_path, capsys):
    from tests.test_engine import ForbiddenGenerator
    from tests.test_escalation import FixedSentiment

    # Bands under which no question is answered, clarified or written from: the first message gets a fallback.
    bands = {"answer_threshold": 1.0, "clarify_threshold": 1.0, "generate_threshold": 1.0}
    settings = load_settings(knowledge={"path": kb_dir}, answer=bands)
    bot = Bot(settings=settings, generator=ForbiddenGenerator(), sentiment=FixedSentiment())
    question = "my parcel still hasn't turned up"
    assert bot.chat(question, "s1").mode == "fallback"
    assert bot.chat("I want to talk to a real person", "s1").mode == "handoff"
    bot.agent_message("s1", "Found it: it is at the depot.")
    assert bot.resume("s1", entry_id="track-order")

    # The unanswered question is kept as a phrasing of the agent's entry; the request for a person is not.
    [group] = groups_json(capsys)
    assert group["entry_id"] == "track-order" and group["kinds"] == ["agent"]
    assert group["representative"] == question and group["count"] == 1
    assert main(["kb", "review", "--accept", group["id"]]) == 0
    kb = KnowledgeBase(path=kb_dir)
    assert question in kb.questions("track-order")
    top = kb.search(question)[0]
    assert top.entry_id == "track-order" and top.matched == question


def test_a_clarification_choice_accepted_is_found_next_time(kb_dir, capsys):
    """The whole loop: a vague question gets "did you mean ...?", the customer picks an entry, the phrasing is
    reviewed and accepted, and the same words then find that entry as a variant. (Bands under which any question
    gets a clarification, whatever the matcher's scores; which entries are offered is not asserted.)"""
    from tests.test_engine import ForbiddenGenerator
    from tests.test_escalation import FixedSentiment

    bands = {"answer_threshold": 1.0, "clarify_threshold": 0.0, "suggestion_min": 0.0, "generate_threshold": 1.0}
    settings = load_settings(knowledge={"path": kb_dir}, answer=bands)
    bot = Bot(settings=settings, generator=ForbiddenGenerator(), sentiment=FixedSentiment())
    asked = "money back?"
    reply = bot.chat(asked, "s1")
    assert reply.mode == "clarify" and reply.suggestions
    chosen = reply.suggestions[0].entry_id
    assert bot.choose("s1", 1).mode == "faq"

    [group] = groups_json(capsys)
    assert group["entry_id"] == chosen and group["kinds"] == ["clarified"] and group["representative"] == asked
    assert asked not in KnowledgeBase(path=kb_dir).questions(chosen)  # nothing added before it is accepted
    assert main(["kb", "review", "--accept", group["id"]]) == 0
    top = KnowledgeBase(path=kb_dir).search(asked)[0]
    assert top.entry_id == chosen and top.matched == asked


def test_damaged_state_file_is_one_line_error(kb_dir, capsys):
    (kb_dir / "review.json").write_text("{not json")
    log(kb_dir / "phrasings.jsonl", phrasing("s1", WALKABOUT, "track-order"))
    assert main(["kb", "review"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "review.json" in err and "\n" not in err

