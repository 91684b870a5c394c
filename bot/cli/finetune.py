"""``supportbot finetune <task>``: the fine-tuning tasks' own typer commands (the very ones behind
``python -m finetune.<task>``), mounted under one group so that ``--help`` shows each task's real options."""

from __future__ import annotations

import typer

from bot.cli.shared import quiet_libraries
from finetune import cli, embedder, generator, injection, matcher, sentiment

finetune_app = typer.Typer(help="Fine-tune a model on your data; each task's --help lists its options.",
                           no_args_is_help=True)


@finetune_app.callback()
def _quiet() -> None:
    quiet_libraries()


cli.register(finetune_app, generator.command, "generator",
             "The generator, on FAQ answers with the runtime prompt and retrieval (= python -m finetune.generator).")
cli.register(finetune_app, embedder.command, "embedder",
             "The embedding model, on FAQ question variants (= python -m finetune.embedder).")
cli.register(finetune_app, sentiment.command, "sentiment",
             "The sentiment classifier, on text,label CSV files (= python -m finetune.sentiment).")
cli.register(finetune_app, matcher.command, "matcher",
             "The matcher (cross-encoder) on the shared intent data sets (= python -m finetune.matcher).")
cli.register(finetune_app, injection.command, "injection",
             "The instruction classifier of knowledge-base sentences (= python -m finetune.injection).")
