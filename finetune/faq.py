"""The inputs of the tasks that train on a company's FAQ (the generator and the embedder): FAQ files read as
``supportbot ingest`` reads them, past conversation logs, and the command that checks them all before training.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import typer

from finetune import cli
from finetune._common import TrainingDataError
from finetune.conversations import read_conversations

if TYPE_CHECKING:
    from knowledge.schema import FAQEntry


def load_entries(paths: Sequence[Path], mapping: Any = None) -> list[FAQEntry]:
    """FAQ entries from the files the knowledge base ingests; any invalid record stops here, before training."""
    from knowledge import KnowledgeBase

    with tempfile.TemporaryDirectory() as tmp:
        loaded = KnowledgeBase(path=Path(tmp) / "unused").load(paths, mapping)
    problems = [p for lf in loaded for p in lf.invalid]
    if problems:
        raise TrainingDataError("; ".join(str(p) for p in problems[:5]) +
                                (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    entries = [e for lf in loaded for e in lf.entries]
    if not entries:
        raise TrainingDataError(f"no FAQ entries in {', '.join(str(p) for p in paths)}")
    return entries


def describe_data(data: Sequence[Path], conversations: Sequence[Path]) -> str:
    """The data a model was trained on, for its model card."""
    note = "FAQ files: " + ", ".join(str(d) for d in data)
    if conversations:
        note += "; conversation logs: " + ", ".join(str(c) for c in conversations)
    return note


def faq_command(module: str, options_cls: type, train: Callable[..., dict[str, Any]],
                shown: Sequence[str]) -> Callable[..., None]:
    """The command of a trainer on FAQ files (and conversation logs): load and check every input before
    training, train, print the ``shown`` metrics as JSON."""

    def train_on_faq(
        data: list[Path] = typer.Option(..., help="FAQ file or folder (CSV / JSON / JSONL, as for `supportbot "
                                                  "ingest`); repeatable"),
        output: Path = typer.Option(..., help="directory for the fine-tuned model"),
        question_column: str = typer.Option("question", help="CSV column / JSON key of the question"),
        answer_column: str = typer.Option("answer", help="CSV column / JSON key of the answer"),
        id_column: str = typer.Option("id", help="CSV column / JSON key of the entry id"),
        conversations: list[Path] = typer.Option([], help="past support conversations, JSONL (see "
                                                          "finetune/conversations.py); repeatable"),
        *, options: Any, command: str,
    ) -> None:
        from knowledge import ColumnMapping

        mapping = ColumnMapping(id=id_column, question=question_column, answer=answer_column)
        entries = load_entries(data, mapping)
        exchanges = read_conversations(conversations)
        meta = train(entries, output, options, command=command, conversations=exchanges,
                     data_note=describe_data(data, conversations))
        print(json.dumps({k: meta.get(k) for k in shown}, indent=2))
        print(f"wrote {output}")

    return cli.task_command(train_on_faq, options_cls, module)
