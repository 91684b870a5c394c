"""Fine-tune the embedding model on a company's FAQ, measured before and after with the bot's own retrieval.

    python -m finetune.embedder --data faq.jsonl --output models/embedder
    supportbot kb reindex --embedding-model models/embedder      # switch a knowledge base to it

Training pairs come from the FAQ's question variants: each variant (anchor) with another variant of the same
entry (positive); MultipleNegativesRankingLoss treats the other pairs of the batch as negatives, and the batches
never hold two texts of one entry, so no in-batch negative is secretly a positive. (With random extra negatives,
as in the first version, most batches of 64 on BANKING77's 77 intents held a "negative" of some anchor's own
intent, which made retrieval worse.) ``--hard-negatives`` adds, per pair, the variant of another entry the current
model finds closest; batches then also keep the negatives' entries apart from the anchors' ones.

Evaluation: a share of each entry's variants is held out (or ``dev`` queries are given); the train variants go
into a real knowledge base (Chroma + BM25 in a temporary directory) and every held-out variant is searched as a
customer would: top-1 and recall@3 of the right entry, before and after.

``--conversations log.jsonl`` adds the questions of past support conversations that belong to an entry (by id, or
because the reply is its curated answer) as more variants, in customers' own words (``finetune/conversations.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import random
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from finetune import cli
from finetune import model_card as cards
from finetune._common import TrainingDataError
from finetune.conversations import Exchange, match_entries, with_variants
from finetune.faq import faq_command

if TYPE_CHECKING:
    from knowledge.schema import FAQEntry

EMBEDDER_FILE = "supportbot_embedder.json"


@dataclasses.dataclass
class EmbedderOptions:
    base: str = "bundled:minilm"
    epochs: int = 1
    batch_size: int = 64
    learning_rate: float = dataclasses.field(default=3e-5, metadata={
        "help": "chosen on a tuning split of BANKING77 (bench/finetune_embedder.py --tune)"})
    warmup_ratio: float = 0.1
    hard_negatives: bool = False
    dev_share: float = 0.2
    seed: int = 13


# --- data ------------------------------------------------------------------------------------------------------
def split_variants(entries: Sequence[FAQEntry], dev_share: float, seed: int
                   ) -> tuple[list[FAQEntry], list[tuple[str, str]]]:
    """Hold out ``dev_share`` of each entry's variants (keeping at least one) as (query, entry id) pairs."""
    rng = random.Random(seed)
    train, dev = [], []
    for e in entries:
        variants = list(e.questions)
        rng.shuffle(variants)
        n_dev = min(len(variants) - 1, round(len(variants) * dev_share))
        dev.extend((q, e.id) for q in variants[:n_dev])
        train.append(e.model_copy(update={"questions": variants[n_dev:]}))
    return train, dev


def training_rows(entries: Sequence[FAQEntry], model: Any, seed: int, hard_negatives: bool
                  ) -> tuple[list[tuple[str, ...]], list[str], list[str] | None]:
    """(anchor, positive[, negative]) for every variant of an entry with two or more; the anchors' entry ids; and
    the negatives' entry ids (None without hard negatives: the other rows of a batch are the negatives then)."""
    import numpy as np

    rng = random.Random(seed)
    texts = [q for e in entries for q in e.questions]
    owner = [e.id for e in entries for _ in e.questions]
    by_entry: dict[str, list[str]] = {}
    for text, entry_id in zip(texts, owner):
        by_entry.setdefault(entry_id, []).append(text)
    nearest_other: list[int] = []
    if hard_negatives:
        vectors = model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
        ids = np.array(owner)
        for start in range(0, len(texts), 1024):
            sims = vectors[start:start + 1024] @ vectors.T
            for row, i in enumerate(range(start, min(start + 1024, len(texts)))):
                sims[row, ids == owner[i]] = -2.0
                nearest_other.append(int(np.argmax(sims[row])))
    rows, anchors, negatives = [], [], []
    for i, (anchor, entry_id) in enumerate(zip(texts, owner)):
        others = [t for t in by_entry[entry_id] if t != anchor]
        if not others:
            continue
        if hard_negatives:
            rows.append((anchor, rng.choice(others), texts[nearest_other[i]]))
            negatives.append(owner[nearest_other[i]])
        else:
            rows.append((anchor, rng.choice(others)))
        anchors.append(entry_id)
    return rows, anchors, negatives if hard_negatives else None


class EntryBatches:
    """Batches in which every text belongs to a different entry, so that no in-batch negative is secretly a
    positive: anchors (and their positives) of distinct entries, and with hard negatives, negatives of yet other
    entries. Batches are always full (at most one per entry, or half the entries with negatives): rows are drawn
    in a shuffled order, and the end of an epoch, where only a few large entries are left, borrows rows from a
    fresh shuffle instead of shrinking to batches of two or three. Deterministic per seed and epoch."""

    def __init__(self, anchor_entries: Sequence[str], batch_size: int, seed: int, drop_last: bool = False,
                 negative_entries: Sequence[str] | None = None) -> None:
        self.anchors = list(anchor_entries)
        self.negatives = list(negative_entries) if negative_entries is not None else None
        distinct = len(set(self.anchors) | set(self.negatives or ()))
        self.batch_size = max(1, min(batch_size, distinct // 2 if self.negatives is not None else distinct))
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _fits(self, i: int, used: set[str]) -> bool:
        if self.anchors[i] in used:
            return False
        return self.negatives is None or (self.negatives[i] not in used and self.negatives[i] != self.anchors[i])

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        self.epoch += 1

        def shuffled() -> list[int]:
            order = list(range(len(self.anchors)))
            rng.shuffle(order)
            return order

        pending = shuffled()
        for _ in range(len(self)):
            batch: list[int] = []
            used: set[str] = set()
            for attempt in range(2):  # the epoch's tail: borrow rows from a fresh shuffle once
                rest = []
                for i in pending:
                    if len(batch) < self.batch_size and self._fits(i, used):
                        batch.append(i)
                        used.add(self.anchors[i])
                        if self.negatives is not None:
                            used.add(self.negatives[i])
                    else:
                        rest.append(i)
                pending = rest
                if len(batch) == self.batch_size:
                    break
                if attempt == 0:
                    pending += [i for i in shuffled() if i not in batch]
            yield batch

    def __len__(self) -> int:
        n = len(self.anchors)
        return max(1, n // self.batch_size if self.drop_last else -(-n // self.batch_size))


def _entry_batches(anchors: Sequence[str], negatives: Sequence[str] | None, dataset: Any, batch_size: int,
                   drop_last: bool, seed: int = 0, **_: Any) -> EntryBatches:
    """The trainer's batch-sampler factory (a module-level function: the training arguments get pickled)."""
    return EntryBatches(anchors, batch_size, seed, drop_last, negatives)


# --- evaluation ------------------------------------------------------------------------------------------------
def evaluate(model_ref: str, entries: Sequence[FAQEntry], dev: Sequence[tuple[str, str]],
             cache_dir: Path | None = None) -> dict[str, Any]:
    """Top-1 and recall@3 of the right entry, through a real knowledge base on the ``entries`` (hybrid search,
    the same measure as ``supportbot eval``)."""
    from bot.config import load_settings
    from bot.analytics.evaluation import EvalCase, retrieval_metrics
    from knowledge import KnowledgeBase

    with tempfile.TemporaryDirectory() as tmp:
        overrides: dict[str, Any] = {"knowledge": {"path": Path(tmp) / "kb", "embedding_model": model_ref}}
        if cache_dir is not None:
            overrides["cache"] = cache_dir
        kb = KnowledgeBase(settings=load_settings(None, **overrides))
        kb.add(list(entries))
        cases = [EvalCase(query, expected) for query, expected in dev]
        start = time.perf_counter()
        metrics = retrieval_metrics(kb, cases)
        seconds = time.perf_counter() - start
        dense = retrieval_metrics(kb, cases, method="dense")  # the embedding model alone, without BM25
    return {"queries": len(dev), "top1": metrics["top1"], "recall_at_3": metrics["recall_at_3"],
            "dense_top1": dense["top1"], "dense_recall_at_3": dense["recall_at_3"],
            "ms_per_query": round(1000 * seconds / max(1, len(dev)), 1)}


# --- training --------------------------------------------------------------------------------------------------
def _with_logged_variants(entries: Sequence[FAQEntry], conversations: Sequence[Exchange], cache_dir: Path
                          ) -> tuple[list[FAQEntry], dict[str, Any]]:
    """The entries with the logged questions matched to them as new variants, in customers' own words (matched
    with the configured embedding model, not the base being trained); what the logs added."""
    from bot.config import load_settings
    from knowledge.embedder import Embedder

    judge = Embedder(load_settings(None).knowledge.embedding_model, cache_dir)
    matched = match_entries(conversations, entries, judge.embed)
    logged = {"exchanges": len(conversations), "matched_by_id": matched.by_id, "matched_by_answer": matched.by_answer,
              "new_variants": sum(len(v) for v in matched.variants.values()), "unmatched": len(matched.unmatched)}
    return with_variants(entries, matched.variants), logged


def _trainer(model: Any, rows: list[tuple[str, ...]], anchors: list[str], negatives: list[str] | None,
             options: EmbedderOptions, output: Path, batch_sampler: Any = None) -> Any:
    """A sentence-transformers trainer with MultipleNegativesRankingLoss and batches of one text per entry."""
    import torch
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.losses import MultipleNegativesRankingLoss

    try:  # sentence-transformers >= 6
        from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    except ImportError:  # pragma: no cover - 5.x
        from sentence_transformers.training_args import SentenceTransformerTrainingArguments

    columns = ["anchor", "positive", "negative"][: len(rows[0])]
    dataset = Dataset.from_dict({c: [r[i] for r in rows] for i, c in enumerate(columns)})
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output / "checkpoints"), num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size, learning_rate=options.learning_rate,
        warmup_steps=options.warmup_ratio,  # a float < 1 is a ratio in transformers 5
        seed=options.seed, save_strategy="no", report_to="none",
        logging_steps=10, disable_tqdm=False, use_cpu=not torch.cuda.is_available(),
        batch_sampler=batch_sampler or functools.partial(_entry_batches, anchors, negatives))
    return SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                      loss=MultipleNegativesRankingLoss(model))


def train(entries: Sequence[FAQEntry], output: Path, options: EmbedderOptions,
          dev: Sequence[tuple[str, str]] | None = None, command: str = "", data_note: str = "",
          cache_dir: Path | None = None, evaluate_before: bool = True,
          conversations: Sequence[Exchange] = ()) -> dict[str, Any]:
    """Fine-tune, save a sentence-transformers model with its model card to ``output``; return the metrics."""
    import torch
    from sentence_transformers import SentenceTransformer

    from bot.models import materialize
    from knowledge.settings import default_cache_dir

    cache_dir = cache_dir or default_cache_dir()
    logged: dict[str, Any] | None = None
    if conversations:
        entries, logged = _with_logged_variants(entries, conversations, cache_dir)
    if dev is None:
        entries, dev = split_variants(entries, options.dev_share, options.seed)
    meta: dict[str, Any] = {"base": options.base, "options": dataclasses.asdict(options), "command": command,
                            "data": data_note, "entries": len(entries),
                            "train_variants": sum(len(e.questions) for e in entries), "dev_queries": len(dev),
                            "conversations": logged}
    if evaluate_before and dev:
        meta["before"] = evaluate(options.base, entries, dev, cache_dir)

    torch.manual_seed(options.seed)
    model = SentenceTransformer(materialize(options.base, cache_dir), device="cpu")
    rows, anchors, negatives = training_rows(entries, model, options.seed, options.hard_negatives)
    if not rows:
        raise TrainingDataError("no entry has two or more question variants: nothing to learn from "
                                "(add variants, or past questions mapped to their entry)")
    output = Path(output)
    trainer = _trainer(model, rows, anchors, negatives, options, output)
    start = time.perf_counter()
    result = trainer.train()
    meta["train_seconds"] = round(time.perf_counter() - start, 1)
    meta["train_examples"] = len(rows)
    meta["train_loss"] = round(float(result.training_loss), 4)
    model.save(str(output))
    if dev:
        meta["after"] = evaluate(str(output), entries, dev, cache_dir)
    cards.save(output, EMBEDDER_FILE, meta, model_card(meta))
    return meta


def model_card(meta: dict[str, Any]) -> str:
    intro = [f"`{meta['base']}` fine-tuned on {meta['entries']} FAQ entries ({meta['train_examples']} training "
             "rows: variant, another variant of the same entry"
             + (", the closest variant of another entry" if meta["options"]["hard_negatives"] else "") +
             ") with MultipleNegativesRankingLoss, in batches with one entry per text, by "
             "`finetune/embedder.py`.", "",
             "Use it: `supportbot kb reindex --embedding-model <this directory>`, then set "
             "`knowledge.embedding_model` to it."]
    training = f"Training took {meta.get('train_seconds', 0):.0f} s on the machine that ran it."
    sections = []
    if "after" in meta:
        sections.append([
            "## Retrieval on held-out questions", "",
            f"{meta['dev_queries']} held-out questions searched in a knowledge base of the training entries: "
            "the bot's hybrid search (dense + BM25), and dense search alone (the embedding model's own part):", "",
            *cards.before_after(meta, ("model", "top-1", "recall@3", "dense top-1", "dense recall@3"),
                                lambda m: [f"{m[k]:.4f}" for k in ("top1", "recall_at_3", "dense_top1",
                                                                    "dense_recall_at_3")]), ""])
    return cards.render("supportbot fine-tuned embedder", intro, meta, "finetune.embedder", training, sections)


command = faq_command("finetune.embedder", EmbedderOptions, train, ("before", "after", "train_seconds"))
app = cli.task_app(command, __doc__)


def main(argv: list[str] | None = None) -> int:
    """``python -m finetune.embedder ...``; the exit code (2 for unusable training data)."""
    return cli.run(app, argv, "finetune.embedder")


if __name__ == "__main__":
    raise SystemExit(main())
