"""``supportbot ingest`` and ``supportbot kb ...``: fill, inspect and maintain the knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from bot.cli.shared import cli_settings, err, out, quiet_libraries

kb_app = typer.Typer(help="Inspect and maintain the knowledge base.", no_args_is_help=True)


def ingest(
    paths: list[Path] = typer.Argument(..., help="FAQ files (CSV, JSON, JSONL) and documents (Markdown, HTML, "
                                                 "text), or directories of them."),
    sync: bool = typer.Option(False, "--sync", help="Remove entries that disappeared from these files."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Write the valid records of bad files."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Column/key of the entry id (default: id)."),
    question_col: Optional[str] = typer.Option(None, "--question-col", help="Column/key of the question."),
    answer_col: Optional[str] = typer.Option(None, "--answer-col", help="Column/key of the answer."),
    category_col: Optional[str] = typer.Option(None, "--category-col", help="Column/key of the category."),
    tags_col: Optional[str] = typer.Option(None, "--tags-col", help="Column/key of the tags."),
    url_col: Optional[str] = typer.Option(None, "--url-col", help="Column/key of the URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the IngestReport as JSON."),
) -> None:
    """Ingest files into the knowledge base (incremental: unchanged records are not re-embedded)."""
    quiet_libraries()
    from knowledge import ColumnMapping, KnowledgeBase

    mapping = ColumnMapping()
    for field, value in (("id", id_col), ("question", question_col), ("answer", answer_col),
                         ("category", category_col), ("tags", tags_col), ("url", url_col)):
        if value is not None:
            setattr(mapping, field, value)
    kb = KnowledgeBase(settings=cli_settings())
    report = _ingest_with_progress(kb, paths, mapping, sync, skip_invalid, quiet=as_json)
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        for w in report.warnings:
            err.print(f"warning: {w}", markup=False, highlight=False)
        for problem in report.invalid:
            err.print(f"invalid: {problem}", markup=False, highlight=False)
        out.print(f"{kb.location}: {report.summary()} ({report.records_embedded} records embedded, "
                  f"{report.seconds:.1f} s)", markup=False, highlight=False)
    if report.invalid and not skip_invalid:
        err.print("files with problems were not written; fix them or use --skip-invalid", markup=False)
        raise typer.Exit(2)


def _ingest_with_progress(kb: Any, paths: list[Path], mapping: Any, sync: bool, skip_invalid: bool,
                          quiet: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if quiet or not err.is_terminal:
        return kb.ingest(paths, mapping=mapping, sync=sync, skip_invalid=skip_invalid)
    with Progress(TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("embed", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return kb.ingest(paths, mapping=mapping, sync=sync, skip_invalid=skip_invalid, progress=progress)


def _hit_rows(hits: list[Any]) -> Table:
    table = Table("score", "entry", "kind", "title", "text")
    for h in hits:
        text = h.text if len(h.text) < 100 else h.text[:97] + "..."
        table.add_row(f"{h.score:.3f}", h.entry_id, h.kind, h.title, text)
    return table


@kb_app.command("search")
def kb_search(query: str, k: int = typer.Option(5, "--k", "-k"),
              category: Optional[str] = typer.Option(None, help="Only this category."),
              tag: Optional[list[str]] = typer.Option(None, help="Only entries with this tag (repeatable)."),
              language: Optional[str] = typer.Option(None, help="Only this language."),
              as_json: bool = typer.Option(False, "--json")) -> None:
    """Search the knowledge base."""
    quiet_libraries()
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(settings=cli_settings())
    hits = kb.search(query, k=k, filters={"category": category, "tags": tag or None, "language": language})
    if as_json:
        out.print_json(data=[h.model_dump() for h in hits])
    else:
        out.print(_hit_rows(hits))


@kb_app.command("stats")
def kb_stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Entries and records in the knowledge base."""
    from knowledge import KnowledgeBase

    stats = KnowledgeBase(settings=cli_settings()).stats()
    if as_json:
        out.print_json(data=stats)
        return
    for key, value in stats.items():
        out.print(f"{key}: {value}", markup=False, highlight=False)


@kb_app.command("remove")
def kb_remove(ids: list[str]) -> None:
    """Remove entries by id."""
    from knowledge import KnowledgeBase

    n = KnowledgeBase(settings=cli_settings()).remove(ids)
    out.print(f"removed {n} entr{'y' if n == 1 else 'ies'}")


@kb_app.command("reindex")
def kb_reindex(embedding_model: Optional[str] = typer.Option(
        None, "--embedding-model", help="Re-embed with this model (path, hub id or bundled:minilm).")) -> None:
    """Re-embed every record (e.g. after changing or fine-tuning the embedding model)."""
    quiet_libraries()
    from knowledge import KnowledgeBase

    settings = cli_settings()
    kb = KnowledgeBase(settings=settings)
    report = kb.reindex(embedding_model)
    out.print(f"reindexed {report.records_embedded} records with {kb.embedder.model_ref} "
              f"({report.seconds:.1f} s)", markup=False, highlight=False)
    if embedding_model and embedding_model != settings.knowledge.embedding_model:
        out.print(f"set knowledge.embedding_model = \"{embedding_model}\" in your config to query it",
                  markup=False, highlight=False)
