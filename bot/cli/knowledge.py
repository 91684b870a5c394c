"""``supportbot ingest`` and ``supportbot kb ...``: fill, inspect and maintain the knowledge base."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table

from bot.cli.shared import cli_settings, err, out, quiet_libraries
from bot.terminal.literal import literal, printable

kb_app = typer.Typer(help="Inspect and maintain the knowledge base.", no_args_is_help=True)

# the column-mapping options `ingest` and `kb lint` share (one definition: their flags cannot drift apart)
_COLUMNS = {field: typer.Option(None, f"--{field}-col", help=f"Column/key of the {text}.")
            for field, text in (("id", "entry id (default: id)"), ("question", "question"), ("answer", "answer"),
                                ("category", "category"), ("tags", "tags"), ("url", "URL"))}


def ingest(
    paths: list[str] = typer.Argument(None, help="FAQ files (CSV, JSON, JSONL), documents (Markdown, HTML, text, "
                                                "PDF, Word .docx) or directories of them; or a site's start URL "
                                                "(https://help.example.com/) to crawl."),
    sitemap: list[str] = typer.Option(None, "--sitemap", help="A sitemap URL whose pages to read (repeatable)."),
    sync: bool = typer.Option(False, "--sync", help="Remove entries that disappeared from these files."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Write the valid records of bad files."),
    max_pages: int = typer.Option(500, "--max-pages", min=1, help="Crawl: most pages fetched per site."),
    max_depth: int = typer.Option(5, "--max-depth", min=0, help="Crawl: most links followed from the start URL."),
    delay: float = typer.Option(0.5, "--delay", min=0.0, help="Crawl: seconds between two requests to a host."),
    allow_host: list[str] = typer.Option(None, "--allow-host", help="Crawl: another host the crawl may visit."),
    include: list[str] = typer.Option(None, "--include", help="Crawl: only URL paths starting with (or matching) "
                                                              "this."),
    exclude: list[str] = typer.Option(None, "--exclude", help="Crawl: URL paths starting with (or matching) this are "
                                                              "not visited."),
    id_col: Optional[str] = _COLUMNS["id"],
    question_col: Optional[str] = _COLUMNS["question"],
    answer_col: Optional[str] = _COLUMNS["answer"],
    category_col: Optional[str] = _COLUMNS["category"],
    tags_col: Optional[str] = _COLUMNS["tags"],
    url_col: Optional[str] = _COLUMNS["url"],
    as_json: bool = typer.Option(False, "--json", help="Print the IngestReport (and a crawl's SyncReport) as JSON."),
) -> None:
    """Ingest files, or crawl a site, into the knowledge base (incremental: unchanged records are not re-embedded;
    a crawled site remembers what it read, so ingesting it again is a sync)."""
    quiet_libraries()
    from knowledge import ColumnMapping, KnowledgeBase

    paths, sitemap = list(paths or []), list(sitemap or [])
    urls = [p for p in paths if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", p)]
    files = [Path(p) for p in paths if p not in urls]
    if not files and not urls and not sitemap:
        raise typer.BadParameter("give files, directories, a start URL or --sitemap URL", param_hint="PATHS")
    kb = KnowledgeBase(settings=cli_settings())
    rc = 0
    reports: dict[str, Any] = {}
    if urls or sitemap:
        sources = _sources(urls, sitemap, max_pages=max_pages, max_depth=max_depth, delay_seconds=delay,
                           allow_hosts=list(allow_host or []), include=list(include or []),
                           exclude=list(exclude or []))
        sync_report = _run_sync(kb, sources, quiet=as_json)
        reports["sync"] = sync_report.model_dump(mode="json")
        rc = 0 if sync_report.ok else 1
    if files:
        mapping = _mapping(ColumnMapping(), id_col, question_col, answer_col, category_col, tags_col, url_col)
        report = _ingest_with_progress(kb, files, mapping, sync, skip_invalid, quiet=as_json)
        reports["ingest"] = report.model_dump(mode="json")
        if not as_json:
            _print_findings(report)
            out.print(f"{kb.location}: {report.summary()} ({report.records_embedded} records embedded, "
                      f"{report.seconds:.1f} s)", markup=False, highlight=False)
        if report.invalid and not skip_invalid:
            if as_json:
                out.print_json(data=reports["ingest"] if len(reports) == 1 else reports)
            err.print("files with problems were not written; fix them or use --skip-invalid", markup=False)
            raise typer.Exit(2)
    if as_json:
        out.print_json(data=reports["ingest"] if list(reports) == ["ingest"] else reports)
    if rc:
        raise typer.Exit(rc)


def _sources(urls: list[str], sitemaps: list[str], **options: Any) -> list[Any]:
    """Sources for URLs given on the command line (a bad URL is a usage error naming it)."""
    from pydantic import ValidationError

    from knowledge.settings import SourceSettings

    sources = []
    for key, values in (("url", urls), ("sitemap", sitemaps)):
        for value in values:
            try:
                sources.append(SourceSettings(**{key: value}, **options))
            except ValidationError as e:
                raise typer.BadParameter(e.errors()[0]["msg"].removeprefix("Value error, "),
                                         param_hint="--sitemap" if key == "sitemap" else "PATHS") from None
    return sources


def _run_sync(kb: Any, sources: list[Any], quiet: bool) -> Any:
    """Sync ``sources`` with a live line per page on a terminal; print each source's failures and summary."""
    from rich.status import Status

    if quiet or not err.is_terminal:
        report = kb.sync(sources)
    else:
        with Status("syncing", console=err, spinner="dots") as status:
            report = kb.sync(sources, progress=lambda source, what: status.update(printable(f"{source}: {what}")))
    if not quiet:
        for s in report.sources:
            for w in s.warnings:
                err.print(f"warning: {printable(w)}", markup=False, highlight=False)
            for f in s.failed:
                err.print(f"failed: {printable(f.url)}: {printable(f.reason)}", markup=False, highlight=False)
            hubs = [f for f in s.skipped if f.reason.startswith("a list of links")]
            for f in s.skipped:
                if f not in hubs:
                    err.print(f"skipped: {printable(f.url)}: {printable(f.reason)}", markup=False, highlight=False)
            if hubs:
                err.print(f"{len(hubs)} link page{'s' if len(hubs) != 1 else ''} (home, categories) followed, not "
                          "kept", markup=False)
            out.print(printable(f"{kb.location}: {s.summary()} ({s.records_embedded} records embedded)"),
                      markup=False, highlight=False)
    return report


def sync(
    source: list[str] = typer.Option(None, "--source", "-s", help="Sync only the source of this name (repeatable)."),
    every: Optional[str] = typer.Option(None, "--every", help="Run again at this interval (e.g. 30m, 6h, 1d) until "
                                                              "interrupted; a run that fails is retried at the next."),
    as_json: bool = typer.Option(False, "--json", help="Print the SyncReport as JSON."),
) -> None:
    """Bring the knowledge base in line with its sources ([[knowledge.sources]] in supportbot.toml): new and changed
    pages and files written, vanished ones removed, unchanged ones cost nothing. Exit code 1 if a page failed."""
    quiet_libraries()
    import time

    from knowledge import KnowledgeBase

    settings = cli_settings()
    sources = settings.knowledge.sources
    if source:
        unknown = [n for n in source if n not in {s.label for s in sources}]
        if unknown:
            names = ", ".join(s.label for s in sources) or "none are declared"
            raise typer.BadParameter(f"no source named {unknown[0]!r} (sources: {names})", param_hint="--source")
        sources = [s for s in sources if s.label in source]
    interval = _interval(every) if every else None
    kb = KnowledgeBase(settings=settings)
    while True:
        report = _run_sync(kb, sources, quiet=as_json)
        if as_json:
            out.print_json(report.model_dump_json())
        if interval is None:
            if not report.ok:
                raise typer.Exit(1)
            return
        err.print(f"next sync in {every} (Ctrl-C stops)", markup=False)
        time.sleep(interval)


def _interval(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text.lower())
    if not m or float(m.group(1)) <= 0:
        raise typer.BadParameter(f"{text!r} is not an interval such as 90s, 30m, 6h or 1d", param_hint="--every")
    return float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def _mapping(mapping: Any, *columns: Optional[str]) -> Any:
    for field, value in zip(("id", "question", "answer", "category", "tags", "url"), columns):
        if value is not None:
            setattr(mapping, field, value)
    return mapping


def _print_findings(report: Any) -> None:
    for w in report.warnings:
        err.print(f"warning: {printable(str(w))}", markup=False, highlight=False)
    for problem in report.invalid:
        err.print(f"invalid: {printable(str(problem))}", markup=False, highlight=False)


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
        table.add_row(f"{h.score:.3f}", literal(h.entry_id), h.kind, literal(h.title), literal(text))
    return table


@kb_app.command("lint")
def kb_lint(
    paths: list[Path] = typer.Argument(..., help="The files or directories you would ingest."),
    id_col: Optional[str] = _COLUMNS["id"],
    question_col: Optional[str] = _COLUMNS["question"],
    answer_col: Optional[str] = _COLUMNS["answer"],
    category_col: Optional[str] = _COLUMNS["category"],
    tags_col: Optional[str] = _COLUMNS["tags"],
    url_col: Optional[str] = _COLUMNS["url"],
    as_json: bool = typer.Option(False, "--json", help="Print the findings as an IngestReport in JSON."),
) -> None:
    """Check files as `ingest` would, writing nothing: invalid records and warnings, with file and line
    (sentences that read like instructions to the assistant among them). Exit code 0: nothing found;
    1: warnings only; 2: invalid records (ingest would refuse those files)."""
    quiet_libraries()
    from knowledge import ColumnMapping, KnowledgeBase

    mapping = _mapping(ColumnMapping(), id_col, question_col, answer_col, category_col, tags_col, url_col)
    report = KnowledgeBase(settings=cli_settings()).lint(paths, mapping=mapping)
    if as_json:
        out.print_json(report.model_dump_json())
    else:
        _print_findings(report)
        n_files = len(report.files)
        out.print(f"{n_files} file{'' if n_files == 1 else 's'} checked: {len(report.invalid)} invalid, "
                  f"{len(report.warnings)} warning{'' if len(report.warnings) == 1 else 's'}", markup=False,
                  highlight=False)
    if report.invalid:
        raise typer.Exit(2)
    if report.warnings:
        raise typer.Exit(1)


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
def kb_stats(as_json: bool = typer.Option(False, "--json"),
             stale: bool = typer.Option(False, "--stale", help="List entries and pages past their review_by date or "
                                                               "not changed for knowledge.stale_after_days.")) -> None:
    """Entries and records in the knowledge base (with --stale: what is due for review; exit code 1 if any)."""
    from knowledge import KnowledgeBase

    kb = KnowledgeBase(settings=cli_settings())
    if stale:
        from knowledge.quality.review import stale as find_stale

        found, undated = find_stale(kb)
        if as_json:
            out.print_json(data={"stale": [s.model_dump(mode="json") for s in found], "undated": undated})
        else:
            for s in found:
                where = f" ({s.source})" if s.source else ""
                out.print(printable(f"{s.entry_id}: {s.title}{where}: {s.reason}"), markup=False, highlight=False)
            days = kb.settings.knowledge.stale_after_days
            out.print(f"{len(found)} stale entr{'y' if len(found) == 1 else 'ies'} (review_by passed, or not changed "
                      f"for {days} days)" + (f"; {undated} without a change date (written before dates were kept: "
                                              "re-ingest to stamp them)" if undated else ""), markup=False)
        if found:
            raise typer.Exit(1)
        return
    stats = kb.stats()
    if as_json:
        out.print_json(data=stats)
        return
    for key, value in stats.items():
        out.print(printable(f"{key}: {value}"), markup=False, highlight=False)


@kb_app.command("conflicts")
def kb_conflicts(as_json: bool = typer.Option(False, "--json", help="Print the conflicts as JSON.")) -> None:
    """FAQ entries with near-duplicate questions whose answers disagree (other numbers, yes vs no), and pages that
    state another number than an FAQ answer: for a person to resolve. Exit code 1 if any are found."""
    quiet_libraries()
    from knowledge import KnowledgeBase
    from knowledge.quality.review import conflicts

    found = conflicts(KnowledgeBase(settings=cli_settings()))
    if as_json:
        out.print_json(data=[c.model_dump(mode="json") for c in found])
    else:
        for c in found:
            what = "questions alike, answers differ" if c.kind == "faq-faq" else "a page disagrees with an FAQ answer"
            out.print(printable(f"{c.entry_ids[0]} / {c.entry_ids[1]}: {what}: {c.detail}"), markup=False,
                      highlight=False)
            for title, text in zip(c.titles, c.texts):
                out.print(printable(f"    {title}: \"{text}\""), markup=False, highlight=False)
        out.print(f"{len(found)} conflict{'' if len(found) == 1 else 's'}", markup=False)
    if found:
        raise typer.Exit(1)


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


def _ids(values: Optional[list[str]]) -> list[str]:
    """Repeated options, each possibly a comma-separated list."""
    return [v.strip() for value in values or () for v in value.split(",") if v.strip()]


def _accepted(values: list[str]) -> dict[str, Optional[str]]:
    from bot.learning.review import ReviewError

    accept: dict[str, Optional[str]] = {}
    for value in values:
        gid, _, entry = value.partition("=")
        gid, entry = gid.strip(), entry.strip() or None
        if not gid:
            raise ReviewError(f"--accept {value!r}: expected ID or ID=ENTRY_ID")
        if gid in accept and accept[gid] != entry:
            raise ReviewError(f"--accept {gid} is given twice with different entries")
        accept[gid] = entry
    return accept


def _review_table(kb: Any, groups: list[Any], shown: int = 3) -> Table:
    table = Table("id", "times", "entry", "from", "phrasings")
    table.columns[2].overflow = "fold"  # an entry id is read whole
    titles: dict[str, str] = {}
    for g in groups:
        if g.entry_id is None:
            entry = literal("(unanswered)" + (f"\nnearest: {g.nearest}" if g.nearest else ""))
        else:
            if g.entry_id not in titles:
                hit = kb.entry(g.entry_id)
                titles[g.entry_id] = hit.title if hit is not None else "(no longer in the knowledge base)"
            entry = literal(f"{g.entry_id}\n{titles[g.entry_id]}")
        lines = [f"{p.count}x {p.question}" for p in g.phrasings[:shown]]
        if len(g.phrasings) > shown:
            lines.append(f"... and {len(g.phrasings) - shown} more")
        table.add_row(g.id, str(g.count), entry, "\n".join(g.kinds), literal("\n".join(lines)))  # customer text
    return table


@kb_app.command("review")
def kb_review(
    accept: Optional[list[str]] = typer.Option(
        None, "--accept", metavar="ID[=ENTRY_ID]", help="Add the group's phrasings to its entry as question variants (repeatable, or "
                               "comma-separated). An unanswered group needs its entry: --accept ID=ENTRY_ID "
                               "(the same form moves any group to another entry)."),
    reject: Optional[list[str]] = typer.Option(None, "--reject", metavar="ID", help="Mark the group reviewed without adding "
                                                                       "it (repeatable, or comma-separated)."),
    export: Optional[Path] = typer.Option(None, "--export", metavar="FILE", help="Write FAQ JSONL: each entry as stored with the "
                                          "groups' phrasings added to its questions (the groups accepted by this "
                                          "command, else every listed group that has an entry)."),
    min_count: int = typer.Option(1, "--min-count", min=1, help="List and export only groups seen in at least "
                                                                  "this many conversations."),
    as_json: bool = typer.Option(False, "--json", help="Print the groups as JSON."),
) -> None:
    """Review what customers asked: logged phrasings grouped per entry, and unanswered questions; nothing is
    added to the knowledge base unless accepted here."""
    quiet_libraries()
    from knowledge import KnowledgeBase
    from bot.learning.review import Review, ReviewError

    accepted = _accepted(_ids(accept))
    rejected = _ids(reject)
    if export is not None and export.is_dir():
        raise ReviewError(f"--export {export}: is a directory (give a file name)")
    settings = cli_settings()
    kb = KnowledgeBase(settings=settings)
    review = Review(kb, settings)
    if accepted or rejected:
        done = review.apply(accepted, rejected)  # all validated before anything changes
        for a in done:
            out.print(f"accepted {a.group.id}: {len(a.added)} phrasing{'' if len(a.added) == 1 else 's'} added to "
                      f"{a.entry_id}", markup=False, highlight=False)
        for gid in dict.fromkeys(rejected):
            out.print(f"rejected {gid}", markup=False, highlight=False)
        if export is not None:
            if done:
                entries, phrasings = review.export(export, [(a.group, a.entry_id) for a in done])
                out.print(f"wrote {entries} entr{'y' if entries == 1 else 'ies'} ({phrasings} phrasings) to "
                          f"{export}", markup=False, highlight=False)
            else:
                err.print("nothing accepted: --export not written", markup=False, highlight=False)
        return
    groups = review.groups(min_count)
    if export is not None:
        listed = [(g, g.entry_id) for g in groups if g.entry_id is not None]
        entries, phrasings = review.export(export, listed)
        left = len(groups) - len(listed)
        note = f"; {left} unanswered group{'' if left == 1 else 's'} left out (no entry)" if left else ""
        (err if as_json else out).print(f"wrote {entries} entr{'y' if entries == 1 else 'ies'} ({phrasings} "
                                        f"phrasings) to {export}{note}", markup=False, highlight=False)
    if as_json:
        hits = {eid: kb.entry(eid) for eid in {g.entry_id for g in groups} if eid is not None}
        out.print_json(data=[{**g.as_dict(), "entry_question": getattr(hits.get(g.entry_id or ""), "title", None)}
                             for g in groups])
        return
    if not groups:
        out.print("nothing to review", markup=False, highlight=False)
        return
    out.print(_review_table(kb, groups))
    out.print("accept: --accept ID (unanswered: --accept ID=ENTRY_ID); reject: --reject ID; FAQ JSONL: --export "
              "FILE", markup=False, highlight=False)
