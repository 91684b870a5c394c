"""Train the matcher: a cross-encoder that reads the customer's message with a candidate FAQ question (or answer)
and says whether the candidate answers it.

    python -m finetune.matcher --output DIR [--resume]    # the shipped default, from ../shared/data
    python bench/matcher.py --calibrate DIR               # then fit its calibration on the calibration parts

Training data: same-intent against different-intent pairs from the train parts of BANKING77, HWU64 and Bitext
(``finetune.intents``; the calibration and dev parts are never trained on). Each training example is a *group*:
one message and the candidates a knowledge base of 3 phrasings per entry would show the matcher for it -
the right entry's best phrasing among 3 sampled ones, the entries the bi-encoder ranks nearest (hard negatives,
mined with the bundled embedder) and a few random ones. Out-of-scope groups (a message of one set against
another set's nearest entries) have no right candidate; answer groups (Bitext) pair a request with agent
responses. Loss: listwise cross-entropy over each group's candidates (ranking) plus pointwise binary
cross-entropy (an absolute "answers it" score, also for groups with no right candidate). A quarter of the
messages are typed casually (``finetune.perturb``, its own seed).

The output directory is usable as ``answer.matcher = "DIR"``: the LoRA adapter and head (a few MB),
``matcher.json`` (body, lengths, options, metrics, calibration) and a model card. The shipped
``knowledge/data/matcher`` is this command's output with the default options.
"""

from __future__ import annotations

import dataclasses
import json
import random
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import typer

from finetune import cli
from finetune import model_card as cards
from finetune._common import DEFAULT_DATA_DIR
from finetune.intents import DATASETS, IntentSet, bitext_responses, in_scope_for, load_all
from finetune.perturb import perturb

MATCHER_FILE = "matcher.json"


@dataclasses.dataclass(frozen=True)
class Group:
    query: str
    candidates: tuple[str, ...]
    labels: tuple[int, ...]  # 1: answers the query
    kind: str  # "question" | "answer" | "oos"


@dataclasses.dataclass
class MatcherOptions:
    body: str = "bundled:minilm"
    queries_per_set: int = dataclasses.field(default=1300, metadata={"help": "training messages per data set"})
    answer_groups: int = dataclasses.field(default=300, metadata={"help": "Bitext request -> response groups"})
    oos_groups: int = dataclasses.field(default=700, metadata={"help": "groups with no right candidate: a message "
                                                                  "of one set against another set's entries"})
    near_oos_groups: int = dataclasses.field(default=0, metadata={
        "help": "groups with no right candidate: a message against its own set's nearest *other* entries (close "
                "in topic, not what was asked: a question the FAQ does not cover)"})
    mine_with: str = dataclasses.field(default="bundled:minilm", metadata={
        "help": "the embedder that mines hard negatives (the retriever's own, bundled:embedder, shows the matcher "
                "what it will be shown)"})
    init: str = dataclasses.field(default="", metadata={
        "help": "start from this matcher directory's adapter (e.g. knowledge/data/matcher) instead of a fresh one"})
    hard_negatives: int = 5
    random_negatives: int = 2
    phrasings: int = dataclasses.field(default=3, metadata={"help": "phrasings per entry the candidates are "
                                                                    "chosen among (the knowledge-base shape)"})
    casual_share: float = dataclasses.field(default=0.25, metadata={"help": "messages typed casually"})
    epochs: int = 1
    groups_per_batch: int = 4
    learning_rate: float = 5e-4
    lora_rank: int = 16
    question_max_length: int = 64
    answer_max_length: int = 128
    pointwise_weight: float = 1.0
    seed: int = 13
    checkpoint_every: int = 200


# --- data ------------------------------------------------------------------------------------------------------
class _Index:
    """One set's train texts, embedded: nearest intents to a message, and an entry's best of a few phrasings."""

    def __init__(self, data: IntentSet, vectors: Any, texts: list[str]) -> None:
        import numpy as np

        self.data = data
        self.intents = sorted(data.train)
        pos = {t: i for i, t in enumerate(texts)}
        self.rows = {intent: np.array([pos[t] for t in data.train[intent]]) for intent in self.intents}
        self.vectors = vectors

    def intent_scores(self, q: Any) -> dict[str, float]:
        return {i: float((self.vectors[r] @ q).max()) for i, r in self.rows.items() if len(r)}

    def best_of(self, intent: str, q: Any, rng: random.Random, k: int, exclude: str | None = None) -> str | None:
        texts = [t for t in self.data.train[intent] if t != exclude]
        if not texts:
            return None
        sample = rng.sample(texts, min(k, len(texts)))
        rows = self.rows[intent]
        lookup = {t: r for t, r in zip(self.data.train[intent], rows)}
        return max(sample, key=lambda t: float(self.vectors[lookup[t]] @ q))


def build_groups(sets: dict[str, IntentSet], options: MatcherOptions, embed: Any,
                 data_dir: Path = DEFAULT_DATA_DIR) -> list[Group]:
    """The training groups (deterministic for a seed)."""
    rng = random.Random(options.seed)
    casual = random.Random(options.seed + 1000)
    texts = sorted({t for s in sets.values() for ts in s.train.values() for t in ts})
    vectors = embed(texts)
    pos = {t: i for i, t in enumerate(texts)}
    index = {name: _Index(s, vectors, texts) for name, s in sets.items()}
    groups: list[Group] = []

    def noisy(text: str) -> str:
        return perturb(text, casual) if casual.random() < options.casual_share else text

    for name in DATASETS:
        ix = index[name]
        pool = sets[name].pairs("train")
        for text, intent in rng.sample(pool, min(options.queries_per_set, len(pool))):
            q = vectors[pos[text]]
            scores = ix.intent_scores(q)
            right = ix.best_of(intent, q, rng, options.phrasings, exclude=text)
            if right is None:
                continue
            others = sorted((i for i in scores if i != intent), key=lambda i: -scores[i])
            hard = others[:options.hard_negatives]
            rest = others[options.hard_negatives:]
            chosen = hard + rng.sample(rest, min(options.random_negatives, len(rest)))
            cands = [right] + [c for i in chosen if (c := ix.best_of(i, q, rng, options.phrasings))]
            labels = [1] + [0] * (len(cands) - 1)
            order = list(range(len(cands)))
            rng.shuffle(order)
            groups.append(Group(noisy(text), tuple(cands[i] for i in order), tuple(labels[i] for i in order),
                                "question"))
    # out of scope: a message of one set against the nearest entries of another
    names = list(DATASETS)
    for _ in range(options.oos_groups):
        src, dst = rng.sample(names, 2)
        text, intent = rng.choice(sets[src].pairs("train"))
        if in_scope_for(src, intent, dst):
            continue
        q = vectors[pos[text]]
        ix = index[dst]
        scores = ix.intent_scores(q)
        near = sorted(scores, key=lambda i: -scores[i])[:options.hard_negatives + options.random_negatives + 1]
        cands = [c for i in near if (c := ix.best_of(i, q, rng, options.phrasings))]
        groups.append(Group(noisy(text), tuple(cands), tuple([0] * len(cands)), "oos"))
    # near out of scope: a message against its own set's nearest entries, its own intent left out
    for _ in range(options.near_oos_groups):
        name = rng.choice(names)
        text, intent = rng.choice(sets[name].pairs("train"))
        q = vectors[pos[text]]
        ix = index[name]
        scores = ix.intent_scores(q)
        near = sorted((i for i in scores if i != intent), key=lambda i: -scores[i])
        near = near[:options.hard_negatives + options.random_negatives + 1]
        cands = [c for i in near if (c := ix.best_of(i, q, rng, options.phrasings))]
        groups.append(Group(noisy(text), tuple(cands), tuple([0] * len(cands)), "oos"))
    # answers: a request against agent responses (what an FAQ answer says)
    responses = bitext_responses(data_dir)
    train_texts = {t for ts in sets["bitext"].train.values() for t in ts}
    bix = index["bitext"]
    pool = [(t, i) for t, i in sets["bitext"].pairs("train")]
    for text, intent in rng.sample(pool, min(options.answer_groups, len(pool))):
        q = vectors[pos[text]]
        scores = bix.intent_scores(q)
        others = sorted((i for i in scores if i != intent), key=lambda i: -scores[i])
        chosen = others[:options.hard_negatives] + rng.sample(others[options.hard_negatives:],
                                                              options.random_negatives)

        def response(i: str) -> str:
            rows = [r for t, r in responses[i] if t != text and t in train_texts]
            return rng.choice(rows)

        cands = [response(intent)] + [response(i) for i in chosen]
        labels = [1] + [0] * (len(cands) - 1)
        order = list(range(len(cands)))
        rng.shuffle(order)
        groups.append(Group(noisy(text), tuple(cands[i] for i in order), tuple(labels[i] for i in order), "answer"))
    rng.shuffle(groups)
    return groups


# --- training --------------------------------------------------------------------------------------------------
def _lora_model(options: MatcherOptions, cache_dir: Path | None) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer

    from knowledge.retrieval.pair_model import base_model
    from knowledge.runtime.models import materialize
    from knowledge.settings import default_cache_dir

    body = materialize(options.body, cache_dir or default_cache_dir())
    tokenizer = AutoTokenizer.from_pretrained(body)
    lora = LoraConfig(r=options.lora_rank, lora_alpha=2 * options.lora_rank, lora_dropout=0.1,
                      target_modules=["query", "key", "value", "dense"], modules_to_save=["classifier"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        if getattr(options, "init", ""):
            from peft import PeftModel

            from knowledge.retrieval.matcher import matcher_dir

            start = matcher_dir(options.init)
            if start is None:
                raise typer.BadParameter(f"{options.init} is not a matcher directory (no {MATCHER_FILE})")
            model = PeftModel.from_pretrained(base_model(body), str(start), is_trainable=True)
        else:
            model = get_peft_model(base_model(body), lora)
    model.peft_config["default"].base_model_name_or_path = options.body
    return tokenizer, model


def _batches(groups: Sequence[Group], per_batch: int) -> list[list[Group]]:
    """Batches of groups of one kind (answers are long; questions short: little padding)."""
    by_kind: dict[bool, list[Group]] = {True: [], False: []}
    for g in groups:
        by_kind[g.kind == "answer"].append(g)
    out = []
    for items in by_kind.values():
        out += [items[i:i + per_batch] for i in range(0, len(items), per_batch)]
    return out


def _loss(logits: Any, batch: Sequence[Group], pointwise_weight: float) -> Any:
    import torch
    import torch.nn.functional as F

    loss = logits.new_zeros(())
    start = 0
    listwise = []
    for g in batch:
        n = len(g.candidates)
        row = logits[start:start + n]
        if 1 in g.labels:
            listwise.append(F.cross_entropy(row.unsqueeze(0), torch.tensor([g.labels.index(1)])))
        start += n
    if listwise:
        loss = loss + torch.stack(listwise).mean()
    labels = torch.tensor([float(y) for g in batch for y in g.labels])
    return loss + pointwise_weight * F.binary_cross_entropy_with_logits(logits, labels)


def train(groups: Sequence[Group], output: Path, options: MatcherOptions, command: str = "", data_note: str = "",
          cache_dir: Path | None = None, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train (resuming from ``output/checkpoint.pt`` if asked), save the adapter, ``matcher.json`` and the card."""
    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    random.seed(options.seed)
    torch.manual_seed(options.seed)
    tokenizer, model = _lora_model(options, cache_dir)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    batches = []
    for epoch in range(options.epochs):
        order = list(groups)
        random.Random(options.seed + epoch).shuffle(order)
        batches += _batches(order, options.groups_per_batch)
    random.Random(options.seed).shuffle(batches)
    total = len(batches)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=options.learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, total // 10)) * max(0.0, 1 - s / total))
    checkpoint = output / "checkpoint.pt"
    step, spent = 0, 0.0
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, spent = state["step"], state["seconds"]
    columns = [TextColumn("[bold]matcher[/]"), BarColumn(),
               TextColumn("{task.completed}/{task.total} batches  loss {task.fields[loss]:.4f}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    start = time.perf_counter()
    model.train()
    with Progress(*columns, disable=not progress) as bar:
        task = bar.add_task("train", total=total, completed=step, loss=0.0)
        ema = None
        while step < total:
            batch = batches[step]
            long = batch[0].kind == "answer"
            enc = tokenizer([g.query for g in batch for _ in g.candidates], [c for g in batch for c in g.candidates],
                            padding=True, truncation="longest_first",
                            max_length=options.answer_max_length if long else options.question_max_length,
                            return_tensors="pt")
            logits = model(**enc).logits.squeeze(-1)
            loss = _loss(logits, batch, options.pointwise_weight)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
            bar.update(task, advance=1, loss=ema)
            if not progress and step % 50 == 0:
                print(f"step {step}/{total} loss {ema:.4f} {time.perf_counter() - start + spent:.0f}s", flush=True)
            if step % options.checkpoint_every == 0 and step < total:
                trainable = {k: v for k, v in model.state_dict().items() if "lora_" in k or "classifier" in k}
                torch.save({"model": trainable, "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict(), "step": step,
                            "seconds": time.perf_counter() - start + spent}, checkpoint)
    model.eval()
    seconds = time.perf_counter() - start + spent
    model.save_pretrained(str(output), save_embedding_layers=False)
    kinds: dict[str, int] = {}
    for g in groups:
        kinds[g.kind] = kinds.get(g.kind, 0) + 1
    meta: dict[str, Any] = {
        "body": options.body, "architecture": "pooled-pair", "question_max_length": options.question_max_length,
        "answer_max_length": options.answer_max_length, "options": dataclasses.asdict(options),
        "train_groups": kinds, "train_pairs": sum(len(g.candidates) for g in groups),
        "train_seconds": round(seconds, 1), "command": command, "data": data_note,
    }
    previous = output / MATCHER_FILE
    if previous.exists():  # keep a calibration and metrics written before (a retrain invalidates them: say so)
        old = json.loads(previous.read_text())
        meta["previous_metrics"] = old.get("metrics")
    cards.save(output, MATCHER_FILE, meta, model_card(meta))
    checkpoint.unlink(missing_ok=True)
    return meta


def model_card(meta: dict[str, Any]) -> str:
    intro = [
        "Whether a candidate FAQ question (or answer, or passage) answers a customer's message: a cross-encoder "
        "reading both together.",
        f"A LoRA adapter (rank {meta['options']['lora_rank']}, all linear layers) and a one-logit head on the "
        f"mean-pooled `{meta['body']}` body, trained with `finetune/matcher.py`; the runtime merges it into a "
        "plain model at load time (`knowledge/retrieval/pair_model.py`) and combines its scores with retrieval's "
        "into one calibrated probability (`knowledge/retrieval/matcher.py`).",
    ]
    training = (f"{meta['train_pairs']} pairs in {sum(meta['train_groups'].values())} groups "
                f"({', '.join(f'{v} {k}' for k, v in meta['train_groups'].items())}), "
                f"{meta['options']['epochs']} epoch(s), {meta['train_seconds']:.0f} s on the machine that trained "
                "it (2 CPU cores).")
    sections = []
    if meta.get("calibration"):
        c = meta["calibration"]
        sections.append(["## Calibration", "",
                         f"Logistic regression on {c.get('n', '?')} candidates of the calibration parts "
                         f"(features: {', '.join(c['features'])}), knowledge-base shapes "
                         f"{c.get('shapes', '?')}.", ""])
    if meta.get("metrics"):
        table = ["## Metrics (dev parts, `bench/matcher.py`; details in `docs/matcher.md`)", "",
                 "| knowledge base | answered right | answered wrong | resolved | out of scope answered |",
                 "|---|---|---|---|---|"]
        table += [f"| {k} | {m['answered_right']:.3f} | {m['answered_wrong']:.3f} | {m['resolved']:.3f} | "
                  f"{m['oos_answered']:.3f} |" for k, m in meta["metrics"].items()]
        sections.append([*table, ""])
    sections.append(["## Limits", "",
                     "Trained on English banking, home-assistant and shop requests, for one epoch on 4,805 groups "
                     "(hard negatives mined with the untuned bundled:minilm): behind the shipped tuned embedder "
                     "(bundled:embedder) it ranks no better than retrieval alone, and the calibration gives its "
                     "logit a small weight (see `docs/matcher.md`). Retrain with more groups or epochs "
                     "(`--queries-per-set`, `--epochs`, `--resume`), then calibrate again with "
                     "`bench/matcher.py --calibrate`.", ""])
    return cards.render("supportbot matcher", intro, meta, "finetune.matcher", training, sections)


DATA_NOTE = ("From `../shared/data`, the train parts of `finetune.intents` (seed 13; calibration and dev parts "
             "never trained on): BANKING77 (CC BY 4.0), HWU64 fold-train rows (CC BY 4.0), Bitext customer-support "
             "sample instructions and responses (CDLA-Sharing 1.0).")


# --- command line ----------------------------------------------------------------------------------------------
def _train_command(
    output: Path = typer.Option(..., help="directory to write the adapter, matcher.json and model card to"),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="the shared data directory"),
    resume: bool = typer.Option(False, help="continue from OUTPUT/checkpoint.pt"),
    *, options: MatcherOptions, command: str,
) -> None:
    """Build the training groups from the shared data sets and train the matcher."""
    from knowledge.embedder import Embedder
    from knowledge.settings import default_cache_dir

    sets = load_all(data_dir, options.seed)
    embedder = Embedder(options.mine_with, default_cache_dir())
    t0 = time.perf_counter()
    groups = build_groups(sets, options, embedder.embed, data_dir)
    print(f"{len(groups)} groups built in {time.perf_counter() - t0:.0f} s", flush=True)
    note = f"{DATA_NOTE} Hard negatives mined with {options.mine_with}."
    if options.init:
        note += f" Training started from the adapter in {options.init}."
    meta = train(groups, output, options, command, note, resume=resume, progress=False)
    print(json.dumps({k: meta[k] for k in ("train_groups", "train_pairs", "train_seconds")}))


command = cli.task_command(_train_command, MatcherOptions, "finetune.matcher")
app = cli.task_app(command, __doc__)


def main(argv: list[str] | None = None) -> int:
    return cli.run(app, argv, "finetune.matcher")


if __name__ == "__main__":
    raise SystemExit(main())
