"""Train the instruction classifier: does a knowledge-base sentence address the assistant instead of the customer?

    python -m finetune.injection --output knowledge/data/injection/classifier     # the shipped one
    supportbot finetune injection --output DIR                                    # the same

A LoRA adapter and a one-logit head on the bundled MiniLM body (``knowledge.retrieval.pair_model``, one sentence
instead of a pair), 1.3 MB. Training sentences: instruction-like sentences composed by
``finetune.injection_data`` (13 languages), against ordinary support sentences: Bitext customer-support replies
(train part of ``finetune.escalation_examples``' split, CDLA-Sharing 1.0), the sentences of the training help-centre
articles (GitHub Docs, CC BY 4.0; ``knowledge/data/injection/help_sentences.txt``), composed look-alikes
("Ignore this e-mail if you have paid") and composed help sentences in 17 other languages (``foreign_plain``).
Every sentence is read as ``knowledge.safety.injection.as_read`` gives it (``normalise.for_checks``, no leading list
marker), as at run time. The threshold is chosen on a dev set apart from the training sentences: the hand-written
``instructions.txt`` and ``ordinary.txt`` (hard look-alikes) with Bitext reply sentences not trained on; the
lowest threshold at which at most ``max_dev_flagged`` of its ordinary sentences are flagged.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from finetune import cli
from finetune import model_card as cards

CLASSIFIER_FILE = "injection.json"
DATA = Path(__file__).resolve().parent.parent / "knowledge" / "data" / "injection"


@dataclasses.dataclass
class InjectionOptions:
    body: str = dataclasses.field(default="bundled:minilm", metadata={"help": "BERT body to adapt"})
    positives: int = dataclasses.field(default=4000, metadata={"help": "composed instruction sentences"})
    hard_negatives: int = dataclasses.field(default=2500, metadata={"help": "composed look-alike help sentences"})
    bitext_sentences: int = dataclasses.field(default=3000, metadata={"help": "Bitext reply sentences"})
    foreign_sentences: int = dataclasses.field(default=440, metadata={
        "help": "composed ordinary help sentences in 17 other languages (as many as the instructions in other "
                "languages, so that a language is never the sign)"})
    dev_bitext_sentences: int = dataclasses.field(default=600, metadata={
        "help": "Bitext reply sentences kept apart for the threshold (ordinary help text as the bot meets it)"})
    epochs: int = dataclasses.field(default=1, metadata={"help": "passes over the training sentences"})
    batch_size: int = dataclasses.field(default=32, metadata={"help": "sentences per step"})
    learning_rate: float = dataclasses.field(default=5e-4, metadata={"help": "AdamW learning rate"})
    lora_rank: int = dataclasses.field(default=8, metadata={"help": "LoRA rank"})
    max_length: int = dataclasses.field(default=48, metadata={"help": "tokens per sentence"})
    max_dev_flagged: float = dataclasses.field(default=0.01, metadata={
        "help": "the threshold is the lowest that flags at most this share of the dev set's ordinary sentences"})
    seed: int = dataclasses.field(default=13, metadata={"help": "random seed"})


def _lines(name: str) -> list[str]:
    return [s.strip() for s in (DATA / name).read_text(encoding="utf-8").splitlines()
            if s.strip() and not s.startswith("#")]


def bitext_sentences(n: int, seed: int, skip: int = 0) -> list[str]:
    from finetune.bitext import fill
    from finetune.escalation_examples import bitext_split
    from knowledge.safety.injection import sentences

    train, _ = bitext_split()
    out = sorted({s.strip(" -*") for row in train for s in sentences(fill(row["response"]))
                  if len(s.split()) >= 4})
    random.Random(seed).shuffle(out)
    return out[skip:skip + n]


def training_data(options: InjectionOptions) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, dev) as (sentence, 1 if it addresses the assistant)."""
    from finetune.injection_data import foreign_plain, hard_negatives, positives

    dev = [(s, 1) for s in _lines("instructions.txt")] + [(s, 0) for s in _lines("ordinary.txt")] + \
        [(s, 0) for s in bitext_sentences(options.dev_bitext_sentences, options.seed, skip=options.bitext_sentences)]
    held = {s for s, _ in dev}
    negatives = _lines("help_sentences.txt") + hard_negatives(options.hard_negatives, options.seed) + \
        foreign_plain(options.foreign_sentences, options.seed) + \
        bitext_sentences(options.bitext_sentences, options.seed)
    train = [(s, 1) for s in positives(options.positives, options.seed) if s not in held] + \
        [(s, 0) for s in dict.fromkeys(negatives) if s not in held]
    random.Random(options.seed).shuffle(train)
    return train, dev


def _model(options: InjectionOptions, cache_dir: Path | None) -> tuple[Any, Any]:
    """(tokenizer, the LoRA model): the matcher's recipe on one sentence instead of a pair."""
    from finetune.matcher import _lora_model as pair_lora_model

    return pair_lora_model(options, cache_dir)  # type: ignore[arg-type]  # reads .body and .lora_rank


def _logits(model: Any, tokenizer: Any, texts: Sequence[str], max_length: int, batch: int = 64) -> list[float]:
    import torch

    from knowledge.safety.injection import as_read

    out: list[float] = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch):
            enc = tokenizer([as_read(t) for t in texts[start:start + batch]], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
            out += model(**enc).logits.squeeze(-1).float().tolist()
    return out


def choose_threshold(dev: Sequence[tuple[str, int]], probs: Sequence[float], max_flagged: float) -> float:
    """The lowest probability threshold at which at most ``max_flagged`` of dev's ordinary sentences are flagged."""
    ordinary = sorted((p for (_, y), p in zip(dev, probs) if y == 0), reverse=True)
    allowed = int(max_flagged * len(ordinary))
    bar = ordinary[allowed] if allowed < len(ordinary) else 0.0
    return float(min(0.99, max(0.5, bar + 1e-4)))


def train(examples: Sequence[tuple[str, int]], dev: Sequence[tuple[str, int]], output: Path,
          options: InjectionOptions, command: str = "", cache_dir: Path | None = None,
          progress: bool = True) -> dict[str, Any]:
    import math

    import torch
    import torch.nn.functional as F

    from knowledge.safety.injection import as_read

    random.seed(options.seed)
    torch.manual_seed(options.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    tokenizer, model = _model(options, cache_dir)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    order = [list(examples) for _ in range(options.epochs)]
    for epoch, items in enumerate(order):
        random.Random(options.seed + epoch).shuffle(items)
    flat = [x for items in order for x in items]
    batches = [flat[i:i + options.batch_size] for i in range(0, len(flat), options.batch_size)]
    positives = sum(y for _, y in examples)
    pos_weight = torch.tensor((len(examples) - positives) / max(1, positives))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=0.01)
    total = len(batches)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * max(0.0, 1 - s / total))
    start = time.perf_counter()
    model.train()
    ema = None
    for step, batch in enumerate(batches, 1):
        enc = tokenizer([as_read(t) for t, _ in batch], padding=True, truncation=True,
                        max_length=options.max_length, return_tensors="pt")
        logits = model(**enc).logits.squeeze(-1)
        labels = torch.tensor([float(y) for _, y in batch])
        loss = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        ema = loss.item() if ema is None else 0.95 * ema + 0.05 * loss.item()
        if progress and (step % 25 == 0 or step == total):
            print(f"step {step}/{total} loss {ema:.4f} {time.perf_counter() - start:.0f}s", flush=True)
    model.eval()
    seconds = time.perf_counter() - start
    probs = [1 / (1 + math.exp(-max(-50.0, min(50.0, z)))) for z in
             _logits(model, tokenizer, [t for t, _ in dev], options.max_length)]
    threshold = choose_threshold(dev, probs, options.max_dev_flagged)
    pos = [p for (_, y), p in zip(dev, probs) if y == 1]
    neg = [p for (_, y), p in zip(dev, probs) if y == 0]
    model.save_pretrained(str(output), save_embedding_layers=False)
    meta: dict[str, Any] = {
        "body": options.body, "architecture": "pooled-sentence", "max_length": options.max_length,
        "threshold": round(threshold, 4), "options": dataclasses.asdict(options),
        "train_sentences": {"instruction": positives, "ordinary": len(examples) - positives},
        "dev": {"instruction": len(pos), "ordinary": len(neg),
                "caught": round(sum(p >= threshold for p in pos) / max(1, len(pos)), 3),
                "flagged": round(sum(p >= threshold for p in neg) / max(1, len(neg)), 4)},
        "train_seconds": round(seconds, 1), "command": command, "data": DATA_NOTE,
    }
    cards.save(output, CLASSIFIER_FILE, meta, model_card(meta))
    return meta


DATA_NOTE = ("Instruction-like sentences composed by `finetune.injection_data` (supportbot's own grammars, CC0; "
             "English and 12 other languages) against ordinary support sentences: Bitext customer-support replies "
             "(train part of `finetune.escalation_examples`' split; CDLA-Sharing 1.0), the sentences of the 24 "
             "training help-centre articles adapted from GitHub Docs (CC BY 4.0), composed look-alikes and composed "
             "help sentences in 17 other languages (`foreign_plain`, CC0). Dev "
             "(threshold): the hand-written `instructions.txt` and `ordinary.txt` and 600 Bitext reply sentences, "
             "none in training.")


def model_card(meta: dict[str, Any]) -> str:
    dev = meta["dev"]
    return cards.render(
        "supportbot instruction classifier",
        ["Flags knowledge-base sentences that address the AI assistant instead of the customer (prompt "
         "injection): a LoRA adapter and a one-logit head on all-MiniLM-L6-v2, reading one sentence after Unicode "
         "normalisation (NFKC, invisible characters, homoglyphs). Used by `knowledge.safety.injection` with "
         "patterns; a sentence it flags never reaches the prompt, the grounding check or a quote."],
        meta, "finetune.injection",
        f"Trained on {meta['train_sentences']['instruction']} instruction and "
        f"{meta['train_sentences']['ordinary']} ordinary sentences in {meta['train_seconds']:.0f} s (CPU).",
        [["## Threshold and dev figures", "",
          f"Threshold {meta['threshold']}: on the dev set ({dev['instruction']} instruction, {dev['ordinary']} "
          f"ordinary sentences) it catches {dev['caught']} and flags {dev['flagged']} of the ordinary ones. "
          "Held-out figures: `bench/injection.py` (docs/security.md).", ""],
         ["## Limits", "",
          "Trained on composed sentences; an attacker who writes nothing like them, or hides an instruction inside "
          "a table cell (tables are not judged), can get past it. It judges one sentence at a time.", ""]])


def _train_command(
    output: Path = typer.Option(..., help="directory to write the adapter and model card to"),
    *, options: InjectionOptions, command: str,
) -> None:
    """Compose the training sentences, train, choose the threshold on dev, print the dev figures."""
    train_set, dev = training_data(options)
    meta = train(train_set, dev, output, options, command=command)
    print(json.dumps(meta["dev"], indent=2), f"threshold {meta['threshold']}")
    print(f"wrote {output} ({meta['train_seconds']:.0f} s)")


command = cli.task_command(_train_command, InjectionOptions, "finetune.injection")
app = cli.task_app(command, __doc__)


def main(argv: Optional[list[str]] = None) -> int:
    return cli.run(app, argv, "finetune.injection")


if __name__ == "__main__":
    raise SystemExit(main())
