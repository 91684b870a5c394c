"""finetune.matcher: the training groups it builds, and a warm start from the shipped adapter."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from finetune._common import DEFAULT_DATA_DIR
from finetune.intents import load_all
from finetune.matcher import MatcherOptions, _lora_model, build_groups

pytestmark = pytest.mark.skipif(not (DEFAULT_DATA_DIR / "hwu64").is_dir(),
                                reason=f"the shared data sets are not in {DEFAULT_DATA_DIR}")


def _hash_embed(texts: list[str]) -> np.ndarray:
    """Stand-in vectors (a test of how groups are put together, not of an embedder): fixed per text."""
    rows = [np.random.default_rng(int(hashlib.sha1(t.encode()).hexdigest()[:8], 16)).normal(size=16) for t in texts]
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def test_groups_have_one_right_candidate_or_none_and_near_ones_leave_the_own_intent_out():
    sets = load_all(DEFAULT_DATA_DIR, 13)
    options = MatcherOptions(queries_per_set=6, oos_groups=4, near_oos_groups=12, answer_groups=3, casual_share=0.0)
    groups = build_groups(sets, options, _hash_embed, DEFAULT_DATA_DIR)
    kinds = [g.kind for g in groups]
    assert kinds.count("question") == 18 and kinds.count("answer") == 3
    assert kinds.count("oos") <= 16  # cross-set groups whose intent the other set could answer are skipped
    intent_of = {t: (name, i) for name, s in sets.items() for i, ts in s.train.items() for t in ts}
    near = 0
    for g in groups:
        assert len(g.candidates) == len(g.labels) >= 2
        assert sum(g.labels) == (0 if g.kind == "oos" else 1)
        if g.kind == "oos" and g.query in intent_of:
            name, intent = intent_of[g.query]
            if all(intent_of.get(c, ("", ""))[0] == name for c in g.candidates):  # a near group: its own set
                near += 1
                assert all(intent_of[c][1] != intent for c in g.candidates)
    assert near >= 10
    dev = {t for s in sets.values() for ts in list(s.dev.values()) + list(s.calib.values()) for t in ts}
    assert not dev & {g.query for g in groups}  # never a calibration or dev message


@pytest.mark.slow
def test_init_starts_from_the_shipped_adapter():
    import torch

    from knowledge.retrieval.matcher import Matcher

    shipped = Matcher("bundled:matcher", backend="torch").warm_up()  # the trained weights as they are
    pairs = (["my card got eaten by the atm", "the machine kept my card"],
             ["my card got eaten by the atm", "how do I change my PIN?"])
    tokenizer, warm = _lora_model(MatcherOptions(init="bundled:matcher"), None)
    _, fresh = _lora_model(MatcherOptions(), None)
    assert any(p.requires_grad for n, p in warm.named_parameters() if "lora_" in n)
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, return_tensors="pt")
    warm.eval(), fresh.eval()
    with torch.inference_mode():
        got = warm(**enc).logits.squeeze(-1).tolist()
        scratch = fresh(**enc).logits.squeeze(-1).tolist()
    expected = [shipped.score(a, [b])[0] for a, b in pairs]
    assert got == pytest.approx(expected, abs=1e-3)
    assert scratch != pytest.approx(expected, abs=1e-3)
