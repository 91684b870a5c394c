"""Fine-tune the generator on a company's FAQ, with the exact runtime prompt and retrieval.

    python -m finetune.generator --data faq.jsonl --output models/generator
    # then: [generator] model = "models/generator"   (architecture = "seq2seq" for T5-style models)
    accelerate launch -m finetune.generator --data faq.jsonl --output models/generator   # several GPUs

Each training example is what the bot would see at run time: the question, the passages the knowledge base
retrieves for it (``knowledge.search`` + ``strip_instructions`` + ``build_messages``, as in ``bot.engine``),
with the gold entry among them, and as target the curated answer citing it at the end of its first sentence
(``Refunds take 5 days [2]. ...``: early enough to survive ``max_new_tokens``). A share of the examples
(``--no-answer-share``) has the gold passage and any passage close to its answer removed, and ``NO_ANSWER`` as
target. Entries are split
into train and held-out entries; on held-out questions, before and after training: ROUGE-L against the curated
answer, key facts (the numbers, amounts and times of the curated answer) found, the engine's grounding check
pass rate, and no-answer accuracy. LoRA (default) is merged into the saved model, so the output directory is a
plain transformers model with a model card.

``--conversations log.jsonl`` adds past support conversations (``finetune/conversations.py``): questions matched to
an entry are trained with its curated answer; the other exchanges only where the agent's reply is grounded in the
passages retrieved for the question.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Collection, Mapping, Sequence

from finetune import cli
from finetune import model_card as cards
from finetune._common import TrainingDataError
from finetune.conversations import Exchange, match_entries
from finetune.faq import faq_command

if TYPE_CHECKING:
    from knowledge.schema import FAQEntry

GENERATOR_FILE = "supportbot_generator.json"
_FACT = re.compile(r"(?:[€$£]\s?)?\d+(?:[.,:]\d+)*(?:\s?(?:%|€|\$|£|am|pm))?", re.IGNORECASE)
_TOKEN = re.compile(r"\w+")


def _bf16_available() -> bool:
    """bf16 mixed precision pays off on a GPU that supports it and on CPUs with native bf16 (1.5x here)."""
    import torch

    from bot.models import native_bf16

    return torch.cuda.is_bf16_supported() if torch.cuda.is_available() else native_bf16()


@dataclasses.dataclass
class GeneratorOptions:
    base: str = "bundled:smollm2"
    architecture: str = dataclasses.field(default="causal", metadata={"help": "causal or seq2seq (T5-style)"})
    method: str = dataclasses.field(default="lora", metadata={"help": "lora (merged into the saved model) or full"})
    epochs: float = 2.0
    batch_size: int = 4
    gradient_accumulation: int = 2
    learning_rate: float = 2e-4
    lora_rank: int = 16
    max_length: int = dataclasses.field(default=1024, metadata={"help": "tokens per example; longer ones are "
                                        "dropped (three passages, the chat template and a long answer fit)"})
    variants_per_entry: int = 3
    no_answer_share: float = 0.2
    eval_share: float = 0.15
    max_eval: int = 40
    seed: int = 13
    save_steps: int = 50
    resume: bool = False
    bf16: bool = dataclasses.field(default_factory=lambda: _bf16_available(),
                                   metadata={"help": "bf16 mixed precision (default: where the GPU or CPU has it)"})


@dataclasses.dataclass
class GenExample:
    question: str
    messages: list[dict[str, str]]
    target: str
    entry_id: str
    answer: str  # the curated answer ("" for no-answer examples)
    passages: list[str]
    no_answer: bool


# --- examples --------------------------------------------------------------------------------------------------
NO_ANSWER_MAX_SIMILARITY = 0.6  # a passage this close to the gold answer may answer the question too
_FIRST_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def cite(answer: str, n: int) -> str:
    """The answer citing passage ``n`` at the end of its first sentence ("Refunds take 5 days [2]. ..."): early,
    so that an answer cut by ``max_new_tokens`` still carries its citation."""
    m = _FIRST_SENTENCE_END.search(answer)
    if m is None or m.end() >= len(answer.rstrip()):
        return f"{answer.rstrip()} [{n}]" if m is None else f"{answer.rstrip()[:-1]} [{n}]{answer.rstrip()[-1]}"
    return f"{answer[:m.start()]} [{n}]{answer[m.start():]}"


def build_examples(entries: Sequence[FAQEntry], knowledge: Any, options: GeneratorOptions, max_passages: int,
                   rng: random.Random, logged: Mapping[str, Sequence[str]] | None = None) -> list[GenExample]:
    """Runtime retrieval and prompt for each question variant (up to ``variants_per_entry`` per entry, plus every
    question of the conversation logs matched to the entry: ``logged``).

    A no-answer example drops the gold entry and every retrieved passage close in meaning to its answer
    (similarity >= ``NO_ANSWER_MAX_SIMILARITY``): a near-duplicate entry would answer the question, and
    teaching ``NO_ANSWER`` there would teach the model to refuse answerable questions."""
    import numpy as np

    from bot.conversation.prompting import NO_ANSWER, PromptPassage, build_messages, strip_instructions

    out = []
    for e in entries:
        for question in [*e.questions[: options.variants_per_entry], *(logged or {}).get(e.id, ())]:
            no_answer = rng.random() < options.no_answer_share
            hits = knowledge.search(question, k=max_passages + (10 if no_answer else 3))
            others = [PromptPassage(h.title, strip_instructions(h.text)) for h in hits if h.entry_id != e.id]
            if no_answer:
                if others:
                    vectors = knowledge.embedder.embed([e.answer, *(p.text for p in others)])
                    close = np.asarray(vectors[1:]) @ np.asarray(vectors[0])
                    others = [p for p, sim in zip(others, close) if sim < NO_ANSWER_MAX_SIMILARITY]
                passages, target, answer = others[:max_passages], NO_ANSWER, ""
            else:
                passages = others[: max_passages - 1]
                position = rng.randint(0, len(passages))
                passages.insert(position, PromptPassage(e.questions[0], strip_instructions(e.answer)))
                target, answer = cite(e.answer, position + 1), e.answer
            out.append(GenExample(question, build_messages(question, passages), target, e.id, answer,
                                  [p.text for p in passages], no_answer))
    return out


def logged_examples(exchanges: Sequence[Exchange], knowledge: Any, max_passages: int, settings: Any, embed: Any,
                    exclude: Collection[str] = ()) -> list[GenExample]:
    """Logged exchanges that match no FAQ entry, kept where the reply is grounded in the passages retrieved for
    the question (the engine's check), with a citation of its best passage; none from ``exclude``d entries."""
    from bot.conversation import grounding
    from bot.conversation.prompting import PromptPassage, build_messages, strip_instructions

    a = settings.answer
    out = []
    for ex in exchanges:
        hits = knowledge.search(ex.question, k=max_passages)
        passages = [PromptPassage(h.title, strip_instructions(h.text)) for h in hits]
        texts = [p.text for p in passages]
        if not hits:
            continue
        check = grounding.check(ex.answer, texts, a.grounding_min_overlap, a.grounding_min_similarity, embed)
        if not check.supported:
            continue
        n = check.cited[0] if check.cited else grounding.best_supporting(ex.answer, texts)
        if hits[n - 1].entry_id in exclude:
            continue
        target = ex.answer if check.cited else f"{ex.answer} [{n}]"
        out.append(GenExample(ex.question, build_messages(ex.question, passages), target, hits[n - 1].entry_id,
                              ex.answer, texts, False))
    return out


def split_entries(entries: Sequence[FAQEntry], share: float, seed: int) -> tuple[list[FAQEntry], list[FAQEntry]]:
    """Held-out entries: the model cannot have memorised their answers."""
    order = list(entries)
    random.Random(seed).shuffle(order)
    n = max(1, round(len(order) * share)) if len(order) > 1 else 0
    return order[n:], order[:n]


def encode(example: GenExample, tokenizer: Any, architecture: str, max_length: int) -> dict[str, list[int]] | None:
    """Token ids and labels (prompt masked with -100 for causal models); None when it does not fit."""
    from bot.conversation.prompting import flatten_messages

    if architecture == "seq2seq":
        inputs = tokenizer(flatten_messages(example.messages), truncation=True, max_length=max_length)["input_ids"]
        labels = tokenizer(example.target, truncation=True, max_length=256)["input_ids"]
        return {"input_ids": inputs, "attention_mask": [1] * len(inputs), "labels": labels}
    prompt = tokenizer.apply_chat_template(example.messages, add_generation_prompt=True, tokenize=True)
    if hasattr(prompt, "keys"):  # transformers 5 returns a BatchEncoding
        prompt = prompt["input_ids"]
    target = tokenizer(example.target, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(prompt) + len(target) > max_length:
        return None
    ids = list(prompt) + target
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": [-100] * len(prompt) + target}


# --- evaluation ------------------------------------------------------------------------------------------------
def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased word tokens."""
    a, b = _TOKEN.findall(candidate.lower()), _TOKEN.findall(reference.lower())
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    p, r = lcs / len(a), lcs / len(b)
    return 2 * p * r / (p + r)


def key_facts(answer: str) -> list[str]:
    """The numbers, amounts, percentages and times of a curated answer."""
    return [m.group(0).replace(" ", "") for m in _FACT.finditer(answer)]


def evaluate_generator(generator: Any, examples: Sequence[GenExample], embed: Any, settings: Any) -> dict[str, Any]:
    from bot.conversation import grounding
    from bot.conversation.prompting import is_no_answer

    a = settings.answer
    rouge, facts_found, facts_total, grounded, answerable = [], 0, 0, 0, 0
    said_no, no_total, false_no = 0, 0, 0
    samples = []
    for ex in examples:
        text = generator.generate(ex.messages).strip()
        if ex.no_answer:
            no_total += 1
            said_no += is_no_answer(text)
            continue
        answerable += 1
        if is_no_answer(text):
            false_no += 1
            rouge.append(0.0)
        else:
            rouge.append(rouge_l(text, ex.answer))
            grounded += grounding.check(text, ex.passages, a.grounding_min_overlap, a.grounding_min_similarity,
                                        embed).supported
        facts = key_facts(ex.answer)
        if facts:
            facts_total += 1
            compact = text.replace(" ", "")
            facts_found += all(f in compact for f in facts)
        if len(samples) < 5:
            samples.append({"question": ex.question, "answer": text[:300]})
    return {
        "answerable": answerable, "rouge_l": round(sum(rouge) / len(rouge), 4) if rouge else None,
        "key_facts": round(facts_found / facts_total, 4) if facts_total else None, "with_facts": facts_total,
        "grounding_rate": round(grounded / answerable, 4) if answerable else None,
        "false_no_answer": round(false_no / answerable, 4) if answerable else None,
        "no_answer_questions": no_total, "no_answer_accuracy": round(said_no / no_total, 4) if no_total else None,
        "samples": samples,
    }


def _runtime_generator(ref: str, options: GeneratorOptions, cache_dir: Path, max_new_tokens: int) -> Any:
    from bot.generation.local import CausalLMGenerator, Seq2SeqGenerator

    if options.architecture == "seq2seq":
        return Seq2SeqGenerator(ref, cache_dir, max_new_tokens)
    return CausalLMGenerator(ref, cache_dir, max_new_tokens, dtype="float32", prompt_lookup_tokens=10)


# --- training --------------------------------------------------------------------------------------------------
def _rich_progress() -> Any:
    """A transformers TrainerCallback drawing a rich progress bar with the loss and the ETA (main process)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        progress: Any = None
        task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                self.progress = Progress(TextColumn("[bold]generator[/]"), BarColumn(),
                                         TextColumn("{task.completed}/{task.total} steps  loss {task.fields[loss]}"),
                                         TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
                self.progress.start()
                self.task = self.progress.add_task("train", total=state.max_steps, completed=state.global_step,
                                                   loss="-")

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if self.progress is not None and logs and "loss" in logs:
                self.progress.update(self.task, loss=f"{float(logs['loss']):.4f}")

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.progress is not None:
                self.progress.stop()

    return RichProgress()


@dataclasses.dataclass
class _Examples:
    """The examples of one run, built with the bot's own retrieval over all entries."""

    train_entries: list[FAQEntry]
    eval_entries: list[FAQEntry]
    train: list[GenExample]
    held_out: list[GenExample]
    from_logs: dict[str, int] | None  # what the conversation logs added (None without logs)


def _knowledge_base(entries: Sequence[FAQEntry], settings: Any, path: Path) -> Any:
    """A temporary knowledge base of all entries: held-out ones appear as distractors too."""
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(settings=settings.model_copy(update={"knowledge": settings.knowledge.model_copy(
        update={"path": path})}))
    kb.add(list(entries))
    return kb


def build_datasets(entries: Sequence[FAQEntry], kb: Any, options: GeneratorOptions, settings: Any,
                   rng: random.Random, conversations: Sequence[Exchange]) -> _Examples:
    """Train and held-out examples (held-out entries never trained on, not even through the logs)."""
    train_entries, eval_entries = split_entries(entries, options.eval_share, options.seed)
    max_passages = settings.generator.max_passages
    embed = kb.embedder.embed
    matched = match_entries(conversations, entries, embed) if conversations else None
    logged = matched.variants if matched else {}
    train_examples = build_examples(train_entries, kb, options, max_passages, rng, logged)
    eval_examples = build_examples(eval_entries, kb, options, max_passages, rng, logged)[: options.max_eval]
    from_logs = None
    if matched:
        extra = logged_examples(matched.unmatched, kb, max_passages, settings, embed,
                                exclude={e.id for e in eval_entries})
        train_examples += extra
        from_logs = {"exchanges": len(conversations), "matched_by_id": matched.by_id,
                     "matched_by_answer": matched.by_answer,
                     "new_variants": sum(len(v) for v in matched.variants.values()),
                     "unmatched": len(matched.unmatched), "unmatched_grounded": len(extra)}
    return _Examples(train_entries, eval_entries, train_examples, eval_examples, from_logs)


def _training_rows(base: str, examples: Sequence[GenExample], options: GeneratorOptions
                   ) -> tuple[Any, list[dict[str, list[int]]], int]:
    """The base model's tokenizer, the encoded examples that fit in ``max_length``, and how many did not."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    encoded = [encode(ex, tokenizer, options.architecture, options.max_length) for ex in examples]
    rows = [e for e in encoded if e is not None]
    if not rows:
        raise TrainingDataError("no training example fits in --max-length; raise it or shorten the answers")
    return tokenizer, rows, len(encoded) - len(rows)


def load_base_model(base: str, options: GeneratorOptions) -> Any:
    """The base model in float32, wrapped in LoRA adapters on all linear layers with ``--method lora``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

    auto = AutoModelForSeq2SeqLM if options.architecture == "seq2seq" else AutoModelForCausalLM
    model = auto.from_pretrained(base, dtype=torch.float32)
    if options.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        task = TaskType.SEQ_2_SEQ_LM if options.architecture == "seq2seq" else TaskType.CAUSAL_LM
        model = get_peft_model(model, LoraConfig(r=options.lora_rank, lora_alpha=2 * options.lora_rank,
                                                 lora_dropout=0.05, target_modules="all-linear", task_type=task))
    return model


def _trainer(model: Any, tokenizer: Any, rows: list[dict[str, list[int]]], options: GeneratorOptions,
             output: Path) -> Any:
    """A transformers Trainer with checkpoints under ``output/checkpoints`` and a rich progress bar."""
    import torch
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    args = TrainingArguments(
        output_dir=str(output / "checkpoints"), num_train_epochs=options.epochs,
        per_device_train_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation, learning_rate=options.learning_rate,
        warmup_steps=0.1, lr_scheduler_type="linear", logging_steps=5, save_steps=options.save_steps,
        save_total_limit=2, seed=options.seed, report_to="none", disable_tqdm=True, bf16=options.bf16,
        use_cpu=not torch.cuda.is_available(), remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding")
    return Trainer(model=model, args=args, train_dataset=rows,
                   data_collator=DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100),
                   callbacks=[_rich_progress()])


def _fit(trainer: Any, options: GeneratorOptions, output: Path) -> dict[str, Any]:
    """Train (from the last checkpoint with ``--resume``); the run's speed and losses."""
    start = time.perf_counter()
    resume = options.resume and any((output / "checkpoints").glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    tokens = trainer.state.num_input_tokens_seen  # this process's, without padding
    return {"train_seconds": round(seconds, 1), "steps": trainer.state.global_step,
            "seconds_per_step": round(seconds / max(1, trainer.state.global_step), 2),
            "train_tokens_per_s": round(tokens / seconds, 1), "resumed": bool(resume),
            "first_loss": round(losses[0], 4) if losses else None,
            "final_loss": round(losses[-1], 4) if losses else None,
            "train_loss": round(float(result.training_loss), 4)}


def _save(model: Any, tokenizer: Any, options: GeneratorOptions, output: Path) -> None:
    """A plain transformers model (LoRA merged) with its tokenizer."""
    final = model.merge_and_unload() if options.method == "lora" else model
    final.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))


def _measure(ref: str, options: GeneratorOptions, settings: Any, examples: Sequence[GenExample], embed: Any
             ) -> dict[str, Any]:
    """The held-out metrics of model ``ref`` run as the bot runs it."""
    generator = _runtime_generator(ref, options, settings.cache, settings.generator.max_new_tokens)
    return evaluate_generator(generator, examples, embed, settings)


def train(entries: Sequence[FAQEntry], output: Path, options: GeneratorOptions, command: str = "",
          data_note: str = "", settings: Any = None, evaluate: bool = True,
          conversations: Sequence[Exchange] = ()) -> dict[str, Any]:
    """Fine-tune, save the model with its model card to ``output``; return the metrics (before and after on
    held-out entries, with ``evaluate``)."""
    import tempfile

    import torch

    from bot.config import load_settings
    from bot.models import materialize

    if options.architecture not in ("causal", "seq2seq") or options.method not in ("lora", "full"):
        raise TrainingDataError("--architecture is causal or seq2seq; --method is lora or full")
    rng = random.Random(options.seed)
    torch.manual_seed(options.seed)
    output = Path(output)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings or load_settings(None, knowledge={"path": Path(tmp) / "kb"})
        kb = _knowledge_base(entries, settings, Path(tmp) / "kb")
        data = build_datasets(entries, kb, options, settings, rng, conversations)
        base = materialize(options.base, settings.cache)
        meta: dict[str, Any] = {"base": options.base, "options": dataclasses.asdict(options), "command": command,
                                "data": data_note, "train_entries": len(data.train_entries),
                                "eval_entries": len(data.eval_entries), "train_examples": len(data.train),
                                "eval_examples": len(data.held_out), "conversations": data.from_logs}
        measure = evaluate and bool(data.held_out)
        if measure:
            meta["before"] = _measure(options.base, options, settings, data.held_out, kb.embedder.embed)
        tokenizer, rows, meta["dropped_too_long"] = _training_rows(base, data.train, options)
        model = load_base_model(base, options)
        meta["trainable_parameters"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        trainer = _trainer(model, tokenizer, rows, options, output)
        meta.update(_fit(trainer, options, output))
        if not trainer.is_world_process_zero():
            return meta
        _save(model, tokenizer, options, output)
        if measure:
            meta["after"] = _measure(str(output), options, settings, data.held_out, kb.embedder.embed)
    cards.save(output, GENERATOR_FILE, meta, model_card(meta))
    return meta


def model_card(meta: dict[str, Any]) -> str:
    o = meta["options"]
    intro = [f"`{meta['base']}` ({o['architecture']}) fine-tuned with {o['method']}"
             + (f" (rank {o['lora_rank']}, merged)" if o["method"] == "lora" else "") +
             f" by `finetune/generator.py` on {meta['train_examples']} examples from {meta['train_entries']} FAQ "
             "entries, built with the bot's own retrieval and prompt.", "",
             f"Use it: `[generator] model = \"<this directory>\"`, `architecture = \"{o['architecture']}\"`."]
    training = (f"{meta.get('steps', 0)} steps in {meta.get('train_seconds', 0):.0f} s "
                f"({meta.get('seconds_per_step', 0)} s per step, {meta.get('train_tokens_per_s', 0)} training "
                f"tokens/s); loss {meta.get('first_loss')} -> {meta.get('final_loss')}.")
    sections = []
    if "after" in meta:
        sections.append([
            f"## Held-out questions ({meta['eval_examples']}, from {meta['eval_entries']} entries not trained on)",
            "", *cards.before_after(meta, ("model", "ROUGE-L", "key facts", "grounding rate", "no-answer accuracy"),
                                    lambda m: [str(m[k]) for k in ("rouge_l", "key_facts", "grounding_rate",
                                                                   "no_answer_accuracy")]), ""])
    return cards.render("supportbot fine-tuned generator", intro, meta, "finetune.generator", training, sections)


command = faq_command("finetune.generator", GeneratorOptions, train,
                      ("before", "after", "train_seconds", "seconds_per_step"))
app = cli.task_app(command, __doc__)


def main(argv: list[str] | None = None) -> int:
    """``python -m finetune.generator ...``; the exit code (2 for unusable training data)."""
    return cli.run(app, argv, "finetune.generator")


if __name__ == "__main__":
    raise SystemExit(main())
