"""The encoder inference layer (knowledge/runtime/inference.py): the path chosen for the CPU, the export and its check,
the fallbacks, and the same decisions from the torch path and the optimised path with the shipped models.

The export mechanics are tested on a tiny BERT built from a config (exporting a real MiniLM takes seconds, and the
shipped models' exports are exercised by the other tests through the default cache); the decisions are compared
with the real shipped models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from knowledge.runtime import cpu, inference
from knowledge.runtime.inference import Check, candidates, optimise_model, path_of


def tiny_pair_model():
    # Tiny and random, built from a config: what matters is that the exported graph computes what torch computes.
    from transformers import BertConfig, BertTokenizerFast

    from knowledge.retrieval.pair_model import PooledPairModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = PooledPairModel(config).eval()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [chr(c) for c in range(ord("a"), ord("z") + 1)] + \
        [f"##{chr(c)}" for c in range(ord("a"), ord("z") + 1)] + list("0123456789?!.,'-:") + ["the", "my", "is"]
    return model, vocab


@pytest.fixture()
def tiny(tmp_path: Path):
    from transformers import BertTokenizerFast

    model, vocab = tiny_pair_model()
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return model, BertTokenizerFast(str(tmp_path / "vocab.txt"))


def encode(tokenizer, a, b):
    return tokenizer(a, b, padding=True, truncation=True, max_length=48, return_tensors="pt")


def test_the_paths_tried_follow_the_setting_and_the_cpu(monkeypatch: pytest.MonkeyPatch):
    assert candidates("torch") == ["torch"]
    assert candidates("onnx") == ["onnx", "torch"]
    assert candidates("onnx-int8") == ["onnx-int8", "onnx", "torch"]
    assert candidates("onnx-int8", no_int8=True) == ["onnx", "torch"]  # a safety classifier
    assert candidates("auto") == ["onnx", "torch"]  # int8 only by name: it moved decisions (docs/inference.md)
    monkeypatch.setattr(inference, "onnx_runtime_available", lambda: False)
    assert candidates("auto") == ["torch"]
    with pytest.raises(ValueError, match="unknown inference backend 'gpu'"):
        candidates("gpu")


def test_cpu_features_are_read_and_summarised():
    features = cpu.cpu_features()
    assert features.cores >= 1 and features.model
    assert "cores" in features.summary()


def test_the_export_computes_what_torch_computes_and_is_built_once(tiny, tmp_path: Path):
    model, tokenizer = tiny
    enc = encode(tokenizer, ["my parcel is late", "hi"], ["the order is late", "what is it?"])
    with torch.inference_mode():
        expected = model(**enc).logits
    fast = optimise_model(model, tokenizer, name="tiny", source="tiny-v1", cache_dir=tmp_path, backend="onnx",
                          pairs=True, max_length=48)
    assert path_of(fast) == "onnx" and path_of(model) == "torch"
    got = fast(**enc).logits
    assert torch.allclose(got, expected, atol=1e-4)
    # without token_type_ids (a tokenizer that gives none), zeros are fed, as BERT assumes
    no_types = {k: v for k, v in enc.items() if k != "token_type_ids"}
    with torch.inference_mode():
        assert torch.allclose(fast(**no_types).logits, model(**no_types).logits, atol=1e-4)
    [export] = (tmp_path / "models" / "onnx").glob("tiny-*")
    report = json.loads((export / "check.json").read_text())
    assert report["onnx"]["passed"] and report["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert (export / ".supportbot-complete").is_file()
    built = (export / "model.onnx").stat().st_mtime_ns
    again = optimise_model(model, tokenizer, name="tiny", source="tiny-v1", cache_dir=tmp_path, backend="onnx",
                           pairs=True, max_length=48)
    assert path_of(again) == "onnx" and (export / "model.onnx").stat().st_mtime_ns == built
    # new weights (another source identity): a new export beside the old one
    optimise_model(model, tokenizer, name="tiny", source="tiny-v2", cache_dir=tmp_path, backend="onnx", pairs=True)
    assert len(list((tmp_path / "models" / "onnx").glob("tiny-*"))) == 2
    assert not model.training  # the export left the model in the mode it found it in


def test_int8_is_built_only_when_asked_for_and_its_check_is_reported(tiny, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture):
    model, tokenizer = tiny
    monkeypatch.setattr(inference, "cpu_features",
                        lambda: cpu.CpuFeatures("test", 2, avx2=True, avx512=True, vnni=True, bf16=False))
    strict = Check(probability_abs_max=1e-4)  # fp32 stays within it; int8 cannot

    def run(backend: str):
        return inference.optimise(model, name="tiny", source="strict", cache_dir=tmp_path, backend=backend,
                                  tokenize=lambda a, b=None: encode(tokenizer, list(a), list(b) if b else None),
                                  pairs=True, check=strict)

    assert path_of(run("auto")) == "onnx"
    assert [p.name.endswith("-int8") for p in (tmp_path / "models" / "onnx").glob("tiny-*")] == [False]
    assert inference.expected_path("tiny", "auto", tmp_path) == "onnx"
    forced = run("onnx-int8")  # asked for by name: used, with a warning that it drifted
    applied = inference.APPLIED["tiny"]
    assert path_of(forced) == "onnx-int8" and applied.directory.endswith("-int8")
    assert applied.check["onnx"]["passed"] and not applied.check["onnx-int8"]["passed"]
    assert "drifted" in applied.reason and "drifted past the export check" in caplog.text
    enc = encode(tokenizer, ["my parcel is late"], ["the order is late"])
    with torch.inference_mode():
        assert torch.allclose(forced(**enc).logits, model(**enc).logits, atol=0.5)  # close, not equal


def test_a_failed_export_leaves_the_torch_model_working(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    model, tokenizer = tiny

    def broken(*args, **kwargs):
        raise RuntimeError("exporter exploded")

    monkeypatch.setattr(torch.onnx, "export", broken)
    same = optimise_model(model, tokenizer, name="tiny", source="broken", cache_dir=tmp_path, backend="auto",
                          pairs=True)
    assert same is model and inference.APPLIED["tiny"].backend == "torch"
    assert "exporter exploded" in inference.APPLIED["tiny"].reason
    assert not list((tmp_path / "models" / "onnx").glob("tiny-*"))  # nothing half-written is left to be read


def test_torch_asked_for_builds_nothing(tiny, tmp_path: Path):
    model, tokenizer = tiny
    assert optimise_model(model, tokenizer, name="tiny", source="x", cache_dir=tmp_path, backend="torch") is model
    assert not (tmp_path / "models").exists()


@pytest.mark.slow
def test_the_shipped_embedder_on_the_optimised_path_matches_torch():
    import numpy as np

    from knowledge.embedder import Embedder

    texts = ["where is my parcel", "I want my money back", "do you ship to Canada?", "reset my password pls"]
    reference = Embedder("bundled:embedder", dtype="float32", backend="torch").embed(texts)
    for backend in ("auto", "onnx-int8"):
        e = Embedder("bundled:embedder", backend=backend)
        vectors = e.embed(texts)
        assert e.path == ("onnx" if backend == "auto" else "onnx-int8") and vectors.dtype == np.float32
        cos = (vectors * reference).sum(axis=1)
        assert cos.min() > (0.9999 if backend == "auto" else 0.98), (backend, cos)  # int8: close, not equal
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


QUESTIONS = ["hey, my package never showed up, what can I do?", "how much is shipping to austria",
             "I forgot my password", "can i pay with paypal?", "what's the weather in Paris tomorrow?",
             "Do you sell gift cards?", "this is ridiculous, I was charged twice!!", "money back?"]


@pytest.mark.slow
def test_the_torch_path_and_the_optimised_path_decide_alike(demo_kb_path: Path):
    """Issue 24, point 5: a forced fp32 path and the optimised path give the same decisions on a small set (the
    demo knowledge base, the shipped embedder, matcher and sentiment model)."""
    from bot.config import load_settings
    from bot.conversation.decision import Bands, decide
    from bot.engine import Bot
    from bot.escalation.sentiment import SentimentClassifier

    decisions = {}
    for backend, dtype in (("torch", "float32"), ("auto", "auto")):
        settings = load_settings(knowledge={"path": demo_kb_path, "inference": backend, "embedding_dtype": dtype},
                                 sentiment={"dtype": dtype}, sessions={"backend": "memory"})
        bot = Bot(settings=settings)
        sentiment = SentimentClassifier.from_settings(settings)
        rows = []
        for q in QUESTIONS:
            plan = decide(bot.retrieve(q), Bands.from_settings(settings))
            rows.append((plan.action, plan.top.entry_id if plan.top else None,
                         [h.entry_id for h in plan.suggestions], sentiment.predict_one(q).label))
        decisions[backend] = rows
        assert (bot.knowledge.embedder.path == "torch") == (backend == "torch")
    assert decisions["torch"] == decisions["auto"]
    assert {a for a, *_ in decisions["auto"]} >= {"faq", "clarify"}  # the set exercises more than one band


def test_the_safety_classifiers_never_take_int8(tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An instruction flag or a grounding verdict must not move with quantisation: they stay in fp32 (ONNX computes
    what torch computes) even when int8 is asked for and would pass its check."""
    model, tokenizer = tiny
    monkeypatch.setattr(inference, "cpu_features",
                        lambda: cpu.CpuFeatures("test", 2, avx2=True, avx512=True, vnni=True, bf16=False))
    loose = Check(probability_abs_max=1.0, pooled_cosine_min=-1.0)  # int8 would pass
    kept = inference.optimise(model, name="tiny", source="safety", cache_dir=tmp_path, backend="onnx-int8",
                              tokenize=lambda a, b=None: encode(tokenizer, list(a), list(b) if b else None),
                              pairs=True, check=loose, no_int8="a safety check")
    assert path_of(kept) == "onnx" and "safety" in inference.APPLIED["tiny"].reason
    assert inference.expected_path("tiny", "onnx-int8", tmp_path, no_int8=True) == "onnx"
    assert not list((tmp_path / "models" / "onnx").glob("tiny-*-int8"))


@pytest.mark.slow
def test_the_shipped_instruction_classifier_runs_in_fp32():
    from knowledge.safety.injection import InstructionDetector

    detector = InstructionDetector(backend="auto").warm_up()
    assert path_of(detector._model.model) == "onnx"
    same = InstructionDetector(backend="torch").warm_up()
    sentence = ["Puede cambiar la dirección de entrega hasta que el pedido salga del almacén."]
    assert detector.probabilities(sentence) == pytest.approx(same.probabilities(sentence), abs=1e-4)


def test_a_damaged_export_in_the_cache_leaves_the_torch_model_working(tiny, tmp_path: Path):
    model, tokenizer = tiny
    first = optimise_model(model, tokenizer, name="tiny", source="damaged", cache_dir=tmp_path, backend="onnx",
                           pairs=True, max_length=48)
    assert path_of(first) == "onnx"
    [export] = (tmp_path / "models" / "onnx").glob("tiny-*")
    (export / "model.onnx").write_bytes(b"not an onnx graph")  # a disk error, a half-copied cache
    again = optimise_model(model, tokenizer, name="tiny", source="damaged", cache_dir=tmp_path, backend="onnx",
                           pairs=True, max_length=48)
    assert again is model and "could not load" in inference.APPLIED["tiny"].reason
