"""Sentiment: the shipped classifier (loaded from its adapter on the bundled MiniLM), other models by config,
the VADER baseline, the training script on a small CSV, and the sentiment on the bot's replies.

Models other than the shipped one are tiny BERTs built from a config (no pretrained sequence classifier can be
downloaded here); they test label handling, not quality.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.escalation.sentiment import SentimentClassifier, label_mapping
from bot.escalation.sentiment_model import SHIPPED_DIR


@pytest.fixture(scope="module")
def shipped() -> SentimentClassifier:
    return SentimentClassifier.default().warm_up()


def test_shipped_artifact_is_small_and_has_a_model_card():
    size = sum(p.stat().st_size for p in SHIPPED_DIR.iterdir())
    assert size < 3 * 1024 * 1024
    meta = json.loads((SHIPPED_DIR / "sentiment.json").read_text())
    assert meta["body"] == "bundled:minilm" and meta["labels"] == ["negative", "neutral", "positive"]
    assert meta["metrics"]["reviews"]["negative_recall"] >= 0.85
    assert meta["metrics"]["tweeteval_sentiment"]["macro_recall"] >= 0.60
    card = (SHIPPED_DIR / "README.md").read_text()
    for needed in ("## Data", "## Command", "python -m finetune.sentiment", "## Metrics", "negative_recall"):
        assert needed in card
    adapter = json.loads((SHIPPED_DIR / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "bundled:minilm"


def test_default_loads_the_shipped_model_merged_into_a_plain_transformers_model(shipped):
    from transformers import PreTrainedModel

    from bot.models import load_sentiment_model

    from knowledge.runtime.inference import path_of

    model, _ = load_sentiment_model("bundled:sentiment", shipped.cache_dir, backend="torch")
    assert isinstance(model, PreTrainedModel) and not model.training
    names = [n for n, _ in model.named_modules()]
    assert not any("lora" in n for n in names)  # merged at load time: no adapter overhead per message
    # by default it runs exported (docs/inference.md): the merged model is what was exported
    default, _ = load_sentiment_model("bundled:sentiment", shipped.cache_dir)
    assert path_of(default) in ("onnx", "onnx-int8")


def test_shipped_model_reads_customer_messages(shipped):
    texts = ["This is terrible, I want my money back!", "Thanks, that was really helpful!",
             "How long do refunds take?", "I am furious, your service is an absolute joke!"]
    neg, pos, neutral, angry = shipped.predict(texts)
    assert neg.label == "negative" and pos.label == "positive" and neutral.label == "neutral"
    assert angry.label == "negative" and angry.anger > 0.9
    assert neutral.anger < 0.1 and pos.anger < 0.1
    for s in (neg, pos, neutral, angry):
        assert set(s.scores) == {"negative", "neutral", "positive"}
        assert sum(s.scores.values()) == pytest.approx(1.0, abs=1e-3)
        assert s.score == s.scores[s.label] == max(s.scores.values())


def test_batched_predictions_equal_one_at_a_time(shipped):
    texts = ["Where is my order?", "You are useless.", "Great service, thank you", "ok"]
    batched = shipped.predict(texts)
    single = [shipped.predict_one(t) for t in texts]
    assert [b.label for b in batched] == [s.label for s in single]
    for b, s in zip(batched, single):
        assert b.scores["negative"] == pytest.approx(s.scores["negative"], abs=1e-3)


def test_empty_text_gets_a_prediction(shipped):
    assert shipped.predict_one("   ").label in {"negative", "neutral", "positive"}


def _tiny_classifier(path: Path, labels: list[str]) -> Path:
    """A 2-layer BERT sequence classifier built from a config, with the bundled MiniLM's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from knowledge.settings import default_cache_dir
    from bot.models import materialize

    body = materialize("bundled:minilm", default_cache_dir())
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(body).save_pretrained(path)
    return path


@pytest.mark.parametrize("labels, expected", [
    (["NEGATIVE", "POSITIVE"], {"negative", "positive"}),
    (["LABEL_0", "LABEL_1", "LABEL_2"], {"negative", "neutral", "positive"}),
    (["1 star", "2 stars", "3 stars", "4 stars", "5 stars"], {"negative", "neutral", "positive"}),
    (["negative", "neutral", "positive", "anger"], {"negative", "neutral", "positive"}),
])
def test_any_sequence_classification_model_can_replace_it(tmp_path, labels, expected):
    clf = SentimentClassifier(str(_tiny_classifier(tmp_path / "m", labels)))
    (s,) = clf.predict(["hello there"])
    assert {k for k, v in s.scores.items() if v > 0} == expected
    assert sum(s.scores.values()) == pytest.approx(1.0, abs=1e-3)
    if "anger" in labels:
        assert 0.0 < s.anger < 1.0


def test_labels_that_say_nothing_about_sentiment_are_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="name no sentiment"):
        label_mapping({0: "sports", 1: "politics"})


def test_a_missing_model_directory_is_a_clear_error(tmp_path):
    from bot.errors import ModelNotAvailableError

    with pytest.raises(ModelNotAvailableError, match="no such directory"):
        SentimentClassifier(str(tmp_path / "nope")).warm_up()


def test_vader_baseline_backend():
    pytest.importorskip("vaderSentiment")
    clf = SentimentClassifier("vader")
    bad, good, plain = clf.predict(["This is terrible and I hate it", "I love it, great!", "The box is blue"])
    assert (bad.label, good.label, plain.label) == ("negative", "positive", "neutral")


def test_bot_replies_carry_the_customer_messages_sentiment(demo_kb_path, tmp_path, shipped):
    from bot import Bot, load_settings
    from tests.test_engine import ForbiddenGenerator

    settings = load_settings(knowledge={"path": demo_kb_path}, answer={"unanswered_log": tmp_path / "u.jsonl"})
    bot = Bot(settings=settings, generator=ForbiddenGenerator(), sentiment=shipped)
    reply = bot.chat("How long do refunds take?", "s")
    assert reply.mode == "faq" and reply.sentiment is not None and reply.sentiment.label == "neutral"
    assert bot.sessions.get("s").turns[0].data["sentiment"]["label"] == "neutral"
    off = Bot(settings=load_settings(knowledge={"path": demo_kb_path}, sentiment={"enabled": False}),
              generator=ForbiddenGenerator())
    assert off.sentiment is None and off.chat("How long do refunds take?", "t").sentiment is None


# --------------------------------------------------------------------------------------------------------
# the training script


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_training_csv_errors_name_file_line_and_field(tmp_path):
    from finetune.sentiment import TrainingDataError, read_csv

    with pytest.raises(TrainingDataError, match=r"a\.csv:1: header: missing column 'label'"):
        read_csv(_write_csv(tmp_path / "a.csv", ["text,score", "hi,1"]))
    with pytest.raises(TrainingDataError, match=r"b\.csv:3: label: expected negative/neutral/positive"):
        read_csv(_write_csv(tmp_path / "b.csv", ["text,label", "good,positive", "meh,so-so"]))
    with pytest.raises(TrainingDataError, match=r"c\.csv:2: text: empty"):
        read_csv(_write_csv(tmp_path / "c.csv", ["text,label", ",negative"]))
    with pytest.raises(TrainingDataError, match=r"d\.csv:2: anger: expected 0 or 1"):
        read_csv(_write_csv(tmp_path / "d.csv", ["text,label,anger", "grr,negative,maybe"]))
    binary = read_csv(_write_csv(tmp_path / "e.csv", ["text,label", "bad,0", "good,1"]))
    assert [e.sentiment for e in binary] == [0, 2]


def test_training_from_a_csv_gives_a_directory_the_bot_can_use(tmp_path):
    """The whole loop on a small CSV (1 epoch, rank 2, on the real MiniLM body: ~10 s)."""
    from finetune.sentiment import main

    rows = ["text,label,anger"]
    for i in range(12):
        rows += [f'"I hate this, it is awful {i}",negative,1', f'"I love it, wonderful {i}",positive,0',
                 f"What are your opening hours {i},neutral,0"]
    data = _write_csv(tmp_path / "train.csv", rows)
    out = tmp_path / "model"
    assert main(["--data", str(data), "--dev", str(data), "--output", str(out), "--epochs", "1",
                 "--lora-rank", "2", "--batch-size", "8"]) == 0
    meta = json.loads((out / "sentiment.json").read_text())
    assert meta["train_examples"] == 36 and "train" in meta["metrics"]
    assert "python -m finetune.sentiment --data" in (out / "README.md").read_text()
    (s,) = SentimentClassifier(str(out)).predict(["I hate this"])
    assert set(s.scores) == {"negative", "neutral", "positive"}


def test_training_with_bad_data_fails_before_training(tmp_path, capsys):
    from finetune.sentiment import main

    bad = _write_csv(tmp_path / "bad.csv", ["text,label", "fine,positive", "odd,7"])
    assert main(["--data", str(bad), "--output", str(tmp_path / "out")]) == 2
    assert "bad.csv:3: label" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
