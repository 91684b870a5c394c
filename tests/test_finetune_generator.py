"""Generator fine-tuning: examples built with the runtime retrieval and prompt, metrics, and the whole loop
(loss goes down, save, load into the bot, answer) on tiny models built from a config: a 2-layer Llama and a
2-layer T5, both with the bundled SmolLM2 tokenizer (seconds; the real SmolLM2 runs are benchmarks)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bot import Bot, load_settings
from bot.conversation.prompting import NO_ANSWER, SYSTEM_PROMPT
from bot.conversation.prompting import citations
from finetune.faq import load_entries
from finetune.generator import (NO_ANSWER_MAX_SIMILARITY, GeneratorOptions, build_examples, cite, encode, key_facts,
                                main, rouge_l, split_entries, train)
from tests.conftest import DEMO


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    from knowledge.settings import default_cache_dir
    from bot.models import materialize

    path = tmp_path_factory.mktemp("tok")
    AutoTokenizer.from_pretrained(materialize("bundled:smollm2", default_cache_dir())).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    path = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_t5(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    path = tmp_path_factory.mktemp("tiny-t5")
    config = T5Config(vocab_size=len(tok), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                      decoder_start_token_id=tok.pad_token_id, pad_token_id=tok.pad_token_id,
                      eos_token_id=tok.eos_token_id)
    T5ForConditionalGeneration(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_rouge_l_and_key_facts():
    assert rouge_l("refunds take 5 business days", "Refunds take 5 business days.") == pytest.approx(1.0)
    assert rouge_l("", "x") == 0.0 and 0 < rouge_l("refunds take long", "refunds take 5 days") < 1
    assert key_facts("Orders over €75 ship free within 2-3 days; 10% off until 18:00.") == \
        ["€75", "2", "3", "10%", "18:00"]


def test_examples_use_the_runtime_prompt_and_retrieval(demo_kb):
    entries = load_entries([DEMO / "faq.jsonl"])[:10]
    options = GeneratorOptions(no_answer_share=0.3, variants_per_entry=2)
    examples = build_examples(entries, demo_kb, options, 3, random.Random(0))
    assert len(examples) == 20
    assert any(e.no_answer for e in examples) and not all(e.no_answer for e in examples)
    for ex in examples:
        assert ex.messages[0] == {"role": "system", "content": SYSTEM_PROMPT}
        assert f"<question>\n{ex.question}\n</question>" in ex.messages[1]["content"]
        entry = next(e for e in entries if e.id == ex.entry_id)
        if ex.no_answer:
            assert ex.target == NO_ANSWER and entry.answer not in ex.passages
            if ex.passages:  # and no near-duplicate of the answer either
                vectors = demo_kb.embedder.embed([entry.answer, *ex.passages])
                assert max(vectors[1:] @ vectors[0]) < NO_ANSWER_MAX_SIMILARITY
        else:
            (n,) = citations(ex.target)
            assert ex.target.replace(f" [{n}]", "", 1) == entry.answer and ex.passages[n - 1] == entry.answer
            assert f"[{n}] {entry.questions[0]}" in ex.messages[1]["content"]
            first_sentence = entry.answer.split(". ")[0]
            assert ex.target.startswith(first_sentence.rstrip(".") + f" [{n}]")  # cited early: survives a cut


def test_cite_puts_the_citation_at_the_end_of_the_first_sentence():
    assert cite("Refunds take 5 days. Contact us.", 2) == "Refunds take 5 days [2]. Contact us."
    assert cite("Refunds take 5 days.", 1) == "Refunds take 5 days [1]."
    assert cite("We ship in 2.5 days! Free.", 3) == "We ship in 2.5 days [3]! Free."
    assert cite("No full stop", 1) == "No full stop [1]"


def test_held_out_entries_are_not_trained_on():
    entries = load_entries([DEMO / "faq.jsonl"])
    train_entries, held_out = split_entries(entries, 0.15, 1)
    assert len(held_out) == 12 and not {e.id for e in train_entries} & {e.id for e in held_out}


def test_causal_labels_mask_the_prompt(demo_kb, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    (ex,) = build_examples(load_entries([DEMO / "faq.jsonl"])[:1], demo_kb,
                           GeneratorOptions(no_answer_share=0.0, variants_per_entry=1), 3, random.Random(0))
    enc = encode(ex, tok, "causal", 2048)
    masked = sum(1 for label in enc["labels"] if label == -100)
    assert 0 < masked < len(enc["labels"]) and enc["labels"][-1] == tok.eos_token_id
    assert tok.decode([t for t in enc["labels"] if t != -100], skip_special_tokens=True).strip() == ex.target
    assert encode(ex, tok, "causal", 50) is None  # too long: dropped, not truncated mid-answer


@pytest.mark.parametrize("architecture", ["causal", "seq2seq"])
def test_whole_loop_loss_goes_down_and_the_bot_answers_with_it(tmp_path, tiny_llama, tiny_t5, architecture):
    entries = load_entries([DEMO / "faq.jsonl"])[:12]
    base = tiny_llama if architecture == "causal" else tiny_t5
    out = tmp_path / "gen"
    options = GeneratorOptions(base=str(base), architecture=architecture, method="full", epochs=4,
                               batch_size=4, gradient_accumulation=1, learning_rate=3e-3, variants_per_entry=2,
                               max_eval=4, save_steps=1000)
    settings = load_settings(knowledge={"path": tmp_path / "kb"}, generator={"max_new_tokens": 8})
    meta = train(entries, out, options, settings=settings)
    assert meta["final_loss"] < meta["first_loss"]
    assert meta["steps"] > 0 and meta["train_tokens_per_s"] > 0
    for key in ("before", "after"):
        assert set(meta[key]) >= {"rouge_l", "key_facts", "grounding_rate", "no_answer_accuracy"}
    assert json.loads((out / "supportbot_generator.json").read_text())["steps"] == meta["steps"]
    assert "Held-out questions" in (out / "README.md").read_text()

    from knowledge import KnowledgeBase

    KnowledgeBase(settings=settings).add(entries)
    bot_settings = load_settings(knowledge={"path": tmp_path / "kb"}, answer={"generate_threshold": 0.0,
                                 "answer_threshold": 1.0, "clarify_threshold": 1.0,  # the generated path only
                                 "unanswered_log": tmp_path / "u.jsonl"},
                                 generator={"model": str(out), "architecture": architecture,
                                            "max_new_tokens": 8, "dtype": "float32"},
                                 escalation={"enabled": False})
    reply = Bot(settings=bot_settings).chat("How long do refunds take?")
    assert reply.mode in ("generated", "fallback")  # a tiny model's words rarely pass the grounding check


def test_lora_and_resume(tmp_path, tiny_llama):
    entries = load_entries([DEMO / "faq.jsonl"])[:8]
    settings = load_settings(knowledge={"path": tmp_path / "kb"}, generator={"max_new_tokens": 4})
    options = GeneratorOptions(base=str(tiny_llama), method="lora", lora_rank=4, epochs=1, batch_size=4,
                               gradient_accumulation=1, save_steps=1, variants_per_entry=2)
    meta = train(entries, tmp_path / "gen", options, settings=settings, evaluate=False)
    assert meta["steps"] > 0 and (tmp_path / "gen" / "config.json").is_file()
    from safetensors import safe_open

    with safe_open(str(tmp_path / "gen" / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora" in k]  # merged: a plain model
    again = train(entries, tmp_path / "gen", GeneratorOptions(**{**options.__dict__, "resume": True, "epochs": 2}),
                  settings=settings, evaluate=False)
    assert again["resumed"] and again["steps"] > meta["steps"]


def test_bad_data_stops_before_training(tmp_path, capsys):
    bad = tmp_path / "faq.csv"
    bad.write_text("id,question,answer\nok,How?,Like this.\nbroken,,No question here.\n")
    assert main(["--data", str(bad), "--output", str(tmp_path / "out")]) == 2
    assert "faq.csv, line 3" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_conversation_logs_add_examples(tmp_path, tiny_llama):
    from finetune.conversations import Exchange

    entries = load_entries([DEMO / "faq.jsonl"])[:8]
    settings = load_settings(knowledge={"path": tmp_path / "kb"}, generator={"max_new_tokens": 4})
    options = GeneratorOptions(base=str(tiny_llama), method="full", epochs=1, batch_size=4,
                               gradient_accumulation=1, save_steps=1000, variants_per_entry=2)
    trained, _ = split_entries(entries, options.eval_share, options.seed)
    logs = [Exchange("yo where's my stuff", "see above", trained[0].id, "log.jsonl:1"),
            Exchange("when do confirmation emails arrive", "Order confirmations are sent within 15 minutes of "
                     "checkout; check your spam folder first.", None, "log.jsonl:2")]
    plain = train(entries, tmp_path / "a", options, settings=settings, evaluate=False)
    meta = train(entries, tmp_path / "b", options, settings=settings, evaluate=False, conversations=logs)
    assert meta["conversations"] == {"exchanges": 2, "matched_by_id": 1, "matched_by_answer": 0, "new_variants": 1,
                                     "unmatched": 1, "unmatched_grounded": 1}
    assert meta["train_examples"] == plain["train_examples"] + 2
