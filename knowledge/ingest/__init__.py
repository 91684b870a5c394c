"""Ingestion: files -> typed entries and documents (``formats/``, one loader per file format) -> records ->
the store, writing only what changed (``writer``)."""
