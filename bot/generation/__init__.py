"""Generation backends: a local transformers model (the default) or an OpenAI-compatible endpoint."""
