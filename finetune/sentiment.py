"""Train the sentiment classifier (negative / neutral / positive + anger) as a LoRA adapter on a BERT body.

    python -m finetune.sentiment --output DIR                 # the shipped default, from ../shared/data
    python -m finetune.sentiment --data my.csv --output DIR   # any CSV of text,label[,anger]

The output directory is directly usable as ``sentiment.model = "DIR"``. It holds the adapter (LoRA factors for
the body's linear layers and the two heads, ~1 MB), ``sentiment.json`` (body, labels, metrics) and a model
card. The shipped ``bot/data/sentiment`` is this command's output with the default options.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import typer

from finetune import cli
from finetune import model_card as cards
from finetune._common import DEFAULT_DATA_DIR, TrainingDataError, stratified_split

LABELS = ("negative", "neutral", "positive")
EMOTIONS = ("anger", "joy", "optimism", "sadness")  # TweetEval emotion mapping.txt
# Weak sentiment labels for the emotion tweets (more negative and positive examples in tweet language).
EMOTION_SENTIMENT = {"anger": 0, "joy": 2, "optimism": 2, "sadness": 0}
WEAK_SOURCES = {"tweeteval/emotion", "bitext/support"}  # sentiment labels inferred, not annotated


@dataclasses.dataclass(frozen=True)
class Example:
    text: str
    sentiment: int = -100  # index into LABELS; -100 = no sentiment label
    anger: int = -100  # 1 / 0; -100 = no anger label
    source: str = ""


@dataclasses.dataclass
class Splits:
    train: list[Example]
    dev: dict[str, list[Example]]  # evaluation set name -> examples


# --- data ------------------------------------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    # split on "\n" only: the IMDB file holds U+0085 inside sentences, which str.splitlines() breaks on
    text = path.read_text(encoding="utf-8")
    return [line.rstrip("\r") for line in text.split("\n")[: None if not text.endswith("\n") else -1]]


def shared_splits(data_dir: Path = DEFAULT_DATA_DIR, seed: int = 13) -> Splits:
    """Train/dev splits of the shared sentiment data (fixed seed; the dev parts are never trained on).

    * review sentences (Amazon, Yelp, IMDB; binary): 80% train / 20% dev, stratified by site and label;
    * TweetEval sentiment (its val file is all there is): 60% train / 40% dev, stratified by label;
    * TweetEval emotion: train for the anger head (and weak sentiment labels), val as the anger dev set;
    * Bitext support requests of ordinary intents (train split of ``bitext_split``): weak neutral / not angry,
      80% train / 20% dev.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TrainingDataError(f"{data_dir}: shared data directory not found (pass --data-dir)")
    reviews = []
    for site in ("amazon_cells", "yelp", "imdb"):
        path = data_dir / "review_sentences" / f"{site}_labelled.txt"
        for n, line in enumerate(_lines(path), 1):
            if not line.strip():
                continue
            text, _, label = line.rpartition("\t")
            if label.strip() not in {"0", "1"}:
                raise TrainingDataError(f"{path}:{n}: label: expected 0 or 1, got {label!r}")
            reviews.append(Example(text.strip(), 0 if label.strip() == "0" else 2, source=f"reviews/{site}"))
    r_train, r_dev = stratified_split(reviews, 0.2, seed, key=lambda e: (e.source, e.sentiment))

    sdir = data_dir / "tweeteval" / "sentiment"
    tweets = [Example(t.strip(), int(lab), source="tweeteval/sentiment")
              for t, lab in zip(_lines(sdir / "val_text.txt"), _lines(sdir / "val_labels.txt"), strict=True)]
    t_train, t_dev = stratified_split(tweets, 0.4, seed, key=lambda e: e.sentiment)

    edir = data_dir / "tweeteval" / "emotion"

    def emotion(split: str, weak_sentiment: bool) -> list[Example]:
        out = []
        for t, lab in zip(_lines(edir / f"{split}_text.txt"), _lines(edir / f"{split}_labels.txt"), strict=True):
            name = EMOTIONS[int(lab)]
            out.append(Example(t.strip(), EMOTION_SENTIMENT[name] if weak_sentiment else -100,
                               anger=int(name == "anger"), source="tweeteval/emotion"))
        return out

    # Support requests: neither tweets nor reviews contain calm customer questions, without which the model
    # reads "How long do refunds take?" as a negative review. Bitext requests of ordinary intents (its train
    # split only; the escalation benchmark uses the test split) are weak neutral, not-angry examples.
    from finetune.escalation_examples import BETWEEN, HUMAN, bitext_split

    bitext_train, _ = bitext_split(data_dir / "bitext" / "customer_support_sample.csv")
    support = [Example(r["instruction"].strip(), 1, 0, source="bitext/support") for r in bitext_train
               if r["intent"] != HUMAN and r["intent"] not in BETWEEN]
    s_train, s_dev = stratified_split(support, 0.2, seed, key=lambda e: e.text[:0])

    return Splits(train=r_train + t_train + emotion("train", True) + s_train,
                  dev={"reviews": r_dev, "tweeteval_sentiment": t_dev, "tweeteval_emotion": emotion("val", False),
                       "support_requests": s_dev})


def _label_index(value: str) -> int | None:
    v = value.strip().lower()
    names = {"negative": 0, "neg": 0, "neutral": 1, "neu": 1, "positive": 2, "pos": 2}
    if v in names:
        return names[v]
    return None


def read_csv(path: Path) -> list[Example]:
    """A CSV with a header: ``text``, ``label`` (negative/neutral/positive, or 0/1 = negative/positive, or
    0/1/2 = negative/neutral/positive) and an optional ``anger`` (0/1). Every row is checked before any
    training: the first bad one is reported as file:line: field."""
    from bot.datafiles import csv_rows

    path = Path(path)
    rows = list(csv_rows(path, TrainingDataError, required=("text", "label")))
    numeric = {r["label"].strip() for _, r in rows if r["label"].strip().isdigit()}
    binary = numeric <= {"0", "1"}
    examples = []
    for line, r in rows:
        text, label = r["text"].strip(), r["label"].strip()
        if not text:
            raise TrainingDataError(f"{path}:{line}: text: empty")
        index = _label_index(label)
        if index is None and label.isdigit() and int(label) <= 2:
            index = (0, 2)[int(label)] if binary else int(label)
        if index is None:
            raise TrainingDataError(f"{path}:{line}: label: expected negative/neutral/positive or 0/1/2, "
                                    f"got {label!r}")
        anger = -100
        if r.get("anger", "").strip():
            if r["anger"].strip() not in {"0", "1"}:
                raise TrainingDataError(f"{path}:{line}: anger: expected 0 or 1, got {r['anger']!r}")
            anger = int(r["anger"].strip())
        examples.append(Example(text, index, anger, source=path.name))
    if not examples:
        raise TrainingDataError(f"{path}: no rows")
    return examples


# --- evaluation ------------------------------------------------------------------------------------------------
def evaluate(predict: Callable[[list[str]], list[Any]], dev: dict[str, list[Example]]) -> dict[str, Any]:
    """Metrics of a ``predict(texts) -> [Sentiment]`` function on dev sets (reviews: binary, so negative recall
    and accuracy of negative-vs-not; 3-class sets: macro recall; anger sets: precision / recall at 0.5)."""
    report: dict[str, Any] = {}
    for name, examples in dev.items():
        if not examples:
            continue
        preds = predict([e.text for e in examples])
        m: dict[str, Any] = {"n": len(examples)}
        labelled = [(e, p) for e, p in zip(examples, preds) if e.sentiment != -100]
        if labelled:
            recall = {}
            for i, label in enumerate(LABELS):
                gold = [p for e, p in labelled if e.sentiment == i]
                if gold:
                    recall[label] = round(sum(p.label == label for p in gold) / len(gold), 4)
            m["recall"] = recall
            m["macro_recall"] = round(sum(recall.values()) / len(recall), 4)
            m["accuracy"] = round(sum(LABELS[e.sentiment] == p.label for e, p in labelled) / len(labelled), 4)
            if set(recall) == {"neutral"}:  # support requests: how many calm questions read as negative
                m["read_as_negative"] = round(sum(p.label == "negative" for _, p in labelled) / len(labelled), 4)
            if set(recall) == {"negative", "positive"}:  # binary set: a neutral prediction counts as not negative
                m["negative_recall"] = recall["negative"]
                m["negative_vs_not_accuracy"] = round(
                    sum((e.sentiment == 0) == (p.label == "negative") for e, p in labelled) / len(labelled), 4)
        angry = [(e, p) for e, p in zip(examples, preds) if e.anger != -100]
        if angry:
            tp = sum(e.anger == 1 and p.anger >= 0.5 for e, p in angry)
            predicted = sum(p.anger >= 0.5 for _, p in angry)
            actual = sum(e.anger == 1 for e, _ in angry)
            if actual:
                m["anger_precision"] = round(tp / predicted, 4) if predicted else 0.0
                m["anger_recall"] = round(tp / actual, 4)
            else:  # no angry examples (support requests): how many are flagged angry anyway
                m["flagged_angry"] = round(predicted / len(angry), 4)
        report[name] = m
    return report


# --- training --------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainOptions:
    body: str = "bundled:minilm"
    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 5e-4
    lora_rank: int = 8
    max_length: int = 128
    seed: int = 13
    anger_weight: float = 1.0
    weak_label_weight: float = dataclasses.field(default=0.5, metadata={
        "help": "weight of the weak sentiment labels (emotion tweets, support requests)"})


def example_weights(examples: Sequence[Example], weak_label_weight: float) -> dict[Example, float]:
    """Sentiment-loss weight of each example: classes balanced within each source (a source with no neutral
    class does not make neutral look rare to the others), weak labels down-weighted."""
    by_source: dict[str, list[Example]] = {}
    for e in examples:
        if e.sentiment != -100:
            by_source.setdefault(e.source, []).append(e)
    weights: dict[Example, float] = {}
    for source, items in by_source.items():
        counts: dict[int, int] = {}
        for e in items:
            counts[e.sentiment] = counts.get(e.sentiment, 0) + 1
        scale = weak_label_weight if source in WEAK_SOURCES else 1.0
        for e in items:
            weights[e] = scale * len(items) / (len(counts) * counts[e.sentiment])
    return {e: weights.get(e, 0.0) for e in examples}


def _lora_model(options: TrainOptions, cache_dir: Path | None) -> tuple[Any, Any]:
    """The tokenizer and the body with its two heads, wrapped in LoRA adapters (heads trained in full)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from bot.escalation.sentiment_model import base_model
    from bot.models import materialize
    from knowledge.settings import default_cache_dir

    body = materialize(options.body, cache_dir or default_cache_dir())
    tokenizer = AutoTokenizer.from_pretrained(body)
    lora = LoraConfig(r=options.lora_rank, lora_alpha=2 * options.lora_rank, lora_dropout=0.1,
                      target_modules=["query", "key", "value", "dense"], modules_to_save=["classifier", "anger"])
    with warnings.catch_warnings():  # peft calls a transformers API that transformers 5 marks deprecated
        warnings.simplefilter("ignore", FutureWarning)
        model = get_peft_model(base_model(body), lora)
    model.peft_config["default"].base_model_name_or_path = options.body  # not this machine's path
    return tokenizer, model


class _Objective:
    """The training loss of a batch: class- and source-weighted cross-entropy on the sentiment labels, plus
    ``anger_weight`` times the binary cross-entropy of the anger head where an anger label is known."""

    def __init__(self, examples: Sequence[Example], options: TrainOptions) -> None:
        import torch

        self.weights = example_weights(examples, options.weak_label_weight)
        self.anger_weight = options.anger_weight
        self.sentiment_loss = torch.nn.CrossEntropyLoss(ignore_index=-100, reduction="none")
        self.anger_loss = torch.nn.BCEWithLogitsLoss(reduction="sum")

    def __call__(self, out: Any, batch: Sequence[Example]) -> Any:
        import torch

        labels = torch.tensor([e.sentiment for e in batch])
        w = torch.tensor([self.weights[e] for e in batch])
        loss = (self.sentiment_loss(out.logits, labels) * w).sum() / w.sum().clamp(min=1e-6)
        anger = torch.tensor([float(e.anger) for e in batch])
        mask = anger >= 0
        if mask.any():
            loss = loss + self.anger_weight * self.anger_loss(out.anger_logits[mask], anger[mask]) / len(batch)
        return loss


def _optimizer(model: Any, options: TrainOptions, total_steps: int) -> tuple[Any, Any]:
    """AdamW on the trainable parameters; linear warm-up over the first tenth, then linear decay."""
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=options.learning_rate,
                                  weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, total_steps // 10)) * max(0.0, 1 - s / total_steps))
    return optimizer, scheduler


def _fit(model: Any, tokenizer: Any, examples: Sequence[Example], options: TrainOptions, progress: bool) -> float:
    """The training loop (shuffled per epoch with the seed), with a rich progress bar; the seconds it took."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    objective = _Objective(examples, options)
    steps_per_epoch = (len(examples) + options.batch_size - 1) // options.batch_size
    total_steps = steps_per_epoch * options.epochs
    optimizer, scheduler = _optimizer(model, options, total_steps)
    start = time.perf_counter()
    order = list(examples)
    columns = [TextColumn("[bold]sentiment[/] epoch {task.fields[epoch]}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} steps  loss {task.fields[loss]:.4f}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    model.train()
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("train", total=total_steps, epoch=1, loss=0.0)
        ema = None
        for epoch in range(options.epochs):
            random.Random(options.seed + epoch).shuffle(order)
            for i in range(0, len(order), options.batch_size):
                batch = order[i:i + options.batch_size]
                enc = tokenizer([e.text for e in batch], padding=True, truncation=True,
                                max_length=options.max_length, return_tensors="pt")
                loss = objective(model(**enc), batch)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
                value = loss.item()
                ema = value if ema is None else 0.95 * ema + 0.05 * value
                bar.update(task, advance=1, epoch=epoch + 1, loss=ema)
    model.eval()
    return time.perf_counter() - start


def train(examples: Sequence[Example], output: Path, options: TrainOptions,
          dev: dict[str, list[Example]] | None = None, command: str = "", data_note: str = "",
          cache_dir: Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Train, save the adapter with its model card to ``output``, return the metrics (before = untrained)."""
    import torch

    from bot.models import SENTIMENT_ADAPTER_FILE

    random.seed(options.seed)
    torch.manual_seed(options.seed)
    tokenizer, model = _lora_model(options, cache_dir)
    seconds = _fit(model, tokenizer, examples, options, progress)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output), save_embedding_layers=False)  # embeddings are not adapted
    meta: dict[str, Any] = {
        "body": options.body, "labels": list(LABELS), "max_length": options.max_length,
        "options": dataclasses.asdict(options), "train_examples": len(examples),
        "train_seconds": round(seconds, 1), "command": command, "data": data_note,
    }
    if dev:
        meta["metrics"] = evaluate(_predictor(model, tokenizer, options.max_length), dev)
    cards.save(output, SENTIMENT_ADAPTER_FILE, meta, model_card(meta))
    return meta


def _predictor(model: Any, tokenizer: Any, max_length: int) -> Callable[[list[str]], list[Any]]:
    """Predictions from the (unmerged) training model, through the same code path as the runtime."""
    import torch

    from bot.types import Sentiment

    def predict(texts: list[str]) -> list[Sentiment]:
        out = []
        for i in range(0, len(texts), 64):
            enc = tokenizer(texts[i:i + 64], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            with torch.inference_mode():
                o = model(**enc)
            probs = torch.softmax(o.logits.float(), -1)
            anger = torch.sigmoid(o.anger_logits.float())
            for p, a in zip(probs.tolist(), anger.tolist()):
                scores = dict(zip(LABELS, (round(x, 4) for x in p)))
                label = max(LABELS, key=lambda k: scores[k])
                out.append(Sentiment(label=label, score=scores[label], scores=scores, anger=round(a, 4)))
        return out

    return predict


_CARD_METRICS = ("negative_recall", "negative_vs_not_accuracy", "macro_recall", "accuracy", "read_as_negative",
                 "anger_precision", "anger_recall", "flagged_angry")


def model_card(meta: dict[str, Any]) -> str:
    intro = [
        "Negative / neutral / positive with probabilities, plus an anger probability, for customer messages.",
        f"A LoRA adapter (rank {meta['options']['lora_rank']}, all linear layers) and two heads on the mean-pooled "
        f"`{meta['body']}` body, trained with `finetune/sentiment.py`; the runtime merges it into a plain "
        "transformers model at load time (`bot/escalation/sentiment_model.py`).",
    ]
    training = (f"{meta['train_examples']} training examples, {meta['options']['epochs']} epochs, "
                f"{meta['train_seconds']:.0f} s on the machine that trained it.")
    sections = []
    metrics = meta.get("metrics")
    if metrics:
        table = ["## Metrics on held-out dev splits", "", "| dev set | n | metric | value |", "|---|---|---|---|"]
        for name, m in metrics.items():
            table += [f"| {name} | {m['n']} | {key} | {m[key]:.3f} |" for key in _CARD_METRICS if key in m]
        sections.append([*table, ""])
    sections.append(["## Limits", "",
                     "Trained on product reviews and tweets, not on support conversations: a customer describing a "
                     "problem calmly may read as negative. The escalation policy therefore acts on very negative "
                     "or angry messages, or on negativity that persists over several turns.", ""])
    return cards.render("supportbot sentiment model", intro, meta, "finetune.sentiment", training, sections)


def _shared_data_note(options: TrainOptions) -> str:
    """What the default run trains on, for the model card."""
    return ("From `../shared/data` (split with seed "
            f"{options.seed}; dev parts never trained on): Sentiment Labelled Sentences (Amazon, Yelp, "
            "IMDB; 80% train / 20% dev), TweetEval sentiment (its val file: 60% train / 40% dev), "
            "TweetEval emotion train (anger head; anger and sadness as weak negative, joy and optimism "
            "as weak positive labels) with its val file as the anger dev set; Bitext customer-support "
            "requests of ordinary intents (the train split of `finetune.escalation_examples`) as weak "
            "neutral, not-angry examples, 80% train / 20% dev. Weak labels weigh "
            f"{options.weak_label_weight} of an annotated one.")


def _train_command(
    output: Path = typer.Option(..., help="directory to write the adapter and model card to"),
    data: Optional[list[Path]] = typer.Option(None, help="CSV of text,label[,anger]; repeatable (default: the "
                                                         "shared data sets)"),
    dev: Optional[list[Path]] = typer.Option(None, help="CSV for evaluation (default with --data: none)"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="the shared data directory"),
    *, options: TrainOptions, command: str,
) -> None:
    """Read and check the data (CSV files, or the shared data sets), train, print the metrics."""
    if data:
        examples = [e for path in data for e in read_csv(path)]
        dev_sets = {path.stem: read_csv(path) for path in (dev or [])}
        note = "CSV files: " + ", ".join(str(p) for p in data)
    else:
        splits = shared_splits(data_dir, options.seed)
        examples, dev_sets = splits.train, splits.dev
        note = _shared_data_note(options)
    meta = train(examples, output, options, dev=dev_sets, command=command, data_note=note)
    print(json.dumps(meta.get("metrics", {}), indent=2))
    print(f"wrote {output} ({meta['train_seconds']:.0f} s)")


command = cli.task_command(_train_command, TrainOptions, "finetune.sentiment")
app = cli.task_app(command, __doc__)


def main(argv: list[str] | None = None) -> int:
    """``python -m finetune.sentiment ...``; the exit code (2 for unusable training data)."""
    return cli.run(app, argv, "finetune.sentiment")


if __name__ == "__main__":
    raise SystemExit(main())
