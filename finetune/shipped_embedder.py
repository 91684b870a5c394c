"""Train the shipped default embedder: a LoRA adapter that tunes the bundled MiniLM to support requests.

    python -m finetune.shipped_embedder --output knowledge/data/embedder

``bundled:embedder`` (the default ``knowledge.embedding_model``) is the bundled all-MiniLM-L6-v2 with this
adapter merged in (``knowledge.runtime.models``); ``bundled:minilm`` stays available as it was.

Training data: the train parts of BANKING77, HWU64 and Bitext (``finetune.intents``; the calibration and dev parts
are never trained on), one entry per intent. Every text of an intent is an anchor, another text of the same intent
its positive (``finetune.embedder.training_rows``); MultipleNegativesRankingLoss takes the other rows of the batch
as negatives, and a batch never holds two rows of one intent (``finetune.embedder.EntryBatches``). Intents of
different sets that are one request (a refund in BANKING77 and in Bitext, ``finetune.intents.OVERLAPS``) can still
meet in a batch as each other's negatives: a known impurity (a few dozen of 168 intents). Only the LoRA factors
are trained and shipped (a few MB).

Measured before and after on the calibration parts (dense retrieval, knowledge bases of 3 phrasings per intent
sampled from the train part): top-1 and recall@3 of the right intent.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any

import typer

from finetune import cli
from finetune import model_card as cards
from finetune._common import DEFAULT_DATA_DIR
from finetune.intents import DATASETS, IntentSet, load_all

EMBEDDER_FILE = "embedder.json"


@dataclasses.dataclass
class ShippedEmbedderOptions:
    body: str = "bundled:minilm"
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = dataclasses.field(default=2e-4, metadata={"help": "LoRA learning rate"})
    warmup_ratio: float = 0.1
    lora_rank: int = 16
    seed: int = 13


def intent_entries(sets: dict[str, IntentSet]) -> list[Any]:
    """One FAQ entry per intent (id ``set.intent``) whose questions are all its train texts."""
    from knowledge.schema import FAQEntry

    return [FAQEntry(id=f"{name}.{intent}", questions=texts, answer="-")
            for name in DATASETS for intent, texts in sorted(sets[name].train.items()) if len(texts) > 1]


def evaluate(model: Any, sets: dict[str, IntentSet], part: str = "calib", shape: int = 3, seed: int = 13,
             n: int = 600) -> dict[str, dict[str, float]]:
    """Dense top-1 / recall@3 of the right intent per set: knowledge bases of ``shape`` train phrasings per intent
    (sampled as ``bench/matcher.py`` does), queried with ``n`` texts of ``part``."""
    import numpy as np

    out = {}
    for name in DATASETS:
        rng = random.Random(f"{name}-{shape}-{seed}")
        entries = [(intent, rng.sample(texts, min(shape, len(texts))))
                   for intent, texts in sorted(sets[name].train.items())]
        phrasings = [q for _, qs in entries for q in qs]
        owner = [intent for intent, qs in entries for _ in qs]
        queries = sets[name].pairs(part)
        queries = random.Random(1).sample(queries, min(n, len(queries)))
        pv = model.encode(phrasings, normalize_embeddings=True, batch_size=128)
        qv = model.encode([t for t, _ in queries], normalize_embeddings=True, batch_size=128)
        top1 = top3 = 0
        for row, (_, gold) in zip(qv @ pv.T, queries):
            ranked: list[str] = []
            for j in np.argsort(-row):
                if owner[j] not in ranked:
                    ranked.append(owner[j])
                if len(ranked) == 3:
                    break
            top1 += ranked[0] == gold
            top3 += gold in ranked
        out[name] = {"top1": round(top1 / len(queries), 4), "recall_at_3": round(top3 / len(queries), 4),
                     "queries": len(queries)}
    return out


def train(sets: dict[str, IntentSet], output: Path, options: ShippedEmbedderOptions, command: str = "",
          cache_dir: Path | None = None) -> dict[str, Any]:
    """Train the adapter, save it with ``embedder.json`` and the model card to ``output``; return the metadata."""
    import torch
    from peft import LoraConfig, get_peft_model
    from sentence_transformers import SentenceTransformer

    from finetune.embedder import EmbedderOptions, _trainer, training_rows
    from knowledge.runtime.models import materialize, transformer_attribute
    from knowledge.settings import default_cache_dir

    torch.manual_seed(options.seed)
    body = materialize(options.body, cache_dir or default_cache_dir())
    model = SentenceTransformer(body, device="cpu")
    module = model[0]
    attr = transformer_attribute(module)
    lora = LoraConfig(r=options.lora_rank, lora_alpha=2 * options.lora_rank, lora_dropout=0.05,
                      target_modules=["query", "key", "value", "dense"])
    setattr(module, attr, get_peft_model(getattr(module, attr), lora))
    rows, keys, _ = training_rows(intent_entries(sets), model, options.seed, hard_negatives=False)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    trainer = _trainer(model, rows, keys, None, EmbedderOptions(
        base=options.body, epochs=options.epochs, batch_size=options.batch_size,
        learning_rate=options.learning_rate, warmup_ratio=options.warmup_ratio, seed=options.seed), output)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    after = evaluate(model, sets, seed=options.seed)
    before = evaluate(SentenceTransformer(body, device="cpu"), sets, seed=options.seed)
    print("before", json.dumps(before), "after", json.dumps(after), flush=True)
    peft_model = getattr(module, attr)
    peft_model.peft_config["default"].base_model_name_or_path = options.body
    peft_model.save_pretrained(str(output))
    meta = {"body": options.body, "options": dataclasses.asdict(options), "train_rows": len(rows),
            "train_seconds": round(seconds, 1), "train_loss": round(float(result.training_loss), 4),
            "command": command, "data": DATA_NOTE, "before": before, "after": after}
    cards.save(output, EMBEDDER_FILE, meta, model_card(meta))
    return meta


def model_card(meta: dict[str, Any]) -> str:
    intro = ["The default embedding model (`bundled:embedder`): the bundled all-MiniLM-L6-v2 with a LoRA adapter "
             f"(rank {meta['options']['lora_rank']}, all linear layers) trained by `finetune/shipped_embedder.py` "
             "with MultipleNegativesRankingLoss on same-request pairs; merged into a plain model once, in the "
             "cache, at first use (`knowledge/runtime/models.py`)."]
    training = (f"{meta['train_rows']} rows, {meta['options']['epochs']} epoch(s), {meta['train_seconds']:.0f} s "
                "on the machine that trained it (2 CPU cores).")
    table = ["## Retrieval on the calibration parts (dense, 3 phrasings per intent)", "",
             "| set | all-MiniLM-L6-v2 top-1 | tuned top-1 | all-MiniLM-L6-v2 recall@3 | tuned recall@3 |",
             "|---|---|---|---|---|"]
    for name, b in meta["before"].items():
        a = meta["after"][name]
        table.append(f"| {name} | {b['top1']:.3f} | {a['top1']:.3f} | {b['recall_at_3']:.3f} | "
                     f"{a['recall_at_3']:.3f} |")
    limits = ["## Limits", "",
              "Tuned on English banking, home-assistant and shop requests: short customer requests against each "
              "other. Other languages and long documents were not in its training data; `bundled:minilm` is the "
              "untuned model (`supportbot kb reindex --embedding-model bundled:minilm`).", ""]
    return cards.render("supportbot embedder", intro, meta, "finetune.shipped_embedder", training,
                        [[*table, ""], limits])


DATA_NOTE = ("From `../shared/data`, the train parts of `finetune.intents` (seed 13; calibration and dev parts "
             "never trained on): BANKING77 (CC BY 4.0), HWU64 fold-train rows (CC BY 4.0), Bitext customer-support "
             "sample instructions (CDLA-Sharing 1.0).")


def _train_command(
    output: Path = typer.Option(..., help="directory to write the adapter, embedder.json and model card to"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="the shared data directory"),
    *, options: ShippedEmbedderOptions, command: str,
) -> None:
    """Train the shipped embedder adapter from the shared data sets."""
    meta = train(load_all(data_dir, options.seed), output, options, command)
    print(json.dumps({k: meta[k] for k in ("train_rows", "train_seconds", "before", "after")}))


command = cli.task_command(_train_command, ShippedEmbedderOptions, "finetune.shipped_embedder")
app = cli.task_app(command, __doc__)


def main(argv: list[str] | None = None) -> int:
    return cli.run(app, argv, "finetune.shipped_embedder")


if __name__ == "__main__":
    raise SystemExit(main())
