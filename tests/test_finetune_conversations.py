"""Conversation logs as fine-tuning input: reading both log formats with file:line errors, matching exchanges to
FAQ entries (by id or by the curated answer, with the real bundled embedder), and the generator's grounded
examples from unmatched exchanges (real knowledge base on the demo FAQ)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune._common import TrainingDataError
from finetune.conversations import match_entries, read_conversations, with_variants
from finetune.faq import load_entries
from tests.conftest import DEMO


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def entries():
    return load_entries([DEMO / "faq.jsonl"])


@pytest.fixture(scope="module")
def embed():
    from knowledge.embedder import Embedder

    return Embedder().embed


def test_both_log_formats_become_exchanges(tmp_path):
    log = write_jsonl(tmp_path / "log.jsonl", [
        {"question": "where's my parcel??", "answer": "Follow it under Account > Orders.", "entry_id": "track-order"},
        "",
        {"turns": [{"role": "customer", "text": "hi"}, {"role": "customer", "text": "my parcel is late"},
                   {"role": "agent", "text": "Sorry! It left on Monday."}, {"role": "user", "content": "thanks"},
                   {"role": "assistant", "content": "You're welcome."}, {"role": "customer", "text": "bye"}]},
    ])
    exchanges = read_conversations([log])
    assert [(e.question, e.answer, e.entry_id) for e in exchanges] == [
        ("where's my parcel??", "Follow it under Account > Orders.", "track-order"),
        ("hi my parcel is late", "Sorry! It left on Monday.", None),  # consecutive customer messages joined
        ("thanks", "You're welcome.", None),  # the last message has no reply: not an exchange
    ]
    assert exchanges[1].where == f"{log}:3"


@pytest.mark.parametrize("line, message", [
    ('{"question": "hi"', "log.jsonl:2: not valid JSON"),
    ('["hi", "there"]', "log.jsonl:2: expected an object"),
    ('{"question": "where is it?"}', "log.jsonl:2: answer: empty or missing"),
    ('{"answer": "here"}', "log.jsonl:2: question: empty or missing"),
    ('{"question": "q", "answer": "a", "entry_id": 7}', "log.jsonl:2: entry_id: expected a string"),
    ('{"turns": []}', "log.jsonl:2: turns: expected a non-empty list"),
    ('{"turns": [{"role": "customer", "text": "hi"}, {"role": "robot", "text": "hello"}]}',
     "log.jsonl:2: turns[1].role: 'robot' is neither"),
    ('{"turns": [{"role": "customer", "text": ""}]}', "log.jsonl:2: turns[0].text: empty or missing"),
])
def test_bad_logs_name_the_file_line_and_field(tmp_path, line, message):
    log = write_jsonl(tmp_path / "log.jsonl", [{"question": "fine", "answer": "fine"}, line])
    with pytest.raises(TrainingDataError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_conversations([log])


def test_logs_must_be_jsonl(tmp_path):
    (tmp_path / "log.csv").write_text("question,answer\nq,a\n")
    with pytest.raises(TrainingDataError, match="log.csv: conversation logs are JSONL"):
        read_conversations([tmp_path / "log.csv"])


def test_exchanges_match_entries_by_id_or_by_the_curated_answer(tmp_path, entries, embed):
    track = next(e for e in entries if e.id == "track-order")
    edited = track.answer.replace("As soon as", "Once")  # an agent's light edit of the curated answer
    log = write_jsonl(tmp_path / "log.jsonl", [
        {"question": "parcel not here yet, where is it", "answer": "see tracking", "entry_id": "track-order"},
        {"question": "hey can u tell me where my stuff is", "answer": edited},
        {"question": "Where is my order?", "answer": track.answer},  # already a variant: not added twice
        {"question": "do you sell gift wrapping?", "answer": "Yes, for 3 euros at checkout."},
    ])
    matched = match_entries(read_conversations([log]), entries, embed)
    assert matched.variants == {"track-order": ["parcel not here yet, where is it",
                                                "hey can u tell me where my stuff is"]}
    assert (matched.by_id, matched.by_answer) == (1, 2)
    assert [e.question for e in matched.unmatched] == ["do you sell gift wrapping?"]
    updated = next(e for e in with_variants(entries, matched.variants) if e.id == "track-order")
    assert updated.questions == [*track.questions, *matched.variants["track-order"]]


def test_an_unknown_entry_id_is_an_error_not_a_silent_drop(tmp_path, entries, embed):
    log = write_jsonl(tmp_path / "log.jsonl", [{"question": "q", "answer": "a", "entry_id": "trak-order"}])
    with pytest.raises(TrainingDataError, match=r"log.jsonl:1: entry_id: 'trak-order' is not an entry"):
        match_entries(read_conversations([log]), entries, embed)


def test_unmatched_exchanges_train_the_generator_only_when_grounded(tmp_path, demo_kb, entries):
    from bot.config import load_settings
    from bot.conversation.prompting import citations
    from finetune.generator import logged_examples
    from finetune.conversations import Exchange

    settings = load_settings()
    grounded = Exchange("when do confirmation emails arrive",
                        "Order confirmations are sent within 15 minutes of checkout; check your spam folder first.",
                        None, "log.jsonl:1")
    invented = Exchange("when do confirmation emails arrive",
                        "We post a printed confirmation letter to your home within a week.", None, "log.jsonl:2")
    examples = logged_examples([grounded, invented], demo_kb, 3, settings, demo_kb.embedder.embed)
    assert len(examples) == 1
    ex = examples[0]
    assert ex.entry_id == "order-confirmation-missing" and ex.target.startswith(grounded.answer)
    (n,) = citations(ex.target)
    assert "15 minutes" in ex.passages[n - 1]
    assert not logged_examples([grounded], demo_kb, 3, settings, demo_kb.embedder.embed,
                               exclude={"order-confirmation-missing"})  # held-out entries stay held out


def test_generator_and_embedder_read_logs_before_training(tmp_path, capsys):
    from finetune import embedder, generator

    log = write_jsonl(tmp_path / "log.jsonl", [{"question": "q", "answer": "a"}, {"question": "q2"}])
    for module in (generator, embedder):
        out = tmp_path / module.__name__
        code = module.main(["--data", str(DEMO / "faq.jsonl"), "--conversations", str(log), "--output", str(out)])
        assert code == 2 and "log.jsonl:2: answer: empty or missing" in capsys.readouterr().err
        assert not out.exists()
