"""Pieces shared by the fine-tuning scripts: the shared-data location, stratified splits, options from
dataclasses, and the FAQ-input command-line arguments."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import random
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from bot.errors import SupportbotError

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"
T = TypeVar("T")


class TrainingDataError(SupportbotError):
    """Training data that cannot be used: names the file, line and field."""


def stratified_split(items: list[Any], share: float, seed: int, key: Callable[[Any], Any]) -> tuple[list, list]:
    """(rest, held out): ``share`` of each group held out, groups in sorted order, deterministic."""
    groups: dict[Any, list[Any]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    rest, held = [], []
    rng = random.Random(seed)
    for k in sorted(groups, key=str):
        group = groups[k][:]
        rng.shuffle(group)
        n = round(len(group) * share)
        held.extend(group[:n])
        rest.extend(group[n:])
    return rest, held


def banking77_split(path: Path = DEFAULT_DATA_DIR / "banking77" / "train.csv", seed: int = 13,
                    dev_share: float = 0.2) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """BANKING77's train.csv split per intent with a fixed seed, exact duplicates dropped: ({intent: texts},
    [(held-out text, intent)]). The benchmarks measure on the held-out part; whatever the project builds from
    BANKING77 (the escalation policy's fraud examples) comes from the rest."""
    by_intent: dict[str, list[str]] = {}
    with Path(path).open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_intent.setdefault(row["category"], []).append(row["text"].strip())
    rng = random.Random(seed)
    train: dict[str, list[str]] = {}
    dev: list[tuple[str, str]] = []
    for intent in sorted(by_intent):
        texts = list(dict.fromkeys(by_intent[intent]))
        rng.shuffle(texts)
        n_dev = max(1, round(len(texts) * dev_share))
        dev.extend((t, intent) for t in texts[:n_dev])
        train[intent] = texts[n_dev:]
    return train, dev


def add_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """One ``--flag`` per field of the options dataclass ``cls``, with its default."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        value = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        if isinstance(value, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            parser.add_argument(flag, type=type(value), default=value)


def options_from(args: argparse.Namespace, cls: type[T]) -> T:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})  # type: ignore[arg-type]


def add_faq_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, action="append", required=True,
                        help="FAQ file or folder (CSV / JSON / JSONL, as for `supportbot ingest`); repeatable")
    parser.add_argument("--output", type=Path, required=True, help="directory for the fine-tuned model")
    parser.add_argument("--question-column", default="question", help="CSV column / JSON key of the question")
    parser.add_argument("--answer-column", default="answer", help="CSV column / JSON key of the answer")
    parser.add_argument("--id-column", default="id", help="CSV column / JSON key of the entry id")
    parser.add_argument("--conversations", type=Path, action="append", default=[],
                        help="past support conversations, JSONL (see finetune/conversations.py); repeatable")


def faq_mapping(args: argparse.Namespace) -> Any:
    from knowledge.loaders import ColumnMapping

    return ColumnMapping(id=args.id_column, question=args.question_column, answer=args.answer_column)


def describe_data(args: argparse.Namespace) -> str:
    """The data a model was trained on, for its model card."""
    note = "FAQ files: " + ", ".join(str(d) for d in args.data)
    if args.conversations:
        note += "; conversation logs: " + ", ".join(str(c) for c in args.conversations)
    return note


def run_faq_task(argv: list[str] | None, module: str, doc: str | None, options_cls: type,
                 train: Callable[..., dict[str, Any]], shown: Sequence[str]) -> int:
    """``main()`` of a trainer on FAQ files (and conversation logs): parse the options, load and check every
    input before training, train, print the ``shown`` metrics; expected errors as one line, exit code 2."""
    import json
    import shlex
    import sys

    from finetune.conversations import read_conversations
    from finetune.embedder import load_entries

    p = argparse.ArgumentParser(prog=f"python -m {module}", description=(doc or "").split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_faq_arguments(p)
    add_options(p, options_cls)
    args = p.parse_args(argv)
    options = options_from(args, options_cls)
    try:
        entries = load_entries(args.data, faq_mapping(args))
        exchanges = read_conversations(args.conversations)
        command = f"python -m {module} " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        meta = train(entries, args.output, options, command=command, conversations=exchanges,
                     data_note=describe_data(args))
    except SupportbotError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(json.dumps({k: meta.get(k) for k in shown}, indent=2))
    print(f"wrote {args.output}")
    return 0
