"""The commands around conversations: ``ask`` and ``chat`` talk to the bot, ``eval`` measures it on labelled
questions, ``report`` summarises stored conversations, ``serve`` runs the HTTP API, ``config`` prints the settings
they all read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from bot.cli.shared import cli_settings, err, out, quiet_libraries, state
from bot.errors import SupportbotError
from bot.terminal.literal import literal, printable


def config_cmd() -> None:
    """Print the effective settings (defaults < supportbot.toml < SUPPORTBOT_* environment)."""
    from bot.config import find_config_file, settings_as_toml

    settings = cli_settings()
    src = find_config_file(state.config)
    out.print(f"# effective settings; file: {src or '(none)'}; environment: SUPPORTBOT_*", markup=False,
              highlight=False)
    out.print(settings_as_toml(settings), markup=False, highlight=False, end="")


def eval_command(data: Path = typer.Option(..., "--data", help="CSV or JSONL: question, expected (entry id or "
                                                                "'none'), optional escalation (reason or 'none')."),
                 as_json: bool = typer.Option(False, "--json", help="Print the report as JSON (for CI).")) -> None:
    """Run the bot over your labelled questions and report retrieval, modes, fallbacks, escalations, latency."""
    quiet_libraries()
    from bot.engine import Bot
    from bot.analytics.evaluation import evaluate, read_cases

    cases = read_cases(data)  # bad rows are reported before any model loads
    bot = Bot(settings=cli_settings())
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
    table.add_row("clarified with the expected entry among the choices", f"{a['clarified_right']} of {a['n']}")
    nq = r["no_answer_questions"]
    table.add_row("'none' questions that fell back", f"{nq['fell_back']} of {nq['n']}")
    table.add_row("'none' questions offered choices", f"{nq['offered_choices']} of {nq['n']}")
    e = r["escalations"]
    table.add_row("escalations", ", ".join(f"{k} {v}" for k, v in e["by_reason"].items()) or "none")
    if e["checked"]:
        table.add_row("escalation as expected", f"{e['as_expected']} of {e['checked']}")
    table.add_row("latency p50 / p95", f"{r['latency_ms']['p50']} / {r['latency_ms']['p95']} ms")
    out.print(table)


def ask(question: Optional[str] = typer.Argument(None, help="The customer's message (may be left out with "
                                                            "--choice)."),
        session_id: Optional[str] = typer.Option(None, "--session-id"),
        choice: Optional[str] = typer.Option(None, "--choice", help="Answer the conversation's pending \"did you "
                                             "mean ...?\": a choice's number (1, 2, ...), its entry id, or 'none'. "
                                             "Needs --session-id and stored sessions ([sessions] backend)."),
        as_json: bool = typer.Option(False, "--json", help="Print the whole Reply as JSON.")) -> None:
    """Ask one question and print the reply (a clarification lists its choices, numbered)."""
    quiet_libraries()
    from bot.engine import Bot

    if question is None and choice is None:
        raise typer.BadParameter("give a question, or --choice to answer a clarification", param_hint="QUESTION")
    if choice is not None and session_id is None:
        raise typer.BadParameter("a choice answers a conversation's clarification: give its --session-id",
                                 param_hint="--choice")
    bot = Bot(settings=cli_settings())
    bot.knowledge.warm_up()  # a missing knowledge base is reported before any model loads
    picked = int(choice) if choice is not None and choice.strip().isdigit() else choice
    try:
        reply = bot.chat(question or "", session_id=session_id, choice=picked)
    except ValueError as e:  # no clarification pending in that conversation, or not one of its choices
        if choice is None:
            raise
        raise SupportbotError(f"--choice: {e}") from None
    if as_json:
        print(reply.model_dump_json(indent=2))
        return
    out.print(printable(reply.text), markup=False, highlight=False)
    meta = f"[{reply.mode}, confidence {reply.confidence:.2f}]"
    if reply.sources:
        meta += " sources: " + ", ".join(s.entry_id for s in reply.sources)
    if reply.suggestions:  # the numbers of the text's choices, with the entries they stand for
        meta += " choices: " + ", ".join(f"{n} {s.entry_id}" for n, s in enumerate(reply.suggestions, 1))
        meta += f" (answer with --session-id {reply.session_id} --choice N)"
    if reply.sentiment:
        meta += f" sentiment: {reply.sentiment.label}"
    if reply.escalation:
        meta += f" escalation: {reply.escalation.reason} ({reply.escalation.detail})"
    err.print(printable(meta), markup=False, highlight=False)


def report(since: str = typer.Option("7d", help="Start: a duration ago (24h, 7d, 2w) or an ISO date."),
           until: Optional[str] = typer.Option(None, help="End (default: now); same forms."),
           top: int = typer.Option(10, help="How many unanswered questions to list."),
           as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
           png: Optional[Path] = typer.Option(None, "--png", help="Also draw the daily trends to this PNG.")) -> None:
    """Conversations, containment rate, replies by mode, clarifications, escalations, unanswered questions,
    feedback."""
    import time as _time

    from bot.analytics.report import ReportError, build_report, draw, parse_time
    from bot.storage.factory import make_sessions

    settings = cli_settings()
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
    c = result.clarifications
    clarified = f"{c.asked}: {c.chosen} answered by a choice ({c.resolution_rate:.0%}), {c.none} none of these, " \
        f"{c.abandoned} abandoned" if c.asked and c.resolution_rate is not None else "none"
    for name, value in [("conversations", str(result.conversations)),
                        ("handed to a human", str(result.handed_off)), ("automation (containment) rate", rate),
                        ("replies by mode", ", ".join(f"{k} {v}" for k, v in result.replies_by_mode.items()) or "-"),
                        ("clarifications (\"did you mean ...?\")", clarified),
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
            unanswered.add_row(str(count), literal(question))  # customer text: never markup
        out.print(unanswered)
    if png is not None:
        err.print(f"wrote {png}", markup=False)


def serve(host: Optional[str] = typer.Option(None, help="Interface (default: [server] host, 127.0.0.1)."),
          port: Optional[int] = typer.Option(None, help="Port (default: [server] port, 8000)."),
          workers: Optional[int] = typer.Option(None, help="Worker processes (default: [server] workers).")) -> None:
    """Serve the HTTP API (docs at /docs, OpenAPI at /openapi.json); needs API keys."""
    quiet_libraries()
    try:
        from bot.server.app import serve as run_server
    except ImportError as e:
        from bot.errors import ConfigError

        raise ConfigError(f"supportbot serve needs the server extra ({e.name} is missing): "
                          "pip install 'supportbot[server]'") from None
    run_server(cli_settings(), host, port, workers)


def chat() -> None:
    """Open the terminal chat UI on the configured knowledge base."""
    quiet_libraries()
    from tui import SupportApp

    SupportApp(settings=cli_settings()).run()  # a missing knowledge base is a notification in the app
