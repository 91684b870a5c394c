"""Embedder fine-tuning: data loading and errors, training rows, batches without two texts of one entry, and the
whole loop (train, save, evaluate through a real knowledge base, reindex a knowledge base with it) on a tiny
2-layer BERT sentence-transformer built from a config (seconds; the real MiniLM run is bench/finetune_embedder.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune._common import TrainingDataError
from finetune.embedder import EmbedderOptions, EntryBatches, main, split_variants, train, training_rows
from finetune.faq import load_entries
from knowledge.schema import FAQEntry
from tests.conftest import DEMO

ENTRIES = [
    FAQEntry(id="refunds", questions=["how long do refunds take", "when do i get my money back",
                                      "refund timing", "how many days for a refund"], answer="5 days."),
    FAQEntry(id="shipping", questions=["how much is shipping", "delivery cost", "shipping fees",
                                       "what does postage cost"], answer="4.95."),
    FAQEntry(id="password", questions=["i forgot my password", "reset password", "cannot log in",
                                       "change my password"], answer="Use the link."),
]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 64-wide BERT with mean pooling, with the bundled MiniLM's tokenizer."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from knowledge.settings import default_cache_dir
    from bot.models import materialize

    path = tmp_path_factory.mktemp("tiny-embedder")
    tokenizer = AutoTokenizer.from_pretrained(materialize("bundled:minilm", default_cache_dir()))
    body = path / "body"
    import torch

    torch.manual_seed(0)  # the assertions on learning must not depend on a lucky initialisation
    BertModel(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=128)).save_pretrained(body)
    tokenizer.save_pretrained(body)
    word = models.Transformer(str(body), max_seq_length=64)
    model = SentenceTransformer(modules=[word, models.Pooling(word.get_embedding_dimension(), "mean")],
                                device="cpu")
    model.save(str(path / "model"))
    return path / "model"


def test_split_keeps_a_variant_of_every_entry_in_training():
    train_entries, dev = split_variants(ENTRIES, 0.25, seed=1)
    assert all(len(e.questions) == 3 for e in train_entries) and len(dev) == 3
    for (query, entry_id) in dev:
        entry = next(e for e in ENTRIES if e.id == entry_id)
        assert query in entry.questions
        assert query not in next(e for e in train_entries if e.id == entry_id).questions


def test_rows_pair_variants_of_one_entry_with_the_closest_other_entry(tiny_model):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_model), device="cpu")
    by_text = {q: e.id for e in ENTRIES for q in e.questions}
    pairs, owners, negatives = training_rows(ENTRIES, model, 0, hard_negatives=False)
    assert len(pairs) == 12 and negatives is None  # in-batch negatives only
    assert all(by_text[a] == by_text[p] == o and a != p for (a, p), o in zip(pairs, owners))
    rows, owners, negatives = training_rows(ENTRIES, model, 0, hard_negatives=True)
    for (anchor, positive, negative), owner, negative_owner in zip(rows, owners, negatives):
        assert by_text[anchor] == by_text[positive] == owner and anchor != positive
        assert by_text[negative] == negative_owner != owner


def test_batches_are_full_and_never_hold_two_texts_of_one_entry():
    owners = ["a"] * 10 + ["b"] * 5 + ["c"] * 3 + ["d"]
    sampler = EntryBatches(owners, batch_size=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 7  # ceil(19 / 3), and no shrinking tail of tiny batches
    assert all(len(b) == 3 and len({owners[i] for i in b}) == 3 for b in batches)
    assert list(EntryBatches(owners, 3, seed=0)) == batches  # deterministic
    assert list(EntryBatches(owners, 3, seed=0)) != list(sampler)  # the next epoch is another shuffle
    assert EntryBatches(owners, 64, seed=0).batch_size == 4  # at most one text per entry


def test_with_hard_negatives_the_negatives_entries_are_not_in_the_batch_either():
    owners = ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e", "f", "f"]
    negatives = ["b", "c", "a", "c", "d", "a", "e", "f", "a", "b", "e", "d"]
    sampler = EntryBatches(owners, 8, seed=1, negative_entries=negatives)
    assert sampler.batch_size == 3
    for batch in sampler:
        texts_entries = [owners[i] for i in batch] + [negatives[i] for i in batch]
        assert len(set(texts_entries)) == len(texts_entries)
    stuck = EntryBatches(["a", "b", "c", "d"], 2, seed=0, negative_entries=["z"] * 4)
    assert [len(b) for b in stuck] == [1, 1]  # cannot fill: smaller batches, but it ends


def test_bad_faq_data_stops_before_training(tmp_path):
    bad = tmp_path / "faq.csv"
    bad.write_text("id,question,answer\nok,How?,Like this.\nbroken,,No question here.\n")
    with pytest.raises(TrainingDataError, match=r"faq\.csv, line 3"):
        load_entries([bad])
    assert main(["--data", str(bad), "--output", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


def test_supportbot_finetune_mounts_the_task_command_with_the_options_of_its_dataclass(capsys):
    """One CLI stack: ``supportbot finetune embedder`` is the command of ``python -m finetune.embedder``, and its
    training flags are the fields of ``EmbedderOptions``."""
    import dataclasses

    import typer.main

    from bot.cli.app import app as supportbot
    from finetune import embedder

    def flags(command):
        return {p.name: p.default for p in command.params if p.name != "help"}

    own = flags(typer.main.get_command(embedder.app))
    mounted = flags(typer.main.get_command(supportbot).commands["finetune"].commands["embedder"])
    assert own == mounted
    assert {f.name: f.default for f in dataclasses.fields(EmbedderOptions)}.items() <= own.items()
    assert {"data", "output", "conversations", "question_column"} <= set(own)
    assert main(["--help"]) == 0 and "--hard-negatives" in capsys.readouterr().out


def test_single_variant_entries_give_a_clear_error(tmp_path, tiny_model):
    single = [FAQEntry(id="a", questions=["one"], answer="x"), FAQEntry(id="b", questions=["two"], answer="y")]
    with pytest.raises(TrainingDataError, match="two or more question variants"):
        train(single, tmp_path / "out", EmbedderOptions(base=str(tiny_model)), dev=[], evaluate_before=False)


def test_whole_loop_trains_saves_evaluates_and_reindexes_a_knowledge_base(tmp_path, tiny_model):
    entries = load_entries([DEMO / "faq.jsonl"])
    out = tmp_path / "embedder"
    meta = train(entries, out, EmbedderOptions(base=str(tiny_model), batch_size=16, epochs=2,
                                               learning_rate=1e-3))
    assert meta["train_examples"] > 100 and meta["dev_queries"] == 79
    for key in ("before", "after"):
        assert 0.0 <= meta[key]["top1"] <= meta[key]["recall_at_3"] <= 1.0
        assert 0.0 <= meta[key]["dense_top1"] <= meta[key]["dense_recall_at_3"] <= 1.0  # the model alone
    # A random tiny model (seeded) learns: measured on the model alone, since in the hybrid search BM25 over the
    # indexed answers (knowledge.index_answers) decides most top-1 hits whatever a random model embeds.
    assert meta["after"]["dense_top1"] > meta["before"]["dense_top1"]
    assert meta["after"]["dense_recall_at_3"] > meta["before"]["dense_recall_at_3"]
    card = (out / "README.md").read_text()
    assert "top-1" in card and "dense top-1" in card and "kb reindex --embedding-model" in card
    assert json.loads((out / "supportbot_embedder.json").read_text())["after"] == meta["after"]

    from bot.cli import main as cli_main
    from knowledge import KnowledgeBase

    kb_path = tmp_path / "kb"
    KnowledgeBase(path=kb_path).ingest(DEMO / "faq.jsonl")
    import os

    os.environ["SUPPORTBOT_KNOWLEDGE__PATH"] = str(kb_path)
    try:
        assert cli_main(["kb", "reindex", "--embedding-model", str(out)]) == 0
    finally:
        del os.environ["SUPPORTBOT_KNOWLEDGE__PATH"]
    from bot.config import load_settings

    kb = KnowledgeBase(settings=load_settings(knowledge={"path": kb_path, "embedding_model": str(out)}))
    assert kb.search("how long do refunds take?")


def test_logged_questions_become_training_variants(tmp_path, tiny_model):
    from finetune.conversations import Exchange

    logs = [Exchange("money back when??", "5 days.", "refunds", "log.jsonl:1"),
            Exchange("postage price pls", "It costs 4.95.", None, "log.jsonl:2")]
    dev = [("how long for my refund", "refunds")]
    meta = train(ENTRIES, tmp_path / "emb", EmbedderOptions(base=str(tiny_model), batch_size=3),
                 dev=dev, conversations=logs, evaluate_before=False)
    assert meta["conversations"]["matched_by_id"] == 1 and meta["conversations"]["new_variants"] >= 1
    assert meta["train_variants"] == sum(len(e.questions) for e in ENTRIES) + meta["conversations"]["new_variants"]
