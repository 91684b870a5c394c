"""The matcher (a cross-encoder reranking FAQ candidates into calibrated probabilities) and FAQ answers as evidence:
the shipped matcher on a real knowledge base, a replacement cross-encoder from a path, and no matcher at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.engine import Bot
from knowledge import KnowledgeBase
from knowledge.retrieval.calibration import FEATURES, Calibration, feature_rows
from knowledge.retrieval.matcher import Matcher

FAQ = [
    {"id": "shipping-costs", "questions": ["How much is shipping?", "What does delivery cost?"],
     "answer": "Standard shipping is €4.95 in Germany and €6.95 to other EU countries. We also ship to Canada, the "
               "USA and Switzerland for €19.95."},
    {"id": "returns", "questions": ["How do I return an item?", "Can I send something back?"],
     "answer": "You can return unworn items within 30 days. Print the label from your account and drop the parcel "
               "at any post office."},
    {"id": "password", "questions": ["I forgot my password", "How do I reset my password?"],
     "answer": "Click 'Forgot password' on the sign-in page; the reset link is valid for 60 minutes."},
    {"id": "gift-cards", "questions": ["Do you sell gift cards?"],
     "answer": "Yes, digital gift cards from €10 to €500, valid for three years."},
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    kb = KnowledgeBase(path=tmp_path_factory.mktemp("matcher-kb"))
    kb.add(FAQ, source="test")
    return kb


def test_answers_are_searchable_but_a_question_match_wins(kb: KnowledgeBase):
    # nothing in the questions mentions a label or a post office: the answer does
    hits = kb.search("can I print the label and drop it at the post office?")
    assert hits[0].entry_id == "returns" and hits[0].matched_field == "answer"
    assert any(h.entry_id == "shipping-costs" for h in kb.search("do you send parcels to Switzerland?")[:2])
    # an answer sharing words ("password" in a reset answer) does not outrank the question itself
    top = kb.search("How do I reset my password?")[0]
    assert top.entry_id == "password" and top.matched_field == "question"


def test_the_answer_record_follows_the_setting(tmp_path: Path):
    settings = load_settings(knowledge={"path": tmp_path / "kb", "index_answers": False})
    kb = KnowledgeBase(settings=settings)
    kb.add(FAQ, source="test")
    assert kb.stats()["records"] == sum(len(e["questions"]) for e in FAQ)
    assert all(h.matched_field == "question" for h in kb.search("parcels to canada"))


def test_the_shipped_matcher_scores_the_right_entry_highest(kb: KnowledgeBase):
    matcher = Matcher()
    for message, entry in [("my password doesn't work anymore, how do I get a new one", "password"),
                           ("can i send back a jacket i bought", "returns"),
                           ("what's the delivery fee", "shipping-costs")]:
        hits = matcher.run(message, kb.search(message, k=6))
        assert hits[0].entry_id == entry, (message, [(h.entry_id, h.score) for h in hits])
        assert 0.0 <= hits[0].score <= 1.0 and {"retrieval", "matcher"} <= set(hits[0].signals)
    off_topic = matcher.run("what's the capital of France?", kb.search("what's the capital of France?", k=6))
    assert off_topic[0].score < load_settings().answer.clarify_threshold


def test_calibration_reads_back_and_rejects_other_features():
    cal = Calibration((0.5, 2.0, 0.3, 1.0, 0.2), -3.0)
    again = Calibration.from_meta(cal.to_meta(n=10))
    assert again.probabilities([2.0, -1.0], [0.8, 0.5]) == pytest.approx(cal.probabilities([2.0, -1.0], [0.8, 0.5]),
                                                                        abs=1e-5)
    rows = feature_rows([2.0, -1.0], [0.8, 0.5])
    assert rows[0] == pytest.approx([2.0, 0.8, 3.0, 0.3, 1.0]) and rows[1][-1] == 0.0 and len(rows[0]) == len(FEATURES)
    with pytest.raises(ValueError, match="features"):
        Calibration.from_meta({"features": ["other"], "weights": [1.0], "bias": 0.0})
    assert Calibration().probabilities([0.0], [0.3]) == [0.5]  # no calibration: sigmoid of the logit


def tiny_cross_encoder(path: Path) -> Path:
    """A tiny BERT sequence classifier built from a config (random weights: a real one is too big for a test),
    with the bundled MiniLM's tokenizer: stands in for any Hugging Face cross-encoder."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from knowledge.runtime.models import materialize
    from knowledge.settings import default_cache_dir

    tokenizer = AutoTokenizer.from_pretrained(materialize("bundled:minilm", default_cache_dir()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_a_replacement_cross_encoder_loads_from_a_path(kb: KnowledgeBase, tmp_path: Path):
    import math

    path = tiny_cross_encoder(tmp_path / "tiny-ce")
    matcher = Matcher(str(path), candidates=3)
    hits = matcher.run("how much is shipping", kb.search("how much is shipping", k=6))
    faq = [h for h in hits if h.kind == "faq"]
    assert len(faq) == 3  # only the candidates it read
    for h in faq:  # no calibration: the probability is the sigmoid of the model's logit
        assert h.score == pytest.approx(1 / (1 + math.exp(-h.signals["matcher"])), abs=1e-3)
    settings = load_settings(knowledge={"path": kb.settings.knowledge.path, "matcher": str(path)},
                             answer={"unanswered_log": tmp_path / "u.jsonl"}, sentiment={"enabled": False},
                             escalation={"enabled": False})
    reply = Bot(settings=settings).chat("how much is shipping")
    assert reply.mode in ("faq", "clarify", "fallback")


def test_no_matcher_keeps_the_retrieval_scores(kb: KnowledgeBase, tmp_path: Path):
    settings = load_settings(knowledge={"path": kb.settings.knowledge.path, "matcher": "none"},
                             answer={"unanswered_log": tmp_path / "u.jsonl"}, sentiment={"enabled": False})
    bot = Bot(settings=settings)
    assert bot.matcher is None
    hits = bot.retrieve("How do I reset my password?")
    assert hits[0].entry_id == "password" and not hits[0].signals
    assert hits[0].score == pytest.approx(kb.search("How do I reset my password?")[0].score)
